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


def describe(device: torch.device, precision: str = "") -> str:
    """A human label for the run record: the GPU's name matters when reading timings, and so
    does the precision that really trained (`auto` resolved), when given."""
    tail = f", {precision}" if precision else ""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}){tail}"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'' if n == 1 else 's'}){tail}"


def default_threads() -> int:
    """One core fewer than the machine has: busy-waiting OpenMP threads that share cores with
    other processes (the app server, a browser) make small-network training many times slower."""
    return max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1))


# ----- precision: which float type trains, decided once per device ------------------------------
PRECISIONS = ("auto", "fp32", "bf16")


def cpu_bf16_native() -> bool:
    """True when this CPU runs bf16 matmuls and convolutions in hardware (AMX-BF16 or
    AVX512-BF16): there oneDNN's bf16 kernels run several times faster than fp32. Elsewhere torch
    emulates bf16 by converting to fp32, which is slower than fp32 itself."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if any(p is not None for p in probes):
        return any(p is not None and bool(p()) for p in probes)
    return bool(_cpuinfo_flags() & {"amx_bf16", "avx512_bf16"})


def _cpuinfo_flags() -> set[str]:
    """The CPU flags Linux reports (empty elsewhere): the fallback when torch has no probe."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cuda_bf16_native(device: torch.device | None = None) -> bool:
    """bf16 on CUDA only from compute capability 8.0 (Ampere) on. torch's is_bf16_supported()
    also says yes where bf16 is emulated (V100, T4), and there bf16 convolutions skip cuDNN and
    run far slower than fp32: so the capability decides, never that call."""
    if not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_precision(name: str, device: torch.device) -> str:
    """`auto` -> bf16 where the device runs it natively, else fp32; fp32 and bf16 as asked
    (bf16 on hardware without it is allowed, only slow: the user asked for it)."""
    if name not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {name!r}")
    if name != "auto":
        return name
    native = cuda_bf16_native(device) if device.type == "cuda" else cpu_bf16_native()
    return "bf16" if native else "fp32"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision (None: plain fp32, no autocast)."""
    return torch.bfloat16 if precision == "bf16" else None


def cuda_amp_dtype(device: torch.device) -> torch.dtype:
    """Final training's mixed-precision dtype on CUDA: bf16 from capability 8.0 (no loss scaling);
    below it fp16, which the caller pairs with a GradScaler."""
    return torch.bfloat16 if cuda_bf16_native(device) else torch.float16
