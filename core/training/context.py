"""A trainer's view of its job (JobContext), and the values trainers hand back.

Split from the engine so that the CNN and RNN trainers and the export depend on this
small module, and the engine depends on them: no circle.

The context owns the order that makes a kill harmless: at the end of an epoch the checkpoint
is written (atomically) first, and only then the immutable epoch row, so the store never
records an epoch the checkpoint does not hold. On resume, epoch rows the checkpoint holds but
the store lacks (a kill between the two writes) are recorded before training goes on.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import UserError
from core.store.jobs import EpochRecord, JobStore
from core.store.progress import JobProgress
from core.store.runs import StoreError
from core.training.checkpoint import load_checkpoint
from core.training.checkpoint import save_checkpoint as _save

CHECKPOINT = "checkpoint.pt"
BEAT_EVERY_S = 1.0  # progress writes and store stop polls at most this often


class JobObserver:
    """Callbacks a UI or CLI overrides to follow a job in the same process; all optional."""

    def on_log(self, job_id: int, message: str) -> None: ...
    def on_progress(self, job_id: int, progress: JobProgress) -> None: ...
    def on_epoch(self, job_id: int, row: dict) -> None: ...
    def on_end(self, job_id: int, status: str, error: str) -> None: ...


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite; the job fails with this one line."""


@dataclass
class TrainOutcome:
    """What a trainer hands back: a summary, and the trained model when it ran to the end."""

    stopped: bool
    metrics: dict
    model: nn.Module | None = None  # eval mode, on CPU, ready to export
    model_spec: dict = field(default_factory=dict)  # {"builder": ..., "config": {...}}: how to rebuild it
    example_inputs: tuple = ()  # CPU tensors for the ONNX export and its check
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    dynamic_batch: bool = False
    vocab: list[str] | None = None


class JobContext:
    """A trainer's view of its job: resume state, stop requests, progress, per-epoch commits."""

    def __init__(
        self, store: JobStore, job_id: int, stop: threading.Event, observer: JobObserver, device: torch.device
    ) -> None:
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
        """The last checkpoint (tensors on the CPU), or None for a fresh start. Not mapped to the
        job's device: load_state_dict places each tensor itself, and keeps Adam's `step` counters
        on the CPU, where torch.optim wants them (on a GPU every step would sync on them)."""
        recorded = self.store.epochs(self.job_id)
        if not self.checkpoint_path.exists():
            if recorded:
                raise StoreError(
                    f"job {self.job_id} recorded {len(recorded)} epoch(s) but its checkpoint "
                    f"{self.checkpoint_path} is missing; start a new job"
                )
            return None
        state = load_checkpoint(self.checkpoint_path, map_location="cpu")
        if state.get("job_key") != self.key:  # left by a job of the same id in a deleted store
            if recorded:
                raise StoreError(
                    f"{self.checkpoint_path} belongs to another job; job {self.job_id} cannot resume from it"
                )
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
        prog = JobProgress(
            phase=phase,
            epoch=epoch,
            epochs=self._epochs,
            batch=batch,
            batches=self._batches,
            fraction=frac,
            elapsed_s=elapsed,
            eta_s=eta,
            extra=extra,
        )
        self.store.beat_job(self.job_id, prog)
        self.observer.on_progress(self.job_id, prog)

    def epoch_done(self, row: dict, state: dict[str, Any]) -> None:
        """Checkpoint first (atomically), then the immutable epoch row: the order that makes a kill safe."""
        _save({**state, "job_key": self.key}, self.checkpoint_path)
        self.store.add_epochs(self.job_id, [EpochRecord.from_row(row)])
        self.observer.on_epoch(self.job_id, row)
        epoch = int(row["epoch"])
        if epoch < self._epochs:
            self.progress(epoch + 1, 0, force=True)  # the next epoch, not started yet
        else:
            self.progress(epoch, self._batches, force=True)

    def mark(self, phase: str) -> None:
        """Say what the job does now at the current position (e.g. "export" after the last epoch)."""
        self.progress(*self._where, phase=phase, force=True)


def finite(value: float) -> bool:
    return value is not None and math.isfinite(value)
