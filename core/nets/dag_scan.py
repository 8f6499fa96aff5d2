"""The DAG recurrent cell over a whole sequence, with a hand-written backward pass (BPTT).

Why: a time step of the cell is some forty ops on (batch x hidden) tensors of 128 x 100;
autograd's per-op bookkeeping (graph nodes, saved tensors, zero-filled gradients) costs more
than their arithmetic, and it makes every weight gradient 35 small matmuls. Here the forward
runs without autograd and writes what the backward needs into (T, ...) buffers; the
backward walks time and the DAG in reverse with the closed-form derivatives of the cell's
equations, and every weight gradient is one (T*B)-row matmul at the end (as cuDNN does for
its RNNs). Per source node, one matmul gives the pre-activations of all its outgoing edges,
gate-major ([c of every edge | g of every edge]), so one sigmoid covers all its gates and one
activation call each group of targets that share an activation.

With a `dtype` (bf16 under --precision bf16) every matmul takes its operands in that dtype and
its result is widened back to fp32 at once: the matmuls are most of the scan's time, and
bf16 ones run 3-4x faster where the CPU has AVX512-BF16 or AMX. States, gates, the buffers and
the weights themselves stay fp32, as autocast keeps them.

The equations are exactly DagRNNCell's (`_cell`, core/nets/rnn.py), which stays the readable
reference; tests/test_rnn.py checks that values and gradients agree for every activation,
dropout masks, several leaves and shrunk DAGs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

_ACT_INPLACE = {"tanh": Tensor.tanh_, "relu": Tensor.relu_, "sigmoid": Tensor.sigmoid_, "identity": None}


@dataclass(frozen=True)
class ScanSource:
    """One source node: its targets (in the fused weight's order), their activation groups as
    (op, first position, end position), and the targets' node ids and in-degrees as tensors."""

    source: int
    targets: tuple[int, ...]
    groups: tuple[tuple[str, int, int], ...]
    index: Tensor  # (k,) target node ids, for index_add_ / index_select
    degree: Tensor  # (1, k, 1), float: a division, as in the reference, not a rounded 1/d


@dataclass(frozen=True)
class ScanPlan:
    """The static shape of a cell: what the scan needs from DagRNNCell, built once per cell."""

    emb: int
    hidden: int
    nodes: int
    sources: tuple[ScanSource, ...]
    degree: dict[int, int]  # in-degree of every live node but 0
    leaves: tuple[int, ...]
    leaf_index: Tensor


def gate_major(w: Tensor, k: int, h: int) -> Tensor:
    """(h, k*2h) with per-edge [c | g] blocks -> (h, 2*k*h) as [c of every edge | g of every edge]."""
    return w.view(h, k, 2, h).transpose(1, 2).reshape(h, 2 * k * h)


def edge_major(w: Tensor, k: int, h: int) -> Tensor:
    """The inverse of gate_major: back to the parameter's per-edge [c | g] layout."""
    return w.view(h, 2, k, h).transpose(1, 2).reshape(h, 2 * k * h)


def dag_scan(
    plan: ScanPlan,
    x: Tensor,
    h0: Tensor,
    h_mask: Tensor | None,
    w0: Tensor,
    edge_ws: list[Tensor],
    dtype: torch.dtype | None = None,
) -> Tensor:
    """The cell over x (T, B, e) from h0 (B, h): every step's output h_t, (T, B, h); the
    matmuls in `dtype` when one is given (see the module's docstring)."""
    train = torch.is_grad_enabled() and any(t.requires_grad for t in (x, h0, w0, *edge_ws))
    return _DagScan.apply(plan, train, dtype, x, h0, h_mask, w0, *edge_ws)


def _low(t: Tensor, dtype: torch.dtype | None) -> Tensor:
    """A matmul operand in the scan's matmul dtype (itself for fp32)."""
    return t if dtype is None else t.to(dtype)


def _mm(a: Tensor, b: Tensor, dtype: torch.dtype | None) -> Tensor:
    """a @ b with both operands in `dtype` (an operand already in it is not cast again), the
    result in the wider of their own dtypes: fp32."""
    if dtype is None:
        return a @ b
    return (a.to(dtype) @ b.to(dtype)).to(torch.promote_types(a.dtype, b.dtype))


@dataclass
class _Saved:
    """Forward buffers: node states S (T, B, N, h), node 0's activations A0 (T, B, 2h) as
    [c0 | g0], each source's activations (T, B, 2kh) as [c | g], and the outputs (T, B, h).
    When training, each step turns its activations into derivative factors (see _factors)
    while they are in cache, with the highway factors in highway0 (T, B, 1, h) and highways.
    `dtype` is the matmuls' (None: fp32)."""

    dtype: torch.dtype | None
    states: Tensor
    a0: Tensor
    acts: list[Tensor]
    out: Tensor
    highway0: Tensor | None = None
    highways: list[Tensor] | None = None


class _DagScan(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        plan: ScanPlan,
        train: bool,
        dtype: torch.dtype | None,
        x: Tensor,
        h0: Tensor,
        h_mask: Tensor | None,
        w0: Tensor,
        *edge_ws: Tensor,
    ):
        steps, batch, h = x.size(0), x.size(1), plan.hidden
        wps = [_low(gate_major(w, len(s.targets), h), dtype) for s, w in zip(plan.sources, edge_ws)]
        xw = _mm(x.reshape(steps * batch, plan.emb), w0[: plan.emb], dtype).view(steps, batch, 2 * h)
        saved = _Saved(
            dtype=dtype,
            states=x.new_zeros(steps, batch, plan.nodes, h),
            a0=x.new_empty(steps, batch, 2 * h),
            acts=[x.new_empty(steps, batch, w.size(1)) for w in wps],
            out=x.new_empty(steps, batch, h),
        )
        if train:
            saved.highway0 = x.new_empty(steps, batch, 1, h)
            saved.highways = [x.new_empty(steps, batch, len(s.targets), h) for s in plan.sources]
        h_prev, wh = h0, _low(w0[plan.emb :], dtype)
        for t in range(steps):
            h_prev = _step(plan, t, xw[t], h_prev, h_mask, wh, wps, saved)
        ctx.plan, ctx.saved = plan, saved
        ctx.save_for_backward(x, h0, h_mask, w0, *edge_ws)
        return saved.out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        plan, saved = ctx.plan, ctx.saved
        x, h0, h_mask, w0, *edge_ws = ctx.saved_tensors
        h = plan.hidden
        h_prev = torch.cat([h0.unsqueeze(0), saved.out[:-1]])
        highway0, highways = saved.highway0, saved.highways
        low = saved.dtype
        wpts = [_low(gate_major(w, len(s.targets), h).t(), low).contiguous() for s, w in zip(plan.sources, edge_ws)]
        node_grads = x.new_empty(x.size(1), plan.nodes, h)
        carry = torch.zeros_like(h0)
        wht = _low(w0[plan.emb :].t(), low)
        for t in range(x.size(0) - 1, -1, -1):
            carry = _step_back(plan, t, grad_out[t], carry, h_mask, wht, wpts, saved, highway0, highways, node_grads)
        grads = _weight_grads(plan, x, h_prev, h_mask, w0, saved)
        return (None, None, None, grads[0], carry, None, *grads[1:])


NODE0_GROUPS = (("tanh", 0, 1),)  # node 0 as a source of one tanh edge, for _factors


def _factors(
    a: Tensor, s: Tensor, groups: tuple[tuple[str, int, int], ...], highway: Tensor, degree: Tensor | None = None
) -> None:
    """Turn one step's activations a (B, 2kh) = [c | g] of a source with state s (B, h) in
    place into the factors that carry the gradient of a target node's state to the
    pre-activations of the edge into it: [(g - s) c (1 - c) | c act'(g)] / d, and write the
    highway factor (1 - c) / d (B, k, h) into `highway`, d the target's in-degree (a node is
    the mean of its inputs). Done in the forward step while a is in cache; a backward step
    then needs one multiply per source."""
    k, h = groups[-1][2], s.size(-1)
    gates, outs = a.view(-1, 2, k, h).unbind(1)
    diff = outs - s.unsqueeze(1)
    for op, lo, hi in groups:
        y = outs[:, lo:hi]
        if op == "tanh":
            torch.addcmul(y.new_ones(()), y, y, value=-1.0, out=y)
        elif op == "sigmoid":
            y.sub_(y * y)
        elif op == "relu":
            y.gt_(0)
        else:
            y.fill_(1.0)
    outs.mul_(gates)
    torch.sub(gates, 1.0, out=highway).neg_()
    gates.mul_(highway).mul_(diff)
    if degree is not None:
        a.view(-1, 2, k, h).div_(degree)  # (1, k, 1) broadcasts over (.., k, h)
        highway.div_(degree)


def _step(
    plan: ScanPlan,
    t: int,
    xw_t: Tensor,
    h_prev: Tensor,
    mask: Tensor | None,
    wh: Tensor,
    wps: list[Tensor],
    saved: _Saved,
) -> Tensor:
    """One forward step: node 0, then every source pushes its edges' contributions into the
    sums of its targets (index_add_), a node's sum becoming its mean just before it is used."""
    h, s_t, a0 = plan.hidden, saved.states[t], saved.a0[t]
    h_in = h_prev if mask is None else h_prev * mask
    if saved.dtype is None:
        torch.addmm(xw_t, h_in, wh, out=a0)
    else:
        torch.add(xw_t, h_in.to(saved.dtype) @ wh, out=a0)
    a0[:, :h].sigmoid_()
    a0[:, h:].tanh_()
    torch.lerp(h_prev, a0[:, h:], a0[:, :h], out=s_t[:, 0])
    if saved.highways is not None:
        _factors(a0, h_prev, NODE0_GROUPS, saved.highway0[t])
    for n, (src, wp, acts) in enumerate(zip(plan.sources, wps, saved.acts)):
        s, a, k = s_t[:, src.source], acts[t], len(src.targets)
        if src.source:
            s.div_(plan.degree[src.source])
        _mm_into(a, s if mask is None else s * mask, wp)
        a[:, : k * h].sigmoid_()
        for op, lo, hi in src.groups:
            if _ACT_INPLACE[op] is not None:
                _ACT_INPLACE[op](a[:, (k + lo) * h : (k + hi) * h])
        gates, acts_g = a[:, : k * h].view(-1, k, h), a[:, k * h :].view(-1, k, h)
        s_t.index_add_(1, src.index, torch.lerp(s.unsqueeze(1), acts_g, gates))
        if saved.highways is not None:
            _factors(a, s, src.groups, saved.highways[n][t], src.degree)
    for leaf in plan.leaves:
        if leaf:
            s_t[:, leaf].div_(plan.degree[leaf])
    if len(plan.leaves) == 1:
        saved.out[t].copy_(s_t[:, plan.leaves[0]])
    else:
        torch.mean(s_t.index_select(1, plan.leaf_index), 1, out=saved.out[t])
    return saved.out[t]


def _mm_into(out: Tensor, a: Tensor, b: Tensor) -> None:
    """out = a @ b, a cast to b's dtype (the scan's matmul dtype) and the result widened into out."""
    if a.dtype == b.dtype:
        torch.mm(a, b, out=out)
    else:
        out.copy_(a.to(b.dtype) @ b)


def _step_back(
    plan: ScanPlan,
    t: int,
    grad_out: Tensor,
    carry: Tensor,
    mask: Tensor | None,
    wht: Tensor,
    wpts: list[Tensor],
    saved: _Saved,
    highway0: Tensor,
    highways: list[Tensor],
    ds: Tensor,
) -> Tensor:
    """One backward step: the gradient of every node state `ds` (B, N, h), sources in reverse
    order (a node's gradient is complete once every higher node ran). Each source multiplies
    its factors (saved.acts[t], see _factors) in place into the gradient of its
    pre-activations, which the weight gradients read afterwards. Returns dL/dh_{t-1}."""
    leaves = len(plan.leaves)
    if leaves == 1:
        torch.add(grad_out, carry, out=ds[:, plan.leaves[0]])
    else:
        ds.index_copy_(1, plan.leaf_index, ((grad_out + carry) / leaves).unsqueeze(1).expand(-1, leaves, -1))
    for src, wpt, acts, highway in zip(*(reversed(v) for v in (plan.sources, wpts, saved.acts, highways))):
        dcon = ds.index_select(1, src.index)  # (B, k, h): the targets' state gradients
        d = acts[t]
        d.view(dcon.size(0), 2, *dcon.shape[1:]).mul_(dcon.unsqueeze(1))
        torch.sum(dcon.mul_(highway[t]), 1, out=ds[:, src.source])
        _add_masked_mm(ds[:, src.source], d, wpt, mask)
    ds0, d = ds[:, 0], saved.a0[t]
    d.view(-1, 2, plan.hidden).mul_(ds0.unsqueeze(1))
    return _add_masked_mm(ds0 * highway0[t, :, 0], d, wht, mask)


def _add_masked_mm(acc: Tensor, d: Tensor, wt: Tensor, mask: Tensor | None) -> Tensor:
    """acc += (d @ wt) * mask, in place: the gradient through a masked matmul input (wt in the
    scan's matmul dtype, d cast to it)."""
    if mask is None and d.dtype == wt.dtype:
        return acc.addmm_(d, wt)
    prod = d.to(wt.dtype) @ wt
    return acc.add_(prod) if mask is None else acc.addcmul_(prod, mask)


def _weight_grads(
    plan: ScanPlan, x: Tensor, h_prev: Tensor, mask: Tensor | None, w0: Tensor, saved: _Saved
) -> list[Tensor]:
    """dL/dx, dL/dW0 and every source's dL/dW, each one matmul over all T*B rows (the
    pre-activation gradients are in saved.a0 and saved.acts once the backward steps ran)."""
    steps, batch, h, e, low = x.size(0), x.size(1), plan.hidden, plan.emb, saved.dtype
    rows = steps * batch
    d0 = _low(saved.a0.view(rows, 2 * h), low)  # cast once for its three matmuls
    h_in = h_prev if mask is None else h_prev * mask
    dw0 = torch.cat([_mm(x.reshape(rows, e).t(), d0, low), _mm(h_in.reshape(rows, h).t(), d0, low)])
    out = [_mm(d0, w0[:e].t(), low).view(steps, batch, e), dw0]
    for src, d in zip(plan.sources, saved.acts):
        s = saved.states[:, :, src.source]
        s_in = (s if mask is None else s * mask).reshape(rows, h)
        out.append(edge_major(_mm(s_in.t(), d.view(rows, -1), low), len(src.targets), h))
    return out
