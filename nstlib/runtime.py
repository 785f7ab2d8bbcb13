"""Runtime: which device to use, seeding, quick mode, the one-line summary each notebook prints, and
`info()`, what this machine has (`python -m nstlib info`).

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
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

QUICK_ENV = "NSTLIB_QUICK"
DEFAULT_SEED = 0


def is_quick() -> bool:
    """True when NSTLIB_QUICK is set to 1/true/yes (any other value, or unset, is full mode)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


DEVICE_TYPES = ("cpu", "cuda", "mps")


class DeviceError(RuntimeError, ValueError):
    """A device that is not here, or that nstlib does not run on. `label` is the device as asked
    for and `reason` says why (the command line prints `--device LABEL: REASON`)."""

    def __init__(self, label: str, reason: str):
        super().__init__(f"device {label}: {reason}")
        self.label, self.reason = label, reason


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """cuda if available, else mps (Apple silicon), else cpu; `prefer` forces one, which must be
    here: else a DeviceError (a RuntimeError and a ValueError) saying why."""
    if prefer is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError):
        raise DeviceError(repr(prefer), f"not a device name ({', '.join(DEVICE_TYPES)})") from None
    name = str(prefer)
    if device.type not in DEVICE_TYPES:
        raise DeviceError(name, f"nstlib runs on cpu, cuda or mps, not {device.type}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(name, "no CUDA GPU is available here; use cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(name, f"there are only {torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not _mps_available():
        raise DeviceError(name, "MPS (Apple GPU) is not available here; use cpu")
    return device


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


# The methods whose bf16 results were measured against fp32's and found equal (the README's
# "Precision" tables, `benchmarks/run.py --only parity` and `--only trainers`): where the hardware runs
# bfloat16 natively, they run in bf16 unless told otherwise. Everything else runs in fp32 unless asked
# (precision="bf16" or NSTLIB_PRECISION=bf16). Measured and left out: content reconstruction with
# `optimize_image` (notebook 01, 256 px, 300 L-BFGS iterations: relu1_2 25.0 dB in fp32 and 22.9 dB in
# bf16 with the loss 11x higher, relu2_2 20.3 and 19.8 dB; relu3_2 and relu4_2 within 0.1 dB and twice
# as fast: features with 3 significant digits put a floor under a loss that should reach ~0) and
# CycleGAN training (its cycle loss stayed 4-6x the seed-to-seed spread above fp32's over 200 steps).
BF16_MEASURED = ("stylize", "adain training", "stylebank training")


def precision(requested: str | None = None, device: torch.device | str | None = None,
              method: str | None = None) -> str:
    """'fp32' or 'bf16': `requested` if given, else $NSTLIB_PRECISION, else for a `method` in
    BF16_MEASURED `fast_precision(device)` (bf16 where `device`, default the best available, runs
    bfloat16 natively), else 'fp32'.

    bf16 means: networks run under bfloat16 autocast in channels-last memory, while the optimised
    image, the loss sums and optimizer state stay float32 (`autocast`)."""
    if requested is not None:
        if requested not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
        return requested
    value = os.environ.get(PRECISION_ENV, "").strip().lower()
    if value and value not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV} must be one of {PRECISIONS}, got {value!r}")
    if method is not None and method not in BF16_MEASURED:  # a misspelt name would silently mean fp32
        raise ValueError(f"method must be one of {BF16_MEASURED} or None, got {method!r}")
    return value or (fast_precision(device) if method in BF16_MEASURED else "fp32")


def autocast(device: torch.device | str, precision_: str = "fp32"):
    """The context a network's forward pass runs in: bfloat16 autocast on `device` for 'bf16'
    (CUDA; CPUs with AMX or AVX-512-bf16), a no-op for 'fp32'."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision(precision_) == "bf16")


CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = CPUINFO.read_text()
    except OSError:  # not Linux, or no /proc
        return None
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name)), None)


def cpu_bf16() -> tuple[str, ...]:
    """The CPU's bfloat16 instructions as its flags name them: 'amx_bf16', 'avx512_bf16', both, or
    none; () where /proc/cpuinfo cannot be read (macOS, Windows). Read from the flags rather than
    `torch.backends.cpu.get_cpu_capability()`, which says only 'AVX512' on an AVX-512-bf16 CPU (torch
    2.13, checked on the developers' AMD EPYC). Without these instructions bf16 is emulated: slower
    than fp32."""
    flags = (_cpuinfo_field("flags") or "").split()
    return tuple(f for f in ("amx_bf16", "avx512_bf16") if f in flags)


def cpu_name() -> str:
    """The CPU's model name and its bf16 instructions, e.g. 'AMD EPYC 9R14 (avx512_bf16)'."""
    bf16 = cpu_bf16()
    return f"{_cpuinfo_field('model name') or 'unknown CPU'} ({', '.join(bf16) or 'no bf16 instructions'})"


def fast_precision(device: torch.device | str | None = None) -> str:
    """'bf16' where `device` runs bfloat16 natively (a CUDA GPU with bf16; a CPU with AMX or
    AVX-512-bf16, `cpu_bf16`), else 'fp32' (emulated bf16 is slower than fp32): the default
    precision of the BF16_MEASURED methods (`precision`), and what notebooks ask for where speed
    matters more than the last digits."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_bf16() else "fp32"


def precision_note(device: torch.device | str | None = None) -> str:
    """Which precision runs where (`precision`), and why."""
    device = torch.device(device) if device is not None else get_device()
    native = fast_precision(device) == "bf16"
    if os.environ.get(PRECISION_ENV, "").strip():
        chosen = precision(device=device)
        # asked for where the hardware only emulates it: say so, it is slower than fp32, not faster
        slow = f", emulated on this {device.type}: slower than fp32" if chosen == "bf16" and not native else ""
        return f"{chosen} ({PRECISION_ENV}={chosen}{slow})"
    if device.type == "cuda":
        why = "this GPU runs bf16" if native else "this GPU has no bf16"
    elif device.type == "cpu":
        bf16 = cpu_bf16()
        why = f"this CPU has {' and '.join(bf16)}" if bf16 else "no bf16 instructions on this CPU"
    else:
        why = f"bf16 on {device.type} is untested"
    if not native:
        return f"fp32 (the default: {why})"
    return (f"bf16 for {', '.join(BF16_MEASURED)}, fp32 elsewhere (the default: {why}; "
            f"{PRECISION_ENV}=fp32 or bf16 sets one for all)")


def describe(device: torch.device | str | None = None) -> str:
    """One line for a notebook's setup cell: versions, device, precision, quick mode."""
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
            f"| device {where} | {precision_note(device)} | {mode}")


def info(paths: bool = True) -> str:
    """What this machine has (`python -m nstlib info`): describe()'s line, whether torchvision is
    installed, and which weights and registry images are found locally, and where they are looked
    up. `paths=False` names where each was found (the override variable or the cache) instead of
    printing the folders, for stored notebook outputs, which must not show the author's machine."""
    import importlib.util

    from . import data, weights
    from .download import cache_dir

    def where(path) -> str:
        if paths or path is None:
            return str(path)
        for label, root in ((weights.ENV_VAR, weights.weights_dir_override()), ("NSTLIB_DATA_DIR", data.data_dir_override()),
                            ("the cache", cache_dir(create=False))):
            if root is not None and Path(path).is_relative_to(root):
                return f"in {label}"
        return "(a local folder)"

    lines = [describe()]
    has_tv = importlib.util.find_spec("torchvision") is not None
    lines.append(f"torchvision: {'installed' if has_tv else 'not installed'} (nstlib does not need it)")

    override = weights.weights_dir_override()
    lines.append("")
    lines.append("weights, looked up in:")
    lines.append(f"  {weights.ENV_VAR} = {(override if paths else 'set') if override else '(not set)'}")
    lines.append(f"  cache = {cache_dir('weights', create=False) if paths else 'the download cache'}")
    for name, e in weights.REGISTRY.items():
        local = weights.find_local(e.arch, e.source)
        status = f"found     {where(local)}" if local else f"not found (downloads {e.bytes / 1e6:.0f} MB on first use)"
        lines.append(f"  {name:<18} {status}")

    override = data.data_dir_override()
    lines.append("")
    lines.append("images, looked up in:")
    lines.append(f"  NSTLIB_DATA_DIR = {(override if paths else 'set') if override else '(not set)'}")
    lines.append(f"  cache = {cache_dir('images', create=False) if paths else 'the download cache'}")
    for kind in data.KINDS:
        names = data.list_images(kind)
        missing = [n for n in names if data.find_local(n) is None]
        found = len(names) - len(missing)
        line = f"  {kind:<8} {found} of {len(names)} found"
        if missing:
            line += f"; downloaded on first use: {', '.join(missing)}"
        lines.append(line)
    return "\n".join(lines)
