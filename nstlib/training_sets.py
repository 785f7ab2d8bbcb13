"""Training sets by name: BSDS500, WikiArt, Monet, horse2zebra, Deep Photo, and CycleGAN's archives.

One table, `data/training_sets.tsv`, lists every set: its name, where it lies under
`$NSTLIB_DATASETS_DIR` (`path`, the layout of the developers' `../shared/datasets`), the per-file
manifest that pins it (`manifest`, a file of `data/` with one row per file: path, sha256, bytes)
and that manifest's own sha256 (`manifest_sha256`, so the manifest cannot drift either), where each
file can be downloaded (`file_url`, a template with `{path}`; `renames` maps local folder names to
the source repository's), the held-out folders that are never trained on (`held_out`), the counts
and bytes of the pinned files, credit and licence; and, for CycleGAN's sets, the original archive
(`urls`: the original host first, then mirrors; `sha256` and `bytes` of the archive where known;
`folders`: the archive's folders with their published image counts).

Names and why:

* `bsds500`: the 500 BSDS500 photos (train/val/test 200/100/200); content images. `test/` is held
  out (BSDS500's own split: the AdaIN decoder's reconstruction is measured on it).
* `monet`: 500 of the 1072 Monet paintings of CycleGAN's `monet2photo/trainA`; style images. Named
  after the painter, not the archive, because it is paintings only; nothing held out (style
  evaluation uses the registry's HELD_OUT paintings).
* `wikiart`: 120 paintings in each of 10 WikiArt styles (folders `cubism`, `ukiyo_e`, ...); style
  images; a style folder is a split: `wikiart/cubism`.
* `horse2zebra`: CycleGAN's horses (A) and zebras (B). Two things under one name: the pinned subset
  (200/200/40/40 of trainA/trainB/testA/testB, the shared copy; `dataset()` and the trainers use it)
  and the full archive (1067/1334/120/140; `fetch_training_set()`, for full-scale runs). The subset's
  manifest pins the subset only; the archive's sha256 is not known (the project has never been able
  to download it), so when the archive is unpacked the subset's 480 files are checked inside it
  byte for byte and the archive's other files by its layout. `testA`/`testB` are held out.
* `deep_photo`: 10 input/style photo pairs of Luan et al. (2017) with their segmentation masks;
  evaluation images for photorealistic transfer, not a training set, so every folder is held out.
* `monet2photo`: CycleGAN's archive; its manifest pins the 500 `trainA` files of `monet` (the shared
  copy holds no more), checked inside the unpacked archive like horse2zebra's subset.
* `vangogh2photo`, `ukiyoe2photo`, `cezanne2photo`: CycleGAN's archives, pinned by nothing (no
  archive hash, no copy to make a manifest from): `fetch_training_set` refuses them unless called
  with `allow_unpinned=True`, and says so.

Looking a set up, `dataset(name, split)` / `dataset_files(name, split)`:

1. `$NSTLIB_DATASETS_DIR/<path>` (CI and the developers' runs set it);
2. the cache, `cache_dir('datasets')/pinned/<path>` (and, for horse2zebra and monet2photo, an
   archive unpacked by `fetch_training_set`);
3. a download, file by file from the pinned snapshot (`file_url`), each file hash-checked as it
   arrives, into `pinned/.partial/<name>/` (an interrupted download resumes there), then the whole
   set checked against the manifest and renamed into place in one step.

Every file is checked against its manifest (size and sha256) the first time it is read from a
folder; a stamp (its size and mtime) is then kept in `cache_dir('datasets')/verified/`, so a
training run does not re-hash thousands of files at each start, and a file that changes (new size
or mtime) is hashed again. `verify(name, rehash=True)` (`python -m nstlib datasets --verify`)
ignores the stamps. A missing or changed file is named in the error.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.parse
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .download import cache_dir, fetch, file_hash
from .files import is_image_file
from .registry import DATA_ENV, DATASETS_ENV, find_override, override_dir, read_table, shipped_file


class DatasetError(ValueError):
    """A set is missing, incomplete or differs from its manifest; the message names the files."""


@dataclass(frozen=True)
class TrainingSet:
    name: str
    urls: tuple[str, ...]  # the archive: original host first, then mirrors; () when there is none
    sha256: str  # of the archive; '' when not pinned
    bytes: int  # of the archive, for the progress bar; 0 when not known (the server's length is used)
    folders: dict[str, int]  # the archive's folder -> published image count
    credit: str
    licence: str
    path: str = ""  # where the pinned files lie under $NSTLIB_DATASETS_DIR ('' : nowhere)
    manifest: str = ""  # data/ file listing the pinned files; '' when nothing pins the files
    manifest_sha256: str = ""
    file_url: str = ""  # template with {path}: where each pinned file can be downloaded
    renames: dict[str, str] = field(default_factory=dict)  # local top folder -> the source's
    held_out: tuple[str, ...] = ()  # top folders never trained on
    files: int = 0  # pinned files
    files_bytes: int = 0

    @property
    def pinned(self) -> bool:
        return bool(self.manifest) or bool(self.sha256)


@dataclass(frozen=True)
class ManifestRow:
    path: str  # relative to the set's folder, '/'-separated
    sha256: str
    bytes: int


@lru_cache(maxsize=None)
def training_sets() -> dict[str, TrainingSet]:
    """All entries of data/training_sets.tsv by name. Lists are space-separated: `urls` and
    `held_out` plain, `folders` as folder:count, `renames` as local=source; empty numbers are 0."""
    rows = read_table(shipped_file("training_sets.tsv"), TrainingSet, unique="name",
                      urls=_words, held_out=_words, bytes=_count, files=_count, files_bytes=_count,
                      folders=lambda text: {k: int(v) for k, v in _pairs(text, ":").items()},
                      renames=lambda text: _pairs(text, "="))
    return {s.name: s for s in rows}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _count(text: str) -> int:
    return int(text or 0)


def _pairs(text: str, sep: str) -> dict[str, str]:
    """'a:1 b:2' -> {'a': '1', 'b': '2'} (sep ':')."""
    pairs = [item.split(sep) for item in text.split()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"expected space-separated key{sep}value items")
    return dict(pairs)


def training_set(name: str) -> TrainingSet:
    sets = training_sets()
    if name not in sets:
        raise ValueError(f"{name!r} is not a training set of nstlib; known: {', '.join(sets)}")
    return sets[name]


# ----------------------------------------------------------------------------- manifests

def read_manifest(path: str | Path) -> list[ManifestRow]:
    """The rows of a manifest (path, sha256, bytes), each path once."""
    return read_table(path, ManifestRow, unique="path", bytes=int)


def write_manifest(folder: str | Path, out: str | Path) -> str:
    """Write the manifest of every file under `folder` (path, sha256, bytes; sorted by path, as
    `../shared/datasets/MANIFEST.tsv`) to `out`; returns the manifest's own sha256."""
    folder = Path(folder)
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    lines = ["path\tsha256\tbytes"] + [f"{rel}\t{file_hash(p)}\t{p.stat().st_size}" for rel, p in files]
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return file_hash(out)


