"""Fetching files: where downloads land, and one careful download routine for weights and data.

Every pretrained weight file and every registry image reaches the user through `fetch()`:

* HTTPS only (plain HTTP is accepted for 127.0.0.1/localhost, which the tests serve from), at every
  redirect as well as the first hop;
* at most the registry's size (plus 5% and 64 KiB) is accepted: a larger Content-Length is refused
  before any byte is read, and a stream that runs over is cut off;
* a tqdm progress bar;
* an atomic write: bytes go to `<name>.part` beside the target, which is renamed only once complete
  and hash-checked, so an interrupted download never leaves a file that looks finished;
* a hash check (sha256 or md5, or a sha256 prefix as in torchvision's file names); a mismatch deletes
  the file and says so;
* the URLs are tried in order (primary, then mirrors); when all fail, `DownloadError` says what to
  download by hand and which environment variable points at a local copy.

Where things land (`cache_dir()`): `$NSTLIB_CACHE_DIR` if set; else `data/cache/` of the repository
when nstlib runs from a source checkout (`pip install -e .`, git-ignored); else the user cache
directory (`$XDG_CACHE_HOME/nstlib` or `~/.cache/nstlib`).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

CHUNK = 1 << 20  # 1 MiB per read: few syscalls, a smooth progress bar
TIMEOUT_S = 30  # per socket operation, not for the whole file
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class DownloadError(RuntimeError):
    """No URL gave the file; the message says what to download and where to put it."""


class HashMismatchError(DownloadError):
    """The bytes arrived but their hash is not the registry's; the file was deleted."""


