"""Evaluators: how the k candidates of one shrink step get trained, behind one interface.

`evaluate(task, ...)` trains a step's jobs with the evaluator the task resolved and returns
one CandidateRecord per job. `single` trains them one at a time (the reference); `batched`
trains them side by side as one stacked network (CNN only). Every evaluator builds each
candidate from `init_seed(step_seed, idx)` and trains it on the same batches, so they agree.

May import: core.cell, core.nets, core.data, core.store (records), core.search.candidates,
core.search.config, core.search.proxy_cnn, and the base modules (errors, seeds, result).
"""
from __future__ import annotations

from typing import Callable

import torch

from core.search.candidates import EpochFn, Job, StopFn
from core.search.config import SearchConfig
from core.store.runs import CandidateRecord


def resolve_evaluator(cfg: SearchConfig, device: torch.device) -> str:
    """`auto`: batched on CUDA (where one-at-a-time leaves the GPU idle), single elsewhere."""
    if cfg.evaluator == "auto":
        return "batched" if device.type == "cuda" and cfg.task == "cnn" else "single"
    return cfg.evaluator


def evaluate(task, step: int, jobs: list[Job], step_seed: int, should_stop: StopFn, on_epoch: EpochFn,
             on_result: Callable[[CandidateRecord], None]) -> list[CandidateRecord]:
    """Train `jobs` with `task.evaluator`; records come back in job order."""
    if task.evaluator == "batched":
        from core.search.evaluators.batched import (
            evaluate_batched,  # the stacked net loads only when used
        )
        return evaluate_batched(task, step, jobs, step_seed, should_stop, on_epoch, on_result)
    from core.search.evaluators.single import evaluate_single
    return evaluate_single(task, step, jobs, step_seed, should_stop, on_epoch, on_result)
