"""The pool evaluator: a step's candidates trained side by side in worker processes, one core each.

Why: one paper-setting candidate is far too small to keep several cores busy (its ops are
tiny, so a second torch thread mostly waits), while the k candidates of a step are
independent. So on a CPU with two or more cores, `--evaluator auto` trains them in
`workers` processes of `threads` torch threads each (1 unless --threads says more), and a
k=10 step runs about cores times faster than one candidate after another.

Each worker builds the same proxy task from the run's settings and the run's data (the
tensors are shared with the parent through shared memory, not copied) and trains a
candidate with the local evaluator `auto` would use in one process (batched for CNN, single
for RNN). A candidate's numbers depend only on its job, its seeds, the precision and its
thread count, so the records equal those of training one at a time with the same threads
(tests/test_pool.py proves it). Epoch rows stream back live through a queue; a stop request
reaches the workers through a shared event, between two batches.

Workers start once per run, in `prepare`, and are closed when the run ends (`close`). They
are forked from a fork server that has torch imported (see `worker_context`), never from
the search's own process: the app runs searches in threads of a server.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import types
import weakref
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from queue import Empty
from typing import Callable, Iterator

import torch
import torch.multiprocessing as tmp

from core.search.candidates import EpochFn, Job, StepJob
from core.search.config import SearchConfig
from core.store.lifecycle import alive
from core.store.runs import CandidateRecord

POLL_S = 0.2
OWNER_POLL_S = 1.0  # how often a worker checks that the search's process still exists
# The evaluator's own state per proxy task (not stored on the task): its run's worker processes.
# Weak keys: a pool whose task is gone shuts down with it (Pool's finalizer).
_POOLS: weakref.WeakKeyDictionary[object, Pool] = weakref.WeakKeyDictionary()
WORKERS_ENV = "AUTOSHRINK_WORKERS"  # cap on worker processes (e.g. 1 to train in the search's own process)


def machine_cores() -> int:
    """Cores this process may run on (the affinity mask, not the whole machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool_size(cfg: SearchConfig, device: torch.device) -> tuple[int, int]:
    """(worker processes, torch threads each) for `cfg` on `device`: CPU only, one thread per
    worker unless --threads sets more, never more workers than cores or than a step's jobs."""
    threads = cfg.threads or 1
    if device.type != "cpu":
        return 1, threads
    cores = machine_cores()
    cap = os.environ.get(WORKERS_ENV, "")
    if cap.isdigit() and int(cap) >= 1:
        cores = min(cores, int(cap))
    return max(1, min(cores // threads, max(cfg.k, cfg.noise_seeds))), threads


def inner_evaluator(kind: str, device: torch.device) -> str:
    """What trains one candidate inside a worker: the one-process path auto would take."""
    from core.search.evaluators.registry import worker_evaluator

    return worker_evaluator(kind)


# What the fork server imports once, so that each worker it forks starts with them loaded.
PRELOAD = ("torch", "core.search.evaluators.pool", "core.search.tasks", "core.search.evaluators.registry")


def worker_context():
    """How workers start: forked from a fork server (one per process, started with the first
    pool, with torch and the proxy tasks already imported: a worker is ready in a fraction of a
    second instead of paying torch's import again), where the platform has one; else spawned.
    Never forked from this process itself: the app runs searches in threads of a server."""
    if "forkserver" not in tmp.get_all_start_methods():
        return tmp.get_context("spawn")
    ctx = tmp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


class Pool:
    """The worker processes of one run, their shared stop event and their epoch-row queue."""

    def __init__(self, task, workers: int, threads: int) -> None:
        ctx = worker_context()
        self.events, self.stop = ctx.Queue(), ctx.Event()
        self.workers, self.threads = workers, threads
        cfg = replace(task.cfg, evaluator=inner_evaluator(task.kind, task.device), threads=threads)
        data = task.worker_data()
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(type(task), cfg.to_dict(), data, threads, self.events, self.stop, os.getpid()),
        )
        self._finalizer = weakref.finalize(self, self.executor.shutdown, wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (any candidate still training stops between two batches)."""
        self.stop.set()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self._finalizer.detach()

    def run(self, work: StepJob) -> list[CandidateRecord]:
        """Train the step's jobs on the workers; records in job order (fewer if stopped before some started)."""
        step, jobs, step_seed = work.step, work.jobs, work.step_seed
        should_stop, on_epoch, on_result = work.should_stop, work.on_epoch, work.on_result
        self.stop.clear()
        with _bare_main():  # submit starts the worker processes
            pending: dict[Future, Job] = {self.executor.submit(_train_job, step, job, step_seed): job for job in jobs}
        done: dict[int, CandidateRecord] = {}
        rows: dict[int, int] = {}
        try:
            while pending:
                if should_stop():
                    self.stop.set()
                finished, _ = wait(list(pending), timeout=POLL_S, return_when=FIRST_COMPLETED)
                self._drain(rows, done, on_epoch)
                for fut in finished:
                    pending.pop(fut)
                    rec = fut.result()
                    if rec is None:
                        continue
                    for row in rec.history[rows.get(rec.idx, 0) :]:  # rows the queue has not brought yet
                        on_epoch(rec.idx, row)
                    rows[rec.idx] = len(rec.history)
                    done[rec.idx] = rec
                    on_result(rec)
        finally:
            if pending:  # an error in one job: the others must not train on for nobody
                self.stop.set()
                wait(list(pending))
        return [done[job[0]] for job in jobs if job[0] in done]

    def _drain(self, rows: dict[int, int], done: dict, on_epoch: EpochFn) -> None:
        """Report the epoch rows the workers sent since the last call (live progress)."""
        while True:
            try:
                idx, row = self.events.get_nowait()
            except Empty:
                return
            if idx not in done:
                rows[idx] = rows.get(idx, 0) + 1
                on_epoch(idx, row)


_MAIN_LOCK = threading.Lock()


@contextmanager
def _bare_main() -> Iterator[None]:
    """While workers start, `__main__` is a bare module. multiprocessing re-runs the parent's main
    script in every child it spawns or forks from its fork server (to find what it defines); under
    `streamlit run` (and AppTest) that script is app.py, and a worker must not start the app. The
    workers need nothing from it: the jobs they run live in this module."""
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def prepare_pool(task, log: Callable[[str], None]) -> dict:
    """Start the run's workers; {} (the pool is local, not a cluster)."""
    workers, threads = pool_size(task.cfg, task.device)
    _POOLS[task] = Pool(task, workers, threads)
    log(
        f"evaluator pool: {workers} worker processes of {threads} torch thread(s) each on "
        f"{machine_cores()} cores; each trains whole candidates with the {inner_evaluator(task.kind, task.device)} "
        "evaluator, so the records equal one-at-a-time training at the same threads"
    )
    return {}


def evaluate_pool(work: StepJob) -> list[CandidateRecord]:
    if work.task not in _POOLS:
        prepare_pool(work.task, lambda msg: None)
    return _POOLS[work.task].run(work)


def close_pool(task) -> None:
    pool = _POOLS.pop(task, None)
    if pool is not None:
        pool.close()


# ----- the worker's side --------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(task_type: type, cfg: dict, data, threads: int, events, stop, owner: int) -> None:
    """Once per worker process: its thread count and its proxy task, built on the shared data.
    Ctrl-C is the parent's to handle (it stops the step through the shared event), so a
    worker ignores it rather than dying mid-candidate with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(owner,), name="owner-watch", daemon=True).start()
    torch.set_num_threads(threads)
    settings = SearchConfig.from_dict(cfg)
    _WORKER.update(
        task=task_type(settings, torch.device("cpu"), lambda msg: None, data),
        events=events,
        stop=stop,
        label=f"{socket.gethostname()} process {os.getpid()}",
    )


def _end_with(owner: int) -> None:
    """End this worker once the search's process `owner` is gone (or a zombie its parent has not
    reaped yet), judged as the store judges a row's owner. After a kill -9 of the search nothing
    else would: the workers wait on a queue whose other ends they hold themselves."""
    host = socket.gethostname()
    while alive(host, owner, None):
        time.sleep(OWNER_POLL_S)
    os._exit(1)


def _train_job(step: int, job: Job, step_seed: int) -> CandidateRecord | None:
    """Train one job with the worker's local evaluator; its epoch rows go to the queue as they come."""
    from core.search.evaluators.registry import evaluator_fn

    task, events, stop = _WORKER["task"], _WORKER["events"], _WORKER["stop"]
    if stop.is_set():
        return None
    train = evaluator_fn(task.evaluator)
    records = train(StepJob(task, step, [job], step_seed, stop.is_set, lambda idx, row: events.put((idx, row))))
    return replace(records[0], worker=_WORKER["label"]) if records else None


__all__ = ["evaluate_pool", "prepare_pool", "close_pool", "pool_size", "machine_cores", "Pool"]
