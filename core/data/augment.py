"""Standard CIFAR augmentation (random crop with zero padding, horizontal flip) on tensors.

Done on the training device, one batch at a time with a handful of indexing ops, so the
GPU never waits for a CPU data loader. The random draws come from a CPU generator the
caller seeds per epoch: the same seed gives the same crops and flips on CPU and CUDA, and a
resumed job redraws exactly what the uninterrupted one drew, with no state to carry.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("crop-flip", "crop", "none")


def crop_padding(size: int) -> int:
    """4 pixels at 32x32 (the standard), scaled with the image side; at least 1."""
    return max(1, size // 8)


def resolve_mode(mode: str, in_channels: int, input_size: int) -> str:
    """`auto`: crop+flip for colour images; none for tiny grey images such as the 8x8 digits,
    where a 1-pixel shift is an eighth of the glyph and a mirrored digit is another symbol."""
    if mode != "auto":
        return mode
    return "crop-flip" if in_channels == 3 and input_size >= 16 else "none"


def draw(n: int, side: int, mode: str, gen: torch.Generator) -> Tensor:
    """The random draws of `n` images as one (3, n) int tensor [dy, dx, flip] on the CPU: a
    trainer draws a whole epoch's at once and moves them to its device in one copy."""
    pad = crop_padding(side)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = (torch.rand(n, generator=gen) < 0.5).long() if mode == "crop-flip" else torch.zeros(n, dtype=torch.long)
    return torch.stack([dy, dx, flip])


def augment_batch(x: Tensor, mode: str, gen: torch.Generator | None = None, draws: Tensor | None = None) -> Tensor:
    """Randomly crop (after zero padding) and/or flip each image of an NCHW batch; the randomness
    is `draws` (a slice of `draw`'s, on x's device) when given, else drawn here from `gen`."""
    if mode == "none":
        return x
    n, c, h, w = x.shape
    pad = crop_padding(min(h, w))
    if draws is None:
        assert gen is not None, "augment_batch needs a generator or draws"
        draws = draw(n, min(h, w), mode, gen).to(x.device)
    dy, dx = draws[0], draws[1]
    flip = draws[2].bool() if mode == "crop-flip" else None
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (n, h)
    cols = torch.arange(w, device=x.device).expand(n, w)  # (n, w)
    if flip is not None:
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    cols = dx[:, None] + cols
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