def repo_root() -> Path | None:
    """The source checkout nstlib runs from, or None for a regular (non-editable) install."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "data").is_dir():
        return root
    return None


CACHE_ENV = "NSTLIB_CACHE_DIR"


def cache_dir(kind: str = "", create: bool = True) -> Path:
    """Directory where downloads of `kind` ('weights', 'images') land; created on demand
    (`create=False` only names it: look-ups must not create a cache they do not need).

    A cache that is a file, or cannot be created, is a ValueError naming where it came from."""
    if os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV]).expanduser()
        origin = f"{CACHE_ENV}={os.environ[CACHE_ENV]}"
    elif repo_root() is not None:
        base = repo_root() / "data" / "cache"
        origin = f"the checkout's cache {base}"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        base = Path(xdg) / "nstlib"
        origin = f"the user cache {base}"
    path = base / kind if kind else base
    for p in (base, path):
        if p.exists() and not p.is_dir():
            raise ValueError(f"{origin}: {p} is a file, not a folder; point {CACHE_ENV} at a folder")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"{origin}: cannot create the cache folder {path} ({e.strerror or e}); "
                             f"point {CACHE_ENV} at a writable folder") from None
    return path


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks so large weight files do not fill memory."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_hash(
    path: str | Path,
    sha256: str | None = None,
    md5: str | None = None,
    delete: bool = True,
    label: str | None = None,
) -> None:
    """Raise HashMismatchError unless the hash of `path` matches; delete the file if `delete`.

    `sha256` may be a prefix (torchvision names its files `vgg16-397923af.pth`, the first 8 hex
    digits of the sha256); at least 8 digits are required so a typo cannot pass as a prefix.
    """
    expected = [(alg, want.lower()) for alg, want in (("sha256", sha256), ("md5", md5)) if want]
    if not expected:
        raise ValueError("check_hash needs a sha256 or an md5 to check against")
    for algorithm, want in expected:
        if len(want) < 8:
            raise ValueError(f"{algorithm} {want!r} is too short to identify a file")
        got = file_hash(path, algorithm)
        if not got.startswith(want):
            fate = "The file was deleted; it is" if delete else "It is"
            if delete:
                Path(path).unlink(missing_ok=True)
            raise HashMismatchError(
                f"{label or path}: {algorithm} is {got}, expected {want}. "
                f"{fate} corrupt or not the file the registry names."
            )


def _check_scheme(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS):
        return
    raise ValueError(f"refusing to download {url}: only https:// URLs are allowed")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL `_check_scheme` allows: https -> http is refused at every hop."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            _check_scheme(newurl)
        except ValueError:
            raise DownloadError(f"refusing the redirect to {newurl}: only https:// URLs are allowed") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_CheckedRedirects)

# A download may exceed the registry's size by this much (a mirror's re-packed copy, say) before it
# is cut off: the hash check decides whether the bytes are right, this only bounds the disk used.
SIZE_SLACK = 0.05
SIZE_SLACK_BYTES = 1 << 16


def max_download_bytes(size: int | None) -> int | None:
    """The most bytes fetch accepts for a file the registry says has `size` bytes (None: no cap)."""
    return None if size is None else int(size * (1 + SIZE_SLACK)) + SIZE_SLACK_BYTES


def _download_one(url: str, part: Path, desc: str, expected_bytes: int | None) -> None:
    """Stream `url` into `part`; raise on HTTP errors, on short reads (interrupted transfers) and on
    more bytes than the registry's size allows (announced or received)."""
    request = urllib.request.Request(url, headers={"User-Agent": "nstlib"})
    cap = max_download_bytes(expected_bytes)
    with _OPENER.open(request, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        if length is not None and cap is not None and int(length) > cap:
            raise DownloadError(f"the server announces {int(length):,} bytes; the registry's file has "
                                f"{expected_bytes:,}: refused before downloading")
        total = int(length) if length is not None else expected_bytes
        received = 0
        with open(part, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK)
                except http.client.IncompleteRead as e:  # a chunked response cut short
                    raise DownloadError(
                        f"transfer interrupted after {received + len(e.partial)} bytes"
                    ) from None
                if not block:
                    break
                if cap is not None and received + len(block) > cap:
                    raise DownloadError(f"more than {cap:,} bytes arrived; the registry's file has "
                                        f"{expected_bytes:,}: refused")
                out.write(block)
                received += len(block)
                bar.update(len(block))
    # Only the server's own Content-Length can prove a transfer short; the registry's size is for
    # the progress bar, and the hash check decides whether the bytes are right.
    if length is not None and received != int(length):
        raise DownloadError(f"transfer interrupted: got {received} of {length} bytes")


def read_url(url: str, max_bytes: int = 20 * 2**20) -> bytes:
    """The bytes at `url`, in memory, for a learner's own image (the picker's URL field): https only
    (at every redirect), at most `max_bytes`; nothing is cached, and since no hash pins a URL the
    caller decodes the bytes as an untrusted image. DownloadError on any failure."""
    _check_scheme(url)
    request = urllib.request.Request(url, headers={"User-Agent": "nstlib"})
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            if length is not None and int(length) > max_bytes:
                raise DownloadError(f"{url} is {int(length):,} bytes, more than the {max_bytes:,} allowed")
            data = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise DownloadError(f"could not read {url}: {getattr(e, 'reason', e)}") from None
    if len(data) > max_bytes:
        raise DownloadError(f"{url} sends more than the {max_bytes:,} bytes allowed")
    return data


def fetch(
    urls: Sequence[str],
    dest: str | Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    hint: str = "",
) -> Path:
    """Download the file at the first working URL of `urls` to `dest`, atomically and hash-checked.

    Returns `dest`. An existing `dest` is returned as is (callers check hashes of cached files when
    they need to). `hint` is appended to the error raised when every URL fails, e.g. the environment
    variable that names a local copy.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    if not urls:
        raise ValueError("fetch needs at least one URL")
    for url in urls:
        _check_scheme(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    mismatch = False
    for url in urls:
        try:
            _download_one(url, part, desc=dest.name, expected_bytes=size)
            if sha256 or md5:
                check_hash(part, sha256=sha256, md5=md5, label=dest.name)
            os.replace(part, dest)  # atomic on POSIX and Windows
            return dest
        except HashMismatchError as e:
            # A wrong file from one host is worth reporting even if a mirror then works.
            failures.append(f"  {url}: {e}")
            mismatch = True
        except (urllib.error.URLError, OSError, http.client.HTTPException, DownloadError) as e:
            # HTTPError's reason is only 'Not Found'; its str() keeps the status code
            http_error = isinstance(e, urllib.error.HTTPError)
            reason = e if http_error else getattr(e, "reason", None) or e
            failures.append(f"  {url}: {reason}")
        finally:
            part.unlink(missing_ok=True)
    size_note = f" ({size / 2**20:.1f} MiB)" if size else ""
    error = HashMismatchError if mismatch else DownloadError
    raise error(
        f"Could not download {dest.name}{size_note}. Tried:\n"
        + "\n".join(failures)
        + f"\nIf this machine is offline, download it from one of the URLs above on a machine that "
        f"is online and save it as {dest}." + (f" {hint}" if hint else "")
    )
