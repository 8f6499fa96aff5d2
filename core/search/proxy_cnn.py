"""Proxy training of one candidate CNN: the paper's short, early-stopped training run.

The search trains every shrink candidate from scratch with this function and compares their
best validation accuracies, so two things matter more than anything else:
- fairness: every candidate of a run sees the same mini-batches in the same order
  (`epoch_batches` is a pure function of the data seed and the epoch), and the result is
  deterministic on CPU for a fixed initialisation;
- cheapness: hopeless candidates stop early (floor, divergence, patience, NaN), and the loop
  avoids per-sample Python and needless host/device syncs.

Rules of the official proxy_estimator.py (docs/FIDELITY.md): the "running" train accuracy
and loss are exponential moving averages (momentum 0.99) of the per-batch values, restarted
each epoch (the first batch sets them); an epoch ends early once the running accuracy passes
98%. After each epoch's validation, in the official order: `patience` epochs without a new
best; val accuracy under the floor at epoch `floor_epoch` only; val loss > diverge_ratio x
running train loss; else the last epoch. The result is the best validation accuracy seen.
L2 is Keras-style (see l2_coefficients).

NaN: the official loop has no NaN rule; it trains on and returns `best_val_acc`, the best
accuracy reached before the loss went non-finite. We stop at the first non-finite loss (the
weights cannot recover, so the remaining epochs would be wasted) and score the candidate from
its best completed epoch, as the official would; it fails only if no epoch completed
(nan_outcome, shared with the batched evaluator).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.data.batches import epoch_batches
from core.data.images import ImageData
from core.errors import one_line
from core.nets.evaluate import VAL_BATCH, evaluate_images
from core.result import (
    BUILD_FAILED,
    DIVERGED,
    LOW_ACCURACY,
    MAX_EPOCHS,
    NAN,
    PATIENCE,
    USER_STOP,
    CandidateStatus,
    TrainResult,
)

ERROR_CHARS = 300
CPU_VAL_BATCH = 256  # a CPU validates 1,000 proxy images ~35% faster in batches that stay in cache


def val_batch(device: torch.device) -> int:
    """Validation images per forward: VAL_BATCH (few large kernels) except on a CPU."""
    return CPU_VAL_BATCH if device.type == "cpu" else VAL_BATCH


@dataclass
class ProxyTrainConfig:
    """The paper's proxy-training settings (docs/FIDELITY.md, CNN search); tests shrink them for speed."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 1e-5  # Keras L2: + weight_decay x sum(w^2) of conv, pointwise, dense kernels
    shortcut_l2: float = 4e-5  # the official shortcut 1x1 conv keeps the library default l2(4e-5)
    train_acc_stop: float = 0.98  # stop an epoch early once the running train accuracy passes this
    patience: int = 5  # stop after this many epochs without a new best val accuracy
    floor_epoch: int = 4  # at this epoch (counting from 1) only ...
    floor_acc: float = 0.20  # ... stop if val accuracy is below this
    diverge_ratio: float = 3.0  # stop if val loss > ratio x running train loss
    momentum: float = 0.99  # of the running (EMA) train accuracy and loss
    max_batches: int = 0  # > 0: train only this many batches an epoch (demos, tests)


class _ModelError(Exception):
    """The candidate network raised while running: the candidate fails, the search goes on."""


class _NaNLoss(Exception):
    """A NaN/inf loss: training cannot recover, so it stops at once (see nan_outcome)."""


class _UserStop(Exception):
    """should_stop() said yes between two batches."""


@dataclass
class EpochStats:
    """What one epoch measured: the inputs of the stop rules. train_loss/acc are the epoch's
    means (for the curves); running_loss/acc are the EMAs the rules use (None: the means)."""

    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    running_loss: float | None = None
    running_acc: float | None = None

    @property
    def finite(self) -> bool:
        """Every loss of the epoch is a number: only then is the epoch complete."""
        running = self.train_loss if self.running_loss is None else self.running_loss
        return all(math.isfinite(v) for v in (self.train_loss, self.val_loss, running))

    def row(self, epoch: int, lr: float, seconds: float) -> dict:
        """The history row of this epoch."""
        return {
            "epoch": epoch,
            "lr": lr,
            "train_loss": self.train_loss,
            "train_acc": self.train_acc,
            "train_loss_ema": self.running_loss,
            "train_acc_ema": self.running_acc,
            "val_loss": self.val_loss,
            "val_acc": self.val_acc,
            "seconds": seconds,
        }


class Running:
    """The official running train accuracy and loss: EMA(momentum) of the per-batch values,
    restarted each epoch, the first batch setting them. Plain floats on the host, so the
    single and batched evaluators compute the same numbers from the same batch values."""

    def __init__(self, momentum: float) -> None:
        self.momentum, self.loss, self.acc = momentum, None, None
        self.loss_sum, self.hits, self.seen = 0.0, 0.0, 0

    def add(self, loss: float, hits: float, n: int) -> None:
        """One batch: mean loss, correct count, batch size."""
        m, acc = self.momentum, hits / n
        self.loss = loss if self.loss is None else m * self.loss + (1 - m) * loss
        self.acc = acc if self.acc is None else m * self.acc + (1 - m) * acc
        self.loss_sum, self.hits, self.seen = self.loss_sum + loss * n, self.hits + hits, self.seen + n

    def stats(self, val_loss: float, val_acc: float) -> EpochStats:
        n = max(self.seen, 1)
        return EpochStats(self.loss_sum / n, self.hits / n, val_loss, val_acc, self.loss, self.acc)


