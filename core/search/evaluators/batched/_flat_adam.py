"""Adam over one flat parameter buffer holding k candidates, each with its own step count.

Why not torch.optim.Adam: the batched evaluator needs (1) per-candidate step counts, because a
candidate that breaks its epoch early skips steps and its bias corrections fall behind the
others'; (2) updates switched off per candidate (early-stopped, failed) and per position
(the union's fixed zeros), without touching their moments; (3) few, whole-buffer kernels so
one step costs the same for 1 or 100 candidates, and can be recorded in a CUDA graph.

The arithmetic is torch.optim.Adam's single-tensor path (L2 weight decay added to the
gradient, lerp for the first moment, addcmul for the second, bias corrections computed on
the host in double precision), op for op, so given the same gradients a candidate's
weights follow torch's Adam exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


class FlatAdam:
    """Adam for `params` (flat) with gradients in `grad`; element i belongs to slot `slot_of[i]`
    and is trained only where `owned[i]` and its slot is active."""

    def __init__(
        self,
        params: Tensor,
        grad: Tensor,
        slot_of: Tensor,
        owned: Tensor,
        k: int,
        lr: float,
        weight_decay: float | Tensor,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        exp_avg: Tensor | None = None,
        exp_avg_sq: Tensor | None = None,
        steps: list[int] | None = None,
    ) -> None:
        """exp_avg, exp_avg_sq and steps resume a state (moments laid out like `params`).
        weight_decay is one coefficient or one per element (laid out like `params`)."""
        self.params, self.grad, self.slot_of, self.owned = params, grad, slot_of, owned
        if isinstance(weight_decay, Tensor):
            weight_decay = weight_decay.to(params.device, params.dtype)
        self.k, self.lr, self.weight_decay, self.betas, self.eps = k, lr, weight_decay, betas, eps
        self.exp_avg = torch.zeros_like(params) if exp_avg is None else exp_avg.to(params.device)
        self.exp_avg_sq = torch.zeros_like(params) if exp_avg_sq is None else exp_avg_sq.to(params.device)
        self.steps = list(steps) if steps is not None else [0] * k
        # device-side per-slot inputs of `apply`: [active, -step size, sqrt(bias correction 2)]
        self.slot_scalars = torch.zeros(3, k, device=params.device, dtype=params.dtype)

    def prepare(self, active: list[bool]) -> None:
        """Count the step for the active slots and stage their scalars on the device (host math)."""
        b1, b2 = self.betas
        rows: list[list[float]] = [[], [], []]
        for c in range(self.k):
            if active[c]:
                self.steps[c] += 1
            t = self.steps[c]
            step_size = self.lr / (1 - b1**t) if t else 0.0
            rows[0].append(1.0 if active[c] else 0.0)
            rows[1].append(-step_size)
            rows[2].append((1 - b2**t) ** 0.5 if t else 1.0)
        self.slot_scalars.copy_(torch.tensor(rows, dtype=self.params.dtype), non_blocking=True)

    def begin_epoch(self, batches: int) -> None:
        """For `prepare_device`: every slot's bias corrections for the step counts this epoch can
        reach (its count now plus 0..batches), computed on the host as `prepare` computes them
        and copied to the device once; a step then looks its slot's row up on the device."""
        b1, b2 = self.betas
        table: list[list[list[float]]] = [[], []]
        for j in range(batches + 1):
            size_row, bc2_row = [], []
            for c in range(self.k):
                t = self.steps[c] + j
                size_row.append(-(self.lr / (1 - b1**t)) if t else -0.0)
                bc2_row.append((1 - b2**t) ** 0.5 if t else 1.0)
            table[0].append(size_row)
            table[1].append(bc2_row)
        self.table = torch.tensor(table, dtype=self.params.dtype).to(self.params.device, non_blocking=True)
        self.taken = torch.zeros(self.k, dtype=torch.long, device=self.params.device)
        self._slots = torch.arange(self.k, device=self.params.device)

    def prepare_device(self, active: Tensor) -> None:
        """`prepare` for a device-side (k,) bool `active`: no host value, so no sync."""
        self.taken += active
        rows = self.table[:, self.taken, self._slots]
        self.slot_scalars.copy_(torch.cat([active.to(self.slot_scalars.dtype)[None], rows]))

    def end_epoch(self, taken: list[int]) -> None:
        """The host's step counts after an epoch of `prepare_device` (`taken`: read back once)."""
        self.steps = [s + int(j) for s, j in zip(self.steps, taken)]

    @torch.no_grad()
    def apply(self) -> None:
        """The update, from device tensors only (so it can be captured in a CUDA graph)."""
        b1, b2 = self.betas
        p, m, v = self.params, self.exp_avg, self.exp_avg_sq
        per_elem = self.slot_scalars[:, self.slot_of]
        live = self.owned & (per_elem[0] > 0)
        wd = self.weight_decay
        if isinstance(wd, Tensor):
            g = self.grad.addcmul(p, wd)
        else:
            g = self.grad.add(p, alpha=wd) if wd else self.grad
        m_new = m.lerp(g, 1 - b1)
        v_new = (v * b2).addcmul_(g, g, value=1 - b2)
        denom = (v_new.sqrt() / per_elem[2]).add_(self.eps)
        p_new = p + (m_new * per_elem[1]) / denom  # addcdiv's order: value * t1 / t2
        torch.where(live, p_new, p, out=p)
        torch.where(live, m_new, m, out=m)
        torch.where(live, v_new, v, out=v)

    def step(self, active: list[bool]) -> None:
        self.prepare(active)
        self.apply()
