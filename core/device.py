"""Device choice in one place: `auto` means CUDA when present, else CPU."""
from __future__ import annotations

import os

import torch

from core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but CUDA is not available here; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A human label for the run record: the GPU's name matters when reading timings."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'' if n == 1 else 's'})"


def default_threads() -> int:
    """One core fewer than the machine has: busy-waiting OpenMP threads that share cores with
    other processes (the app server, a browser) make small-network training many times slower."""
    return max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1))
