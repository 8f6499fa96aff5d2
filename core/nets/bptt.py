"""The one truncated-BPTT training pass of the language model, and perplexity.

The proxy search (core.search.proxy_rnn) and final training (core.training.rnn) both train
with it, so a training loss means the same in both; what differs between them is passed in:
the final trainer's loss adds the activation-slowness penalty (`step_loss`) and reports its
progress per batch (`on_batch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from core.data.batches import bptt_windows
from core.nets.rnn import RNNLanguageModel

NAN_CHECK_EVERY = 16  # batches between the host reads that look for a NaN loss

# (model, inputs, hidden, targets) -> (the loss reported, the objective minimised, last hidden)
StepLoss = Callable[[RNNLanguageModel, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


def plain_loss(
    model: RNNLanguageModel, inputs: Tensor, hidden: Tensor, targets: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The mean NLL, which is also the objective (the proxy search's step)."""
    loss, hidden = model.loss(inputs, hidden, targets)
    return loss, loss, hidden


def perplexity(loss: float) -> float:
    """Perplexity, inf rather than an OverflowError for a huge loss."""
    return math.exp(loss) if loss < 700 else math.inf


@dataclass(frozen=True)
class EpochLoss:
    """What one pass reports: the token-weighted mean loss, the EMA of the batch losses
    (restarted each epoch; the first batch sets it) and the tokens trained on. Both losses
    are the first non-finite batch loss as soon as one appears."""

    mean: float
    moving: float
    tokens: int


def train_bptt_epoch(
    model: RNNLanguageModel,
    opt: torch.optim.Optimizer,
    data: Tensor,
    bptt: int,
    offset: int,
    clip: float,
    *,
    max_batches: int | None = None,
    momentum: float = 0.9,
    step_loss: StepLoss = plain_loss,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EpochLoss | None:
    """One pass of truncated BPTT with gradient clipping, hidden state carried and detached
    between windows; None if should_stop() said so before a batch.

    The sums and the EMA stay on the device in float64 (the same IEEE operations as Python
    floats, so the same values), and a batch makes no host sync: the host looks for a
    non-finite loss every NAN_CHECK_EVERY batches and at the end, and returns the first one."""
    model.train()
    hidden = model.init_hidden(data.size(1))
    dev = data.device
    total = torch.zeros((), dtype=torch.float64, device=dev)
    moving = torch.zeros((), dtype=torch.float64, device=dev)
    bad = torch.zeros(2, dtype=torch.float64, device=dev)  # [seen one?, the first non-finite loss]
    count = 0
    for n, (start, length) in enumerate(bptt_windows(data.size(0), bptt, offset)):
        if max_batches is not None and n >= max_batches:
            break
        if should_stop is not None and should_stop():
            return None
        if n % NAN_CHECK_EVERY == NAN_CHECK_EVERY - 1 and (first := bad.tolist())[0]:
            return EpochLoss(first[1], first[1], count)
        inputs, targets = data[start : start + length], data[start + 1 : start + 1 + length]
        loss, objective, hidden = step_loss(model, inputs, hidden.detach(), targets)
        value = loss.detach().double()
        new = (bad[0] == 0) & ~torch.isfinite(value)
        bad = torch.where(new, torch.stack([torch.ones_like(value), value]), bad)
        opt.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        total += value * targets.numel()
        moving = value if n == 0 else momentum * moving + (1 - momentum) * value
        count += targets.numel()
        if on_batch is not None:
            on_batch(n + 1)
    return _finish(total, moving, bad, count)


def _finish(total: Tensor, moving: Tensor, bad: Tensor, count: int) -> EpochLoss:
    """The pass's one closing host read: the first non-finite loss, or the mean and EMA."""
    first = bad.tolist()
    if first[0]:
        return EpochLoss(first[1], first[1], count)
    mean = total.item() / max(count, 1)
    return EpochLoss(mean, mean if count == 0 else moving.item(), count)
