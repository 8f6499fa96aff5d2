"""Final-training settings: one flat dataclass per task, named schedules, validation.

Flat for the same reasons as SearchConfig: the whole config is stored as JSON in the job
row (so a job can be resumed and reproduced from the store alone), and every field becomes
a CLI flag and a form field without a hand-written list (field metadata carries the help
text and the allowed choices).

The defaults are laptop-sized (`demo`); the paper's ShrinkRNN settings and a standard
CIFAR-10 recipe are one schedule name away (`paper`, `cifar`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Union

from core.device import DEVICES, PRECISIONS
from core.errors import ConfigError
from core.settings import FieldSpec, setting
from core.settings import field_specs as declared_fields

TASKS = ("cnn", "rnn")
OPTIMIZERS = ("sgd", "adam")
NETWORKS = ("cifar", "imagenet")
CNN_ACTIVATIONS = ("relu", "swish")
AUGMENTS = ("auto", "crop-flip", "crop", "none")


DATA, REGULARISATION, SCHEDULE, RUN = "Data and network", "Regularisation", "Schedule", "Run"
GROUPS = (DATA, REGULARISATION, SCHEDULE, RUN)


PRECISION_HELP = (
    "auto = bf16 where the hardware runs it natively (AMX/AVX512-BF16 CPU, CUDA "
    "capability >= 8.0), else fp32 (CUDA below 8.0: fp16 with loss scaling when amp "
    "is on)"
)


@dataclass(frozen=True)
class CNNTrainConfig:
    """ShrinkCNN final training: dataset, network around the cell, schedule."""

    task: str = setting("cnn", "cnn", user=False)
    schedule: str = setting("demo", "named schedule these settings started from", user=False)
    data: str = setting("digits", "digits | cifar10 | cifar10:PATH | folder:PATH", group=DATA)
    network: str = setting(
        "cifar",
        "network around the cell: cifar (32x32, stride-1 stem) or imagenet (the published ShrinkCNN body)",
        choices=NETWORKS,
        group=DATA,
    )
    activation: str = setting("relu", "relu (ShrinkCNN-A) or swish (ShrinkCNN-B)", choices=CNN_ACTIVATIONS, group=DATA)
    width_multiplier: float = setting(1.0, "scales stem, node widths and head", group=DATA)
    widths: tuple[int, ...] = setting((24, 48, 96), "cifar network: node width per stage", group=DATA)
    cells_per_stage: tuple[int, ...] = setting((2, 3, 3), "cifar network: cells per stage", group=DATA)
    image_size: int = setting(
        0, "folder datasets: images are resized to this side (0 = 32 for cifar, 224 for imagenet)", group=DATA
    )
    val_fraction: float = setting(
        0.2, "folder datasets without train/ and val/: share of each class held out", group=DATA
    )
    optimizer: str = setting("sgd", "sgd (with momentum) or adam", choices=OPTIMIZERS, group=SCHEDULE)
    lr: float = setting(0.05, "peak learning rate (after warm-up)", group=SCHEDULE)
    momentum: float = setting(0.9, "SGD momentum (Nesterov)", group=SCHEDULE)
    weight_decay: float = setting(5e-4, "L2 weight decay", group=REGULARISATION)
    label_smoothing: float = setting(0.1, "label smoothing of the cross-entropy", group=REGULARISATION)
    warmup_epochs: float = setting(1.0, "linear warm-up before the cosine decay, in epochs", group=SCHEDULE)
    epochs: int = setting(10, "training epochs", group=SCHEDULE)
    batch_size: int = setting(128, "training batch size", group=SCHEDULE)
    augment: str = setting("auto", "auto = crop+flip for colour images, none for digits", choices=AUGMENTS, group=DATA)
    amp: bool = setting(True, "mixed precision (CUDA only; ignored on CPU)", group=SCHEDULE)
    max_batches: int = setting(0, "cap on batches per epoch (0 = whole epochs; for demos and tests)")
    seed: int = setting(0, "seed of initialisation, batch order and augmentation")
    device: str = setting("auto", "auto | cpu | cuda", choices=DEVICES)
    threads: int = setting(0, "torch CPU threads (0 = all cores but one)")
    precision: str = setting("auto", PRECISION_HELP, choices=PRECISIONS)
    onnx: bool = setting(True, "export ONNX when the job finishes")

    def __post_init__(self) -> None:
        for name in ("widths", "cells_per_stage"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def validated(self) -> "CNNTrainConfig":
        _check_common(self)
        checks = [
            (self.network in NETWORKS, f"network must be one of {', '.join(NETWORKS)}, not {self.network!r}"),
            (self.activation in CNN_ACTIVATIONS, f"activation must be relu or swish, not {self.activation!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be sgd or adam, not {self.optimizer!r}"),
            (self.augment in AUGMENTS, f"augment must be one of {', '.join(AUGMENTS)}, not {self.augment!r}"),
            (self.width_multiplier > 0, f"width multiplier must be > 0, not {self.width_multiplier}"),
            (
                len(self.widths) >= 1 and len(self.widths) == len(self.cells_per_stage),
                f"widths ({len(self.widths)}) and cells per stage ({len(self.cells_per_stage)}) need one "
                f"entry per stage",
            ),
            (
                all(w >= 1 for w in self.widths) and all(c >= 1 for c in self.cells_per_stage),
                "widths and cells per stage must be positive",
            ),
            (self.image_size >= 0, f"image size must be >= 0, not {self.image_size}"),
            (0.0 < self.val_fraction < 1.0, f"val fraction must be in (0, 1), not {self.val_fraction}"),
            (0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1), not {self.momentum}"),
            (0.0 <= self.label_smoothing < 1.0, f"label smoothing must be in [0, 1), not {self.label_smoothing}"),
            (
                0.0 <= self.warmup_epochs <= self.epochs,
                f"warm-up epochs must be in 0..epochs ({self.epochs}), not {self.warmup_epochs}",
            ),
        ]
        _raise_first(checks)
        return self

    def image_side(self) -> int:
        """The side folder images are resized to: the user's, else the network's natural one."""
        return self.image_size or (224 if self.network == "imagenet" else 32)


@dataclass(frozen=True)
class RNNTrainConfig:
    """ShrinkRNN final training (docs/FIDELITY.md, Final training, "ShrinkRNN settings"), every knob exposed."""

    task: str = setting("rnn", "rnn", user=False)
    schedule: str = setting("demo", "named schedule these settings started from", user=False)
    data: str = setting("embedded", "embedded | ptb | ptb:PATH | ptb-proxy | ptb-proxy:PATH", group=DATA)
    max_vocab: int = setting(0, "cap on the vocabulary (0 = the corpus's own)", group=DATA)
    emb: int = setting(128, "embedding size e (tied decoder: must equal hidden)", group=DATA)
    hidden: int = setting(128, "hidden size h", group=DATA)
    dropout: float = setting(0.75, "output dropout (variational)", group=REGULARISATION)
    dropout_h: float = setting(
        0.25,
        "hidden-state dropout inside the cell (variational; on h_{t-1} and every edge input)",
        group=REGULARISATION,
    )
    dropout_x: float = setting(0.75, "input-x dropout inside the cell (variational)", group=REGULARISATION)
    dropout_i: float = setting(
        0.2, "embedding-input dropout (variational over embedding features)", group=REGULARISATION
    )
    dropout_e: float = setting(0.1, "word dropout (whole embedding rows)", group=REGULARISATION)
    slowness: float = setting(
        1e-3, "activation slowness: penalty on differences of consecutive hidden states", group=REGULARISATION
    )
    weight_decay: float = setting(8e-7, "L2 weight decay", group=REGULARISATION)
    lr: float = setting(20.0, "SGD learning rate (kept by averaged SGD)", group=SCHEDULE)
    clip: float = setting(0.25, "gradient-norm clip", group=SCHEDULE)
    batch_size: int = setting(64, "training batch size (columns of the token stream)", group=SCHEDULE)
    eval_batch_size: int = setting(10, "validation/test batch size", group=SCHEDULE)
    bptt: int = setting(35, "truncated back-propagation window", group=SCHEDULE)
    epochs: int = setting(30, "training epochs", group=SCHEDULE)
    asgd: bool = setting(True, "switch to averaged SGD when validation stops improving", group=SCHEDULE)
    nonmono: int = setting(
        5, "switch once validation is worse than the best of all but the last N epochs", group=SCHEDULE
    )
    max_batches: int = setting(0, "cap on BPTT windows per epoch (0 = whole epochs; for demos and tests)")
    seed: int = setting(0, "seed of initialisation, window offsets and dropout masks")
    device: str = setting("auto", "auto | cpu | cuda", choices=DEVICES)
    threads: int = setting(0, "torch CPU threads (0 = all cores but one)")
    precision: str = setting("auto", PRECISION_HELP, choices=PRECISIONS)
    onnx: bool = setting(True, "export ONNX when the job finishes")

    def validated(self) -> "RNNTrainConfig":
        _check_common(self)
        rates = ("dropout", "dropout_h", "dropout_x", "dropout_i", "dropout_e")
        checks = [
            (self.emb >= 1 and self.hidden >= 1, "emb and hidden must be >= 1"),
            (self.emb == self.hidden, f"emb ({self.emb}) must equal hidden ({self.hidden}): the decoder is tied"),
            (self.max_vocab >= 0, f"max vocab must be >= 0, not {self.max_vocab}"),
            *[
                (0.0 <= getattr(self, r) < 1.0, f"{r.replace('_', ' ')} must be in [0, 1), not {getattr(self, r)}")
                for r in rates
            ],
            (self.slowness >= 0, f"slowness must be >= 0, not {self.slowness}"),
            (self.clip > 0, f"clip must be > 0, not {self.clip}"),
            (self.eval_batch_size >= 1 and self.bptt >= 2, "eval batch size must be >= 1 and bptt >= 2"),
            (self.nonmono >= 1, f"nonmono must be >= 1, not {self.nonmono}"),
        ]
        _raise_first(checks)
        return self


TrainConfig = Union[CNNTrainConfig, RNNTrainConfig]
CONFIG_CLASSES: dict[str, type] = {"cnn": CNNTrainConfig, "rnn": RNNTrainConfig}


def _check_common(cfg: TrainConfig) -> None:
    infinite = [f.name for f in fields(cfg) if isinstance(v := getattr(cfg, f.name), float) and not math.isfinite(v)]
    _raise_first(
        [
            (not infinite, f"{', '.join(infinite).replace('_', ' ')} must be a finite number"),
            (cfg.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, not {cfg.device!r}"),
            (cfg.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, not {cfg.precision!r}"),
            (1 <= cfg.epochs <= 100_000, f"epochs must be at least 1, not {cfg.epochs}"),
            (cfg.batch_size >= 1, f"batch size must be at least 1, not {cfg.batch_size}"),
            (cfg.lr > 0, f"learning rate must be > 0, not {cfg.lr}"),
            (cfg.weight_decay >= 0, f"weight decay must be >= 0, not {cfg.weight_decay}"),
            (cfg.max_batches >= 0, f"max batches must be >= 0, not {cfg.max_batches}"),
            (cfg.seed >= 0 and cfg.threads >= 0, "seed and threads must be >= 0"),
            (bool(str(cfg.data).strip()), "data must name a dataset"),
        ]
    )


def _raise_first(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


# Each schedule is a set of overrides on the dataclass defaults (which are `demo`).
SCHEDULES: dict[tuple[str, str], dict] = {
    # Laptop demo: the bundled digits, a half-width CIFAR-style net, a minute on two cores.
    ("cnn", "demo"): dict(
        data="digits",
        width_multiplier=0.5,
        cells_per_stage=(1, 2, 2),
        epochs=10,
        batch_size=64,
        optimizer="adam",
        lr=3e-3,
        weight_decay=1e-4,
        label_smoothing=0.0,
        warmup_epochs=1.0,
    ),
    # A standard CIFAR-10 recipe for the 32x32 ShrinkCNN (SGD-Nesterov, cosine, smoothing).
    ("cnn", "cifar"): dict(
        data="cifar10",
        width_multiplier=1.0,
        cells_per_stage=(2, 3, 3),
        epochs=200,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        label_smoothing=0.1,
        warmup_epochs=5.0,
    ),
    # The published ImageNet-224 body and its 300 epochs, for users who bring an image folder.
    ("cnn", "paper"): dict(
        data="folder:",
        network="imagenet",
        width_multiplier=1.0,
        epochs=300,
        batch_size=256,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=4e-5,
        label_smoothing=0.1,
        warmup_epochs=5.0,
    ),
    # A laptop-sized ShrinkRNN: the paper's regularisers at e = h = 128 on the embedded corpus.
    ("rnn", "demo"): dict(),
    # The paper's ShrinkRNN final training: e = h = 745 on PTB, up to 3,000 epochs.
    ("rnn", "paper"): dict(data="ptb", emb=745, hidden=745, epochs=3000),
}


def schedule_names(task: str) -> list[str]:
    return [name for t, name in SCHEDULES if t == task]


def train_config(task: str, schedule: str = "demo", **overrides: Any) -> TrainConfig:
    """A schedule with user overrides on top; None values mean 'keep the schedule's'."""
    if task not in TASKS:
        raise ConfigError(f"task must be cnn or rnn, not {task!r}")
    if (task, schedule) not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r} for {task}; choose {', '.join(schedule_names(task))}")
    cls = CONFIG_CLASSES[task]
    known = {f.name for f in fields(cls)}
    given = {k: v for k, v in overrides.items() if v is not None}
    foreign = sorted(set(given) - known)
    if foreign:
        raise ConfigError(f"setting(s) {', '.join(foreign)} do not apply to {task} training")
    base = schedule_defaults(task, schedule)
    return replace(base, **_fit_warmup(base, given)).validated()


