"""Running long work in the foreground of a terminal: Ctrl-C or SIGTERM becomes a cooperative stop.

The CLI's `search`, `resume` and `train` use it, so an interrupted run is left `stopped`
at a batch boundary (nothing half-written) and can be resumed; the command then exits 130,
the shell's code for "ended by SIGINT". SIGTERM (what `kill`, docker and systemd send) is
treated the same way and exits 143 (128 + SIGTERM).

Ctrl-C (and SIGTERM) is taken by a signal handler that only sets the stop event, never as a
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

from core.store.lifecycle import RunStatus

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd command
EXIT_TERMINATED = 143  # 128 + SIGTERM, what shells report for a `kill`ed command
SAME_PRESS_S = 1.0  # signals closer together than this count as one press
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_NAME = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


@dataclass(frozen=True)
class Outcome:
    """How foreground work ended: its final status, and whether a signal (Ctrl-C or SIGTERM) asked
    it to stop; `signum` is that signal, 0 for none."""

    status: str
    interrupted: bool
    signum: int = 0

    @property
    def exit_code(self) -> int:
        """0, or the shell's code for the signal that stopped it (130 Ctrl-C, 143 SIGTERM)."""
        return 128 + self.signum if self.interrupted else 0


def run_interruptibly(work: Callable[[threading.Event], str], say: Callable[[str], None], hint: str = "") -> Outcome:
    """Run `work(stop)` in a worker thread; the first Ctrl-C or SIGTERM sets `stop` (a stop at the
    next batch boundary), a second one ends the process at once with 128 + its number: the store
    then holds what the last committed step or epoch left, as after a kill, and a resume goes on
    from it. An exception raised by `work` is raised again here, in the caller's thread."""
    stop, done, result = threading.Event(), threading.Event(), {}
    presses: list[tuple[float, int]] = []

    def target() -> None:
        try:
            result["status"] = work(stop)
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread, which reports it
            result["error"] = exc
        finally:
            done.set()

    def on_signal(signum: int, frame: object) -> None:
        """A handler, not KeyboardInterrupt: nothing is raised wherever the main thread is."""
        now = time.monotonic()
        if presses and now - presses[0][0] < SAME_PRESS_S:
            return  # one press delivered twice (`timeout -s INT` signals the child and its group)
        if presses:  # a second signal: give up the batch in progress
            os.write(2, b"\naborted; the work since the last committed step is lost\n")
            os._exit(128 + signum)
        presses.append((now, signum))
        stop.set()

    previous = _install({signum: on_signal for signum in STOP_SIGNALS})
    try:
        threading.Thread(target=target, name="foreground-work", daemon=True).start()
        announced = False
        while not done.wait(0.2):
            if presses and not announced:
                announced = True
                say(f"{SIGNAL_NAME[presses[0][1]]}: stopping after the current batch{hint} (Ctrl-C again to abort)...")
        if presses and not announced:  # it stopped before this thread got to say so
            say(f"stopped by {SIGNAL_NAME[presses[0][1]]}{hint}")
    finally:
        _install(previous)
    if "error" in result:
        raise result["error"]
    return Outcome(result.get("status", RunStatus.FAILED), bool(presses), presses[0][1] if presses else 0)


def _install(handlers: dict[int, Callable | int | None]) -> dict[int, Callable | int | None]:
    """Set signal handlers where Python allows it (the main thread); returns the old ones."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum, handler in handlers.items() if handler is not None}
