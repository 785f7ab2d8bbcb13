"""The data registry: every photo, painting and mask the course uses, by name.

One file, `data/registry.tsv`, lists each asset: name, kind (content / style / mask), file, URL,
sha256, bytes, credit and licence. The course refers to images by name (`load_image('tubingen')`),
so a notebook never hard-codes a path or a URL.

`get(name)` returns a local path, looking in this order:

1. `$NSTLIB_DATA_DIR`, laid out as the registry's `file` column (`content/tubingen.jpg`; a flat
   directory with `tubingen.jpg` works too); the file's sha256 must match;
2. the download cache (`nstlib.download.cache_dir('images')`), re-checked by sha256;
3. a download from the registry's URL (HTTPS, progress bar, sha256 check, atomic write).

scikit-image's bundled photos (astronaut, coffee, chelsea, rocket; URL `skimage:<file>`) come from
the installed package and need no download. Copyrighted paintings are only ever downloaded at run
time from their public URL, never committed; `credit(name)` gives the line to print under a figure.
"""
from __future__ import annotations

import csv
import difflib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .download import HashMismatchError, cache_dir, check_hash, fetch, repo_root

KINDS = ("content", "style", "mask")
SKIMAGE_PREFIX = "skimage:"


@dataclass(frozen=True)
class Asset:
    name: str
    kind: str  # 'content', 'style' or 'mask'
    file: str  # relative path, e.g. 'style/starry_night.jpg'
    url: str  # https://... or skimage:<file>
    sha256: str
    bytes: int
    credit: str
    licence: str

    @property
    def bundled(self) -> bool:
        """True for images that ship with scikit-image (no download)."""
        return self.url.startswith(SKIMAGE_PREFIX)


def shipped_file(name: str) -> Path:
    """A file of data/ (a registry table, a shipped model): the checkout's, or its copy installed as
    the package nstlib.assets."""
    root = repo_root()
    if root is not None:
        return root / "data" / name
    from importlib.resources import files

    return Path(str(files("nstlib.assets") / name))


def registry_path() -> Path:
    """data/registry.tsv of the checkout, or its copy installed as the package nstlib.assets."""
    return shipped_file("registry.tsv")


@lru_cache(maxsize=None)
def registry() -> dict[str, Asset]:
    """All registry entries by name, in file order."""
    with open(registry_path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assets = {}
    for row in rows:
        asset = Asset(**{**row, "bytes": int(row["bytes"])})
        if asset.kind not in KINDS:
            raise ValueError(f"registry entry {asset.name}: unknown kind {asset.kind!r}")
        assets[asset.name] = asset
    return assets


def asset(name: str) -> Asset:
    """The registry entry for `name`; a clear error (with suggestions) for unknown names."""
    entries = registry()
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, entries, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"{name!r} is neither an existing file nor a name in the data registry.{hint} "
        "nstlib.data.list_images() lists the names."
    )


def list_images(kind: str | None = None) -> list[str]:
    """Names of the registry's images of one kind ('content', 'style', 'mask'), or of all."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return [a.name for a in registry().values() if kind is None or a.kind == kind]


def credit(name: str) -> str:
    """One line to print with a figure: what the image is, where it is from, its licence."""
    a = asset(name)
    return f"{a.name}: {a.credit} ({a.licence})"


def data_dir_override() -> Path | None:
    value = os.environ.get("NSTLIB_DATA_DIR")
    return Path(value).expanduser() if value else None


def find_local(name: str) -> Path | None:
    """The local path `get` would return without downloading, or None."""
    a = asset(name)
    if a.bundled:
        import skimage.data

        path = Path(skimage.data.__file__).parent / a.url[len(SKIMAGE_PREFIX):]
        return path if path.is_file() else None
    override = data_dir_override()
    if override is not None:
        for candidate in (override / a.file, override / Path(a.file).name):
            if candidate.is_file():
                try:
                    check_hash(candidate, sha256=a.sha256, delete=False)
                except HashMismatchError as e:
                    raise HashMismatchError(f"NSTLIB_DATA_DIR holds a different file: {e}") from None
                return candidate
    cached = cache_dir("images", create=False) / a.file
    if cached.is_file():
        try:
            check_hash(cached, sha256=a.sha256)  # deletes a corrupt cached copy
            return cached
        except HashMismatchError:
            return None
    return None


def get(name: str) -> Path:
    """Local path of the registry asset `name`, downloading it (hash-checked) if needed."""
    a = asset(name)
    local = find_local(name)
    if local is not None:
        return local
    if a.bundled:
        raise FileNotFoundError(
            f"{name}: scikit-image's bundled file {a.url[len(SKIMAGE_PREFIX):]} is missing; "
            "reinstall scikit-image"
        )
    return fetch(
        [a.url],
        cache_dir("images") / a.file,
        sha256=a.sha256,
        size=a.bytes,
        hint="Or set NSTLIB_DATA_DIR to a directory that holds content/, style/ and masks/ "
        "with the registry's files.",
    )
