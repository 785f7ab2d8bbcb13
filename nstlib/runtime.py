"""Runtime: which device to use, seeding, quick mode, and the one-line summary each notebook prints.

Quick mode (`NSTLIB_QUICK=1`) shrinks image sizes, iteration counts and training runs so every
notebook runs on a 2-core CPU in CI within minutes. A notebook never branches on it in its prose;
it declares its settings once, for both modes, in one config call:

    cfg = nstlib.config(size=512, steps=300, quick=dict(size=128, steps=20))
    cfg.size, cfg.steps, cfg.device            # 512, 300, cuda in full mode on Colab

Full mode (the default) is what the committed notebook outputs show.
"""
from __future__ import annotations

import os
import platform
import random
import sys
from types import SimpleNamespace

import numpy as np
import torch

QUICK_ENV = "NSTLIB_QUICK"
DEFAULT_SEED = 0


def is_quick() -> bool:
    """True when NSTLIB_QUICK is set to 1/true/yes (any other value, or unset, is full mode)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def get_device(prefer: str | None = None) -> torch.device:
    """cuda if available, else mps (Apple silicon), else cpu; `prefer` forces one."""
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is available")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError("device 'mps' was asked for but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = DEFAULT_SEED) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); returns a CPU generator seeded the same way.

    Bitwise reproducibility across devices is not promised by PyTorch; on one machine with the
    same settings a seeded run repeats exactly on CPU.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def config(quick: dict | None = None, seed: int | None = DEFAULT_SEED, device: str | None = None,
           **full) -> SimpleNamespace:
    """A notebook's settings: `full` values, replaced by `quick` ones in quick mode.

    Also picks the device and seeds every RNG (pass seed=None not to). The namespace carries
    `device`, `quick` and `seed` besides the settings. A key in `quick` that is not in `full` is an
    error: quick mode may only shrink what full mode defines.
    """
    quick = quick or {}
    unknown = sorted(set(quick) - set(full))
    if unknown:
        raise ValueError(f"quick settings {unknown} have no full-mode value")
    values = {**full, **(quick if is_quick() else {})}
    if seed is not None:
        seed_everything(seed)
    return SimpleNamespace(**values, device=get_device(device), quick=is_quick(), seed=seed)


PRECISION_ENV = "NSTLIB_PRECISION"
PRECISIONS = ("fp32", "bf16")


def precision(requested: str | None = None) -> str:
    """'fp32' or 'bf16': `requested` if given, else $NSTLIB_PRECISION, else 'fp32'.

    bf16 means: networks run under bfloat16 autocast in channels-last memory, while the optimised
    image, the loss sums and optimizer state stay float32 (`autocast`). Defaults stay fp32 until
    quality parity is measured per method; trainers and the GPU kit ask for bf16 explicitly."""
    value = requested if requested is not None else os.environ.get(PRECISION_ENV, "").strip().lower() or "fp32"
    if value not in PRECISIONS:
        source = "precision" if requested is not None else PRECISION_ENV
        raise ValueError(f"{source} must be one of {PRECISIONS}, got {value!r}")
    return value


def autocast(device: torch.device | str, precision_: str = "fp32"):
    """The context a network's forward pass runs in: bfloat16 autocast on `device` for 'bf16'
    (CUDA; CPUs with AMX or AVX-512-bf16), a no-op for 'fp32'."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision(precision_) == "bf16")


def describe(device: torch.device | str | None = None) -> str:
    """One line for a notebook's setup cell: versions, device, quick mode."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    elif device.type == "mps":
        where = "mps (Apple GPU)"
    else:
        threads = torch.get_num_threads()
        where = f"cpu ({os.cpu_count()} cores, {threads} thread{'s' if threads > 1 else ''})"
    from . import __version__

    mode = "quick mode (NSTLIB_QUICK=1)" if is_quick() else "full mode"
    return (f"nstlib {__version__} | torch {torch.__version__} | python {platform.python_version()} "
            f"| device {where} | {mode}")


def in_colab() -> bool:
    return "google.colab" in sys.modules