def _fit_warmup(base: TrainConfig, given: dict[str, Any]) -> dict[str, Any]:
    """Fewer epochs than the schedule's warm-up (a quick try of `cifar` with `--epochs 2`) keep
    the schedule's warm-up share instead of being refused; a warm-up the user sets is kept."""
    epochs, warmup = given.get("epochs"), getattr(base, "warmup_epochs", None)
    if warmup is None or not isinstance(epochs, int) or "warmup_epochs" in given or warmup <= epochs:
        return given
    return {**given, "warmup_epochs": warmup * epochs / base.epochs}


def schedule_defaults(task: str, schedule: str) -> TrainConfig:
    """A schedule's settings as they stand, before the user adds what it needs (the paper
    CNN schedule's image folder: its "folder:" is refused when the job is created)."""
    return CONFIG_CLASSES[task](task=task, schedule=schedule, **SCHEDULES[(task, schedule)])


def config_to_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def config_from_dict(d: dict) -> TrainConfig:
    """Inverse of config_to_dict (the job row's JSON); unknown keys are a one-line error."""
    task = d.get("task")
    if task not in CONFIG_CLASSES:
        raise ConfigError(f"training config has no valid task (got {task!r})")
    cls = CONFIG_CLASSES[task]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
    try:  # jobs recorded before the precision setting existed trained in fp32 on CPU
        return cls(**{"precision": "fp32", **d}).validated()
    except TypeError as exc:
        raise ConfigError(f"training config is malformed: {exc}") from None


def field_specs(task: str) -> list[FieldSpec]:
    """Every setting of `task`'s training a user may set: what the CLI and the form build from."""
    return declared_fields(CONFIG_CLASSES[task])
