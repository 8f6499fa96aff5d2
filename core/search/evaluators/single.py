"""The one-at-a-time evaluator: the reference every other evaluator must match."""
from __future__ import annotations

import time
from typing import Callable

from core.search.candidates import (
    EpochFn,
    Job,
    StopFn,
    build_failed,
    init_seed,
    make_record,
)
from core.store.runs import CandidateRecord


def evaluate_single(task, step: int, jobs: list[Job], step_seed: int, should_stop: StopFn,
                    on_epoch: EpochFn, on_result: Callable[[CandidateRecord], None]) -> list[CandidateRecord]:
    """Train the candidates one after another with the task's own build/train/cost/score."""
    records = []
    for job in jobs:
        if should_stop():
            break
        records.append(_one(task, step, job, step_seed, should_stop, on_epoch))
        on_result(records[-1])
    return records


def _one(task, step: int, job: Job, step_seed: int, should_stop: StopFn, on_epoch: EpochFn) -> CandidateRecord:
    idx, _, genotype = job
    t0 = time.time()
    try:
        model, cost = task.build(genotype, init_seed(step_seed, idx)), task.cost(genotype)
    except Exception as exc:  # a genotype the builder cannot realise is a failed candidate
        return make_record(step, job, build_failed(exc, t0), None, None)
    res = task.train(model, step_seed, should_stop, lambda row: on_epoch(idx, row))
    return make_record(step, job, res, cost, task.score(res, cost))
