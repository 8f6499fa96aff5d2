"""Evaluation passes of the networks: image classifiers and language models, no gradients.

Proxy search and final training share them, so a validation figure means the same in both.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.data.batches import bptt_windows
from core.nets.rnn import RNNLanguageModel

VAL_BATCH = 1024  # validation needs no gradients, so big batches cost only activation memory


@torch.no_grad()
def evaluate_images(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    batch_size: int = VAL_BATCH,
    dtype: torch.dtype | None = None,
    prepare: Callable[[Tensor], Tensor] | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in eval mode, one host sync at the end. Proxy search and
    final training share it; final training passes its autocast dtype, a smaller batch (224x224
    images) and its memory-layout step as `prepare`."""
    model.eval()
    totals = torch.zeros(2, device=x.device, dtype=torch.float32)
    for start in range(0, len(y), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(prepare(xb) if prepare else xb).float()
        loss = F.cross_entropy(logits, yb, reduction="sum")
        totals += torch.stack([loss, (logits.argmax(dim=1) == yb).sum().float()])
    loss_sum, correct = totals.tolist()
    return loss_sum / len(y), correct / len(y)


@torch.no_grad()
def evaluate_lm(model: RNNLanguageModel, data: Tensor, bptt: int, max_batches: int | None = None) -> float:
    """Token-weighted mean NLL over (T, B) data, hidden state carried across windows."""
    model.eval()
    hidden = model.init_hidden(data.size(1))
    total, count = 0.0, 0
    for n, (start, length) in enumerate(bptt_windows(data.size(0), bptt, bptt)):
        if max_batches is not None and n >= max_batches:
            break
        targets = data[start + 1 : start + 1 + length]
        loss, hidden = model.loss(data[start : start + length], hidden, targets)  # the mean, chunked
        total += loss.item() * targets.numel()
        count += targets.numel()
    return total / max(count, 1)
