"""ShrinkCNN final training: a genotype's cell in a full network, trained to convergence.

Unlike the proxy training (which only has to rank candidates), this is the real recipe:
SGD with Nesterov momentum or Adam, linear warm-up then cosine decay per batch, label
smoothing, weight decay, mixed precision on CUDA, and CIFAR augmentation on the device.
The learning rate is a pure function of the global step, the batch order of
(seed, epoch) and the augmentation of (seed, epoch), so the checkpoint needs only the
step counter for the schedule and a resumed job trains exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.cell.genotype import Genotype
from core.data.augment import augment_batch, draw, resolve_mode
from core.data.batches import epoch_batches
from core.data.imagefolder import folder_layout, load_image_folder
from core.data.images import ImageData, load_full
from core.data.spec import Source, parse_data_spec
from core.device import autocast_dtype, cuda_amp_dtype, resolve_precision
from core.errors import ConfigError
from core.nets.cnn import CNNConfig, build_cnn, cifar_config, cnn_cost, imagenet_config
from core.nets.evaluate import evaluate_images
from core.result import Cost
from core.seeds import derive_seed
from core.training.checkpoint import TrainState, rng_state, set_rng_state
from core.training.config import CNNTrainConfig
from core.training.context import JobContext, TrainingDiverged, TrainOutcome
from core.training.export import CNN_BUILDER

DIGITS_SHAPE = (1, 8, 10)  # in_channels, side, classes of scikit-learn's digits
CIFAR_SHAPE = (3, 32, 10)


# ----- data and network ------------------------------------------------------------------------
def load_images(cfg: CNNTrainConfig, log: Callable[[str], None] | None = None) -> ImageData:
    """The full task of `cfg.data`: digits, CIFAR-10 (train batches vs test batch) or an image folder."""
    spec = parse_data_spec(cfg.data, "cnn")
    if spec.source is Source.FOLDER:
        return load_image_folder(spec.path, cfg.image_side(), cfg.val_fraction, cfg.seed, log)
    return load_full(spec, log=log)


def data_shape(cfg: CNNTrainConfig) -> tuple[int, int, int]:
    """(channels, side, classes) of `cfg.data` without reading images, for cost reports before a run."""
    spec = parse_data_spec(cfg.data, "cnn")
    if spec.source is Source.FOLDER:
        classes, _ = folder_layout(spec.path)
        return 3, cfg.image_side(), len(classes)
    return DIGITS_SHAPE if spec.source is Source.DIGITS else CIFAR_SHAPE


def network_config(cfg: CNNTrainConfig, in_channels: int, input_size: int, num_classes: int) -> CNNConfig:
    """The network around the cell: the CIFAR-style body or the published ImageNet body, sized to the data."""
    try:
        if cfg.network == "imagenet":
            base = imagenet_config(cfg.activation, num_classes=num_classes, input_size=input_size)
        else:
            base = cifar_config(cfg.activation, cfg.width_multiplier, num_classes, cfg.cells_per_stage, cfg.widths)
        return replace(base, in_channels=in_channels, input_size=input_size, width_multiplier=cfg.width_multiplier)
    except ValueError as exc:  # e.g. the ImageNet body's stride and pools on 8x8 digits
        raise ConfigError(f"{cfg.network} network does not fit {cfg.data}: {exc}") from None


def planned_network(cfg: CNNTrainConfig) -> CNNConfig:
    """The network a job with `cfg` will build (what the page prices before Start)."""
    return network_config(cfg, *data_shape(cfg))


# ----- schedule ----------------------------------------------------------------------------------
def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    """Linear warm-up to `peak` over warmup_steps, then cosine decay to 0 at total_steps (0-based step)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * peak * (1.0 + math.cos(math.pi * min(step - warmup_steps, span) / span))


def make_optimizer(model: nn.Module, cfg: CNNTrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay
    )


