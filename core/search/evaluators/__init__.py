"""Evaluators: how the k candidates of one shrink step get trained, behind one interface.

`evaluate(StepJob(task, step, jobs, ...))` trains a step's jobs with the evaluator the task
resolved (registry.EVALUATORS maps each name to its function) and returns one CandidateRecord
per job. `single` trains them one at a time (the reference); `batched`
trains them side by side as one stacked network (CNN only); `pool` trains them in worker
processes of this machine, one core each (each with the one-process path); `ray` sends them
as tasks to a Ray cluster, where each is trained by `single` (CPU) or `batched` (a chunk on a
GPU). Every evaluator builds each candidate from `init_seed(step_seed, idx)` and trains it on
the same batches, so they agree.

May import: core.cell, core.nets, core.data, core.store (records), core.search.candidates,
core.search.config, core.search.proxy_cnn, and the base modules (errors, seeds, result).
"""

from __future__ import annotations

from typing import Callable

import torch

from core.search.candidates import StepJob
from core.search.config import SearchConfig
from core.search.evaluators.registry import EVALUATORS, evaluator_fn, worker_evaluator
from core.store.runs import CandidateRecord


def resolve_evaluator(cfg: SearchConfig, device: torch.device, log: Callable[[str], None] = lambda msg: None) -> str:
    """`auto`: the fastest path that gives the right answers on this device (see auto_reason):
    `pool` on a CPU with cores for two or more workers, else batched (CNN) or single (RNN).
    `batched` asked for an RNN search trains one at a time (there is no batched RNN): `log` says so."""
    from core.search.evaluators.pool import pool_size

    if cfg.evaluator == "auto":
        if device.type == "cpu" and pool_size(cfg, device)[0] > 1:
            return "pool"
        return "batched" if cfg.task == "cnn" else "single"
    if cfg.evaluator == "batched" and cfg.task != "cnn":
        log("the batched evaluator is for CNN searches; RNN candidates train one at a time")
        return "single"
    return cfg.evaluator


def auto_reason(task_kind: str, device: torch.device, workers: int = 1) -> str:
    """Why `auto` picks what it picks, in one line (the benchmark and the run log print it)."""
    if device.type == "cpu" and workers > 1:
        return (
            f"auto = pool: {workers} worker processes of one thread each, one candidate per core; a "
            "candidate is too small to keep a second thread busy, k independent candidates are not "
            "(records equal one-at-a-time training at the same threads, tests/test_pool.py)"
        )
    if task_kind != "cnn":
        return "auto = single: the RNN cell runs step by step, and there is no batched RNN evaluator"
    if device.type == "cuda":
        return (
            "auto = batched: all k candidates in one union (bf16, channels_last), so each kernel does "
            "k candidates' work instead of leaving the GPU idle between launches"
        )
    return (
        "auto = batched: one candidate per union with channels_last on CPU, which oneDNN runs faster "
        "than single's NCHW (bench/bench_evaluators.py step measures it; the README has the figures); same answers "
        "within float tolerance (tests/test_batched.py)"
    )


def check_startable(cfg: SearchConfig) -> None:
    """The evaluator's part of the start check, before any run row exists (see loop.check_startable):
    for ray, a cluster address where nothing answers, or GPUs asked of a cluster without them."""
    if cfg.evaluator == "ray":
        from core.search.evaluators.ray_eval import check_startable as check_ray

        check_ray(cfg)


def search_device(cfg: SearchConfig) -> torch.device:
    """Where the search process itself trains: nowhere under ray (the workers train; their device
    is --ray-gpus-per-candidate's), so its driver keeps the data on the CPU and never takes a CUDA
    context or a GPU's memory; else the --device setting."""
    from core.device import resolve_device

    return torch.device("cpu") if cfg.evaluator == "ray" else resolve_device(cfg.device)


def prepare(task, log: Callable[[str], None]) -> dict:
    """Once per run, before the first step: what the evaluator needs set up, and the cluster it
    runs on ({} for the local evaluators). The ray evaluator connects here and ships the data."""
    if task.evaluator == "pool":
        from core.search.evaluators.pool import prepare_pool

        return prepare_pool(task, log)
    if task.evaluator != "ray":
        return {}
    from core.search.evaluators.ray_eval import prepare_ray

    return prepare_ray(task, log)


def close(task) -> None:
    """Once per run, when it ends however it ends: the pool's worker processes go away."""
    if task.evaluator == "pool":
        from core.search.evaluators.pool import close_pool

        close_pool(task)


def evaluate(work: StepJob) -> list[CandidateRecord]:
    """Train the step's jobs with `work.task.evaluator`; records come back in job order."""
    return evaluator_fn(work.task.evaluator)(work)


__all__ = [
    "EVALUATORS",
    "evaluator_fn",
    "worker_evaluator",
    "resolve_evaluator",
    "auto_reason",
    "check_startable",
    "search_device",
    "prepare",
    "close",
    "evaluate",
]
