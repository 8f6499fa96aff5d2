"""Background work for a long-lived process (the app server): searches in daemon threads.

One `Runner` per process (the app keeps it with st.cache_resource) so a search outlives
the browser tab that started it. Stop is cooperative: it is written to the store, which
the trainer polls between batches, so it works for runs owned by any process.

When the process ends, the Runner stops its searches and jobs as a Stop click would, so they
are left `stopped` and resumable, not `running`. An app server gets SIGTERM (or Ctrl-C) and
Streamlit's own handler stops its loop; `chain_stop_signals` (run on the main thread: the
app's script runs elsewhere, where Python cannot set a handler) puts `Runner.shutdown` in
front of that handler, so the threads reach their batch boundary while the interpreter is
still whole. Waiting for atexit is too late: by then the interpreter is shutting down and a
search still loading its data fails on the first lazy import (seen: sklearn's, with
"can't register atexit after shutdown"). `stop_at_exit` stays as the fallback for any
other normal exit.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import signal
import sys
import threading
import time
from typing import Callable

from core.errors import UserError
from core.search.config import SearchConfig
from core.search.control import check_samples, control_after_search, plan_targets, run_control
from core.search.loop import Observer, create_run, run_search
from core.store.access import require_write
from core.store.controls import check_control_startable, request_control_stop
from core.store.lifecycle import RunStatus
from core.store.runs import Store, StoreError

SAME_START_S = 10.0  # a second Start with the same settings within this window is the same click
EXIT_GRACE_S = 8.0  # at exit, how long the threads get to reach a batch boundary (docker waits 10 s)


class Runner:
    """Registry of the jobs running in this process, keyed by (store path, kind, id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[tuple[str, str, int], tuple[threading.Thread, threading.Event]] = {}
        self._helpers = itertools.count()  # each helper its own key: a second must not untrack the first

    def _launch(self, key: tuple[str, str, int], target: Callable[[threading.Event], object]) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=_quiet_loser, args=(target, stop), name=f"{key[1]}-{key[2]}", daemon=True)
        with self._lock:
            self._threads[key] = (thread, stop)
        thread.start()

    def start_helper(self, name: str, work: Callable[[threading.Event], object]) -> None:
        """Run `work(stop)` (a warm-up, say: no store row of its own) in a daemon thread that the
        exit path treats as it treats a search: `shutdown` sets `stop` and waits its grace, and one
        still inside torch after that ends the process at once. Left alone, such a thread aborts
        the interpreter's finalisation (see `exit_if_stuck`). `work` should check `stop` often."""
        self._launch((name, "helper", next(self._helpers)), work)

    def stop_at_exit(self) -> None:
        """Call `shutdown` when this process exits (the app server does this for its Runner)."""
        atexit.register(self.shutdown_at_exit)

    def shutdown_at_exit(self) -> None:
        """`shutdown`, then end the process at once if a thread is still stuck (exit_if_stuck)."""
        self.shutdown()
        self.exit_if_stuck()

    def exit_if_stuck(self) -> None:
        """End the process now if a thread is still training after its grace (its row is already
        marked `stopped`): an interpreter that finalises while a thread is inside torch aborts in
        C++ ("terminate called without an active exception", SIGABRT) instead of exiting 0."""
        with self._lock:
            stuck = [thread for thread, _ in self._threads.values() if thread.is_alive()]
        if stuck:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    def shutdown(self, grace_s: float = EXIT_GRACE_S) -> list[tuple[str, str, int]]:
        """Stop every live search and job of this process: each stops at its next batch boundary
        and marks itself `stopped`; one that has not within `grace_s` (still loading data, say) is
        marked `stopped` here, as its committed steps or epochs are all a resume needs. Returns
        the (store, kind, id) keys it stopped."""
        with self._lock:
            live = [(key, thread, stop) for key, (thread, stop) in self._threads.items() if thread.is_alive()]
        for _, _, stop in live:
            stop.set()
        deadline = time.monotonic() + grace_s
        for _, thread, _ in live:
            thread.join(max(0.0, deadline - time.monotonic()))
        for key, thread, _ in live:
            if thread.is_alive() and key[1] in _MARK_STOPPED:
                _mark_stopped(*key)
        return [key for key, _, _ in live]

    def active(self, store: Store, run_id: int, kind: str = "search") -> bool:
        entry = self._threads.get(_key(store, kind, run_id))
        return bool(entry and entry[0].is_alive())

    def join(self, store: Store, run_id: int, timeout: float | None = None, kind: str = "search") -> None:
        entry = self._threads.get(_key(store, kind, run_id))
        if entry:
            entry[0].join(timeout)

    # ----- searches --------------------------------------------------------------------
    def start_search(self, store: Store, cfg: SearchConfig, observer: Observer | None = None) -> int:
        """Create and launch a run; a repeat of the same settings while the first is still
        queued or running and younger than SAME_START_S (a double click on Start, a second
        tab's identical submit) returns that run instead of creating a twin."""
        require_write("starting a search")
        with self._lock:
            twin = self._recent_twin(store, cfg)
            if twin is not None:
                return twin
            run_id = create_run(store, cfg)
        self._launch(_key(store, "search", run_id), lambda stop: _search_then_control(store, run_id, observer, stop))
        return run_id

    @staticmethod
    def _recent_twin(store: Store, cfg: SearchConfig) -> int | None:
        wanted, now = cfg.to_dict(), time.time()
        for run in store.list_runs():
            if now - run.created_at > SAME_START_S:
                break  # newest first: the rest are older
            if run.config == wanted and run.status.live:
                return run.id
        return None

    def resume_search(self, store: Store, run_id: int, observer: Observer | None = None) -> None:
        require_write("resuming a search")
        if self.active(store, run_id):
            raise StoreError(f"run {run_id} is already running")
        store.check_resumable(run_id)
        self._launch(_key(store, "search", run_id), lambda stop: _search_then_control(store, run_id, observer, stop))

    # ----- random controls (core.search.control) -------------------------------------------
    def start_control(self, store: Store, run_id: int, samples: int, edges: list[int] | None = None) -> None:
        """Train (or resume, or extend) the run's random control in a daemon thread; bad input
        and a control already running are refused here, in one line, before the thread starts."""
        require_write("running a random control")
        if self.active(store, run_id, "control"):
            raise StoreError(f"the control of run {run_id} is already running")
        check_control_startable(store, run_id)
        plan_targets(store.steps(run_id), edges)
        check_samples(samples)
        self._launch(
            _key(store, "control", run_id), lambda stop: run_control(store, run_id, samples, edges, None, stop)
        )

    # ----- final training jobs ------------------------------------------------------------
    def start_train(self, store: Store, genotype, cfg, source: str = "", observer=None) -> int:
        """Record a training job (core.training.engine) and run it in a daemon thread; returns its id."""
        from core.store.jobs import JobStore
        from core.training.engine import create_job, run_job

        require_write("starting a training job")
        jobs = JobStore(store.path)
        job_id = create_job(jobs, genotype, cfg, source)
        self._launch(_key(store, "train", job_id), lambda stop: run_job(jobs, job_id, observer, stop))
        return job_id

    def resume_train(self, store: Store, job_id: int, observer=None) -> None:
        from core.store.jobs import JobStore
        from core.training.engine import check_resumable, run_job

        require_write("resuming a training job")
        jobs = JobStore(store.path)
        if self.active(store, job_id, "train"):
            raise StoreError(f"job {job_id} is already running")
        check_resumable(jobs, job_id)
        self._launch(_key(store, "train", job_id), lambda stop: run_job(jobs, job_id, observer, stop))

    def stop(self, store: Store, run_id: int, kind: str = "search") -> None:
        """Ask a run to stop, wherever it runs; takes effect after the current batch."""
        require_write("stopping a search or training job")
        entry = self._threads.get(_key(store, kind, run_id))
        if entry:
            entry[1].set()
        if kind == "search":
            store.request_stop(run_id)
        elif kind == "control":
            request_control_stop(store, run_id)
        elif kind == "train":
            from core.store.jobs import JobStore

            JobStore(store.path).request_job_stop(run_id)


