"""Downloadable training sets (CycleGAN's horse2zebra, monet2photo, ...), by name, from mirrors.

The course's images come one by one through `nstlib.data`; a training set is an archive of
hundreds of images in folders (CycleGAN's layout: trainA/, trainB/, testA/, testB/). The table
`data/training_sets.tsv` lists each set: name, its URLs (the original host first, then mirrors),
sha256 and size of the archive, the folders with their image counts, credit and licence.

    folders = fetch_training_set("horse2zebra")     # {'trainA': Path(...), 'trainB': ..., ...}
    horses = ImageSet([folders["trainA"]], load_size=286)

`fetch_training_set(name)` looks, in order, in `$NSTLIB_DATA_DIR/<name>/`, in the cache
(`nstlib.download.cache_dir('datasets')/<name>/`), then downloads the archive from the first URL
that answers (progress bar, hash check when the table pins one, atomic), unpacks it into a
temporary folder and renames that into place, so an interrupted download or unpacking never leaves
a half set behind. When every host is down, the error lists what each URL answered and where to
put a copy made elsewhere. The original CycleGAN host has moved before
(people.eecs.berkeley.edu/~taesung_park -> efrosgans.eecs.berkeley.edu), hence the mirrors.

An archive whose sha256 the table leaves empty has not been pinned by the project (it was written
offline); it is then checked by its layout: every folder must exist and hold images. The counts in
the table are the published ones; a different count gives a warning, not an error.
"""
from __future__ import annotations

import csv
import os
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .data import data_dir_override, shipped_file
from .download import cache_dir, fetch, file_hash

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class TrainingSet:
    name: str
    urls: tuple[str, ...]  # original host first, then mirrors
    sha256: str  # of the archive; '' when not pinned
    bytes: int  # of the archive, for the progress bar; 0 when not known (the server's length is used)
    folders: dict[str, int]  # folder -> published image count
    credit: str
    licence: str


@lru_cache(maxsize=None)
def training_sets() -> dict[str, TrainingSet]:
    """All entries of data/training_sets.tsv by name."""
    with open(shipped_file("training_sets.tsv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    sets = {}
    for row in rows:
        folders = dict(item.split(":") for item in row["folders"].split())
        sets[row["name"]] = TrainingSet(row["name"], tuple(row["urls"].split()), row["sha256"], int(row["bytes"]),
                                        {k: int(v) for k, v in folders.items()}, row["credit"], row["licence"])
    return sets


def training_set(name: str) -> TrainingSet:
    sets = training_sets()
    if name not in sets:
        raise ValueError(f"{name!r} is not a training set of nstlib; known: {', '.join(sets)}")
    return sets[name]


def count_images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def check_layout(root: Path, entry: TrainingSet) -> dict[str, Path]:
    """The set's folders under `root`; ValueError when one is missing or holds no image."""
    folders = {}
    for folder, published in entry.folders.items():
        path = root / folder
        if not path.is_dir():
            raise ValueError(f"{root} is not a copy of {entry.name}: it has no folder {folder}/ "
                             f"(expected {', '.join(f + '/' for f in entry.folders)})")
        found = count_images(path)
        if found == 0:
            raise ValueError(f"{path} holds no images")
        if found != published:
            warnings.warn(f"{entry.name}/{folder} holds {found} images; the published set has {published}")
        folders[folder] = path
    return folders


def _find_root(unpacked: Path, entry: TrainingSet) -> Path:
    """The folder inside an unpacked archive that holds the set's folders (archives usually wrap
    them in one top folder named after the set)."""
    first = next(iter(entry.folders))
    for candidate in [unpacked, unpacked / entry.name, *sorted(unpacked.iterdir())]:
        if (candidate / first).is_dir():
            return candidate
    raise ValueError(f"the archive of {entry.name} has no folder {first}/")


def fetch_training_set(name: str) -> dict[str, Path]:
    """Local folders of the training set `name` ({'trainA': Path, ...}), downloading and unpacking
    it when neither NSTLIB_DATA_DIR nor the cache holds it."""
    entry = training_set(name)
    override = data_dir_override()
    if override is not None and (override / name).is_dir():
        return check_layout(override / name, entry)
    target = cache_dir("datasets") / name
    if target.is_dir():
        return check_layout(target, entry)
    archive = fetch(list(entry.urls), cache_dir("datasets") / f"{name}.zip", sha256=entry.sha256 or None,
                    size=entry.bytes or None, hint=f"Or unpack it into $NSTLIB_DATA_DIR/{name}/.")
    if not entry.sha256:
        print(f"{name}: sha256 {file_hash(archive)} (not pinned by nstlib; checked by its folders)")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
            root = _find_root(Path(tmp), entry)
            check_layout(root, entry)
        except (zipfile.BadZipFile, ValueError) as e:
            archive.unlink()  # a wrong file must not be found again as if it were the set
            reason = "is not a zip archive" if isinstance(e, zipfile.BadZipFile) else f"is not the set: {e}"
            raise ValueError(f"the download {archive.name} {reason}; it was deleted") from None
        os.replace(root, target)  # atomic: the set appears whole or not at all
    archive.unlink()
    return {folder: target / folder for folder in entry.folders}  # checked above, before the rename


def remove_training_set(name: str) -> None:
    """Delete the cached copy of a training set (its archive and its folders)."""
    shutil.rmtree(cache_dir("datasets") / training_set(name).name, ignore_errors=True)
    (cache_dir("datasets") / f"{name}.zip").unlink(missing_ok=True)
