"""Writing files so that a crash never leaves half of one: the one atomic-write helper of nstlib.

Every file nstlib writes for the learner (images, checkpoints, converted weights, exported models,
CSV tables, figures) goes through `atomic_write`:

    with atomic_write(path) as tmp:
        torch.save(state, tmp)      # or image.save(tmp), fig.savefig(tmp), ...

The bytes go to `.<name>.part/<name>` beside the target. Keeping the file's own name matters twice:
formats inferred from the suffix (matplotlib, PIL) see the right one, and `torch.save` writes the
name into its archive, so a save through here is byte-identical to a direct one (the weights
registry pins such hashes). After the block the file is fsync'ed, renamed over `path` and the
folder fsync'ed, so the rename survives a power cut. If the block raises (a full disk, Ctrl-C, a
hash check that failed), the `.part` folder is removed and an existing `path` is left as it was.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# The image files nstlib reads from a folder (datasets, training sets, the picker): one list.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file whose suffix is one of IMAGE_SUFFIXES (any case) and whose name is not hidden."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write `path`'s bytes to; on leaving the block without an error,
    make it `path` durably (fsync, rename, fsync of the folder). Missing parent folders are made."""
    path = Path(path)
    part_dir = path.with_name(f".{path.name}.part")
    part = part_dir / path.name
    try:
        part_dir.mkdir(parents=True, exist_ok=True)
        yield part
        with open(part, "rb+") as f:
            os.fsync(f.fileno())  # the bytes are on disk before the rename can replace an old file
        os.replace(part, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(part_dir, ignore_errors=True)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename in `directory` durable (POSIX); a no-op where a folder cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
