"""Running long work in the foreground of a terminal: Ctrl-C becomes a cooperative stop.

The CLI's `search`, `resume` and `train` use it, so an interrupted run is left `stopped`
at a batch boundary (nothing half-written) and can be resumed.
"""
from __future__ import annotations

import threading
from typing import Callable

from core.store.runs import FAILED


def run_interruptibly(work: Callable[[threading.Event], str], say: Callable[[str], None], hint: str = "") -> str:
    """Run `work(stop)` in a worker thread so Ctrl-C becomes a cooperative stop at a batch
    boundary (nothing half-written), not a KeyboardInterrupt torn through the trainer."""
    stop, result = threading.Event(), {}
    worker = threading.Thread(target=lambda: result.update(status=work(stop)))
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        say(f"stopping after the current batch{hint} (Ctrl-C again to abort)...")
        worker.join()
    return result.get("status", FAILED)
