"""What every evaluator shares about one candidate: the job it trains, its seed, its record.

A job is (index in the step, removed edge, candidate genotype); its initial weights come from
`init_seed(step_seed, idx)`, so any evaluator, on any worker, builds the same network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from core.cell.genotype import Genotype
from core.errors import one_line
from core.result import BUILD_FAILED, CandidateStatus, Cost, TrainResult
from core.seeds import derive_seed
from core.store.runs import CandidateRecord

StopFn = Callable[[], bool]
EpochFn = Callable[[int, dict], None]  # (candidate idx, history row)
Job = tuple[int, tuple[int, int] | None, Genotype]  # (idx, removed edge, candidate genotype)
ResultFn = Callable[[CandidateRecord], None]


def _never() -> bool:
    return False


def _ignore(*args: Any) -> None:
    return None


@dataclass(frozen=True)
class StepJob:
    """One shrink step's work as every evaluator takes it, instead of seven arguments each.

    `task`: the ProxyTask (builds, costs, trains, scores); `jobs`: the step's candidates;
    `step_seed`: the seed of their initial weights (init_seed) and of their batches;
    `should_stop` is polled between batches; `on_epoch(idx, row)` and `on_result(record)`
    report progress as it comes (they default to doing nothing)."""

    task: Any
    step: int
    jobs: list[Job]
    step_seed: int
    should_stop: StopFn = _never
    on_epoch: EpochFn = _ignore
    on_result: ResultFn = _ignore


def init_seed(step_seed: int, idx: int) -> int:
    return derive_seed(step_seed, "init", idx)


def make_record(step: int, job: Job, res: TrainResult, cost: Cost | None, score: float | None) -> CandidateRecord:
    idx, edge, genotype = job
    return CandidateRecord(
        step=step,
        idx=idx,
        edge=edge,
        genotype=genotype,
        status=res.status,
        accuracy=res.accuracy,
        perplexity=res.perplexity,
        macs=cost.macs if cost else None,
        flops=cost.flops if cost else None,
        params=cost.params if cost else None,
        score=score,
        epochs=res.epochs,
        stop_reason=res.stop_reason,
        wall_s=round(res.wall_s, 3),
        error=res.error,
        history=tuple(res.history),
    )


def build_candidate(task: Any, step: int, job: Job, step_seed: int) -> tuple[Any, Cost | None, CandidateRecord | None]:
    """(model, cost, None) for a job, built from init_seed(step_seed, idx) as every evaluator
    builds it; (None, None, its failed record) when the builder cannot realise the genotype."""
    idx, _, genotype = job
    t0 = time.time()
    try:
        return task.build(genotype, init_seed(step_seed, idx)), task.cost(genotype), None
    except Exception as exc:  # a genotype the builder cannot realise is a failed candidate
        return None, None, make_record(step, job, build_failed(exc, t0), None, None)


def build_failed(exc: Exception, t0: float) -> TrainResult:
    return TrainResult(
        status=CandidateStatus.FAILED,
        stop_reason=BUILD_FAILED,
        wall_s=time.time() - t0,
        error=one_line(exc, typed=True),
    )
