"""How training data is cut into batches: image index batches per epoch, BPTT windows.

Pure functions of their arguments, shared by proxy search and final training, so every
candidate (and every evaluator) sees identical batches for the same seed.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor


def epoch_batches(n: int, batch_size: int, data_seed: int, epoch: int, limit: int = 0) -> list[Tensor]:
    """Index batches (CPU int64) of one epoch: a seeded permutation of range(n) cut into batches.

    A pure function of its arguments (own generator, global RNG untouched) so that every
    candidate, and every member of a batched evaluator, trains on identical batches.
    A trailing batch of one sample is merged into the previous batch, because BatchNorm
    cannot normalise a single sample in training mode. `limit` > 0 keeps only the first
    `limit` batches (the `--max-batches` cap of demos and tests).
    """
    if n <= 0 or batch_size <= 0:
        raise ValueError(f"epoch_batches needs n > 0 and batch_size > 0, got {n}, {batch_size}")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(_mix_seed(data_seed, epoch))
    batches = list(torch.randperm(n, generator=gen).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches[:limit] if limit > 0 else batches


def _mix_seed(data_seed: int, epoch: int) -> int:
    """One well-mixed 63-bit seed per (data_seed, epoch): neighbouring pairs share no stream."""
    state = np.random.SeedSequence([abs(int(data_seed)), int(data_seed < 0), int(epoch)])
    return int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))


def bptt_windows(n_steps: int, bptt: int, offset: int) -> Iterator[tuple[int, int]]:
    """(start, length) of each BPTT window over n_steps inputs (targets need one more).

    The first window is `offset` long (1..bptt), shifting every later boundary, so epochs
    see different cut points without skipping any tokens.
    """
    start, length = 0, offset
    while start < n_steps - 1:
        length = min(length, n_steps - 1 - start)
        yield start, length
        start += length
        length = bptt