@lru_cache(maxsize=None)
def _manifest_cached(path: str, sha256: str) -> tuple[ManifestRow, ...]:
    got = file_hash(path)
    if got != sha256:
        raise DatasetError(f"{path}: sha256 is {got}, the table pins {sha256}: the manifest was changed "
                           "(regenerate it and update manifest_sha256 in data/training_sets.tsv together)")
    return tuple(read_manifest(path))


def manifest(name: str) -> tuple[ManifestRow, ...]:
    """The pinned files of set `name`, after checking the manifest file against its pinned sha256."""
    entry = training_set(name)
    if not entry.manifest:
        raise DatasetError(_unpinned_message(entry))
    return _manifest_cached(str(shipped_file(entry.manifest)), entry.manifest_sha256)


def _unpinned_message(entry: TrainingSet) -> str:
    return (f"{entry.name} is not pinned file by file: no manifest of its files is known (the developers' "
            f"shared copy does not hold it) and {'its archive sha256 is pinned' if entry.sha256 else 'neither is the sha256 of its archive'}. "
            f"Known sets with manifests: {', '.join(n for n, e in training_sets().items() if e.manifest)}.")


def splits(name: str) -> dict[str, int]:
    """Top folders of a set with their pinned file counts ({} when its files lie directly in it)."""
    counts: dict[str, int] = {}
    for row in manifest(name):
        if "/" in row.path:
            top = row.path.split("/", 1)[0]
            counts[top] = counts.get(top, 0) + 1
    return counts


def _select(name: str, split: str | None) -> list[ManifestRow]:
    rows = list(manifest(name))
    if not split:
        return rows
    prefix = split.strip("/") + "/"
    chosen = [r for r in rows if r.path.startswith(prefix)]
    if not chosen:
        known = ", ".join(splits(name)) or "(none: its files lie in one folder)"
        raise DatasetError(f"{name} has no folder {split!r}; its folders: {known}")
    return chosen


# ----------------------------------------------------------------------------- verification

