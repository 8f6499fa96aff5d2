"""The one-at-a-time evaluator: the reference every other evaluator must match."""
from __future__ import annotations

import time

from core.search.candidates import (
    Job,
    StepJob,
    build_failed,
    init_seed,
    make_record,
)
from core.store.runs import CandidateRecord


def evaluate_single(work: StepJob) -> list[CandidateRecord]:
    """Train the candidates one after another with the task's own build/train/cost/score."""
    records = []
    for job in work.jobs:
        if work.should_stop():
            break
        records.append(_one(work, job))
        work.on_result(records[-1])
    return records


def _one(work: StepJob, job: Job) -> CandidateRecord:
    task, step, step_seed, on_epoch = work.task, work.step, work.step_seed, work.on_epoch
    idx, _, genotype = job
    t0 = time.time()
    try:
        model, cost = task.build(genotype, init_seed(step_seed, idx)), task.cost(genotype)
    except Exception as exc:  # a genotype the builder cannot realise is a failed candidate
        return make_record(step, job, build_failed(exc, t0), None, None)
    res = task.train(model, step_seed, work.should_stop, lambda row: on_epoch(idx, row))
    return make_record(step, job, res, cost, task.score(res, cost))
