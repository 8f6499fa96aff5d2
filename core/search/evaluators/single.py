"""The one-at-a-time evaluator: the reference every other evaluator must match."""

from __future__ import annotations

from core.search.candidates import (
    Job,
    StepJob,
    build_candidate,
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
    idx = job[0]
    model, cost, failed = build_candidate(task, step, job, step_seed)
    if failed is not None:
        return failed
    res = task.train(model, step_seed, work.should_stop, lambda row: on_epoch(idx, row))
    return make_record(step, job, res, cost, task.score(res, cost))
