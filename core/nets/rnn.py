"""The RNN search space: a DARTS-style recurrent DAG cell and the language model around it.

The cell follows the paper and the official code exactly (docs/FIDELITY.md, RNN search,
row "model"): node 0 mixes x_t and h_{t-1} through W0 and a highway gate; every edge
i -> j has its own W_ij and gate; a node averages its incoming contributions; h_t is the
mean of the leaves. Any rnn Genotype can be built, because the
search trains hundreds of arbitrary shrunk DAGs; unreachable nodes get no weights so the
parameter count of a candidate is the count of what it really computes.

Speed on CPU matters more than elegance here (every candidate is trained from scratch), so:
the input half of W0 is applied to the whole sequence in one matmul, and each source node
does a single matmul producing the [c, g] pre-activations of all its outgoing edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.cell.genotype import Genotype
from core.nets.dag_scan import ScanPlan, ScanSource, dag_scan
from core.result import Cost

# Init ranges. Cell weights uniform +-0.04 (the DARTS/ENAS recurrent-cell setting): with
# h = 100..745 this keeps the pre-activations small so the sigmoid gates start near 0.5 and
# every node starts as a half-and-half highway mix, which trains stably under SGD lr 20.
# Embedding uniform +-0.1 (the AWD-LSTM/PTB setting): the tied decoder then starts with
# near-uniform logits, so the first loss is close to log(V) instead of exploding.
CELL_INIT_RANGE = 0.04
EMB_INIT_RANGE = 0.1

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda t: t,
}


def _check_rnn(genotype: Genotype) -> Genotype:
    """Refuse a CNN genotype early: its ops have no meaning in this cell."""
    if genotype.kind != "rnn":
        raise ValueError(f"an RNN cell needs an rnn genotype, got kind {genotype.kind!r}")
    return genotype.pruned()


def _check_tied(emb: int, hidden: int) -> None:
    """The decoder reuses the embedding matrix, so its width must be the hidden size."""
    if emb != hidden:
        raise ValueError(f"tied decoder needs emb == hidden, got emb={emb}, hidden={hidden}")


def _mask(like: Tensor, shape: tuple[int, ...], p: float) -> Tensor:
    """Inverted-dropout mask (kept entries scaled by 1/(1-p)) so eval needs no rescaling."""
    return like.new_empty(shape).bernoulli_(1.0 - p).div_(1.0 - p)


class _SourcePlan:
    """How one source node feeds its outgoing edges: the targets and activation groups.

    Targets are sorted by (activation, node) so targets sharing an activation are
    contiguous in the fused weight and one activation call covers each group.
    """

    def __init__(self, source: int, targets: list[int], ops: tuple[str, ...]) -> None:
        self.source = source
        self.targets = tuple(sorted(targets, key=lambda j: (ops[j], j)))
        groups: list[tuple[str, int, int]] = []
        for pos, j in enumerate(self.targets):
            if groups and groups[-1][0] == ops[j]:
                groups[-1] = (ops[j], groups[-1][1], pos + 1)
            else:
                groups.append((ops[j], pos, pos + 1))
        self.groups = tuple(groups)


class DagRNNCell(nn.Module):
    """One recurrent cell built from an rnn Genotype (pruned first).

    Weights: `w0` is (e+h) x 2h; `edge_w[str(i)]` is h x (2h * out-degree of i), the W_ij of
    all edges leaving i side by side, each as [c-columns | g-columns]. `edge_weight(i, j)`
    returns the (h x 2h) view that is the spec's W_ij.
    """

    def __init__(
        self, genotype: Genotype, emb: int, hidden: int, dropout_x: float = 0.0, dropout_h: float = 0.0
    ) -> None:
        super().__init__()
        g = _check_rnn(genotype)
        self.genotype = g
        self.emb, self.hidden = emb, hidden
        self.dropout_x, self.dropout_h = dropout_x, dropout_h
        self.matmul_dtype: torch.dtype | None = None  # bf16 under --precision bf16: see dag_scan
        self.leaves = g.leaves()
        live = g.reachable()
        self.in_degree = {j: len(g.inputs(j)) for j in live if j != 0}
        self.plans = [
            _SourcePlan(i, [j for a, j in g.edges if a == i], g.ops)
            for i in sorted(live)
            if any(a == i for a, _ in g.edges)
        ]
        self.w0 = nn.Parameter(torch.empty(emb + hidden, 2 * hidden))
        self.edge_w = nn.ParameterDict(
            {str(p.source): nn.Parameter(torch.empty(hidden, 2 * hidden * len(p.targets))) for p in self.plans}
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w in self.parameters():
            nn.init.uniform_(w, -CELL_INIT_RANGE, CELL_INIT_RANGE)

    def edge_weight(self, i: int, j: int) -> Tensor:
        """The spec's W_ij (h x 2h, columns [c | g]) as a view into the fused weight."""
        plan = next((p for p in self.plans if p.source == i), None)
        if plan is None or j not in plan.targets:
            raise KeyError(f"edge {i}-{j} is not in the pruned cell")
        pos, h2 = plan.targets.index(j), 2 * self.hidden
        return self.edge_w[str(i)][:, pos * h2 : (pos + 1) * h2]

    # ----- the equations -----------------------------------------------------------------
    def _node0(self, xw_t: Tensor, h_prev: Tensor, h_mask: Tensor | None, w0h: Tensor | None = None) -> Tensor:
        """s0 = h + c0*(g0 - h) with [c0, g0] = [x, h] W0; xw_t is x's half, precomputed, and
        w0h the hidden half of W0 (sliced once per sequence, so its gradient is summed over the
        steps and scattered into W0's once, not zero-filled at every step)."""
        h_in = h_prev if h_mask is None else h_prev * h_mask
        pre = torch.addmm(xw_t, h_in, self.w0[self.emb :] if w0h is None else w0h)
        c0, g0 = pre.view(-1, 2, self.hidden).unbind(1)
        return torch.lerp(h_prev, torch.tanh(g0), torch.sigmoid(c0))

    def _edges_from(self, plan: _SourcePlan, s_i: Tensor, h_mask: Tensor | None) -> Tensor:
        """Contributions s_i + c*(act_j(g) - s_i) of every edge leaving i: (B, k, h). As in the
        official (DARTS-style) cell, the hidden dropout mask applies to the source state that
        enters W_ij on every edge; the highway term keeps the unmasked s_i."""
        k, h = len(plan.targets), self.hidden
        s_in = s_i if h_mask is None else s_i * h_mask
        c_pre, g_pre = (s_in @ self.edge_w[str(plan.source)]).view(-1, k, 2, h).unbind(2)
        if len(plan.groups) == 1:
            g = ACTIVATIONS[plan.groups[0][0]](g_pre)
        else:
            parts = g_pre.split([b - a for _, a, b in plan.groups], dim=1)
            g = torch.cat([ACTIVATIONS[op](part) for (op, _, _), part in zip(plan.groups, parts)], dim=1)
        return torch.lerp(s_i.unsqueeze(1).expand_as(g), g, torch.sigmoid(c_pre))

    def _cell(self, xw_t: Tensor, h_prev: Tensor, h_mask: Tensor | None, w0h: Tensor | None = None) -> Tensor:
        """Run the DAG in node order; a node's state is final once all lower nodes ran."""
        w0h = self.w0[self.emb :] if w0h is None else w0h
        states: dict[int, Tensor] = {0: self._node0(xw_t, h_prev, h_mask, w0h)}
        sums: dict[int, Tensor] = {}
        for plan in self.plans:
            i = plan.source
            if i not in states:
                states[i] = sums.pop(i) / self.in_degree[i]
            # unbind, not contrib[:, pos]: one backward op for all targets instead of a
            # zero-filled (B, k, h) gradient per target
            for j, part in zip(plan.targets, self._edges_from(plan, states[i], h_mask).unbind(1)):
                sums[j] = part if j not in sums else sums[j] + part
        for j, total in sums.items():  # nodes with no out-edge: the leaves
            states[j] = total / self.in_degree[j]
        if len(self.leaves) == 1:
            return states[self.leaves[0]]
        return torch.stack([states[j] for j in self.leaves]).mean(dim=0)

    def step(self, x_t: Tensor, h_prev: Tensor, x_mask: Tensor | None = None, h_mask: Tensor | None = None) -> Tensor:
        """One time step, (B, e), (B, h) -> (B, h). Masks are passed in, not drawn here,
        because the spec's variational dropout keeps one mask for the whole sequence."""
        x_in = x_t if x_mask is None else x_t * x_mask
        return self._cell(x_in @ self.w0[: self.emb], h_prev, h_mask)

    def forward(self, x: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        """x (T, B, e), h0 (B, h) -> outputs (T, B, h), h_T. Dropout masks only in training.
        The sequence runs through dag_scan (the same equations as `_cell`, step by step, with a
        hand-written backward: core/nets/dag_scan.py)."""
        batch = x.size(1)
        if self.training and self.dropout_x > 0:
            x = x * _mask(x, (1, batch, self.emb), self.dropout_x)
        h_mask = None
        if self.training and self.dropout_h > 0:
            h_mask = _mask(h0, (batch, self.hidden), self.dropout_h)
        if torch.compiler.is_compiling() or torch.jit.is_tracing():  # exporters trace plain ops, not a Function
            return self._steps(x, h0, h_mask)
        weights = [self.edge_w[str(p.source)] for p in self.plans]
        outputs = dag_scan(self._scan_plan(x.device), x, h0, h_mask, self.w0, weights, self.matmul_dtype)
        return outputs, outputs[-1]

    def _steps(self, x: Tensor, h0: Tensor, h_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """The sequence as `_cell` step by step under autograd: what ONNX export traces."""
        xw = x @ self.w0[: self.emb]  # the input half of W0 for all steps in one matmul
        w0h = self.w0[self.emb :]
        outputs, h = [], h0
        for xw_t in xw.unbind(0):
            h = self._cell(xw_t, h, h_mask, w0h)
            outputs.append(h)
        return torch.stack(outputs), h

    def _scan_plan(self, device: torch.device) -> ScanPlan:
        """The cell's static shape for dag_scan, its index tensors on `device` (built once)."""
        cached = getattr(self, "_scan_plans", {}).get(device)
        if cached is not None:
            return cached
        sources = tuple(
            ScanSource(
                p.source,
                p.targets,
                p.groups,
                torch.tensor(p.targets, device=device),
                torch.tensor([float(self.in_degree[j]) for j in p.targets], device=device).view(1, -1, 1),
            )
            for p in self.plans
        )
        plan = ScanPlan(
            self.emb,
            self.hidden,
            len(self.genotype.ops),
            sources,
            dict(self.in_degree),
            tuple(self.leaves),
            torch.tensor(self.leaves, device=device),
        )
        self._scan_plans = {**getattr(self, "_scan_plans", {}), device: plan}
        return plan


class RNNLanguageModel(nn.Module):
    """Embedding -> DagRNNCell over the sequence -> tied decoder -> log-softmax.

    Dropouts (all 0 for the proxy search, used for final training): `dropout` on the cell
    outputs and `dropout_x`/`dropout_h` inside the cell are variational (one mask per
    sequence, shared over time); `dropout_e` drops whole rows of the embedding matrix (a
    word is dropped at every occurrence in the batch); `dropout_w` drops whole token
    positions' embedding vectors. Note: DARTS' "embedding-input" dropout (dropouti) is a
    variational mask over embedding features, which this API does not model separately.
    """

    def __init__(
        self,
        genotype: Genotype,
        vocab_size: int,
        emb: int = 100,
        hidden: int = 100,
        dropout: float = 0.0,
        dropout_h: float = 0.0,
        dropout_x: float = 0.0,
        dropout_e: float = 0.0,
        dropout_w: float = 0.0,
    ) -> None:
        super().__init__()
        _check_tied(emb, hidden)
        self.vocab_size, self.emb, self.hidden = vocab_size, emb, hidden
        self.dropout, self.dropout_e, self.dropout_w = dropout, dropout_e, dropout_w
        self.encoder = nn.Embedding(vocab_size, emb)
        self.cell = DagRNNCell(genotype, emb, hidden, dropout_x=dropout_x, dropout_h=dropout_h)
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.uniform_(self.encoder.weight, -EMB_INIT_RANGE, EMB_INIT_RANGE)

    @property
    def matmul_dtype(self) -> torch.dtype | None:
        """The dtype the matmuls run in: bf16 under --precision bf16, None for fp32. The decoder
        (a V x h matmul per token) and the cell's recurrent matmuls take bf16 operands; weights,
        states, gates, softmax and loss stay fp32, as under autocast."""
        return self.cell.matmul_dtype

    @matmul_dtype.setter
    def matmul_dtype(self, dtype: torch.dtype | None) -> None:
        self.cell.matmul_dtype = dtype

    def _embed(self, tokens: Tensor) -> Tensor:
        """Look up embeddings with word-row and token dropout applied in training mode."""
        x = self.encoder(tokens)
        if not self.training:
            return x
        if self.dropout_e > 0:
            rows = _mask(x, (self.vocab_size,), self.dropout_e)
            x = x * rows[tokens].unsqueeze(-1)
        if self.dropout_w > 0:
            x = x * _mask(x, (*tokens.shape, 1), self.dropout_w)
        return x

    def forward(self, tokens: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (T, B) int64, hidden (B, h) -> log-probs (T, B, V), last hidden (B, h)."""
        log_probs, h, _states = self.forward_with_states(tokens, hidden)
        return log_probs, h

    def forward_with_states(self, tokens: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """forward, plus the cell's raw outputs (T, B, h) before the output dropout: what final
        training's activation-slowness penalty is computed on."""
        states, h = self.cell(self._embed(tokens), hidden)
        out = states
        if self.training and self.dropout > 0:
            out = out * _mask(out, (1, out.size(1), self.hidden), self.dropout)
        if self.matmul_dtype is None:
            logits = F.linear(out, self.encoder.weight, self.decoder_bias)
        else:
            with torch.autocast(out.device.type, dtype=self.matmul_dtype):
                logits = F.linear(out, self.encoder.weight, self.decoder_bias).float()
        return F.log_softmax(logits, dim=-1), h, states

    def loss(self, tokens: Tensor, hidden: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Mean NLL of `targets` and the last hidden state: forward + log_softmax + nll_loss in
        one, for training. The same number as nll_loss(forward(...)), but the (T*B, V) logits
        are never stored: the decoder runs in row chunks that stay in cache (_ChunkedNLL)."""
        out, h = self.cell(self._embed(tokens), hidden)
        if self.training and self.dropout > 0:
            out = out * _mask(out, (1, out.size(1), self.hidden), self.dropout)
        flat = out.reshape(-1, self.hidden)
        weight, bias = self.encoder.weight, self.decoder_bias
        need_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (flat, weight, bias))
        return _ChunkedNLL.apply(flat, weight, bias, targets.reshape(-1), self.matmul_dtype, need_grad), h

    def init_hidden(self, batch_size: int) -> Tensor:
        """Zero state on the model's device: each epoch starts the sequence afresh."""
        return self.decoder_bias.new_zeros(batch_size, self.hidden)


NLL_CHUNK = 128  # rows of logits per chunk: 128 x V fp32 stays in a core's cache at PTB sizes
NLL_CHUNK_FP32 = 64  # fp32 matmuls: the chunk's three matmuls and passes measured faster at half (a 2 MB L2)
# Training takes log p of the target from the softmax it needs for the gradient (an exp pass
# fewer than log_softmax, then exp); a target whose p underflows fp32 counts as this floor's
# -log, 87.3 nats, where log_softmax would give more: a loss that diverged either way.
P_FLOOR = torch.finfo(torch.float32).tiny


class _ChunkedNLL(torch.autograd.Function):
    """Mean cross-entropy of the tied decoder's logits z = out W^T + b, row chunk by row chunk.

    Why: at PTB sizes the (T*B, V) logits are 125 MB, and log_softmax + nll_loss stream them
    through memory about eight times (forward, backward, their zero-filled gradients). Here
    each chunk's logits live only in cache, and when a gradient is wanted (`need_grad`) the
    forward also computes it (softmax - onehot, then its two matmuls) while the chunk is still
    there: the loss is the last op, so its gradient is known up to the incoming scale, which
    backward applies. No logits are recomputed. With `dtype` bf16 the matmuls run in bf16
    (AMX), everything else in fp32."""

    @staticmethod
    def forward(ctx, out: Tensor, weight: Tensor, bias: Tensor, targets: Tensor, dtype, need_grad: bool) -> Tensor:
        o, w = (out, weight) if dtype is None else (out.to(dtype), weight.to(dtype))
        wt = w.t().contiguous()  # (h, V): the forward matmul's fast layout
        total = out.new_zeros((), dtype=torch.float32)
        grads = _Grads.begin(out, weight, bias, dtype) if need_grad else None
        chunk = NLL_CHUNK if dtype is not None else NLL_CHUNK_FP32
        for s in range(0, len(targets), chunk):
            tc, z = targets[s : s + chunk, None], _logits(o[s : s + chunk], wt, bias)
            if grads is None:
                total -= torch.log_softmax(z, dim=1).gather(1, tc).sum()
                continue
            p = torch.softmax(z, dim=1)  # one exp pass: p is what the gradient needs
            total -= p.gather(1, tc).clamp_min_(P_FLOOR).log_().sum()
            grads.add_chunk(p, tc, o, w, s)
        if grads is not None:
            ctx.save_for_backward(grads.grad_out, grads.grad_w, grads.grad_b)
        ctx.rows = len(targets)
        return total / len(targets)

    @staticmethod
    def backward(ctx, grad: Tensor):
        scale = grad / ctx.rows
        grad_out, grad_w, grad_b = (g * scale for g in ctx.saved_tensors)
        return grad_out, grad_w, grad_b, None, None, None


BF16_BLOCK = 1024  # rows of bf16 p kept before their matmuls: (1024, V) bf16 stays under glibc's mmap threshold


@dataclass
class _Grads:
    """The decoder loss's unscaled gradients, built chunk by chunk. In fp32 each chunk's
    p = softmax - onehot goes straight into its two matmuls. In bf16 the p's of BF16_BLOCK rows
    are kept (bf16) and multiplied per block: a few larger AMX matmuls, and a bf16 (V, h)
    partial widened and added per block rather than per chunk (those passes dominated)."""

    grad_out: Tensor
    grad_w: Tensor
    grad_b: Tensor
    probs: Tensor | None  # (BF16_BLOCK, V) in bf16, when the matmuls run in bf16
    start: int = 0  # first row of the block in probs

    @classmethod
    def begin(cls, out: Tensor, weight: Tensor, bias: Tensor, dtype: torch.dtype | None) -> _Grads:
        grads = torch.empty_like(out), torch.zeros_like(weight), torch.zeros_like(bias, dtype=torch.float32)
        probs = None if dtype is None else out.new_empty(min(BF16_BLOCK, out.size(0)), weight.size(0), dtype=dtype)
        return cls(*grads, probs)

    def add_chunk(self, p: Tensor, tc: Tensor, o: Tensor, w: Tensor, s: int) -> None:
        """p = softmax - onehot (in place), its row sum into d b, and its matmuls (or a
        place in the block, multiplied when the block is full)."""
        p.scatter_add_(1, tc, p.new_full(tc.shape, -1.0))
        self.grad_b += p.sum(0)
        end = s + len(tc)
        if self.probs is None:
            torch.mm(p, w, out=self.grad_out[s:end])
            self.grad_w.addmm_(p.t(), o[s:end])
            return
        self.probs[s - self.start : end - self.start] = p
        if end - self.start + NLL_CHUNK > len(self.probs) or end == len(o):
            block = self.probs[: end - self.start]
            self.grad_out[self.start : end] = block @ w
            self.grad_w += (block.t() @ o[self.start : end]).float()
            self.start = end


def _logits(o: Tensor, wt: Tensor, bias: Tensor) -> Tensor:
    """One chunk's logits in fp32 (a bf16 matmul's result is widened before the bias add)."""
    if o.dtype == torch.float32:
        return torch.addmm(bias, o, wt)
    return (o @ wt).float().add_(bias)


def rnn_cost(genotype: Genotype, emb: int, hidden: int, vocab_size: int) -> Cost:
    """Parameters of the tied language model and the spec's cell FLOPs (edges x h^2).

    Counted from shapes (no allocation), so a 745-wide ShrinkRNN costs nothing to price:
    embedding V*e (shared with the decoder) + decoder bias V + W0 (e+h)*2h + one h*2h
    matrix per edge of the pruned cell.
    """
    _check_tied(emb, hidden)
    edges = _check_rnn(genotype).num_edges
    params = vocab_size * emb + vocab_size + (emb + hidden) * 2 * hidden + edges * hidden * 2 * hidden
    return Cost(params=params, flops=edges * hidden * hidden)