def _stamp_file(root: Path, entry: TrainingSet) -> Path:
    key = hashlib.sha256(f"{root.resolve()}\n{entry.manifest_sha256}".encode()).hexdigest()[:24]
    return cache_dir("datasets") / "verified" / f"{entry.name}-{key}.json"


def _load_stamps(path: Path) -> dict[str, list[int]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_stamps(path: Path, stamps: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stamps, sort_keys=True))
    os.replace(tmp, path)


def check_files(name: str, root: str | Path, split: str | None = None, rehash: bool = False,
                rows: list[ManifestRow] | None = None, remember: bool = True) -> list[str]:
    """Problems of the copy of set `name` in `root` (restricted to `split`): one line per missing
    or changed file, naming it; [] when every file matches the manifest. Files verified before
    and unchanged since (same size and mtime) are not hashed again unless `rehash`; `remember`
    False keeps no stamps (a temporary folder)."""
    entry, root = training_set(name), Path(root)
    stamp_path = _stamp_file(root, entry)
    stamps = {} if rehash else _load_stamps(stamp_path)
    kept = _load_stamps(stamp_path) if rehash else stamps
    problems, changed = [], False
    for row in (rows if rows is not None else _select(name, split)):
        path = root / row.path
        try:
            st = path.stat()
        except OSError:
            problems.append(f"{path}: missing")
            continue
        stamp = [st.st_size, st.st_mtime_ns]
        if stamps.get(row.path) == stamp:
            continue
        if st.st_size != row.bytes:
            problems.append(f"{path}: {st.st_size} bytes, the manifest says {row.bytes}")
        elif (got := file_hash(path)) != row.sha256:
            problems.append(f"{path}: sha256 {got}, the manifest says {row.sha256}")
        else:
            kept[row.path], changed = stamp, True
            continue
        changed |= kept.pop(row.path, None) is not None
    if changed and remember:
        _save_stamps(stamp_path, kept)
    return problems


def _raise_problems(name: str, root: Path, problems: list[str], advice: str) -> None:
    shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
    raise DatasetError(f"{name} in {root} differs from its manifest ({len(problems)} files):\n  {shown}\n{advice}")


# ----------------------------------------------------------------------------- lookup

def datasets_dir_override() -> Path | None:
    """The folder $NSTLIB_DATASETS_DIR names, or None."""
    return override_dir(DATASETS_ENV)


def pinned_cache() -> Path:
    """Where downloaded pinned sets lie, laid out like $NSTLIB_DATASETS_DIR."""
    return cache_dir("datasets") / "pinned"


def local_root(name: str) -> tuple[Path, str] | None:
    """(folder, where) of the local copy `dataset` would use without downloading: where is
    'override', 'cache' or 'archive'; None when there is none. Nothing is verified here."""
    entry = training_set(name)
    candidates = []
    if entry.path:
        candidates += [(find_override(DATASETS_ENV, entry.path, folder=True), "override"),
                       (pinned_cache() / entry.path, "cache")]
    if entry.urls and entry.manifest:  # an archive unpacked by fetch_training_set holds the pinned files
        candidates.append((cache_dir("datasets") / entry.name, "archive"))
    for folder, where in candidates:
        if folder is not None and folder.is_dir():
            return folder, where
    return None


def _verified_root(name: str, split: str | None, download: bool, rows: list[ManifestRow] | None = None) -> Path:
    """The folder of set `name` after checking its files under `split` (or `rows`; see `dataset`)."""
    entry = training_set(name)
    _select(name, split)  # refuses unknown names, unpinned sets and unknown splits before any work
    found = local_root(name)
    if found is None:
        if not download:
            raise DatasetError(f"{name} is not here: not in ${DATASETS_ENV}/{entry.path} "
                               f"({datasets_dir_override() or 'not set'}) nor in {pinned_cache() / entry.path}")
        return download_set(name)
    root, where = found
    problems = check_files(name, root, split, rows=rows)
    if problems:
        advice = {"override": f"${DATASETS_ENV} holds a different copy: restore the files named above.",
                  "cache": f"Delete {root} (nstlib.training_sets.remove_training_set({name!r})) to download it again.",
                  "archive": f"The unpacked archive in {root} is not the pinned set: delete it to download "
                             "the pinned files instead."}[where]
        _raise_problems(name, root, problems, advice)
    return root


def dataset(name: str, split: str | None = None, download: bool = True) -> Path:
    """The verified local folder of set `name` (or of its sub-folder `split`: 'train', 'testA', a
    WikiArt style), looked up in $NSTLIB_DATASETS_DIR, the cache, then downloaded (unless
    `download` is False). Every pinned file under it has been checked against the manifest; files
    the manifest does not list (an unpacked full archive has more) are not part of the set."""
    root = _verified_root(name, split, download)
    return root / split.strip("/") if split else root