def amp_dtype(cfg: CNNTrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: fp32). CUDA with amp: bf16 from compute capability 8.0 (no loss
    scaling), below it fp16 with the GradScaler (torch's is_bf16_supported() counts emulation,
    where bf16 convolutions run far slower), fp32 when --precision fp32. CPU: bf16 where the
    hardware has it natively under --precision auto, or when asked (core.device)."""
    if device.type == "cuda":
        if not cfg.amp or cfg.precision == "fp32":
            return None
        return torch.bfloat16 if cfg.precision == "bf16" else cuda_amp_dtype(device)
    return autocast_dtype(resolve_precision(cfg.precision, device))


DATA_SHARE = 0.5  # of the GPU's free memory, at most, for the dataset (the network trains in the rest)


def check_device_room(data: ImageData, device: torch.device) -> None:
    """Refuse in one line a dataset too large to keep on the GPU. Training keeps every image on
    the device as float32 (no loader: the GPU never waits), fine for CIFAR (0.7 GiB) but not for
    an image folder of 224x224 photos (0.6 MB each): without this, the copy dies as an OOM."""
    if device.type != "cuda":
        return
    need = sum(t.numel() * t.element_size() for t in (data.x_train, data.y_train, data.x_val, data.y_val))
    free, _ = torch.cuda.mem_get_info(device)
    if need > DATA_SHARE * free:
        raise ConfigError(
            f"{data.name}: {len(data.y_train) + len(data.y_val):,} images take "
            f"{need / 2**30:.1f} GiB as float32, more than half of the GPU's free "
            f"{free / 2**30:.1f} GiB; use fewer images or a smaller --image-size"
        )


@torch.no_grad()
def _layout(x: Tensor) -> Tensor:
    """channels_last on CUDA (faster convolutions with tensor cores); CPU keeps NCHW."""
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x


# ----- the job -----------------------------------------------------------------------------------
@dataclass
class CNNState(TrainState):
    """The end-of-epoch checkpoint: TrainState plus the AMP scaler and the global step (the
    schedule is a pure function of it)."""

    scaler: dict
    step: int


@dataclass
class _Job:
    """One training job's moving parts, resumed from a checkpoint or fresh."""

    data: ImageData
    net: CNNConfig
    cost: Cost
    model: nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None
    mode: str
    per_epoch: int
    first: int = 1
    step: int = 0
    history: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return _metrics(self.history, self.cost, self.net, self.data.name)


def train_cnn(ctx: JobContext, genotype: Genotype, cfg: CNNTrainConfig, device: torch.device) -> TrainOutcome:
    """Train (or resume) the CNN of `genotype` under `cfg`; one checkpoint and epoch row per epoch."""
    job = _prepare(ctx, genotype, cfg, device)
    data, net, cost = job.data, job.net, job.cost
    ctx.log(
        f"{data.name}: {len(data.y_train)} train / {len(data.y_val)} val images, "
        f"{net.input_size}x{net.input_size}; {cost.params:,} params, {cost.macs:,} MACs per image; "
        f"augmentation {job.mode}"
    )
    ctx.begin(job.first, cfg.epochs, job.per_epoch)
    for epoch in range(job.first, cfg.epochs + 1):
        if not _run_epoch(ctx, job, cfg, epoch, device):
            return TrainOutcome(stopped=True, metrics=job.summary())
    model = job.model.eval().cpu().to(memory_format=torch.contiguous_format)
    return TrainOutcome(
        stopped=False,
        metrics=job.summary(),
        model=model,
        model_spec={"builder": CNN_BUILDER, "config": net.to_dict()},
        example_inputs=(data.x_val[:2].detach().cpu().contiguous(),),
        input_names=("images",),
        output_names=("logits",),
        dynamic_batch=True,
    )


def _prepare(ctx: JobContext, genotype: Genotype, cfg: CNNTrainConfig, device: torch.device) -> _Job:
    """Load the images onto the device, build the network, and resume from the checkpoint if any."""
    data = load_images(cfg, ctx.log)
    for note in data.notes:
        ctx.log(note)
    net = network_config(cfg, data.in_channels, data.input_size, data.num_classes)
    cost = cnn_cost(genotype, net)
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_cnn(genotype, net).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    dtype = amp_dtype(cfg, device)
    mode = resolve_mode(cfg.augment, data.in_channels, data.input_size)
    check_device_room(data, device)
    data = data.to(device)
    per_epoch = len(epoch_batches(len(data.y_train), cfg.batch_size, derive_seed(cfg.seed, "order"), 1))
    job = _Job(
        data=data,
        net=net,
        cost=cost,
        model=model,
        opt=make_optimizer(model, cfg),
        scaler=torch.amp.GradScaler("cuda", enabled=dtype is torch.float16),
        dtype=dtype,
        mode=mode,
        per_epoch=min(per_epoch, cfg.max_batches) if cfg.max_batches else per_epoch,
    )
    saved = ctx.resume_state()
    if saved is not None:
        state = CNNState.from_dict(saved)
        model.load_state_dict(state.model)
        job.opt.load_state_dict(state.optimizer)
        if state.scaler:  # empty when saved by a disabled scaler (CPU, bfloat16): nothing to restore
            job.scaler.load_state_dict(state.scaler)
        set_rng_state(state.rng)
        job.first, job.step, job.history = state.epoch + 1, state.step, state.history
    return job


