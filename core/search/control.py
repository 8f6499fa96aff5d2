"""The random-removal control: is the search better than chance on this run?

For each of a few edge counts, r random cells start from the run's dense DAG and lose uniformly
random edges one at a time, pruned after each removal as the search prunes, until they reach the
count (pruning can overshoot; the cell keeps its real count). Each is trained and scored exactly
as the run's candidates were: the run's proxy task, epochs, precision and evaluator (ray
included), through the same evaluator interface. All seeds derive from the run's seed, the count
and the sample, so a control is reproducible and a resumed one trains what the uninterrupted one
would have; every cell is committed on its own (core.store.controls).
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from dataclasses import replace
from typing import Callable

import torch

from core.cell.genotype import Genotype
from core.device import default_threads, describe, resolve_device
from core.errors import UserError, one_line
from core.result import CandidateStatus
from core.search.candidates import StepJob
from core.search.config import SearchConfig
from core.search.evaluators import close as close_evaluator
from core.search.evaluators import evaluate
from core.search.evaluators import prepare as prepare_evaluator
from core.search.tasks import make_task
from core.seeds import derive_seed
from core.store.controls import (
    ControlCell,
    beat_control,
    claim_control,
    commit_control_cell,
    control_cells,
    control_stop_requested,
    finish_control,
    get_control,
    set_control_evaluator,
)
from core.store.lifecycle import RunStatus
from core.store.progress import ControlProgress
from core.store.runs import CandidateRecord, StepRecord, Store, best_of

DEFAULT_SAMPLES, MAX_SAMPLES = 5, 50
CONTROL_STEP = -1  # the `step` the evaluators see for control cells (no search step trains them)


class ControlError(UserError, ValueError):
    """A control that cannot be drawn for this run (bad counts, no scored step yet); one line."""


class ControlObserver:
    """Callbacks a CLI or UI overrides to follow a control; every method is optional."""

    def on_log(self, run_id: int, message: str) -> None: ...
    def on_start(self, run_id: int, done: int, total: int) -> None: ...
    def on_cell(self, run_id: int, cell: ControlCell, done: int, total: int) -> None: ...
    def on_end(self, run_id: int, status: str, error: str) -> None: ...


# ----- drawing the cells --------------------------------------------------------------------
def random_cell(dense: Genotype, target: int, seed: int) -> Genotype:
    """Remove uniformly random edges from `dense`, pruning after each removal (as a search
    step does), until at most `target` edges are left; only removals that leave an edge are drawn."""
    rng, cell = random.Random(seed), dense
    while cell.num_edges > target:
        admissible = [e for e in cell.edges if cell.without_edge(e).num_edges > 0]
        if not admissible:
            break
        cell = cell.without_edge(rng.choice(admissible))
    return cell


def cell_seed(run_seed: int, target: int, sample: int) -> int:
    return derive_seed(run_seed, "control", target, sample, "edges")


def count_seed(run_seed: int, target: int) -> int:
    """The training seed of one count's cells (data order; init_seed(., sample) for weights)."""
    return derive_seed(run_seed, "control", target)


def random_cells(dense: Genotype, run_seed: int, target: int, samples: int) -> list[Genotype]:
    """The control's cells at one count, named for where they came from."""
    out = []
    for s in range(samples):
        g = random_cell(dense, target, cell_seed(run_seed, target, s))
        out.append(Genotype(g.kind, g.ops, g.edges, name=f"random-{target}e-{s}"))
    return out


