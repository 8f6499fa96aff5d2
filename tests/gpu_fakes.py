"""CPU stand-ins for what only a GPU shows: host syncs and host-to-device copies, counted.

A CUDA sync happens where the host reads a device value (.item(), .tolist(), bool(), float());
a host-to-device copy where a CPU tensor goes to the device (.to, .copy_ into a device tensor,
torch.tensor(..., device=...), a CPU index into a device tensor). On a CPU run the "device" is
the CPU itself, so the counter takes every such call as the GPU run would make it: what it
counts is what the same code makes a GPU do.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

READS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.numpy,
}


class TransferCounter(TorchFunctionMode):
    """Counts host reads (`syncs`) and host-to-device copies (`copies`) while active.

    `device`: the training device; a copy is a call that moves CPU data onto it (on a CPU run,
    device cpu, every explicit .to(device) / device= counts, as it would be a copy on a GPU)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)
        self.syncs = 0
        self.copies = 0
        self.where: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in READS:
            self.syncs += 1
        elif func in (torch.Tensor.to, torch.Tensor.cuda) and self._to_device(args, kwargs):
            self.copies += 1
            self.where.append(getattr(func, "__name__", str(func)))
        elif (
            func is torch.Tensor.copy_
            and len(args) > 1
            and isinstance(args[1], torch.Tensor)
            and args[1].device.type == "cpu"
            and args[0].device == self.device
        ):
            self.copies += 1
            self.where.append("copy_")
        elif (
            func in (torch.tensor, torch.as_tensor)
            and kwargs.get("device") is not None
            and torch.device(kwargs["device"]).type == self.device.type
        ):
            self.copies += 1
            self.where.append("tensor")
        return func(*args, **kwargs)

    def _to_device(self, args, kwargs) -> bool:
        """Tensor.to(device, ...)/.cuda(): a CPU tensor sent to the training device by name."""
        src = args[0] if args else None
        if not isinstance(src, torch.Tensor) or src.device.type != "cpu":
            return False
        target = kwargs.get("device")
        for a in args[1:]:
            if isinstance(a, (str, torch.device)):
                target = a
        if target is None:
            return False
        return torch.device(target).type == self.device.type
