"""Running one final-training job: start or resume, checkpoints, epoch records, stop, export.

`run_job` is both start and resume (as `run_search` is for searches): the trainer asks the
`JobContext` for the last checkpoint and continues after its epoch. The context owns the
order that makes a kill harmless: at the end of an epoch the checkpoint is written
(atomically) first, and only then the immutable epoch row, so the store never records an
epoch the checkpoint does not hold. On resume, epoch rows the checkpoint holds but the
store lacks (a kill between the two writes) are recorded before training goes on.
"""
from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .checkpoint import save_checkpoint as _save
from .config import ConfigError
from .device import default_threads, describe, resolve_device
from .errors import UserError
from .genotype import Genotype
from .jobs import EpochRecord, JobStore
from .store import FAILED, FINISHED, RUNNING, STOPPED, StoreError
from .train_config import TrainConfig, config_from_dict, config_to_dict

CHECKPOINT = "checkpoint.pt"
BEAT_EVERY_S = 1.0        # progress writes and store stop polls at most this often


class JobObserver:
    """Callbacks a UI or CLI overrides to follow a job in the same process; all optional."""

    def on_log(self, job_id: int, message: str) -> None: ...
    def on_progress(self, job_id: int, progress: dict) -> None: ...
    def on_epoch(self, job_id: int, row: dict) -> None: ...
    def on_end(self, job_id: int, status: str, error: str) -> None: ...


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite; the job fails with this one line."""


@dataclass
class TrainOutcome:
    """What a trainer hands back: a summary, and the trained model when it ran to the end."""
    stopped: bool
    metrics: dict
    model: nn.Module | None = None                  # eval mode, on CPU, ready to export
    model_spec: dict = field(default_factory=dict)  # {"builder": ..., "config": {...}}: how to rebuild it
    example_inputs: tuple = ()                      # CPU tensors for the ONNX export and its check
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    dynamic_batch: bool = False
    vocab: list[str] | None = None


class JobContext:
    """A trainer's view of its job: resume state, stop requests, progress, per-epoch commits."""

    def __init__(self, store: JobStore, job_id: int, stop: threading.Event, observer: JobObserver,
                 device: torch.device) -> None:
        self.store, self.job_id, self.stop, self.observer, self.device = store, job_id, stop, observer, device
        self.dir = store.job_dir(job_id)
        self.checkpoint_path = self.dir / CHECKPOINT
        # Ids restart in a new store file, so a checkpoint names its job by id and creation time.
        self.key = f"{job_id}@{store.get_job(job_id).created_at!r}"
        self._last_poll = self._last_beat = 0.0
        self._t0, self._f0, self._epochs, self._batches = time.time(), 0.0, 1, 1
        self._where = (1, 0)

    def log(self, message: str) -> None:
        self.observer.on_log(self.job_id, message)

    # ----- resume ------------------------------------------------------------------------
    def resume_state(self) -> dict[str, Any] | None:
        """The last checkpoint (tensors on the job's device), or None for a fresh start."""
        recorded = self.store.epochs(self.job_id)
        if not self.checkpoint_path.exists():
            if recorded:
                raise StoreError(f"job {self.job_id} recorded {len(recorded)} epoch(s) but its checkpoint "
                                 f"{self.checkpoint_path} is missing; start a new job")
            return None
        state = load_checkpoint(self.checkpoint_path, map_location=self.device)
        if state.get("job_key") != self.key:  # left by a job of the same id in a deleted store
            if recorded:
                raise StoreError(f"{self.checkpoint_path} belongs to another job; job {self.job_id} "
                                 f"cannot resume from it")
            self.log(f"ignoring {self.checkpoint_path}: it was written by an earlier job with this id")
            return None
        done = {r.epoch for r in recorded}
        missing = [EpochRecord.from_row(row) for row in state["history"] if int(row["epoch"]) not in done]
        self.store.add_epochs(self.job_id, missing)
        self.log(f"job {self.job_id}: resuming after epoch {state['epoch']} from {self.checkpoint_path}")
        return state

    def save_extra(self, name: str, obj: dict[str, Any]) -> Path:
        """Another atomic file in the job directory (e.g. the best weights so far)."""
        path = self.dir / name
        _save(obj, path)
        return path

    # ----- live state ----------------------------------------------------------------------
    def should_stop(self) -> bool:
        """The in-process event, or a stop asked in the store by any process (polled once a second)."""
        if not self.stop.is_set() and time.time() - self._last_poll > BEAT_EVERY_S:
            self._last_poll = time.time()
            if self.store.job_stop_requested(self.job_id):
                self.stop.set()
        return self.stop.is_set()

    def begin(self, first_epoch: int, epochs: int, batches: int) -> None:
        """Start the clock for the ETA: only this session's pace counts (a resume may be on other hardware)."""
        self._epochs, self._batches = epochs, max(batches, 1)
        self._f0 = (first_epoch - 1) / epochs
        self._t0 = time.time()
        self.progress(first_epoch, 0, force=True)

    def progress(self, epoch: int, batch: int, phase: str = "train", force: bool = False, **extra: Any) -> None:
        """Record where the job is (epoch, batch, fraction, ETA) at most once a second."""
        now = time.time()
        self._where = (epoch, batch)
        if not force and now - self._last_beat < BEAT_EVERY_S:
            return
        self._last_beat = now
        frac = min(1.0, ((epoch - 1) + batch / self._batches) / self._epochs)
        elapsed = now - self._t0
        eta = elapsed * (1.0 - frac) / (frac - self._f0) if frac > self._f0 else None
        prog = {"phase": phase, "epoch": epoch, "epochs": self._epochs, "batch": batch, "batches": self._batches,
                "fraction": frac, "elapsed_s": elapsed, "eta_s": eta, **extra}
        self.store.beat_job(self.job_id, prog)
        self.observer.on_progress(self.job_id, prog)

    def epoch_done(self, row: dict, state: dict[str, Any]) -> None:
        """Checkpoint first (atomically), then the immutable epoch row: the order that makes a kill safe."""
        _save({**state, "job_key": self.key}, self.checkpoint_path)
        self.store.add_epochs(self.job_id, [EpochRecord.from_row(row)])
        self.observer.on_epoch(self.job_id, row)
        epoch = int(row["epoch"])
        if epoch < self._epochs:
            self.progress(epoch + 1, 0, force=True)      # the next epoch, not started yet
        else:
            self.progress(epoch, self._batches, force=True)

    def mark(self, phase: str) -> None:
        """Say what the job does now at the current position (e.g. "export" after the last epoch)."""
        self.progress(*self._where, phase=phase, force=True)


def finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


# ----- creating and running jobs --------------------------------------------------------------
def create_job(store: JobStore, genotype: Genotype, cfg: TrainConfig, source: str = "") -> int:
    """Record a queued job; its whole config travels in the row, so any process can run it."""
    if genotype.kind != cfg.task:
        raise ConfigError(f"a {cfg.task} training needs a {cfg.task} genotype, got a {genotype.kind} one")
    if cfg.task == "cnn":  # a dataset spec or network that cannot work fails here, not in the job
        from .final_cnn import planned_network
        planned_network(cfg)
    name = genotype.name or f"cell-{genotype.hash}"
    return store.create_job(cfg.task, genotype, config_to_dict(cfg), source=source, name=name)


def check_resumable(store: JobStore, job_id: int) -> None:
    job = store.get_job(job_id)
    if job.status == RUNNING:
        raise StoreError(f"job {job_id} is still running (pid {job.pid}); stop it before resuming")
    if job.status == FINISHED:
        raise StoreError(f"job {job_id} has already finished; nothing to resume")


def run_job(store: JobStore, job_id: int, observer: JobObserver | None = None,
            stop_event: threading.Event | None = None) -> str:
    """Run (or resume) a job to its end, a stop request or a failure; returns the final status."""
    obs = observer or JobObserver()
    stop = stop_event or threading.Event()
    check_resumable(store, job_id)
    job = store.get_job(job_id)
    metrics: dict | None = None
    try:
        cfg = config_from_dict(job.config)
        torch.set_num_threads(cfg.threads or default_threads())
        device = resolve_device(cfg.device)
        store.claim_job(job_id, describe(device))
        obs.on_log(job_id, f"job {job_id}: {cfg.task} training of {job.name} on {describe(device)}")
        ctx = JobContext(store, job_id, stop, obs, device)
        outcome = _trainer(cfg.task)(ctx, job.genotype, cfg, device)
        metrics = outcome.metrics
        if outcome.stopped:
            status, error = STOPPED, ""
        else:
            ctx.mark("export")
            metrics = {**metrics, "exports": _export(ctx, job.genotype, cfg, outcome)}
            status, error = FINISHED, ""
    except Exception as exc:  # recorded, not swallowed: the job row says why it failed
        status = FAILED
        error = _one_line(exc)
        if not isinstance(exc, UserError):
            obs.on_log(job_id, traceback.format_exc())
    store.finish_job(job_id, status, error, metrics)
    obs.on_end(job_id, status, error)
    return status


def _trainer(task: str) -> Callable[[JobContext, Genotype, Any, torch.device], TrainOutcome]:
    if task == "cnn":
        from .final_cnn import train_cnn
        return train_cnn
    from .final_rnn import train_rnn
    return train_rnn


def _export(ctx: JobContext, genotype: Genotype, cfg: TrainConfig, outcome: TrainOutcome) -> dict:
    from .export import export_trained
    return export_trained(ctx.dir, genotype, outcome, with_onnx=cfg.onnx, job_id=ctx.job_id, log=ctx.log)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, UserError) and text:
        return text[0]
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ----- choosing what to train ----------------------------------------------------------------
def genotype_from_run(store: JobStore, run_id: int, step: int | None = None) -> tuple[Genotype, str]:
    """A search run's best snapshot (step None) or any step, named after where it came from."""
    steps = store.steps(run_id)
    if step is None:
        from .store import best_of
        chosen = best_of(steps)
        if chosen is None:
            raise StoreError(f"run {run_id} has no scored step yet")
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
