"""Running one final-training job: start or resume, checkpoints, epoch records, stop, export.

`run_job` is both start and resume (as `run_search` is for searches): the trainer asks the
`JobContext` (core.training.context) for the last checkpoint and continues after its epoch.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

import torch

from core.cell.genotype import Genotype
from core.data.check import check_data
from core.device import default_threads, describe, resolve_device
from core.errors import ConfigError, UserError, one_line
from core.store.jobs import JobStore
from core.store.lifecycle import RunStatus
from core.store.runs import StoreError
from core.training.config import TrainConfig, config_from_dict, config_to_dict
from core.training.context import JobContext, JobObserver, TrainOutcome


# ----- creating and running jobs --------------------------------------------------------------
def create_job(store: JobStore, genotype: Genotype, cfg: TrainConfig, source: str = "") -> int:
    """Record a queued job; its whole config travels in the row, so any process can run it."""
    if genotype.kind != cfg.task:
        raise ConfigError(f"a {cfg.task} training needs a {cfg.task} genotype, got a {genotype.kind} one")
    resolve_device(cfg.device)  # a device this machine lacks is refused before the job exists
    check_data(cfg.data, cfg.task)  # a dataset spec or network that cannot work fails here, not in the job
    if cfg.task == "cnn":
        from core.training.cnn import planned_network

        planned_network(cfg)
    name = genotype.name or f"cell-{genotype.hash}"
    return store.create_job(cfg.task, genotype, config_to_dict(cfg), source=source, name=name)


def check_resumable(store: JobStore, job_id: int) -> None:
    """One line if the job is finished or held by a live process; the claim checks again atomically."""
    store.check_job_resumable(job_id)


def run_job(
    store: JobStore, job_id: int, observer: JobObserver | None = None, stop_event: threading.Event | None = None
) -> str:
    """Run (or resume) a job to its end, a stop request or a failure; returns the final status."""
    obs = observer or JobObserver()
    stop = stop_event or threading.Event()
    job = store.get_job(job_id)
    cfg = config_from_dict(job.config)
    torch.set_num_threads(cfg.threads or default_threads())
    device = resolve_device(cfg.device)  # e.g. no CUDA here: refused before the job is touched
    store.claim_job(job_id, describe(device))  # atomic; another holder -> StoreError, nothing changed
    metrics: dict | None = None
    try:
        obs.on_log(job_id, f"job {job_id}: {cfg.task} training of {job.name} on {describe(device)}")
        ctx = JobContext(store, job_id, stop, obs, device)
        outcome = _trainer(cfg.task)(ctx, job.genotype, cfg, device)
        metrics = outcome.metrics
        if outcome.stopped:
            status, error = RunStatus.STOPPED, ""
        else:
            ctx.mark("export")
            metrics = {**metrics, "exports": _export(ctx, job.genotype, cfg, outcome)}
            status, error = RunStatus.FINISHED, ""
    except Exception as exc:  # recorded, not swallowed: the job row says why it failed
        status = RunStatus.FAILED
        error = one_line(exc)
        if not isinstance(exc, UserError):
            obs.on_log(job_id, traceback.format_exc())
    store.finish_job(job_id, status, error, metrics)
    obs.on_end(job_id, status, error)
    return status


def _trainer(task: str) -> Callable[[JobContext, Genotype, Any, torch.device], TrainOutcome]:
    if task == "cnn":
        from core.training.cnn import train_cnn

        return train_cnn
    from core.training.rnn import train_rnn

    return train_rnn


def _export(ctx: JobContext, genotype: Genotype, cfg: TrainConfig, outcome: TrainOutcome) -> dict:
    from core.training.export import export_trained

    return export_trained(ctx.dir, genotype, outcome, with_onnx=cfg.onnx, job_id=ctx.job_id, log=ctx.log)


# ----- choosing what to train ----------------------------------------------------------------
def genotype_from_run(store: JobStore, run_id: int, step: int | None = None) -> tuple[Genotype, str]:
    """A search run's best snapshot (step None) or any step, named after where it came from."""
    store.get_run(run_id)  # an unknown run says so
    steps = store.steps(run_id)
    if step is None:
        from core.store.runs import best_of

        chosen = best_of(steps)
        if chosen is None:
            raise StoreError(f"run {run_id} has no scored step after the dense baseline yet")
    else:
        chosen = next((s for s in steps if s.step == step), None)
        if chosen is None:
            raise StoreError(f"run {run_id} has no step {step} (it has {len(steps)} steps)")
    g = chosen.genotype
    label = f"run {run_id} step {chosen.step}" + (" (best)" if step is None else "")
    return Genotype(g.kind, g.ops, g.edges, name=f"run{run_id}-step{chosen.step}"), label


def published_defaults(network: dict, task: str) -> dict:
    """Training settings a preset's "network" entry implies: ShrinkCNN-B trains with Swish.

    Only the activation carries over; the ImageNet body and e = h = 745 are the `paper`
    schedules, which a laptop should not get by merely picking the preset."""
    if task == "cnn" and network.get("activation") in ("relu", "swish"):
        return {"activation": network["activation"]}
    return {}