def l2_coefficients(model: nn.Module, cfg: ProxyTrainConfig) -> dict[str, float]:
    """lambda of each parameter in the official Keras-style L2, loss + lambda x sum(w^2): conv,
    pointwise and dense kernels get weight_decay; the residual shortcut's 1x1 conv gets
    shortcut_l2 (official tflayers/add.py passes no regularizer, so it falls back to the
    library default l2(4e-5)); depthwise kernels (regularize_depthwise=False), BN and biases 0."""
    coef = {name: 0.0 for name, _ in model.named_parameters()}
    for name, mod in model.named_modules():
        if not isinstance(mod, (nn.Conv2d, nn.Linear)):
            continue
        if isinstance(mod, nn.Conv2d) and mod.groups > 1 and mod.groups == mod.in_channels:
            continue  # depthwise
        key = f"{name}.weight" if name else "weight"
        coef[key] = cfg.shortcut_l2 if ".shortcut." in f".{name}." else cfg.weight_decay
    return coef


def adam_groups(model: nn.Module, cfg: ProxyTrainConfig) -> list[dict]:
    """Adam parameter groups that realise the L2 of l2_coefficients exactly: the gradient of
    lambda x w^2 is 2 lambda w, which is torch Adam's (coupled) weight_decay = 2 lambda."""
    coef = l2_coefficients(model, cfg)
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        groups.setdefault(2.0 * coef[name], []).append(p)
    return [{"params": ps, "weight_decay": wd} for wd, ps in groups.items()]


def nan_outcome(completed_epochs: int) -> tuple[str, str]:
    """(status, error) of a candidate whose loss went NaN/inf after `completed_epochs` complete
    epochs: scored from the best of them (OK, stop reason NAN), or FAILED when there is none."""
    if completed_epochs:
        return CandidateStatus.OK, ""
    return CandidateStatus.FAILED, "loss became NaN or infinite in epoch 1"


def train_proxy(
    model: nn.Module,
    data: ImageData,
    cfg: ProxyTrainConfig,
    data_seed: int,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    precision: str = "fp32",
) -> TrainResult:
    """Train an initialised `model` on `data` with the proxy recipe and early stopping.

    `precision` "bf16" runs forward and backward under bf16 autocast (weights, Adam and the
    loss stay fp32); "fp32" is the official search's arithmetic.

    Returns TrainResult with accuracy = best validation accuracy (None when the candidate
    failed, or was stopped before finishing an epoch), epochs = completed epochs, and one
    history row per completed epoch. A NaN/inf loss ends training (nan_outcome). The model is
    trained in place on `device`.
    """
    start = time.perf_counter()
    history: list[dict] = []
    best = BestEpoch()

    def result(status: str, reason: str, error: str = "") -> TrainResult:
        return finished_result(status, reason, best, history, time.perf_counter() - start, error)

    try:
        run = _Training.start(model, data, cfg, data_seed, torch.device(device), should_stop, precision)
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            stats = run.epoch(epoch)
            history.append(stats.row(epoch, cfg.lr, time.perf_counter() - t0))
            best.update(epoch, stats.val_acc)
            if on_epoch is not None:
                on_epoch(history[-1])
            reason = stop_reason(cfg, epoch, stats, best.epoch)
            if reason is not None:  # never NAN here: run.epoch raised for a non-finite epoch
                return result(CandidateStatus.OK, reason)
        return result(CandidateStatus.OK, MAX_EPOCHS)
    except _NaNLoss:
        return result(*_nan_status(len(history)))
    except _UserStop:
        return result(CandidateStatus.STOPPED, USER_STOP)
    except _ModelError as exc:
        return result(CandidateStatus.FAILED, BUILD_FAILED, str(exc))


def _nan_status(completed_epochs: int) -> tuple[str, str, str]:
    """train_proxy's (status, reason, error) for a NaN/inf loss (nan_outcome)."""
    status, error = nan_outcome(completed_epochs)
    return status, NAN, error


class BestEpoch:
    """Best validation accuracy so far and the epoch it came from (strict improvement only): a
    candidate is scored from it, and patience counts from its epoch (train_proxy and the batched
    evaluator both track it with this)."""

    def __init__(self) -> None:
        self.acc: float | None = None
        self.epoch = 0

    def update(self, epoch: int, acc: float) -> None:
        if self.acc is None or acc > self.acc:
            self.acc, self.epoch = acc, epoch


def finished_result(
    status: str, reason: str, best: BestEpoch, history: list[dict], wall_s: float, error: str = ""
) -> TrainResult:
    """A CNN candidate's result when its training ends: the best epoch's accuracy, none if it failed."""
    acc = best.acc if status != CandidateStatus.FAILED else None
    return TrainResult(
        status=status,
        accuracy=acc,
        epochs=len(history),
        stop_reason=reason,
        wall_s=wall_s,
        error=error,
        history=history,
    )


