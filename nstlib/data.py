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

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .download import HashMismatchError, cache_dir, check_hash, fetch
from .registry import DATA_ENV, find_override, override_dir, read_table, shipped_file

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


def registry_path() -> Path:
    """data/registry.tsv of the checkout, or its copy installed as the package nstlib.assets."""
    return shipped_file("registry.tsv")


@lru_cache(maxsize=None)
def registry() -> dict[str, Asset]:
    """All registry entries by name, in file order."""
    rows = read_table(registry_path(), Asset, unique="name", bytes=int, kind=_kind)
    return {a.name: a for a in rows}


def _kind(text: str) -> str:
    if text not in KINDS:
        raise ValueError(f"unknown kind, not one of {KINDS}")
    return text


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
    """The folder $NSTLIB_DATA_DIR names, or None."""
    return override_dir(DATA_ENV)


def find_local(name: str) -> Path | None:
    """The local path `get` would return without downloading, or None."""
    a = asset(name)
    if a.bundled:
        import skimage.data

        path = Path(skimage.data.__file__).parent / a.url[len(SKIMAGE_PREFIX):]
        return path if path.is_file() else None
    local = find_override(DATA_ENV, a.file, Path(a.file).name)
    if local is not None:
        try:
            check_hash(local, sha256=a.sha256, delete=False)
        except HashMismatchError as e:
            raise HashMismatchError(f"{DATA_ENV} holds a different file: {e}") from None
        return local
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
        hint=f"Or set {DATA_ENV} to a directory that holds content/, style/ and masks/ "
        "with the registry's files.",
    )
