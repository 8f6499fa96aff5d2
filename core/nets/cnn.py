"""The CNN search space: a genotype's cell stacked into a network, and what that network costs.

One file holds the whole model (nanoGPT style): a config dataclass for the network around
the cell, the two node ops, the cell, and the network. The search builds one of these per
candidate and trains it hundreds of times, so everything here is plain tensor ops over the
batch; the graph walk in `Cell.forward` is per batch, never per sample.

Cell semantics follow the spec's "CNN cell (search space v3)":
- node 0 is the cell input, or max-pool 2x2 s2 of it when the cell downsamples (the pool
  keeps the input's channel count);
- every other reachable node concatenates its inputs (ascending source order) on channels
  and applies its op, producing `width` channels;
- the cell output is the concat of the leaves (leaf 0 means the node-0 tensor) plus a
  shortcut of the cell input: identity, or conv1x1 (with the stride) + BN where channels
  or resolution differ. No activation after the add.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.cell.genotype import Genotype, GenotypeError
from core.nets.cost import torchinfo_cost, torchinfo_text
from core.result import Cost

ACTIVATIONS = ("relu", "swish")
SEP3X3, CONV1X1 = "sep3x3", "conv1x1"


def round4(x: float) -> int:
    """Node widths are multiples of 4 (the spec), halves rounded up, never below 4.

    Half-up rather than Python's round-half-even so that e.g. 10 -> 12 and 14 -> 16 alike.
    """
    return max(4, int(x / 4.0 + 0.5) * 4)


# ----- configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class CNNConfig:
    """The network around the cell. Widths are *node* widths: a cell outputs width x leaves."""

    in_channels: int = 3
    num_classes: int = 10
    input_size: int = 32
    stem_channels: int = 32
    stem_stride: int = 1
    widths: tuple[int, ...] = (16, 32, 64)  # node width per stage
    cells_per_stage: tuple[int, ...] = (1, 1, 1)
    pools: tuple[bool, ...] = (False, True, True)  # max-pool 2x2 s2 as node 0 of the stage's first cell
    head_channels: int = 0  # conv1x1+BN+act before GAP; 0 = none
    activation: str = "relu"  # "relu" | "swish"
    width_multiplier: float = 1.0  # scales stem, widths, head
    residual: bool = True

    def __post_init__(self) -> None:
        # JSON gives lists; keep tuples so the config stays hashable and comparable.
        for name in ("widths", "cells_per_stage", "pools"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Reject configs that would build a broken net, with one line naming the problem."""
        for name in ("in_channels", "num_classes", "input_size", "stem_channels", "stem_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CNNConfig.{name} must be a positive integer, got {value!r}")
        if isinstance(self.head_channels, bool) or not isinstance(self.head_channels, int) or self.head_channels < 0:
            raise ValueError(f"CNNConfig.head_channels must be an integer >= 0, got {self.head_channels!r}")
        n = len(self.widths)
        if n == 0:
            raise ValueError("CNNConfig.widths must name at least one stage")
        if len(self.cells_per_stage) != n or len(self.pools) != n:
            raise ValueError(
                f"CNNConfig widths, cells_per_stage and pools must have the same length "
                f"(got {n}, {len(self.cells_per_stage)}, {len(self.pools)})"
            )
        for name in ("widths", "cells_per_stage"):
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in getattr(self, name)):
                raise ValueError(f"CNNConfig.{name} must be positive integers, got {list(getattr(self, name))}")
        if not all(isinstance(p, bool) for p in self.pools):
            raise ValueError(f"CNNConfig.pools must be true/false per stage, got {list(self.pools)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"CNNConfig.activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if (
            not isinstance(self.width_multiplier, (int, float))
            or isinstance(self.width_multiplier, bool)
            or not self.width_multiplier > 0
        ):
            raise ValueError(f"CNNConfig.width_multiplier must be > 0, got {self.width_multiplier!r}")
        if not isinstance(self.residual, bool):
            raise ValueError(f"CNNConfig.residual must be true or false, got {self.residual!r}")
        if self.final_resolution() < 1:
            raise ValueError(
                f"CNNConfig input_size {self.input_size} is too small for stem stride "
                f"{self.stem_stride} and {sum(self.pools)} pools"
            )

    # The scaled sizes the builder uses; the raw fields stay as the user wrote them.
    def stem_width(self) -> int:
        """Stem filters after the width multiplier."""
        return max(1, int(round(self.stem_channels * self.width_multiplier)))

    def stage_widths(self) -> tuple[int, ...]:
        """Node widths after the multiplier; unscaled widths are kept exactly as given."""
        if self.width_multiplier == 1.0:
            return self.widths  # published widths are used as given
        return tuple(round4(w * self.width_multiplier) for w in self.widths)

    def head_width(self) -> int:
        """Head channels after the multiplier (0 = no head)."""
        return int(round(self.head_channels * self.width_multiplier)) if self.head_channels else 0

    def final_resolution(self) -> int:
        """Side of the last feature map: conv3x3 pad 1 stem, then floor-halving per pool."""
        size = (self.input_size - 1) // self.stem_stride + 1
        for pool in self.pools:
            size = size // 2 if pool else size
        return size

    def to_dict(self) -> dict:
        """Plain JSON types (lists, not tuples) so run stores and configs can save it."""
        d = asdict(self)
        for name in ("widths", "cells_per_stage", "pools"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CNNConfig":
        """Inverse of to_dict; unknown keys and bad values are one-line ValueErrors."""
        if not isinstance(d, dict):
            raise ValueError("CNNConfig JSON must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"CNNConfig has no field(s) {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as exc:  # e.g. a number where a list belongs
            raise ValueError(f"CNNConfig JSON is malformed: {exc}") from None


def proxy_config(
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    stem_channels: int = 32,
    base_width: int = 16,
    scales: tuple[int, ...] = (1, 2, 4),
) -> CNNConfig:
    """The spec's search proxy: stem 32 s1, one cell per stage, node width 16 x scale, pools 1,2,2."""
    widths = tuple(round4(base_width * s) for s in scales)
    return CNNConfig(
        in_channels=in_channels,
        num_classes=num_classes,
        input_size=input_size,
        stem_channels=stem_channels,
        stem_stride=1,
        widths=widths,
        cells_per_stage=(1,) * len(scales),
        pools=tuple(i > 0 for i in range(len(scales))),
        head_channels=0,
        activation="relu",
    )


def imagenet_config(activation: str = "relu", num_classes: int = 1001, input_size: int = 224) -> CNNConfig:
    """The published ShrinkCNN body: stem 44 s2, five stages 12..180, head 1280 (A = relu, B = swish)."""
    return CNNConfig(
        in_channels=3,
        num_classes=num_classes,
        input_size=input_size,
        stem_channels=44,
        stem_stride=2,
        widths=(12, 24, 44, 88, 180),
        cells_per_stage=(1, 3, 4, 6, 4),
        pools=(False, True, True, True, True),
        head_channels=1280,
        activation=activation,
    )


def cifar_config(
    activation: str = "relu",
    width_multiplier: float = 1.0,
    num_classes: int = 10,
    cells_per_stage: tuple[int, ...] = (2, 3, 3),
    widths: tuple[int, ...] = (24, 48, 96),
) -> CNNConfig:
    """A ShrinkCNN for final training on 32x32 images.

    Why these numbers: at 32x32 the ImageNet body's stride-2 stem and four pools would leave
    a 1x1 map, so the stem keeps stride 1 and, like the proxy, there are three stages at
    32/16/8. Widths 1.5x the proxy's and 2-3 cells per stage give the found cell room to
    show its quality while still training in well under a minute per epoch on a GPU: the
    ShrinkCNN cell comes to 0.37M params / 51M MACs, the dense N=8 start to 1.05M / 145M.
    No 1280 head: with 10 classes it would dominate the parameter count for no accuracy
    gain, and the concat of the leaves is already wide.
    """
    cells_per_stage = tuple(cells_per_stage)
    widths = tuple(widths)
    return CNNConfig(
        in_channels=3,
        num_classes=num_classes,
        input_size=32,
        stem_channels=32,
        stem_stride=1,
        widths=widths,
        cells_per_stage=cells_per_stage,
        pools=tuple(i > 0 for i in range(len(widths))),
        head_channels=0,
        activation=activation,
        width_multiplier=width_multiplier,
    )


# ----- building blocks --------------------------------------------------------------------


def make_activation(name: str) -> nn.Module:
    """Swish is SiLU; ShrinkCNN-B uses it everywhere ReLU would be."""
    return nn.SiLU(inplace=True) if name == "swish" else nn.ReLU(inplace=True)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    """Conv without bias (BN's beta already is one) followed by BN."""
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]


def node_op(op: str, c_in: int, c_out: int, activation: str, linear: bool) -> "NodeOp":
    """A node's op on its concatenated inputs; `linear` drops the final activation (residual leaves).

    sep3x3's inner activation (between depthwise and pointwise) stays even for linear leaves:
    only the op's output is made linear so the residual add sees an unsquashed signal. It
    follows the configured activation too, since ShrinkCNN-B is Swish throughout.
    """
    if op == SEP3X3:
        layers = conv_bn(c_in, c_in, 3, groups=c_in) + [make_activation(activation)] + conv_bn(c_in, c_out, 1)
    elif op == CONV1X1:
        layers = conv_bn(c_in, c_out, 1)
    else:
        raise GenotypeError(f"op {op!r} is not a CNN op")
    if not linear:
        layers.append(make_activation(activation))
    return NodeOp(*layers)


class Cell(nn.Module):
    """One genotype cell: a DAG of node ops over concatenated inputs, plus a shortcut.

    Only nodes reachable from node 0 are built. The walk order and input lists are computed
    once here so forward is a short loop of cat + op per node.
    """

    def __init__(
        self, genotype: Genotype, c_in: int, width: int, downsample: bool, activation: str, residual: bool
    ) -> None:
        super().__init__()
        g = genotype.pruned()
        live = sorted(g.reachable())
        self.leaves = g.leaves()
        self.node_inputs: list[tuple[int, tuple[int, ...]]] = []  # (node, its sources), topological
        channels = {0: c_in}
        self.ops = nn.ModuleDict()
        for j in live[1:]:
            sources = g.inputs(j)
            channels[j] = width
            self.node_inputs.append((j, sources))
            linear = residual and j in self.leaves
            self.ops[str(j)] = node_op(g.ops[j], sum(channels[i] for i in sources), width, activation, linear)
        self.pool = nn.MaxPool2d(2, 2) if downsample else nn.Identity()
        self.c_out = sum(channels[leaf] for leaf in self.leaves)
        self.residual = residual
        if residual and (downsample or self.c_out != c_in):
            self.shortcut: nn.Module = nn.Sequential(*conv_bn(c_in, self.c_out, 1, 2 if downsample else 1))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = {0: self.pool(x)}
        for j, sources in self.node_inputs:
            states[j] = self.ops[str(j)]([states[i] for i in sources])
        out = states[self.leaves[0]] if len(self.leaves) == 1 else channel_cat([states[i] for i in self.leaves])
        return out + self.shortcut(x) if self.residual else out


class NodeOp(nn.Sequential):
    """A node's layers (node_op); called on the list of its input feature maps, it computes the
    layers on their channel concat without building the concat.

    Why: the layers up to the pointwise conv are per-channel (depthwise conv, BN, the
    activation), so they can run on each part alone, and a 1x1 conv of a concat is the sum of
    1x1 convs of its parts with the matching input columns of the weight. The result is the
    same network (a float sum in another order); it saves the concat's copy forward and, worse,
    the split of its gradient backward, which together cost more than the convs they feed.
    """

    # False: the plain concat then every layer as a module (what torchinfo counts); graph capture
    # (torch.export for ONNX, torch.compile) always takes that plain path
    by_parts = True

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        if isinstance(x, torch.Tensor) or len(x) == 1 or not self.by_parts or torch.compiler.is_compiling():
            return super().forward(x if isinstance(x, torch.Tensor) else channel_cat(x))
        layers = list(self)
        before = None
        if layers[0].groups > 1:  # sep3x3: depthwise, BN, activation, then the pointwise part
            dw, bn, act = layers[:3]
            layers = layers[3:]
            track_batches(bn)

            def before(part: torch.Tensor, s: slice) -> torch.Tensor:
                return act(bn_part(bn, depthwise3x3(part, dw.weight[s]), s))

        h = concat_pointwise(x, layers[0].weight, before)
        for layer in layers[1:]:
            h = layer(h)
        return h


def concat_pointwise(
    parts: list[torch.Tensor],
    weight: torch.Tensor,
    before: Callable[[torch.Tensor, slice], torch.Tensor] | None = None,
    groups: int = 1,
) -> torch.Tensor:
    """conv1x1(cat(parts)) with `weight` (no bias), after the per-channel `before(part, its
    channels)` when given, as a sum over the parts: no concat is ever built (see NodeOp).
    With `groups` > 1 (the stacked union's slots) each part holds every group's channels."""
    out, start = None, 0
    for x in parts:
        s = slice(start, start + x.shape[1] // groups)
        start = s.stop
        h = before(x, s) if before is not None else x
        p = F.conv2d(h, weight[:, s], None, 1, 0, 1, groups)
        out = p if out is None else out.add_(p)
    return out


class _Depthwise3x3(torch.autograd.Function):
    """A 3x3 depthwise conv, stride 1, padding 1, whose input gradient is the forward conv of the
    output gradient with the flipped kernel (the same sum): oneDNN runs that about twice as fast
    as its convolution backward does on small channels_last maps. The weight gradient is oneDNN's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        w = w.to(x.dtype)  # autocast does not reach inside: the input's dtype decides
        ctx.save_for_backward(x, w)
        return F.conv2d(x, w, None, 1, 1, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, w = ctx.saved_tensors
        grad = grad.contiguous(memory_format=_layout_of(x))
        gx = F.conv2d(grad, w.flip(2, 3), None, 1, 1, 1, x.shape[1]) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            c = x.shape[1]
            mask = [False, True, False]
            gw = torch.ops.aten.convolution_backward(grad, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], c, mask)[
                1
            ]
        return gx, gw


def depthwise3x3(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """F.conv2d(x, w, padding=1, groups=channels) for a (C, 1, 3, 3) kernel (see _Depthwise3x3)."""
    return _Depthwise3x3.apply(x, w)


def bn_part(bn: nn.BatchNorm2d, x: torch.Tensor, s: slice) -> torch.Tensor:
    """`bn` on channels `s` of its input only: exactly what it does to those channels of the
    whole input (BN is per channel), running statistics updated in place through the views."""
    stats = bn.running_mean is not None
    return F.batch_norm(
        x,
        bn.running_mean[s] if stats else None,
        bn.running_var[s] if stats else None,
        bn.weight[s],
        bn.bias[s],
        bn.training or not stats,
        bn.momentum,
        bn.eps,
    )


def track_batches(bn: nn.BatchNorm2d) -> None:
    """The batch count BatchNorm2d.forward keeps in training (bn_part bypasses that forward)."""
    if bn.training and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)


class _ChannelCat(torch.autograd.Function):
    """torch.cat on channels whose backward hands each input a dense gradient in that input's
    memory layout. Plain cat's backward gives channel slices of the output gradient, which in
    channels_last are strided views: every batch norm, ReLU and gradient sum downstream then
    runs a slow strided loop (measured up to 9x slower per op than on dense tensors)."""

    @staticmethod
    def forward(ctx, *parts: torch.Tensor) -> torch.Tensor:
        ctx.sizes = [p.shape[1] for p in parts]
        ctx.formats = [_layout_of(p) for p in parts]
        return torch.cat(parts, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(g.contiguous(memory_format=f) for g, f in zip(grad.split(ctx.sizes, 1), ctx.formats))


def _layout_of(t: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
        else torch.contiguous_format
    )


def channel_cat(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate feature maps on channels (see _ChannelCat for why not plain torch.cat)."""
    return _ChannelCat.apply(*parts)


class CNN(nn.Module):
    """Stem -> stages of cells -> optional 1x1 head -> global average pool -> linear."""

    def __init__(self, genotype: Genotype, cfg: CNNConfig) -> None:
        super().__init__()
        if genotype.kind != "cnn":
            raise GenotypeError(f"a CNN needs a 'cnn' genotype, got {genotype.kind!r}")
        self.cfg = cfg
        c = cfg.stem_width()
        self.stem = nn.Sequential(*conv_bn(cfg.in_channels, c, 3, cfg.stem_stride), make_activation(cfg.activation))
        cells = []
        for width, n_cells, pool in zip(cfg.stage_widths(), cfg.cells_per_stage, cfg.pools):
            for k in range(n_cells):
                cell = Cell(genotype, c, width, pool and k == 0, cfg.activation, cfg.residual)
                cells.append(cell)
                c = cell.c_out
        self.cells = nn.Sequential(*cells)
        head = cfg.head_width()
        if head:
            self.head: nn.Module = nn.Sequential(*conv_bn(c, head, 1), make_activation(cfg.activation))
            c = head
        else:
            self.head = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


# ----- public entry points -----------------------------------------------------------------


def build_cnn(genotype: Genotype, cfg: CNNConfig) -> CNN:
    """The network for `genotype` under `cfg`; forward maps (B, C, H, W) to (B, num_classes) logits."""
    return CNN(genotype, cfg)


def input_shape(cfg: CNNConfig) -> tuple[int, int, int]:
    """One image's shape (C, H, W), what the cost counter feeds."""
    return (cfg.in_channels, cfg.input_size, cfg.input_size)


def cnn_cost(genotype: Genotype, cfg: CNNConfig) -> Cost:
    """Params and per-image MACs (conv and linear only) of the built network, via torchinfo."""
    return torchinfo_cost(_by_modules(build_cnn(genotype, cfg)), input_shape(cfg))


def cnn_summary(genotype: Genotype, cfg: CNNConfig) -> str:
    """The torchinfo layer table of the built network, for the app's detail view."""
    return torchinfo_text(_by_modules(build_cnn(genotype, cfg)), input_shape(cfg))


def _by_modules(model: CNN) -> CNN:
    """`model` with every node op running its layers as modules on the concat (NodeOp.by_parts
    off): torchinfo counts MACs and lists layers through module hooks, which the parts bypass."""
    for m in model.modules():
        if isinstance(m, NodeOp):
            m.by_parts = False
    return model