def stop_reason(cfg: ProxyTrainConfig, epoch: int, stats: EpochStats, best_epoch: int) -> str | None:
    """Why training ends after `epoch`, or None to go on; the rules in the official order."""
    running = stats.train_loss if stats.running_loss is None else stats.running_loss
    if not stats.finite:
        return NAN
    if epoch - best_epoch >= cfg.patience:
        return PATIENCE
    if epoch == cfg.floor_epoch and stats.val_acc < cfg.floor_acc:
        return LOW_ACCURACY
    if stats.val_loss > cfg.diverge_ratio * running:
        return DIVERGED
    if epoch >= cfg.epochs:
        return MAX_EPOCHS
    return None


@dataclass
class _Training:
    """One train_proxy call's model, optimizer, data and settings: what each of its epochs uses."""

    model: nn.Module
    opt: torch.optim.Optimizer
    data: ImageData
    cfg: ProxyTrainConfig
    data_seed: int
    should_stop: Callable[[], bool] | None
    dtype: torch.dtype | None  # the autocast dtype; None: float32 throughout

    @classmethod
    def start(
        cls,
        model: nn.Module,
        data: ImageData,
        cfg: ProxyTrainConfig,
        data_seed: int,
        dev: torch.device,
        should_stop: Callable[[], bool] | None,
        precision: str,
    ) -> "_Training":
        """The model and data on `dev` (the model channels_last: oneDNN's fast layout; batches
        follow) and a fresh Adam with the Keras-style L2 groups."""
        with _model_errors():
            model.to(dev, memory_format=torch.channels_last)
            data = data.to(dev)
            opt = torch.optim.Adam(adam_groups(model, cfg), lr=cfg.lr)
        dtype = torch.bfloat16 if precision == "bf16" else None
        return cls(model, opt, data, cfg, data_seed, should_stop, dtype)

    def epoch(self, epoch: int) -> EpochStats:
        """One training pass (possibly cut short by the train-accuracy rule) and one validation."""
        running = self.train_pass(epoch)
        data = self.data
        with _model_errors():
            val_loss, val_acc = evaluate_images(
                self.model, data.x_val, data.y_val, val_batch(data.x_val.device), self.dtype, _channels_last
            )
        stats = running.stats(val_loss, val_acc)
        if not stats.finite:
            raise _NaNLoss()
        return stats

    def train_pass(self, epoch: int) -> Running:
        """Train over the epoch's batches; returns the epoch's Running (EMAs and means).

        The running accuracy must be known after every batch for the early epoch break, so each
        batch costs one host sync, of a 2-element tensor [batch loss, correct] (that same read is
        the NaN check); nothing else is read back.
        """
        data, cfg = self.data, self.cfg
        batches = epoch_batches(len(data.y_train), cfg.batch_size, self.data_seed, epoch, cfg.max_batches)
        order = torch.cat(batches).to(data.x_train.device, non_blocking=True)  # one transfer per epoch
        running = Running(cfg.momentum)
        self.model.train()
        for idx in order.split([len(b) for b in batches]):
            if self.should_stop is not None and self.should_stop():
                raise _UserStop()
            with _model_errors():
                out = _train_step(self.model, self.opt, data.x_train[idx], data.y_train[idx], self.dtype)
                loss, hits = out.tolist()
            if not math.isfinite(loss):
                raise _NaNLoss()
            running.add(loss, hits, len(idx))
            if running.acc > cfg.train_acc_stop:
                break
        return running


def _train_step(
    model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, dtype: torch.dtype | None = None
) -> Tensor:
    """One Adam step; returns [mean batch loss, correct count] as a device tensor (no sync).
    The loss is the cross-entropy only (the official running loss has no L2 term either),
    computed in fp32 whatever the autocast dtype."""
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        logits = model(_channels_last(x))
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        hits = (logits.argmax(dim=1) == y).sum()
        return torch.stack([loss.detach().float(), hits.float()])


def _channels_last(x: Tensor) -> Tensor:
    """A batch in the model's layout: channels_last, where batch norm, ReLU and the 1x1 and
    depthwise convolutions of these cells run about twice as fast on a CPU as in NCHW."""
    return x.contiguous(memory_format=torch.channels_last)


@contextmanager
def _model_errors() -> Iterator[None]:
    """Turn any exception from running the network into a one-line _ModelError.

    KeyboardInterrupt and SystemExit are not Exceptions, so they pass through untouched.
    """
    try:
        yield
    except (_NaNLoss, _UserStop, _ModelError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a candidate network fails only it
        raise _ModelError(one_line(exc, typed=True, limit=ERROR_CHARS)) from exc


__all__ = [
    "ProxyTrainConfig",
    "EpochStats",
    "Running",
    "train_proxy",
    "stop_reason",
    "nan_outcome",
    "l2_coefficients",
    "adam_groups",
    "BestEpoch",
    "finished_result",
    "val_batch",
]