def _run_epoch(ctx: JobContext, job: _Job, cfg: CNNTrainConfig, epoch: int, device: torch.device) -> bool:
    """Train, validate and checkpoint one epoch; False if a stop was asked during it."""
    t0 = time.perf_counter()
    sums = _train_epoch(ctx, job, cfg, epoch, device)
    if sums is None:
        return False
    loss_sum, correct, seen, lr = sums
    train_s = time.perf_counter() - t0
    if not math.isfinite(loss_sum):
        raise TrainingDiverged(
            f"training loss became {loss_sum / seen} in epoch {epoch}; lower the learning rate (now {cfg.lr:g})"
        )
    ctx.progress(epoch, job.per_epoch, phase="validate", force=True)
    val_loss, val_acc = evaluate_images(
        job.model, job.data.x_val, job.data.y_val, 2 * cfg.batch_size, job.dtype, prepare=_layout
    )
    row = {
        "epoch": epoch,
        "train_loss": loss_sum / seen,
        "train_acc": correct / seen,
        "val_loss": val_loss,
        "val_acc": val_acc,
        "lr": lr,
        "throughput": seen / train_s,
        "seconds": time.perf_counter() - t0,
    }
    job.history.append(row)
    ctx.log(
        f"epoch {epoch}/{cfg.epochs}: train loss {row['train_loss']:.3f}, val acc {val_acc:.4f}, "
        f"{row['throughput']:.0f} images/s"
    )
    ctx.epoch_done(
        row,
        CNNState(
            model=job.model.state_dict(),
            optimizer=job.opt.state_dict(),
            rng=rng_state(),
            epoch=epoch,
            history=job.history,
            scaler=job.scaler.state_dict(),
            step=job.step,
        ).to_dict(),
    )
    return True


def _train_epoch(
    ctx: JobContext, job: _Job, cfg: CNNTrainConfig, epoch: int, device: torch.device
) -> tuple[float, float, int, float] | None:
    """One epoch of SGD/Adam with the per-batch schedule; (loss sum, correct, images, last lr),
    read from the device once at the end, or None if stopped."""
    data, model, opt, scaler = job.data, job.model, job.opt, job.scaler
    total, warmup = cfg.epochs * job.per_epoch, int(round(cfg.warmup_epochs * job.per_epoch))
    batches = epoch_batches(len(data.y_train), cfg.batch_size, derive_seed(cfg.seed, "order"), epoch)
    order, draws = _epoch_inputs(
        batches[: job.per_epoch], job.mode, data.input_size, derive_seed(cfg.seed, "augment", epoch), device
    )
    model.train()
    totals = torch.zeros(2, device=device)  # loss sum, correct (read once per epoch)
    seen, lr = 0, cfg.lr
    for b, (idx, aug) in enumerate(zip(order, draws)):
        if ctx.should_stop():
            return None
        lr = lr_at(job.step, total, warmup, cfg.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = augment_batch(data.x_train[idx], job.mode, draws=aug), data.y_train[idx]
        with torch.autocast(device.type, dtype=job.dtype, enabled=job.dtype is not None):
            logits = model(_layout(x)).float()
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        with torch.no_grad():
            totals += torch.stack([loss.detach() * len(idx), (logits.argmax(1) == y).sum().float()])
        seen += len(idx)
        job.step += 1
        ctx.progress(epoch, b + 1)
    loss_sum, correct = totals.tolist()
    return loss_sum, correct, seen, lr


def _epoch_inputs(
    batches: list[Tensor], mode: str, side: int, seed: int, device: torch.device
) -> tuple[list[Tensor], list[Tensor | None]]:
    """The epoch's batch indices and augmentation draws, drawn on the host (a pure function of
    the seeds, so a resume redraws them) and moved to the device in one copy: a batch then makes
    no host-to-device copy, and no host sync, of its own."""
    sizes = [len(b) for b in batches]
    n = sum(sizes)
    host = torch.cat(batches).view(1, n)
    if mode != "none":
        host = torch.cat([host, draw(n, side, mode, torch.Generator().manual_seed(seed))])
    dev = host.to(device, non_blocking=True)
    order = list(dev[0].split(sizes))
    draws = list(dev[1:].split(sizes, dim=1)) if mode != "none" else [None] * len(sizes)
    return order, draws


def _metrics(history: list[dict], cost: Cost, net: CNNConfig, data_name: str) -> dict:
    """The job's summary: last and best validation accuracy, cost, pace."""
    out = {
        "params": cost.params,
        "macs": cost.macs,
        "data": data_name,
        "input_size": net.input_size,
        "epochs": len(history),
    }
    if history:
        last = history[-1]
        out.update(
            accuracy=last["val_acc"],
            best_accuracy=max(r["val_acc"] for r in history),
            val_loss=last["val_loss"],
            train_loss=last["train_loss"],
            images_per_s=sum(r["throughput"] for r in history) / len(history),
        )
    return out
