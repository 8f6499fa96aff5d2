"""Proxy training: every stop rule, determinism, batch purity, user stop, and a real digits run."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.data.batches import epoch_batches
from core.data.images import ImageData, load_proxy
from core.result import BUILD_FAILED, DIVERGED, LOW_ACCURACY, MAX_EPOCHS, NAN, PATIENCE, USER_STOP, CandidateStatus
from core.search.proxy_cnn import EpochStats, ProxyTrainConfig, stop_reason, train_proxy

C = 10  # classes in every synthetic task


# ----- tiny tasks and models -----------------------------------------------------------------
def onehot_task(n_per_class: int = 64, val_shift: int = 0) -> ImageData:
    """Images that are the one-hot code of their class (C x 1 x 1): trivially learnable.

    val_shift relabels the validation images (class c -> c + shift), so a model that learns
    the training task becomes confidently wrong on validation: the divergence set-up.
    """
    y = torch.arange(C).repeat(n_per_class)
    x = nn.functional.one_hot(y, C).float().view(-1, C, 1, 1)
    return ImageData("onehot", x, y, x.clone(), (y + val_shift) % C, C, C, 1)


class Linear(nn.Module):
    """A plain linear classifier over flattened pixels; optionally counts training forwards."""

    def __init__(self, in_features: int = C) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, C)
        self.train_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.train_calls += int(self.training)
        return self.fc(x.flatten(1))


class Constant(nn.Module):
    """Ignores its input: stuck at chance on a balanced task, whatever it learns."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), C)