def _search_then_control(store: Store, run_id: int, observer: Observer | None, stop: threading.Event) -> None:
    """A search, then the random control its settings ask for (core.search.control)."""
    status = run_search(store, run_id, observer, stop)
    control_after_search(store, run_id, status, stop, observer)


def _quiet_loser(target: Callable[[threading.Event], object], stop: threading.Event) -> None:
    """Run `target`; a UserError raised before it claimed the row (another process won the race
    to resume it, or this machine lacks its device) left the store untouched: log it, no traceback."""
    try:
        target(stop)
    except UserError as exc:
        logging.getLogger(__name__).warning("not started: %s", exc)


def chain_stop_signals(runner: Runner) -> bool:
    """On the main thread: make SIGTERM and SIGINT call `runner.shutdown()` first, then the handler
    that was there (Streamlit's, which stops the server). Idempotent; False off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if getattr(previous, "stops_runner", None) is runner:
            continue
        signal.signal(signum, _stop_then(runner, previous))
    return True


def _stop_then(runner: Runner, previous) -> Callable:
    def handler(signum: int, frame) -> None:
        runner.shutdown()
        atexit.register(runner.exit_if_stuck)  # runs first at exit: after the server has stopped
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # what the signal would have done: end the process
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    handler.stops_runner = runner  # type: ignore[attr-defined]
    return handler


def _mark_stopped(path: str, kind: str, row_id: int) -> None:
    """Leave a run, control or job whose thread did not stop in time `stopped` (if it is still live)."""
    try:
        _MARK_STOPPED[kind](path, row_id)
    except Exception as exc:  # noqa: BLE001 -- at exit: a store gone meanwhile must not hide the others
        logging.getLogger(__name__).warning("could not mark %s %s stopped: %s", kind, row_id, exc)


def _stop_run(path: str, run_id: int) -> None:
    store = Store(path)
    if store.get_run(run_id).status.live:
        store.finish(run_id, RunStatus.STOPPED)


def _stop_control(path: str, run_id: int) -> None:
    from core.store.controls import finish_control, get_control

    store = Store(path)
    control = get_control(store, run_id)
    if control is not None and RunStatus(control.status).live:
        finish_control(store, run_id, RunStatus.STOPPED, "", 0.0)


def _stop_job(path: str, job_id: int) -> None:
    from core.store.jobs import JobStore

    jobs = JobStore(path)
    if jobs.get_job(job_id).status.live:
        jobs.finish_job(job_id, RunStatus.STOPPED)


# What a thread of each kind leaves live when it cannot stop in time; helpers have no row.
_MARK_STOPPED: dict[str, Callable[[str, int], None]] = {
    "search": _stop_run,
    "control": _stop_control,
    "train": _stop_job,
}


def _key(store: Store, kind: str, job_id: int) -> tuple[str, str, int]:
    return (str(store.path.resolve()), kind, job_id)
