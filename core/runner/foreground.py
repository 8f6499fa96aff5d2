"""Running long work in the foreground of a terminal: Ctrl-C becomes a cooperative stop.

The CLI's `search`, `resume` and `train` use it, so an interrupted run is left `stopped`
at a batch boundary (nothing half-written) and can be resumed; the command then exits 130,
the shell's code for "ended by SIGINT".

Ctrl-C is taken by a SIGINT handler that only sets the stop event, never as a
KeyboardInterrupt: one that lands inside `Thread.join` can leave the thread's internal lock
released, the next `join` then returns while the worker still runs, and the interpreter shut
down under a running torch thread (seen: exit 134, the run left `running`); one that lands
anywhere else in the main thread (e.g. while it is starved of the GIL before it waits)
would skip the cooperative stop.
"""
from __future__ import annotations

import os
import signal
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
    presses: list[float] = []

    def target() -> None:
        try:
            result["status"] = work(stop)
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread, which reports it
            result["error"] = exc
        finally:
            done.set()

    def on_sigint(signum: int, frame: object) -> None:
        """A handler, not KeyboardInterrupt: nothing is raised wherever the main thread is."""
        now = time.monotonic()
        if presses and now - presses[0] < SAME_PRESS_S:
            return  # one press delivered twice (`timeout -s INT` signals the child and its group)
        if presses:  # a second Ctrl-C: give up the batch in progress
            os.write(2, b"\naborted; the work since the last committed step is lost\n")
            os._exit(EXIT_INTERRUPTED)
        presses.append(now)
        stop.set()

    previous = _install(on_sigint)
    try:
        threading.Thread(target=target, name="foreground-work", daemon=True).start()
        announced = False
        while not done.wait(0.2):
            if presses and not announced:
                announced = True
                say(f"stopping after the current batch{hint} (Ctrl-C again to abort)...")
        if presses and not announced:  # it stopped before this thread got to say so
            say(f"stopped by Ctrl-C{hint}")
    finally:
        _install(previous)
    if "error" in result:
        raise result["error"]
    return Outcome(result.get("status", FAILED), bool(presses))


def _install(handler: Callable | int | None) -> Callable | int | None:
    """Set the SIGINT handler where Python allows it (the main thread); returns the old one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, handler)
