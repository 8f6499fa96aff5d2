"""Running long work in the foreground of a terminal: Ctrl-C becomes a cooperative stop.

The CLI's `search`, `resume` and `train` use it, so an interrupted run is left `stopped`
at a batch boundary (nothing half-written) and can be resumed; the command then exits 130,
the shell's code for "ended by SIGINT".

The main thread waits on an Event the worker sets when it is done, never on
`Thread.join`: a KeyboardInterrupt that lands inside `join` can leave the thread's
internal lock released, and the next `join` then returns while the worker still runs, so
the interpreter shut down under a running torch thread (seen: exit 134, the run left
`running`).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from core.store.runs import FAILED

EXIT_INTERRUPTED = 130   # 128 + SIGINT, what shells report for a Ctrl-C'd command
SAME_PRESS_S = 1.0       # SIGINTs closer together than this count as one press


@dataclass(frozen=True)
class Outcome:
    """How foreground work ended: its final status, and whether Ctrl-C asked it to stop."""
    status: str
    interrupted: bool


def run_interruptibly(work: Callable[[threading.Event], str], say: Callable[[str], None],
                      hint: str = "") -> Outcome:
    """Run `work(stop)` in a worker thread; the first Ctrl-C sets `stop` (a stop at the next
    batch boundary), a second one ends the process at once with 130: the store then holds
    what the last committed step or epoch left, as after a kill, and a resume goes on from it.
    An exception raised by `work` is raised again here, in the caller's thread."""
    stop, done, result = threading.Event(), threading.Event(), {}

    def target() -> None:
        try:
            result["status"] = work(stop)
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread, which reports it
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="foreground-work", daemon=True).start()
    interrupted = _wait(done, stop, say, hint)
    if "error" in result:
        raise result["error"]
    return Outcome(result.get("status", FAILED), interrupted)


def _wait(done: threading.Event, stop: threading.Event, say: Callable[[str], None], hint: str) -> bool:
    """Wait for the worker; True if Ctrl-C was pressed while it ran."""
    first: float | None = None
    while True:
        try:
            if done.wait(0.2):
                return first is not None
        except KeyboardInterrupt:
            if first is not None and time.monotonic() - first < SAME_PRESS_S:
                continue  # one press delivered twice (`timeout -s INT` signals child and group)
            if first is not None:  # a second Ctrl-C: give up the batch in progress
                say("aborted; the work since the last committed step is lost")
                os._exit(EXIT_INTERRUPTED)
            first = time.monotonic()
            stop.set()
            say(f"stopping after the current batch{hint} (Ctrl-C again to abort)...")
