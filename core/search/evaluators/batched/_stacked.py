"""The k candidates of one shrink step as one network: each candidate in its own channel slot.

Why: the candidates of a step are small networks that leave a GPU idle when trained one at a
time (every kernel is tiny, so the run is bound by launches, not arithmetic). All of them
derive from the same DAG by removing one edge, so they fit one "union" network with the
union DAG's structure, k times as wide: channel slot c belongs to candidate c. Each kernel
then does k candidates' work.

How the slots stay independent (every candidate trains exactly as it would alone):
- per-channel layers (depthwise conv, BatchNorm, pooling, activations) never mix channels;
- channel-mixing layers (pointwise / 1x1 convs, shortcuts, the classifier) are grouped
  convs with `groups = k`, so slot c only reads slot c;
- inside a slot, positions a candidate does not have (the removed edge's input, nodes
  pruned away, leaves it lacks) hold weights fixed at zero: the optimizer (FlatAdam) never
  updates a position outside `owned`, so those zeros stay exact and a candidate's own
  channels only ever see its own inputs. Per-channel weights of such positions are zero
  too (BN gamma and beta included), so those channels carry exact zeros.
- the stem reads the same images for every slot, so it is one dense conv to k x 32 channels.

All tensors live in flat buffers (parameters, their gradients, BN running statistics), so
the optimizer is a handful of whole-buffer kernels, and a candidate's state can be copied
in and out of its slot by name (`load`, `extract`), which is how candidates enter, leave
and are compared with training alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from core.cell.genotype import Genotype
from core.nets.cnn import SEP3X3, CNNConfig, channel_cat, concat_pointwise, depthwise3x3

BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # nn.BatchNorm2d defaults, what the candidates' own models use
BN_FIELDS = ("weight", "bias", "running_mean", "running_var")
STAT_FIELDS = ("running_mean", "running_var")
Positions = tuple[int, ...]


# ----- layout: where each candidate's channels sit --------------------------------------------


@dataclass(frozen=True)
class Site:
    """A feature map of the union network: `size` channels per slot, and per slot the
    positions of that candidate's own channels, in the candidate's channel order."""

    size: int
    valid: tuple[Positions, ...]


def concat_sites(sites: list[Site], keep: list[list[bool]]) -> Site:
    """The site of a channel concat of `sites`; keep[s][c] says whether candidate c has part s."""
    valid: list[list[int]] = [[] for _ in sites[0].valid]
    offset = 0
    for s, site in enumerate(sites):
        for c, positions in enumerate(site.valid):
            if keep[s][c]:
                valid[c].extend(offset + p for p in positions)
        offset += site.size
    return Site(offset, tuple(tuple(v) for v in valid))


@dataclass
class Slotted:
    """One tensor of the union: k slot blocks along dim 0, and where each candidate's own tensor
    (named `sources[c]` in its state_dict) sits in block c: rows along dim 0, cols along dim 1."""

    name: str
    shape: tuple[int, ...]
    stat: bool  # BN running statistic (not trained)
    fill: float  # value of positions no candidate owns
    sources: list[str | None]
    rows: list[Positions]
    cols: list[Positions] | None = None  # channel-mixing weights only
    matrix: bool = False  # the candidate holds it as a 2-D matrix (nn.Linear weight)
    offset: int = 0  # into the flat buffer of its kind


@dataclass
class ConvBN:
    """conv -> BN, as in core.nets.cnn.conv_bn; groups says how the conv treats the slots."""

    conv: str
    bn: str
    stride: int
    padding: int
    groups: str  # "dense": every slot reads all inputs (stem); "slots": grouped by slot; "channels": depthwise


@dataclass
class NodePlan:
    node: int
    sources: tuple[int, ...]
    op: str
    pointwise: ConvBN
    depthwise: ConvBN | None
    act: str  # "all", "none" or "mixed" (linear leaf in some slots only)
    linear_mask: Tensor | None = None


@dataclass
class CellPlan:
    pool: bool
    residual: bool
    nodes: list[NodePlan]
    sizes: dict[int, int]  # per node: channels per slot
    leaves: tuple[int, ...]
    shortcut: ConvBN | None  # conv shortcut, for the slots whose candidate has one
    identity: tuple[Tensor, Tensor] | None = None  # (source, target) channels of identity shortcuts


@dataclass
class CandidateState:
    """One candidate's training state in its own model's terms (state_dict names)."""

    params: dict[str, Tensor]
    stats: dict[str, Tensor]
    exp_avg: dict[str, Tensor] = field(default_factory=dict)
    exp_avg_sq: dict[str, Tensor] = field(default_factory=dict)
    step: int = 0


def union_genotype(genotypes: list[Genotype]) -> Genotype:
    """The DAG holding every candidate's (pruned) edges: the union network's structure."""
    edges = {e for g in genotypes for e in g.pruned().edges}
    return Genotype(genotypes[0].kind, genotypes[0].ops, tuple(edges))


# ----- building the plan ----------------------------------------------------------------------


class _Planner:
    """Walks the network the way core.nets.cnn.CNN builds it, recording slotted tensors and the plan."""

    def __init__(self, genotypes: list[Genotype], cfg: CNNConfig) -> None:
        self.k = len(genotypes)
        self.cfg = cfg
        self.cands = [g.pruned() for g in genotypes]
        self.union = union_genotype(genotypes)
        self.tensors: list[Slotted] = []

    # recording tensors
    def _add(
        self,
        name: str,
        shape: tuple[int, ...],
        stat: bool,
        fill: float,
        sources: list[str | None],
        rows: list[Positions],
        cols: list[Positions] | None = None,
    ) -> str:
        self.tensors.append(Slotted(name, shape, stat, fill, sources, rows, cols))
        return name

    def per_channel(
        self,
        name: str,
        site: Site,
        sources: list[str | None],
        tail: tuple[int, ...] = (),
        stat: bool = False,
        fill: float = 0.0,
    ) -> str:
        rows = [site.valid[c] if sources[c] else () for c in range(self.k)]
        return self._add(name, (self.k * site.size, *tail), stat, fill, sources, rows)

    def bn(self, name: str, site: Site, prefixes: list[str | None]) -> str:
        for f in BN_FIELDS:
            self.per_channel(
                f"{name}.{f}",
                site,
                [p and f"{p}.{f}" for p in prefixes],
                stat=f in STAT_FIELDS,
                fill=1.0 if f == "running_var" else 0.0,
            )
        return name

    def conv_bn(
        self,
        name: str,
        site_in: Site,
        site_out: Site,
        prefixes: list[str | None],
        kernel: int,
        stride: int,
        groups: str,
        bn_index: int = 1,
    ) -> ConvBN:
        """conv (prefix.0, or prefix.<bn_index - 1>) and BN (prefix.<bn_index>) of the candidates."""
        conv_src = [p and f"{p}.{bn_index - 1}.weight" for p in prefixes]
        if groups == "channels":
            conv = self.per_channel(f"{name}.conv", site_in, conv_src, (1, kernel, kernel))
        else:
            rows = [site_out.valid[c] if conv_src[c] else () for c in range(self.k)]
            cols = [site_in.valid[c] if conv_src[c] else () for c in range(self.k)]
            conv = self._add(
                f"{name}.conv", (self.k * site_out.size, site_in.size, kernel, kernel), False, 0.0, conv_src, rows, cols
            )
        bn_site = site_in if groups == "channels" else site_out
        bn = self.bn(f"{name}.bn", bn_site, [p and f"{p}.{bn_index}" for p in prefixes])
        return ConvBN(conv, bn, stride, kernel // 2, groups)

    # the network
    def plan(self) -> tuple[ConvBN, list[CellPlan], ConvBN | None, Site]:
        cfg, k = self.cfg, self.k
        image = Site(cfg.in_channels, (tuple(range(cfg.in_channels)),) * k)
        site = Site(cfg.stem_width(), (tuple(range(cfg.stem_width())),) * k)
        stem = self.conv_bn("stem", image, site, ["stem"] * k, 3, cfg.stem_stride, "dense")
        cells, t = [], 0
        for width, n_cells, pool in zip(cfg.stage_widths(), cfg.cells_per_stage, cfg.pools):
            for i in range(n_cells):
                cell, site = self.cell(t, site, width, pool and i == 0)
                cells.append(cell)
                t += 1
        head = None
        if cfg.head_width():
            out = Site(cfg.head_width(), (tuple(range(cfg.head_width())),) * k)
            head = self.conv_bn("head", site, out, ["head"] * k, 1, 1, "slots")
            site = out
        return stem, cells, head, site

    def cell(self, t: int, site_in: Site, width: int, down: bool) -> tuple[CellPlan, Site]:
        k, residual, u = self.k, self.cfg.residual, self.union
        live_u = sorted(u.reachable())
        live = [g.reachable() for g in self.cands]
        leaves = [g.leaves() for g in self.cands]
        sites = {0: site_in}
        full = tuple(range(width))
        nodes = []
        for j in live_u[1:]:
            srcs = u.inputs(j)
            own = [j in live[c] for c in range(k)]
            keep = [[own[c] and i in self.cands[c].inputs(j) for c in range(k)] for i in srcs]
            node_in = concat_sites([sites[i] for i in srcs], keep)
            sites[j] = Site(width, tuple(full if own[c] else () for c in range(k)))
            prefixes = [f"cells.{t}.ops.{j}" if own[c] else None for c in range(k)]
            nodes.append(
                self.node(
                    f"cell{t}.node{j}",
                    j,
                    srcs,
                    node_in,
                    sites[j],
                    prefixes,
                    [residual and j in leaves[c] for c in range(k)],
                    own,
                )
            )
        leaves_u = tuple(sorted({leaf for ls in leaves for leaf in ls}))
        out = concat_sites(
            [sites[leaf] for leaf in leaves_u], [[leaf in leaves[c] for c in range(k)] for leaf in leaves_u]
        )
        plan = CellPlan(
            pool=down,
            residual=residual,
            nodes=nodes,
            sizes={j: s.size for j, s in sites.items()},
            leaves=leaves_u,
            shortcut=None,
        )
        if residual:
            self.shortcut(plan, t, site_in, out, down)
        return plan, out

    def node(
        self,
        name: str,
        j: int,
        srcs: tuple[int, ...],
        site_in: Site,
        site_out: Site,
        prefixes: list[str | None],
        linear: list[bool],
        own: list[bool],
    ) -> NodePlan:
        op = self.union.ops[j]
        if op == SEP3X3:
            dw = self.conv_bn(f"{name}.dw", site_in, site_in, prefixes, 3, 1, "channels")
            pw = self.conv_bn(f"{name}.pw", site_in, site_out, prefixes, 1, 1, "slots", bn_index=4)
        else:
            dw, pw = None, self.conv_bn(f"{name}.pw", site_in, site_out, prefixes, 1, 1, "slots")
        modes = {linear[c] for c in range(self.k) if own[c]}
        if modes == {True}:
            return NodePlan(j, srcs, op, pw, dw, "none")
        if modes != {True, False}:
            return NodePlan(j, srcs, op, pw, dw, "all")
        mask = torch.tensor([linear[c] for c in range(self.k) for _ in range(site_out.size)])
        return NodePlan(j, srcs, op, pw, dw, "mixed", mask.view(1, -1, 1, 1))

    def shortcut(self, plan: CellPlan, t: int, site_in: Site, site_out: Site, down: bool) -> None:
        """Per slot, as core.nets.cnn.Cell decides: conv1x1 + BN where channels or resolution differ, else identity."""
        k = self.k
        conv = [down or len(site_out.valid[c]) != len(site_in.valid[c]) for c in range(k)]
        if any(conv):
            prefixes = [f"cells.{t}.shortcut" if conv[c] else None for c in range(k)]
            plan.shortcut = self.conv_bn(f"cell{t}.shortcut", site_in, site_out, prefixes, 1, 2 if down else 1, "slots")
        src = [c * site_in.size + p for c in range(k) if not conv[c] for p in site_in.valid[c]]
        dst = [c * site_out.size + p for c in range(k) if not conv[c] for p in site_out.valid[c]]
        if src:
            plan.identity = (torch.tensor(src), torch.tensor(dst))


def _classifier(planner: _Planner, site: Site) -> str:
    """Linear(c, classes) per slot, as a slot-grouped 1x1 conv over the pooled features."""
    k, n = planner.k, planner.cfg.num_classes
    planner._add("classifier.bias", (k * n,), False, 0.0, ["classifier.bias"] * k, [tuple(range(n))] * k)
    name = planner._add(
        "classifier.weight",
        (k * n, site.size, 1, 1),
        False,
        0.0,
        ["classifier.weight"] * k,
        [tuple(range(n))] * k,
        list(site.valid),
    )
    planner.tensors[-1].matrix = True
    return name


# ----- the network --------------------------------------------------------------------------------


class StackedCNN:
    """k candidate CNNs (core.nets.cnn.CNN of each genotype under `cfg`) trained as one network.

    forward(x) maps (B, C, H, W) images to (B, k, classes) logits, slot c being candidate c.
    Parameters are views into `flat` (gradients into `grad`), BN statistics into `stats`;
    `owned` marks the parameter positions that belong to a candidate (the rest are fixed).
    """

    def __init__(self, genotypes: list[Genotype], cfg: CNNConfig) -> None:
        """The layout, on the host: index-heavy set-up is cheap there; `to` moves it in one go."""
        planner = _Planner(genotypes, cfg)
        self.k, self.cfg, self.device = planner.k, cfg, torch.device("cpu")
        self.stem, self.cells, self.head, site = planner.plan()
        self.classifier = _classifier(planner, site)
        self.slotted = {s.name: s for s in planner.tensors}
        self.training = True
        self._allocate(planner.tensors)

    # buffers
    def _allocate(self, tensors: list[Slotted]) -> None:
        sizes = {False: 0, True: 0}
        for s in tensors:
            s.offset = sizes[s.stat]
            sizes[s.stat] += _numel(s.shape)
        dtype = torch.get_default_dtype()  # float32, unless a test asks for float64
        self.flat = torch.zeros(sizes[False], dtype=dtype)
        self.grad = torch.zeros(sizes[False], dtype=dtype)
        self.stats = torch.zeros(sizes[True], dtype=dtype)
        self.owned = torch.zeros(sizes[False], dtype=torch.bool)
        self.slot_of_param = torch.zeros(sizes[False], dtype=torch.long)
        self.slot_of_stat = torch.zeros(sizes[True], dtype=torch.long)
        for s in tensors:
            self.view(s, self.stats if s.stat else self.flat).fill_(s.fill)
            slots = self.view(s, self.slot_of_stat if s.stat else self.slot_of_param)
            slots.copy_(
                torch.arange(self.k)
                .repeat_interleave(s.shape[0] // self.k)
                .view(-1, *([1] * (len(s.shape) - 1)))
                .expand(s.shape)
            )
            for c in range(self.k):
                if s.sources[c] and not s.stat:
                    self._block(self.view(s, self.owned), s, c, fill=True)
        self._bind()

    def _bind(self) -> None:
        """Name -> tensor views of the buffers; parameters become leaves whose .grad is a view of
        `grad`, so autograd accumulates every gradient straight into the one flat buffer."""
        self.t: dict[str, Tensor] = {}
        for s in self.slotted.values():
            if s.stat:
                self.t[s.name] = self.view(s, self.stats)
                continue
            leaf = self.view(s, self.flat).detach().requires_grad_()
            leaf.grad = self.view(s, self.grad)
            self.t[s.name] = leaf
        # the whole parameter buffer as one leaf, for cast_weights (its gradient is `grad` too)
        self.flat_leaf = self.flat.detach().requires_grad_()
        self.flat_leaf.grad = self.grad
        self.cast: dict[str, Tensor] = {}

    def cast_weights(self, dtype: torch.dtype | None) -> None:
        """The channel-mixing weights (convs, classifier) for the next forward in `dtype`, cast
        in one kernel from the flat buffer: autocast would cast each of them separately, about a
        hundred small kernels a step. BatchNorm's parameters stay float32, as under autocast.
        None: back to the float32 tensors."""
        self.cast = {}
        if dtype is None:
            return
        cast = self.flat_leaf.to(dtype)
        for s in self.slotted.values():
            if not s.stat and (s.name.endswith(".conv") or s.name.startswith("classifier")):
                self.cast[s.name] = self.view(s, cast)

    def to(self, device: torch.device | str) -> "StackedCNN":
        """Move the buffers (one transfer each) and the plan's index tensors; returns self."""
        device = torch.device(device)
        if device == self.device:
            return self
        for name in ("flat", "grad", "stats", "owned", "slot_of_param", "slot_of_stat"):
            setattr(self, name, getattr(self, name).to(device))
        self.device = device
        self._bind()
        for cell in self.cells:
            if cell.identity is not None:
                cell.identity = tuple(i.to(device) for i in cell.identity)
            for node in cell.nodes:
                if node.linear_mask is not None:
                    node.linear_mask = node.linear_mask.to(device)
        return self

    def view(self, s: Slotted, buffer: Tensor) -> Tensor:
        """Slotted tensor `s` as a view of a flat buffer laid out like its kind's buffer."""
        return buffer[s.offset : s.offset + _numel(s.shape)].view(s.shape)

    def _block(
        self, union: Tensor, s: Slotted, c: int, value: Tensor | None = None, fill: bool = False
    ) -> Tensor | None:
        """Read (value None) or write candidate c's own tensor in slot c of `union` (a view of `s`)."""
        block = union.view(self.k, -1, *s.shape[1:])[c]
        rows = torch.tensor(s.rows[c], dtype=torch.long, device=union.device)
        if s.cols is None:
            index: tuple = (rows,)
        else:
            index = (rows[:, None], torch.tensor(s.cols[c], dtype=torch.long, device=union.device)[None, :])
        if fill:
            block[index] = True
            return None
        if value is None:
            own = block[index]
            return own.view(own.shape[0], -1) if s.matrix else own
        block[index] = value.to(union.device, union.dtype).reshape(block[index].shape)
        return None

    # candidates in and out
    def sources(self, c: int) -> set[str]:
        return {s.sources[c] for s in self.slotted.values() if s.sources[c]}

    @torch.no_grad()
    def load(
        self, c: int, state: CandidateState, exp_avg: Tensor | None = None, exp_avg_sq: Tensor | None = None
    ) -> None:
        """Put a candidate's weights, statistics and (optionally) Adam moments into slot c."""
        given = set(state.params) | set(state.stats)
        if given != self.sources(c):
            raise ValueError(
                f"slot {c}: candidate tensors do not match the union layout "
                f"(missing {sorted(self.sources(c) - given)[:3]}, extra {sorted(given - self.sources(c))[:3]})"
            )
        for s in self.slotted.values():
            src = s.sources[c]
            if not src:
                continue
            if s.stat:
                self._block(self.view(s, self.stats), s, c, state.stats[src])
                continue
            self._block(self.view(s, self.flat), s, c, state.params[src])
            for buf, moments in ((exp_avg, state.exp_avg), (exp_avg_sq, state.exp_avg_sq)):
                if buf is not None and src in moments:
                    self._block(self.view(s, buf), s, c, moments[src])

    @torch.no_grad()
    def extract(
        self,
        c: int,
        exp_avg: Tensor | None = None,
        exp_avg_sq: Tensor | None = None,
        step: int = 0,
        flat: Tensor | None = None,
        stats: Tensor | None = None,
    ) -> CandidateState:
        """Slot c's candidate as its own model's tensors (the inverse of `load`); `flat` and
        `stats` default to the network's own buffers (pass host copies to read a GPU union cheaply)."""
        flat = self.flat if flat is None else flat
        stats = self.stats if stats is None else stats
        state = CandidateState({}, {}, step=step)
        for s in self.slotted.values():
            src = s.sources[c]
            if not src:
                continue
            if s.stat:
                state.stats[src] = self._block(self.view(s, stats), s, c)
                continue
            state.params[src] = self._block(self.view(s, flat), s, c)
            if exp_avg is not None and exp_avg_sq is not None:
                state.exp_avg[src] = self._block(self.view(s, exp_avg), s, c)
                state.exp_avg_sq[src] = self._block(self.view(s, exp_avg_sq), s, c)
        return state

    # forward
    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        h = self._act(self._conv_bn(self.stem, x))
        for cell in self.cells:
            h = self._cell(cell, h)
        if self.head is not None:
            h = self._act(self._conv_bn(self.head, h))
        feat = F.adaptive_avg_pool2d(h, 1)
        w, b = (self.cast.get(n, self.t[n]) for n in (self.classifier, "classifier.bias"))
        logits = F.conv2d(feat, w, b, groups=self.k)
        return logits.view(len(x), self.k, -1)

    def _cell(self, cell: CellPlan, x: Tensor) -> Tensor:
        states = {0: F.max_pool2d(x, 2, 2) if cell.pool else x}
        for node in cell.nodes:
            parts = [states[i] for i in node.sources]
            if self.k == 1 and len(parts) > 1:
                h = self._node_by_parts(node, parts)
            else:
                h = self._slot_cat(parts, [cell.sizes[i] for i in node.sources])
                if node.depthwise is not None:
                    h = self._act(self._conv_bn(node.depthwise, h))
                h = self._conv_bn(node.pointwise, h)
            if node.act == "all":
                h = self._act(h)
            elif node.act == "mixed":
                h = torch.where(node.linear_mask, h, self._act(h, inplace=False))
            states[node.node] = h
        out = self._slot_cat([states[leaf] for leaf in cell.leaves], [cell.sizes[leaf] for leaf in cell.leaves])
        if not cell.residual:
            return out
        if cell.shortcut is not None:
            out = out + self._conv_bn(cell.shortcut, x)
        if cell.identity is not None:
            out = _add_channels(out, x, *cell.identity)
        return out

    def _node_by_parts(self, node: NodePlan, parts: list[Tensor]) -> Tensor:
        """A one-slot node without the concat of its inputs, as core.nets.cnn.NodeOp."""
        dw = node.depthwise

        def before(x: Tensor, s: slice) -> Tensor:
            return self._act(self._bn(dw, depthwise3x3(x, self._weight(dw.conv)[s]), s))

        h = concat_pointwise(parts, self._weight(node.pointwise.conv), before if dw is not None else None)
        return self._bn(node.pointwise, h)

    def _weight(self, name: str) -> Tensor:
        return self.cast.get(name, self.t[name])

    def _conv_bn(self, p: ConvBN, x: Tensor) -> Tensor:
        groups = {"dense": 1, "slots": self.k, "channels": x.shape[1]}[p.groups]
        return self._bn(p, F.conv2d(x, self._weight(p.conv), None, p.stride, p.padding, 1, groups))

    def _bn(self, p: ConvBN, h: Tensor, s: slice = slice(None)) -> Tensor:
        """p's batch norm, on its channels `s` only (a slice of every per-channel tensor)."""
        t = self.t
        stats = (t[f"{p.bn}.{f}"][s] for f in ("running_mean", "running_var", "weight", "bias"))
        return F.batch_norm(h, *stats, self.training, BN_MOMENTUM, BN_EPS)

    def _act(self, x: Tensor, inplace: bool = True) -> Tensor:
        """ReLU in place, as the candidates' nn.ReLU(inplace=True): every input here is a fresh BN
        output that nothing else reads (BN's backward needs its input, not its output), and on
        CPU not allocating a new k-wide tensor is a large part of the step's cost."""
        if self.cfg.activation == "swish":
            return F.silu(x)
        return F.relu(x, inplace=inplace)

    def _slot_cat(self, parts: list[Tensor], sizes: list[int]) -> Tensor:
        """Concat on channels within each slot: slot c of the result is slot c of every part in turn."""
        if len(parts) == 1:
            return parts[0]
        if self.k == 1:  # one slot (the CPU default): a plain channel concat with dense gradients
            return channel_cat(parts)
        b, _, hgt, wid = parts[0].shape
        nhwc = [p.permute(0, 2, 3, 1).reshape(b, hgt, wid, self.k, s) for p, s in zip(parts, sizes)]
        return torch.cat(nhwc, 4).view(b, hgt, wid, -1).permute(0, 3, 1, 2)

    def memory_bytes(self) -> int:
        """Bytes of the flat buffers (weights, grads, stats, masks); activations come on top."""
        return sum(
            t.numel() * t.element_size()
            for t in (self.flat, self.grad, self.stats, self.owned, self.slot_of_param, self.slot_of_stat)
        )


def _add_channels(out: Tensor, x: Tensor, src: Tensor, dst: Tensor) -> Tensor:
    """out with x's channels `src` added onto channels `dst` (the identity shortcuts of some slots)."""
    o = out.permute(0, 2, 3, 1)
    added = o.index_add(3, dst, x.permute(0, 2, 3, 1).index_select(3, src))
    return added.permute(0, 3, 1, 2)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def candidate_state(model: torch.nn.Module) -> CandidateState:
    """A freshly built candidate model's tensors, split into trained parameters and BN statistics."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    stats = {n: b.detach() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1] in STAT_FIELDS}
    return CandidateState(params, stats)


__all__ = ["StackedCNN", "CandidateState", "candidate_state", "union_genotype", "Site", "concat_sites"]