class NaNOut(Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * float("nan")


class NaNWhenEvaluated(Linear):
    """Trains normally, then produces NaN in eval mode: the validation check must catch it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if self.training else out * float("nan")


class NaNFromEpoch(Linear):
    """Trains normally for `good` epochs; from the next one its training loss (or, with
    `in_eval`, its validation loss) is NaN. model.train() starts each epoch's pass."""

    def __init__(self, good: int, in_eval: bool = False) -> None:
        super().__init__()
        self.good, self.in_eval, self.epoch = good, in_eval, 0

    def train(self, mode: bool = True) -> "NaNFromEpoch":
        self.epoch += int(mode)
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        poisoned = self.epoch > self.good and self.training != self.in_eval
        return out * float("nan") if poisoned else out


class Interrupting(Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise KeyboardInterrupt


def perfect_linear() -> Linear:
    """Already right on the one-hot task: running train accuracy is 100% from the first batch."""
    model = Linear()
    with torch.no_grad():
        model.fc.weight.copy_(torch.eye(C) * 10)
        model.fc.bias.zero_()
    return model


def small_convnet(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, C),
    )


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_proxy("digits", seed=0)


# ----- epoch_batches -------------------------------------------------------------------------
def test_epoch_batches_pure_and_complete() -> None:
    rng_before = torch.get_rng_state()
    a = epoch_batches(1000, 128, data_seed=7, epoch=3)
    torch.manual_seed(999)  # global RNG state must not matter
    b = epoch_batches(1000, 128, data_seed=7, epoch=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b) == 8
    assert torch.equal(torch.cat(a).sort().values, torch.arange(1000))
    assert [len(x) for x in a] == [128] * 7 + [104]
    assert not torch.equal(torch.cat(a), torch.cat(epoch_batches(1000, 128, 7, 4)))
    assert not torch.equal(torch.cat(a), torch.cat(epoch_batches(1000, 128, 8, 3)))
    torch.set_rng_state(rng_before)


def test_epoch_batches_no_single_sample_tail() -> None:
    """BatchNorm cannot train on one sample, so a size-1 tail joins the previous batch."""
    sizes = [len(b) for b in epoch_batches(257, 128, 0, 1)]
    assert sizes == [128, 129]


# ----- stop rules ----------------------------------------------------------------------------
def test_nan_fails_at_once() -> None:
    res = train_proxy(NaNOut(), onehot_task(), ProxyTrainConfig(epochs=5), data_seed=0)
    assert (res.status, res.stop_reason) == (CandidateStatus.FAILED, NAN)
    assert res.accuracy is None and res.epochs == 0 and res.history == []


def test_nan_in_validation_fails() -> None:
    res = train_proxy(NaNWhenEvaluated(), onehot_task(), ProxyTrainConfig(epochs=5), data_seed=0)
    assert (res.status, res.stop_reason, res.accuracy) == (CandidateStatus.FAILED, NAN, None)


@pytest.mark.parametrize("in_eval", [False, True], ids=["train-loss", "val-loss"])
def test_nan_in_epoch_3_stops_and_scores_from_the_best_completed_epoch(in_eval: bool) -> None:
    """The official loop keeps best_val_acc from before the loss went non-finite: the candidate
    stops at its first NaN but keeps the best accuracy of epochs 1-2 and is not failed."""
    rows: list[dict] = []
    res = train_proxy(
        NaNFromEpoch(good=2, in_eval=in_eval),
        onehot_task(),
        ProxyTrainConfig(epochs=6),
        data_seed=0,
        on_epoch=rows.append,
    )
    assert (res.status, res.stop_reason, res.epochs, res.error) == (CandidateStatus.OK, NAN, 2, "")
    assert [r["epoch"] for r in res.history] == [1, 2] and rows == res.history
    assert res.accuracy is not None and res.accuracy == max(r["val_acc"] for r in res.history)


def test_nan_in_epoch_1_fails() -> None:
    res = train_proxy(NaNFromEpoch(good=0), onehot_task(), ProxyTrainConfig(epochs=6), data_seed=0)
    assert (res.status, res.stop_reason, res.epochs, res.accuracy) == (CandidateStatus.FAILED, NAN, 0, None)
    assert "epoch 1" in res.error


def test_stop_rule_order() -> None:
    """The official order: NaN, patience, the floor (at epoch 4 only), divergence, last epoch."""
    cfg = ProxyTrainConfig(epochs=20)
    bad = EpochStats(train_loss=0.1, train_acc=0.9, val_loss=1.0, val_acc=0.05)  # diverged + floor
    assert stop_reason(cfg, 10, EpochStats(float("nan"), 0.9, 1.0, 0.05), best_epoch=1) == NAN
    assert stop_reason(cfg, 10, bad, best_epoch=1) == PATIENCE
    assert stop_reason(cfg, 4, bad, best_epoch=4) == LOW_ACCURACY
    assert stop_reason(cfg, 5, bad, best_epoch=5) == DIVERGED
    low = EpochStats(train_loss=1.0, train_acc=0.2, val_loss=1.0, val_acc=0.05)
    assert stop_reason(cfg, 3, low, best_epoch=3) is None  # the floor is checked at epoch 4 ...
    assert stop_reason(cfg, 4, low, best_epoch=1) == LOW_ACCURACY
    assert stop_reason(cfg, 5, low, best_epoch=5) is None  # ... and only there
    fine = EpochStats(train_loss=1.0, train_acc=0.6, val_loss=1.0, val_acc=0.5)
    assert stop_reason(cfg, 6, fine, best_epoch=1) == PATIENCE
    assert stop_reason(cfg, 5, fine, best_epoch=1) is None
    assert stop_reason(cfg, 20, fine, best_epoch=20) == MAX_EPOCHS


def test_floor_stops_a_model_stuck_at_chance() -> None:
    res = train_proxy(Constant(), onehot_task(), ProxyTrainConfig(epochs=20), data_seed=0)
    assert (res.status, res.stop_reason, res.epochs) == (CandidateStatus.OK, LOW_ACCURACY, 4)
    assert res.accuracy == pytest.approx(0.1)


def test_patience_stops_without_new_best() -> None:
    cfg = ProxyTrainConfig(epochs=20, floor_acc=0.0)  # floor off: only patience can stop it
    res = train_proxy(Constant(), onehot_task(), cfg, data_seed=0)
    assert (res.status, res.stop_reason, res.epochs) == (CandidateStatus.OK, PATIENCE, 1 + cfg.patience)


def test_divergence_when_val_loss_far_above_train_loss() -> None:
    cfg = ProxyTrainConfig(epochs=10)
    res = train_proxy(perfect_linear(), onehot_task(val_shift=1), cfg, data_seed=0)
    assert (res.status, res.stop_reason, res.epochs) == (CandidateStatus.OK, DIVERGED, 1)
    last = res.history[-1]
    assert last["val_loss"] > cfg.diverge_ratio * last["train_loss"]


def test_train_accuracy_breaks_the_epoch_early() -> None:
    task = onehot_task(n_per_class=128)  # 1280 images: 10 batches of 128 per epoch
    cfg = ProxyTrainConfig(epochs=3, patience=99)
    model = perfect_linear()
    res = train_proxy(model, task, cfg, data_seed=0)
    assert res.epochs == 3 and res.stop_reason == MAX_EPOCHS and res.accuracy == 1.0
    assert model.train_calls == 3  # one batch per epoch, and every epoch still ran
    full = perfect_linear()
    train_proxy(full, task, ProxyTrainConfig(epochs=3, patience=99, train_acc_stop=1.0), data_seed=0)
    assert full.train_calls == 30


def test_model_error_is_build_failed_one_line() -> None:
    res = train_proxy(Linear(in_features=7), onehot_task(), ProxyTrainConfig(epochs=2), data_seed=0)
    assert (res.status, res.stop_reason) == (CandidateStatus.FAILED, BUILD_FAILED)
    assert res.error and "\n" not in res.error and "RuntimeError" in res.error


def test_keyboard_interrupt_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        train_proxy(Interrupting(), onehot_task(), ProxyTrainConfig(epochs=2), data_seed=0)


def test_should_stop_returns_at_once() -> None:
    calls = []

    def stop_on_third() -> bool:
        calls.append(1)
        return len(calls) >= 3

    model = Linear()
    res = train_proxy(
        model,
        onehot_task(n_per_class=128),
        ProxyTrainConfig(epochs=5, train_acc_stop=1.0),
        data_seed=0,
        should_stop=stop_on_third,
    )
    assert (res.status, res.stop_reason) == (CandidateStatus.STOPPED, USER_STOP)
    assert model.train_calls == 2 and res.epochs == 0 and len(calls) == 3


# ----- determinism, callbacks, real training -------------------------------------------------
def _curves(history: list[dict]) -> list[tuple]:
    return [tuple(v for k, v in row.items() if k != "seconds") for row in history]


def test_deterministic_for_fixed_init_and_data_seed(digits: ImageData) -> None:
    cfg = ProxyTrainConfig(epochs=2)
    a = train_proxy(small_convnet(1), digits, cfg, data_seed=5)
    b = train_proxy(small_convnet(1), digits, cfg, data_seed=5)
    c = train_proxy(small_convnet(1), digits, cfg, data_seed=6)
    assert _curves(a.history) == _curves(b.history)
    assert _curves(a.history) != _curves(c.history)


def test_digits_training_beats_chance_and_reports_each_epoch(digits: ImageData) -> None:
    rows: list[dict] = []
    res = train_proxy(small_convnet(0), digits, ProxyTrainConfig(epochs=6), data_seed=0, on_epoch=rows.append)
    assert res.status == CandidateStatus.OK and res.epochs == 6 and res.stop_reason == MAX_EPOCHS
    assert res.accuracy is not None and res.accuracy > 0.5  # chance is 0.1
    assert rows == res.history and [r["epoch"] for r in rows] == list(range(1, 7))
    assert set(rows[0]) == {
        "epoch",
        "lr",
        "train_loss",
        "train_acc",
        "train_loss_ema",
        "train_acc_ema",
        "val_loss",
        "val_acc",
        "seconds",
    }
    assert res.accuracy == max(r["val_acc"] for r in rows)
    assert all(math.isfinite(r["train_loss"]) for r in rows) and res.wall_s > 0