def dataset_files(name: str, split: str | None = None, training: bool = False, download: bool = True) -> list[Path]:
    """The verified files of set `name` (or of `split`), sorted by path. With `training`, the
    held-out folders are left out, and asking for one of them is an error."""
    entry = training_set(name)
    if training and split and split.strip("/").split("/")[0] in entry.held_out:
        raise DatasetError(f"{name}/{split} is held out for evaluation ({name}'s held-out folders: "
                           f"{', '.join(entry.held_out)}): it is never trained on")
    rows = _select(name, split)
    if training:
        rows = [r for r in rows if "/" not in r.path or r.path.split("/", 1)[0] not in entry.held_out]
        if not rows:
            raise DatasetError(f"every folder of {name} is held out ({', '.join(entry.held_out)}): nothing to train on")
    root = _verified_root(name, split, download, rows)  # checks the files returned, not the held-out ones
    return [root / r.path for r in rows]


def parse_spec(spec: str) -> tuple[str, str | None] | None:
    """(name, split) for 'bsds500', 'bsds500/train', 'wikiart/cubism', an optional 'datasets:'
    prefix, or a set's path under $NSTLIB_DATASETS_DIR ('photos/bsds500/train'); None otherwise."""
    text = spec[len("datasets:"):] if spec.startswith("datasets:") else spec
    text = text.strip("/")
    sets = training_sets()
    head, _, rest = text.partition("/")
    if head in sets and sets[head].manifest:
        return head, rest or None
    for name, entry in sets.items():
        if entry.path and entry.manifest and (text == entry.path or text.startswith(entry.path + "/")):
            return name, text[len(entry.path) + 1:] or None
    return None


def download_set(name: str) -> Path:
    """Download the pinned files of set `name` one by one from `file_url` into the cache (each
    hash-checked; an interrupted download resumes), check the whole set and move it into place
    atomically; returns its folder."""
    entry = training_set(name)
    rows = manifest(name)
    if not entry.file_url:
        raise DatasetError(f"{name} names no URL its files can be downloaded from; put a copy in "
                           f"${DATASETS_ENV}/{entry.path}")
    target = pinned_cache() / entry.path
    staging = pinned_cache() / ".partial" / name
    staging.mkdir(parents=True, exist_ok=True)
    hint = (f"Or set {DATASETS_ENV} to a folder that holds {entry.path}/ (laid out like the course's "
            "shared datasets).")
    for row in rows:
        top, _, rest = row.path.partition("/")
        remote = f"{entry.renames.get(top, top)}/{rest}" if rest else row.path
        url = entry.file_url.format(path=urllib.parse.quote(remote))
        fetch([url], staging / row.path, sha256=row.sha256, size=row.bytes, hint=hint)
    problems = check_files(name, staging, rehash=True)  # files left by an earlier, interrupted run too
    if problems:
        for line in problems:  # a bad leftover must not be found again
            Path(line.split(": ", 1)[0]).unlink(missing_ok=True)
        _raise_problems(name, staging, problems, "The files named were deleted; run again to download them again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # an earlier copy that failed its check
        shutil.rmtree(target)
    os.replace(staging, target)  # the set appears whole or not at all
    stamps = _stamp_file(staging, entry)
    if stamps.is_file():  # a rename keeps sizes and mtimes: the stamps hold for the new place
        os.replace(stamps, _stamp_file(target, entry))
    return target


def status(name: str) -> dict:
    """The local state of a set, cheaply (no hashing): where it is, how many pinned files are there,
    and how many are stamped as verified."""
    entry = training_set(name)
    out = {"name": name, "pinned": entry.pinned, "files": entry.files, "bytes": entry.files_bytes}
    if not entry.manifest:
        return out | {"where": None, "state": "archive only, not pinned file by file" if entry.urls else "no source"}
    found = local_root(name)
    if found is None:
        if not entry.path:
            return out | {"where": None, "state": f"archive not downloaded; its manifest pins {entry.files} of its files"}
        return out | {"where": None, "state": "not here (downloaded on first use)"}
    root, where = found
    stamps = _load_stamps(_stamp_file(root, entry))
    present = verified = 0
    for row in manifest(name):
        try:
            st = (root / row.path).stat()
        except OSError:
            continue
        present += 1
        verified += stamps.get(row.path) == [st.st_size, st.st_mtime_ns]
    state = (f"{present} of {len(manifest(name))} files" + (f", {verified} verified" if verified < present else ", all verified"))
    return out | {"where": f"{where}: {root}", "state": state, "present": present, "verified": verified}


def verify(name: str, rehash: bool = True) -> list[str]:
    """Problems of the local copy of set `name` against its manifest ([] when it matches), hashing
    every file when `rehash`; a set that is not here is a problem too."""
    found = local_root(name)
    if found is None:
        entry = training_set(name)
        return [f"{name}: not here (looked in ${DATASETS_ENV}/{entry.path} and {pinned_cache() / entry.path})"]
    return check_files(name, found[0], rehash=rehash)


# ----------------------------------------------------------------------------- full archives

def count_images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if is_image_file(p))


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


