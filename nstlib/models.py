"""Networks trained by the project and shipped with it, so that a notebook's results run without
training first (AdaIN's decoder for notebook 05; StyleBank for notebook 06).

`data/models.tsv` lists each one: name, file (under data/models/), sha256, bytes, and the one
command that reproduces it. The files are committed, small (fp16) and checked by hash before use:

    path = nstlib.models.shipped_model("adain_decoder_vgg16")
    training_record(path)           # how it was trained: settings, images, steps, time, loss curves

A file whose bytes differ from the table (a bad checkout, a half-finished export, a model retrained
without updating the table) is refused with a clear error instead of loading silently. The hash pins
the committed file; running the command again trains an equivalent model, not the same bytes (the
file records its own training time).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .download import HashMismatchError, check_hash
from .registry import read_table, shipped_file


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: str  # relative to data/, e.g. 'models/adain_decoder_vgg16.pth'
    sha256: str
    bytes: int
    command: str  # the command that trained and exported it


@lru_cache(maxsize=None)
def shipped_models() -> dict[str, ShippedModel]:
    """All entries of data/models.tsv by name."""
    rows = read_table(shipped_file("models.tsv"), ShippedModel, unique="name", bytes=int)
    return {m.name: m for m in rows}


def shipped_model(name: str) -> Path:
    """The path of shipped model `name`, after checking its size and sha256 against the table."""
    models = shipped_models()
    if name not in models:
        raise ValueError(f"{name!r} is not a model shipped with nstlib; shipped: {', '.join(models) or 'none'}")
    entry = models[name]
    path = shipped_file(entry.file)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: {path} is missing; reinstall nstlib or re-create it with: {entry.command}")
    size = path.stat().st_size
    if size != entry.bytes:
        raise HashMismatchError(f"{name}: {path} has {size} bytes, data/models.tsv expects {entry.bytes}. "
                                f"Re-create it with: {entry.command}")
    try:
        check_hash(path, sha256=entry.sha256, delete=False, label=f"{name}: {path}")
    except HashMismatchError as e:
        raise HashMismatchError(f"{e} Re-create it with: {entry.command}") from None
    return path


def training_record(path: str | Path) -> dict:
    """How an exported model was trained, as its exporter stored it under 'training' (settings,
    images, steps, seconds, device, loss curves: `training.training_summary`); {} if not recorded."""
    from .training import load_checkpoint

    return load_checkpoint(path).get("training", {})
