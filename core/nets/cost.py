"""Network cost (params, per-image MACs): the one place that talks to torchinfo.

Keeping torchinfo behind two functions means every number the search scores, the store
records and the app shows comes from the same counting rule:
- params = every trainable parameter, BN gamma/beta included (what the spec's 3.64M counts);
- MACs = multiply-accumulates of Conv and Linear weights only, per image (batch of 1): what
  torchinfo reports per layer, less its bias term. That is the official counter's rule
  (`api/network/tflayers/*.py`: conv H x W x k^2 x c_in x c_out, depthwise k^2 x c x H x W,
  dense in x units, the shortcut's 1x1 conv; BN not counted, `DISABLE_BATCHNORM_COUNT = True`;
  pooling, concat and add free). docs/FIDELITY.md, row "MAC counting".

The caller's model is handed back exactly as it came: same per-module train/eval flags and
same device. The forward runs on CPU under no_grad, so costing never touches GPU memory.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torchinfo
from torch import nn

from core.result import Cost

MAC_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
TEXT_COLUMNS = ("input_size", "output_size", "num_params", "mult_adds")


def count_params(model: nn.Module) -> int:
    """Trainable parameters, counted straight from the model (exact, no forward needed)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def torchinfo_cost(model: nn.Module, input_shape: tuple) -> Cost:
    """Params and per-image Conv/Linear MACs of `model` for one input of shape `input_shape` (no batch dim)."""
    stats = _summary(model, input_shape)
    macs = sum(_weight_macs(layer) for layer in stats.summary_list if isinstance(layer.module, MAC_LAYERS))
    return Cost(params=count_params(model), macs=int(macs))


def _weight_macs(layer) -> int:
    """torchinfo's MACs of one Conv/Linear layer without its bias term (torchinfo counts the
    bias once per output position, as if it were a weight; the official count does not)."""
    bias = getattr(layer.module, "bias", None)
    if bias is None:
        return layer.macs
    size = layer.output_size
    positions = math.prod(size[:1] + size[2:]) if "Conv" in layer.class_name else size[0]
    return layer.macs - positions * bias.numel()


def torchinfo_text(model: nn.Module, input_shape: tuple) -> str:
    """torchinfo's layer table (shapes, params, mult-adds) for one input, as text for display."""
    return str(_summary(model, input_shape, depth=4))


def _summary(model: nn.Module, input_shape: tuple, depth: int = 3) -> torchinfo.ModelStatistics:
    """Run torchinfo on a CPU, eval-mode view of `model`, leaving the caller's model as it was."""
    with _on_cpu(model) as cpu_model, _modes_kept(cpu_model):
        try:
            return torchinfo.summary(
                cpu_model,
                input_size=(1, *input_shape),
                device="cpu",
                mode="eval",
                verbose=0,
                depth=depth,
                col_names=TEXT_COLUMNS,
            )
        finally:
            _forget_torchinfo_cache(cpu_model)


@contextmanager
def _on_cpu(model: nn.Module) -> Iterator[nn.Module]:
    """The model itself when it already lives on CPU; otherwise a CPU deep copy, so the
    caller's GPU model (and any optimizer holding its parameters) is never moved."""
    if all(t.device.type == "cpu" for t in _tensors(model)):
        yield model
    else:
        yield copy.deepcopy(model).to("cpu")


@contextmanager
def _modes_kept(model: nn.Module) -> Iterator[None]:
    """Restore every module's own training flag: torchinfo only restores the top-level one."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


def _tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def _forget_torchinfo_cache(model: nn.Module) -> None:
    """torchinfo keeps the last summary per model class name in a module global, which would
    keep the last candidate network alive; drop it (harmless if torchinfo changes)."""
    cache = getattr(getattr(torchinfo, "torchinfo", None), "_cached_forward_pass", None)
    if isinstance(cache, dict):
        cache.pop(model.__class__.__name__, None)