def default_targets(steps: list[StepRecord]) -> list[int]:
    """The best snapshot's edge count, the final snapshot's, and the one halfway between
    (fewer when they coincide), largest first."""
    best = best_of(steps)
    if best is None:
        raise ControlError("the run has no scored step after the dense baseline yet; nothing to compare with")
    final = steps[-1].edges
    return sorted({best.edges, final, (best.edges + final) // 2}, reverse=True)


def plan_targets(steps: list[StepRecord], edges: list[int] | None) -> list[int]:
    """The counts to draw at: `edges` checked against the dense DAG, or the defaults."""
    if not steps:
        raise ControlError("the run has no committed step yet; a control needs its dense DAG")
    if not edges:
        return default_targets(steps)
    dense = steps[0].genotype.num_edges
    bad = [e for e in edges if not 1 <= e < dense]
    if bad:
        raise ControlError(f"edge counts must be in 1..{dense - 1} for this {dense}-edge dense DAG, not {bad[0]}")
    return sorted(set(edges), reverse=True)


def check_samples(samples: int) -> int:
    if not 1 <= samples <= MAX_SAMPLES:
        raise ControlError(f"samples must be in 1..{MAX_SAMPLES}, not {samples}")
    return samples


# ----- training them ------------------------------------------------------------------------
def run_control(
    store: Store,
    run_id: int,
    samples: int = DEFAULT_SAMPLES,
    edges: list[int] | None = None,
    observer: ControlObserver | None = None,
    stop_event: threading.Event | None = None,
) -> str:
    """Train (or resume, or extend) the control of `run_id`; returns its final status. A run has
    one control with one r: counts asked for are added to its counts, r is the larger of the two.
    Bad input is refused before anything is written; committed cells are never trained again."""
    obs, stop = observer or ControlObserver(), stop_event or threading.Event()
    run = store.get_run(run_id)
    cfg = SearchConfig.from_dict(run.config)
    steps = store.steps(run_id)
    targets, samples = plan_targets(steps, edges), check_samples(samples)
    before = get_control(store, run_id)
    if before is not None:  # one control per run, with one r: new counts or a larger r extend it
        targets, samples = sorted(set(targets) | set(before.targets), reverse=True), max(samples, before.samples)
    torch.set_num_threads(cfg.threads or default_threads())
    device = resolve_device(cfg.device)
    claim_control(store, run_id, samples, targets, describe(device))
    t0 = time.time()
    try:
        status, error = _control(store, run_id, cfg, steps[0].genotype, targets, samples, device, obs, stop), ""
    except Exception as exc:  # noqa: BLE001 -- recorded, not swallowed: the control says why it failed
        status, error = RunStatus.FAILED, one_line(exc)
        if not isinstance(exc, UserError):
            obs.on_log(run_id, traceback.format_exc())
    finish_control(store, run_id, status, error, time.time() - t0)
    obs.on_end(run_id, status, error)
    return status


def _control(
    store: Store,
    run_id: int,
    cfg: SearchConfig,
    dense: Genotype,
    targets: list[int],
    samples: int,
    device: torch.device,
    obs: ControlObserver,
    stop: threading.Event,
) -> str:
    have = {(c.target, c.sample) for c in control_cells(store, run_id)}
    total = len(targets) * samples
    todo = {
        t: [(s, None, g) for s, g in enumerate(random_cells(dense, cfg.seed, t, samples)) if (t, s) not in have]
        for t in targets
    }
    if not any(todo.values()):
        return RunStatus.FINISHED
    log = lambda msg: obs.on_log(run_id, msg)  # noqa: E731
    task = make_task(cfg, device, log)
    done = [len(have & {(t, s) for t in targets for s in range(samples)})]
    try:  # the pool's worker processes end with the control, however it ends
        prepare_evaluator(task, log)
        set_control_evaluator(store, run_id, task.evaluator)
        log(
            f"control of run {run_id}: {total - done[0]} random cells to train at {targets} edges "
            f"({samples} per count), evaluator {task.evaluator}"
        )
        obs.on_start(run_id, done[0], total)
        return _train_control(store, run_id, cfg.seed, task, todo, done, total, obs, stop)
    finally:
        close_evaluator(task)


def _train_control(
    store: Store,
    run_id: int,
    seed: int,
    task,
    todo: dict[int, list],
    done: list[int],
    total: int,
    obs: ControlObserver,
    stop: threading.Event,
) -> str:
    """Train the cells of `todo` ({target: jobs}), one target at a time, committing each cell."""
    log = lambda msg: obs.on_log(run_id, msg)  # noqa: E731
    should_stop = _stop_poller(store, run_id, stop)
    for target, jobs in todo.items():
        if not jobs:
            continue
        progress = [ControlProgress(target=target, done=done[0], total=total, started=time.time())]  # the latest
        beat_control(store, run_id, progress[0])
        records = evaluate(
            StepJob(
                task,
                CONTROL_STEP,
                jobs,
                count_seed(seed, target),
                should_stop,
                _epoch_beat(store, run_id, progress),
                _committer(store, run_id, target, done, total, progress, obs),
            )
        )
        if stop.is_set() or len(records) < len(jobs) or any(r.status == CandidateStatus.STOPPED for r in records):
            return RunStatus.STOPPED
    log(f"control of run {run_id}: finished, {total} random cells")
    return RunStatus.FINISHED


def _committer(
    store: Store,
    run_id: int,
    target: int,
    done: list[int],
    total: int,
    progress: list[ControlProgress],
    obs: ControlObserver,
) -> Callable[[CandidateRecord], None]:
    """on_result: each trained cell is committed at once (a stopped one is not: it trains again)."""

    def on_result(rec: CandidateRecord) -> None:
        if rec.status == CandidateStatus.STOPPED:
            return
        cell = to_cell(rec, target)
        commit_control_cell(store, run_id, cell)
        done[0] += 1
        progress[0] = replace(progress[0], done=done[0], cells=(*progress[0].cells, cell.to_dict()))
        beat_control(store, run_id, progress[0])
        obs.on_cell(run_id, cell, done[0], total)

    return on_result


def _epoch_beat(store: Store, run_id: int, progress: list[ControlProgress]) -> Callable[[int, dict], None]:
    last = [0.0]

    def on_epoch(idx: int, row: dict) -> None:
        if time.time() - last[0] > 1.0:
            last[0] = time.time()
            beat_control(store, run_id, replace(progress[0], sample=idx, epoch=row.get("epoch")))

    return on_epoch


def _stop_poller(store: Store, run_id: int, stop: threading.Event) -> Callable[[], bool]:
    """The in-process event, or a stop asked in the store by any process (at most once a second)."""
    last = [0.0]

    def should_stop() -> bool:
        if not stop.is_set() and time.time() - last[0] > 1.0:
            last[0] = time.time()
            if control_stop_requested(store, run_id):
                stop.set()
        return stop.is_set()

    return should_stop


def to_cell(rec: CandidateRecord, target: int) -> ControlCell:
    """A trained random cell as the control keeps it: its sample number is the job's index."""
    return ControlCell(target=target, sample=rec.idx, genotype=rec.genotype, status=rec.status, **rec.trained())


def search_then_control(
    store: Store,
    run_id: int,
    observer=None,
    stop_event: threading.Event | None = None,
    control_observer: ControlObserver | None = None,
) -> str:
    """The search, then (when it finished and its settings ask for one, `control` > 0) its
    control; returns the search's status."""
    from core.search.loop import run_search

    stop = stop_event or threading.Event()
    status = run_search(store, run_id, observer, stop)
    control_after_search(store, run_id, status, stop, observer, control_observer)
    return status


def control_after_search(
    store: Store,
    run_id: int,
    status: str,
    stop: threading.Event,
    observer=None,
    control_observer: ControlObserver | None = None,
) -> None:
    """Train the control a finished search's settings ask for (`control` > 0). A control that
    cannot start is logged, not raised: the search itself succeeded."""
    samples = int(store.get_run(run_id).config.get("control") or 0)
    if status != RunStatus.FINISHED or samples <= 0 or stop.is_set():
        return
    try:
        run_control(store, run_id, samples, None, control_observer, stop)
    except UserError as exc:
        if observer is not None:
            observer.on_log(run_id, f"control not run: {exc}")
