"""Checkpoints: written atomically, read without unpickling code.

A job is resumable only if the checkpoint on disk is always a complete one, so it is
written to a temporary file in the same directory, flushed to disk and then renamed over
the old one (os.replace is atomic on POSIX and Windows): a kill -9 mid-write leaves the
previous checkpoint intact. Reading uses torch.load(weights_only=True), which rebuilds only
tensors and plain containers (dict, list, str, int, float, bool, None) and refuses any other
object, so a planted file cannot run code. Everything saved here is therefore kept to
those types: RNG states are saved as the uint8 tensors torch hands out, and the state
dataclasses (RngState, TrainState) are written as their plain dicts.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Self

import torch
from torch import Tensor

from core.errors import UserError


class CheckpointError(UserError):
    """An unreadable or foreign checkpoint file; one line naming it."""


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """Write `obj` to `path` atomically: temp file in the same directory, fsync, os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint with weights_only=True; any failure is a one-line CheckpointError."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not a training checkpoint (expected a dict)")
    return obj


@dataclass
class RngState:
    """Torch's global CPU generator state, and the current CUDA device's (the one the job trains
    on; what dropout masks draw from), as the uint8 tensors torch hands out."""

    torch: Tensor
    cuda_device: Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        """The on-disk form: {"torch": ..., "cuda_device": ...} (the key absent without CUDA)."""
        return (
            {"torch": self.torch}
            if self.cuda_device is None
            else {"torch": self.torch, "cuda_device": self.cuda_device}
        )

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RngState:
        """Read what to_dict wrote. A checkpoint of an older version holds every GPU's state
        ("cuda"): the first is the one a job trained on."""
        cuda = state.get("cuda_device")
        if cuda is None and state.get("cuda"):
            cuda = state["cuda"][0]
        return cls(torch=state["torch"], cuda_device=cuda)


def rng_state() -> RngState:
    """The generators' states now. One device's only: a resume on a machine with another GPU
    count, or on another GPU index, restores it all the same."""
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return RngState(torch=torch.get_rng_state(), cuda_device=cuda)


def set_rng_state(state: RngState | dict[str, Any]) -> None:
    """Restore what rng_state saved (or its on-disk dict), the CUDA state onto the current device."""
    if isinstance(state, dict):
        state = RngState.from_dict(state)
    torch.set_rng_state(state.torch.cpu())
    if state.cuda_device is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state.cuda_device.cpu())


_COERCE: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": float,
    "list[dict]": list,
    "list[float]": lambda v: [float(x) for x in v],
}


@dataclass
class TrainState:
    """What every trainer's end-of-epoch checkpoint holds; a trainer subclasses it with its own
    fields. On disk it is the plain dict of to_dict (weights_only=True reads nothing else), the
    same keys as before these classes, so checkpoints already written still resume."""

    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    rng: RngState
    epoch: int
    history: list[dict]

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["rng"] = self.rng.to_dict()
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        """Rebuild from a loaded checkpoint, numbers and lists as their declared types."""
        values = {f.name: _COERCE.get(str(f.type), lambda v: v)(state[f.name]) for f in fields(cls)}
        values["rng"] = RngState.from_dict(state["rng"])
        return cls(**values)
