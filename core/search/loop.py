"""The AutoShrink loop: k-candidate edge removal, one committed step at a time.

`run_search` is both start and resume: it reads the steps already committed for the run
and goes on from the last one, so a killed process loses at most the step in progress.
All randomness is derived from (seed, step), so a resumed run draws what the
uninterrupted one would have. Observers follow the search live in the same process;
the store stays the source of truth.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import traceback
from dataclasses import replace
from typing import Callable

import torch

from core.cell.genotype import Genotype, edge_str
from core.data.check import check_data
from core.device import default_threads, describe, resolve_precision
from core.errors import UserError, one_line
from core.result import CandidateStatus
from core.search.candidates import StepJob
from core.search.config import SearchConfig
from core.search.evaluators import check_startable as check_evaluator
from core.search.evaluators import close as close_evaluator
from core.search.evaluators import evaluate, search_device
from core.search.evaluators import prepare as prepare_evaluator
from core.search.noise import measure_noise
from core.search.tasks import ProxyTask, make_task
from core.seeds import derive_seed
from core.store.lifecycle import RunStatus
from core.store.progress import SearchProgress
from core.store.runs import CandidateRecord, StepRecord, Store, best_of


class Observer:
    """Callbacks a UI or CLI overrides to follow a search; every method is optional."""

    def on_log(self, run_id: int, message: str) -> None: ...
    def on_epoch(self, run_id: int, step: int, idx: int, row: dict) -> None: ...
    def on_candidate(self, run_id: int, record: CandidateRecord, i: int, k: int) -> None: ...
    def on_step(self, run_id: int, step: StepRecord, candidates: list[CandidateRecord]) -> None: ...
    def on_end(self, run_id: int, status: str, error: str) -> None: ...


class QueueObserver(Observer):
    """Turns callbacks into (event, run_id, payload) tuples on a queue for another thread."""

    def __init__(self, maxsize: int = 10000) -> None:
        self.events: queue.Queue = queue.Queue(maxsize)

    def _put(self, *event) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:  # a reader that stopped reading must not stall the search
            pass

    def on_log(self, run_id, message):
        self._put("log", run_id, message)

    def on_candidate(self, run_id, record, i, k):
        self._put("candidate", run_id, record)

    def on_step(self, run_id, step, candidates):
        self._put("step", run_id, step)

    def on_end(self, run_id, status, error):
        self._put("end", run_id, (status, error))


class SearchError(UserError, RuntimeError):
    """The search cannot go on (e.g. every candidate of a step failed)."""


def create_run(store: Store, cfg: SearchConfig) -> int:
    """Record a queued run, after refusing what cannot run here (see check_startable)."""
    check_startable(cfg)
    return store.create_run(cfg.task, cfg.to_dict(), cfg.expected_steps())


def check_startable(cfg: SearchConfig) -> None:
    """One line (a UserError) for a device this machine lacks, data or a GloVe file that cannot
    load, or a Ray cluster that cannot serve the run, before any run row exists: a refused start
    leaves no failed run behind. Cheap: no data is loaded (a GloVe file's first line only; a ray
    search with GPUs joins its cluster here, to count them)."""
    search_device(cfg)
    check_data(cfg.data_spec)
    if cfg.task == "rnn" and cfg.embedding_init.startswith("glove:"):
        from core.data.glove import check_glove_file, glove_path

        check_glove_file(glove_path(cfg.embedding_init), cfg.emb)
    check_evaluator(cfg)


def step_candidates(current: Genotype, k: int, seed: int, step: int) -> list[tuple[int, int]]:
    """Shuffle the edges (seeded by run and step) and keep the first k whose removal leaves an output."""
    edges = list(current.edges)
    random.Random(derive_seed(seed, step, "edges")).shuffle(edges)
    admissible = [e for e in edges if current.without_edge(e).num_edges > 0]
    return admissible[:k]


def choose(records: list[CandidateRecord]) -> CandidateRecord | None:
    """Best score wins; ties go to fewer edges, then to the earlier candidate."""
    ok = [r for r in records if r.score is not None]
    return max(ok, key=lambda r: (r.score, -r.genotype.num_edges, -r.idx)) if ok else None


def run_search(
    store: Store, run_id: int, observer: Observer | None = None, stop_event: threading.Event | None = None
) -> str:
    """Run (or resume) a search to its end, a stop request, or a failure; returns the final status."""
    obs = observer or Observer()
    stop_event = stop_event or threading.Event()
    cfg = SearchConfig.from_dict(store.get_run(run_id).config)
    torch.set_num_threads(cfg.threads or default_threads())
    device = search_device(cfg)  # e.g. no CUDA on this machine: refused, the run untouched
    label = describe(device, resolve_precision(cfg.precision, device))  # the precision that really trains
    store.claim(run_id, label, "")  # before loading data, atomic: a second claimer is
    try:  # refused (StoreError) and changes nothing
        status = _search(store, run_id, cfg, device, obs, stop_event)
        error = ""
    except Exception as exc:  # recorded, not swallowed: the run says why it failed
        status, error = RunStatus.FAILED, one_line(exc)
        if not isinstance(exc, UserError):  # a bug: keep the traceback for whoever reads the log
            obs.on_log(run_id, traceback.format_exc())
    store.finish(run_id, status, error)
    obs.on_end(run_id, status, error)
    return status


def _search(
    store: Store, run_id: int, cfg: SearchConfig, device: torch.device, obs: Observer, stop: threading.Event
) -> str:
    task = make_task(cfg, device, lambda msg: obs.on_log(run_id, msg))
    corpus = getattr(task, "corpus", None)  # an RNN task's loaded corpus: readers need its vocabulary size
    if corpus is not None:
        store.record_vocab_size(run_id, corpus.vocab_size)
    try:
        return _search_steps(store, run_id, cfg, device, obs, stop, task)
    finally:  # the pool's worker processes end with the run, however it ends
        close_evaluator(task)


def _search_steps(
    store: Store,
    run_id: int,
    cfg: SearchConfig,
    device: torch.device,
    obs: Observer,
    stop: threading.Event,
    task: ProxyTask,
) -> str:
    cluster = prepare_evaluator(task, lambda msg: obs.on_log(run_id, msg))
    store.set_evaluator(run_id, task.evaluator)
    store.set_cluster(run_id, cluster)
    obs.on_log(
        run_id,
        f"run {run_id}: {cfg.task} search on {describe(device, task.precision)}, "
        f"evaluator {task.evaluator}, precision {task.precision} ({cfg.precision})",
    )
    steps = store.steps(run_id)
    if not steps:
        dense = Genotype.dense(cfg.task, cfg.nodes, cfg.seed, name=f"run{run_id}-dense")
        seeds = [(i, None, dense) for i in range(cfg.noise_seeds)]  # idx i: its own initial weights
        if not _do_step(store, run_id, cfg, task, obs, stop, 0, dense, seeds):
            return RunStatus.STOPPED
        steps = store.steps(run_id)
    if not store.get_run(run_id).noise:  # also after a kill between step 0 and this line
        noise = measure_noise(cfg.task, store.candidates(run_id, 0))
        store.set_noise(run_id, noise)
        if noise["std"] is not None:
            obs.on_log(run_id, f"noise: {noise['metric']} std {noise['std']:.4g} over {noise['seeds']} seeds")
    while True:
        current, step = steps[-1].genotype, steps[-1].step + 1
        edges = step_candidates(current, cfg.k, cfg.seed, step)
        done = current.num_edges <= cfg.target_edges() or not edges or (cfg.max_steps and step > cfg.max_steps)
        if done:
            best = best_of(store.steps(run_id))
            obs.on_log(run_id, f"finished: best snapshot step {best.step if best else '-'}")
            return RunStatus.FINISHED
        jobs = [(i, e, current.without_edge(e)) for i, e in enumerate(edges)]
        if not _do_step(store, run_id, cfg, task, obs, stop, step, current, jobs):
            return RunStatus.STOPPED
        steps = store.steps(run_id)


def _stop_poller(store: Store, run_id: int, stop: threading.Event) -> Callable[[], bool]:
    """should_stop for the trainers: the in-process event, or a stop asked in the store by any
    process (polled at most once a second, since it is called between batches)."""
    last = [0.0]

    def should_stop() -> bool:
        if not stop.is_set() and time.time() - last[0] > 1.0:
            last[0] = time.time()
            if store.stop_requested(run_id):
                stop.set()
        return stop.is_set()

    return should_stop


def _do_step(
    store: Store,
    run_id: int,
    cfg: SearchConfig,
    task: ProxyTask,
    obs: Observer,
    stop: threading.Event,
    step: int,
    current: Genotype,
    jobs: list,
) -> bool:
    """Train the step's candidates and commit the step; False if a stop request cut it short."""
    t0, k = time.time(), len(jobs)
    progress = [SearchProgress(step=step, k=k, edges=current.num_edges, started=t0)]  # the latest, for the callbacks
    store.beat(run_id, progress[0])
    last_beat = [0.0]

    def on_epoch(idx: int, row: dict) -> None:
        obs.on_epoch(run_id, step, idx, row)
        if time.time() - last_beat[0] > 1.0:
            last_beat[0] = time.time()
            store.beat(run_id, replace(progress[0], epoch=row.get("epoch")))

    def on_result(rec: CandidateRecord) -> None:
        now = progress[0]
        progress[0] = replace(now, candidate=now.candidate + 1, done=(*now.done, rec.to_dict()))
        store.beat(run_id, progress[0])
        obs.on_candidate(run_id, rec, progress[0].candidate, k)

    records = evaluate(
        StepJob(task, step, jobs, derive_seed(cfg.seed, step), _stop_poller(store, run_id, stop), on_epoch, on_result)
    )
    if stop.is_set() or len(records) < k or any(r.status == CandidateStatus.STOPPED for r in records):
        return False
    # step 0: the first seed is the baseline (the others only measure noise), so that
    # noise_seeds=1 and noise_seeds=r start from the same snapshot
    best = choose([r for r in records if r.idx == 0] if step == 0 else records) or choose(records)
    if best is None:
        raise SearchError(f"every candidate of step {step} failed: {records[0].error or records[0].stop_reason}")
    rec = StepRecord.from_candidate(step, best, wall_s=round(time.time() - t0, 3))
    store.commit_step(run_id, rec, records)
    what = "baseline (dense)" if best.edge is None else f"removed {edge_str(best.edge)}"
    obs.on_log(run_id, f"step {step}: {what}, {rec.edges} edges left, score {rec.score:.4f}")
    obs.on_step(run_id, rec, records)
    return True