# An archive of photos barely compresses (JPEG is compressed already): CycleGAN's zips unpack to about
# 1.0x their size. Anything far beyond that is not the set (a zip bomb, or the wrong file), refused
# before a byte is written. zipfile itself stops each member at its declared size.
MAX_UNPACK_RATIO = 4
UNPACK_SLACK_BYTES = 1 << 20


def check_unpacked_size(archive: zipfile.ZipFile, archive_bytes: int) -> int:
    """The bytes `archive` unpacks to, by its members' declared sizes; ValueError if that is more
    than MAX_UNPACK_RATIO times the archive's own size (+ 1 MiB)."""
    total = sum(info.file_size for info in archive.infolist())
    limit = MAX_UNPACK_RATIO * archive_bytes + UNPACK_SLACK_BYTES
    if total > limit:
        raise ValueError(f"it would unpack to {total:,} bytes, more than {MAX_UNPACK_RATIO}x its own "
                         f"{archive_bytes:,}; a set of photos barely compresses, so it was not unpacked")
    return total


def fetch_training_set(name: str, allow_unpinned: bool = False) -> dict[str, Path]:
    """Local folders of the full archive of set `name` ({'trainA': Path, ...}), downloading and
    unpacking it when neither NSTLIB_DATA_DIR nor the cache holds it. An archive is checked by
    its sha256 where the table pins one, and the files its manifest pins (horse2zebra's subset)
    must be in it byte for byte. A set pinned by neither is refused unless `allow_unpinned`."""
    entry = training_set(name)
    if not entry.urls:
        raise ValueError(f"{name} has no archive; use nstlib.training_sets.dataset({name!r})")
    if not entry.pinned and not allow_unpinned:
        raise DatasetError(_unpinned_message(entry) + " Call fetch_training_set(name, allow_unpinned=True) to "
                           "use it checked by its folders only.")
    local = find_override(DATA_ENV, name, folder=True)
    if local is not None:
        return check_layout(local, entry)
    target = cache_dir("datasets") / name
    if target.is_dir():
        return check_layout(target, entry)
    archive = fetch(list(entry.urls), cache_dir("datasets") / f"{name}.zip", sha256=entry.sha256 or None,
                    size=entry.bytes or None, hint=f"Or unpack it into $NSTLIB_DATA_DIR/{name}/.")
    if not entry.sha256:
        print(f"{name}: sha256 {file_hash(archive)} (not pinned by nstlib; checked by its folders"
              + (" and the files its manifest pins)" if entry.manifest else ")"))
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                check_unpacked_size(z, archive.stat().st_size)
                z.extractall(tmp)
            root = _find_root(Path(tmp), entry)
            check_layout(root, entry)
            if entry.manifest:
                problems = check_files(name, root, rehash=True, remember=False)
                if problems:
                    raise ValueError(f"{len(problems)} of the files nstlib pins differ:\n  " + "\n  ".join(problems[:10]))
        except (zipfile.BadZipFile, ValueError) as e:
            archive.unlink()  # a wrong file must not be found again as if it were the set
            reason = "is not a zip archive" if isinstance(e, zipfile.BadZipFile) else f"is not the set: {e}"
            raise ValueError(f"the download {archive.name} {reason}; it was deleted") from None
        os.replace(root, target)  # atomic: the set appears whole or not at all
    archive.unlink()
    return {folder: target / folder for folder in entry.folders}  # checked above, before the rename


def remove_training_set(name: str) -> None:
    """Delete the cached copies of a training set (its archive, its folders, its pinned download)."""
    entry = training_set(name)
    shutil.rmtree(cache_dir("datasets") / entry.name, ignore_errors=True)
    (cache_dir("datasets") / f"{name}.zip").unlink(missing_ok=True)
    for stamps in (cache_dir("datasets") / "verified").glob(f"{name}-*.json"):
        stamps.unlink(missing_ok=True)
    if entry.path:
        shutil.rmtree(pinned_cache() / entry.path, ignore_errors=True)
        shutil.rmtree(pinned_cache() / ".partial" / name, ignore_errors=True)
