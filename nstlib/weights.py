"""Pretrained VGG weights: a registry, hash-checked downloads, conversion to PyTorch, a local cache.

The course default is VGG-16 with the original Oxford/Caffe weights (Simonyan & Zisserman 2015),
the network most style-transfer papers' results were made with (Gatys et al. and AdaIN used its
sibling VGG-19, one argument away: `arch='vgg19'`). They are published as Keras "notop" HDF5 files;
torchvision's re-trained weights are the alternative source.

Each registry entry gives the file's URLs (primary first, then mirrors), size, hash, the input
convention the network expects, and the licence. The input convention matters: Caffe weights want
BGR pixel values in 0..255 minus the mean [103.939, 116.779, 123.68] (B, G, R); torchvision weights
want RGB in [0, 1] normalised by mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225]. Feeding
one the other's input gives badly wrong features. nstlib.features applies it; callers pass RGB
[0, 1].

Look-up order for `load_state_dict(arch, source)`:
1. `$NSTLIB_WEIGHTS_DIR/<arch>-<source>-features.pth`, an already-converted file (no download);
   the same directory may instead hold the original file (the .h5 or torchvision .pth);
2. the cache (`nstlib.download.cache_dir('weights')`), converted file or original file;
3. a download of the original file (progress bar, hash check, atomic write), converted once and
   cached; the original download is then deleted.

Every file found locally is hash-checked like a download (`load_state_dict` says how): a converted
file against the registry's pinned sha256, cheaply through a stamp (size, mtime, sha256) kept in
the cache's `weights/verified.json` once it has passed; an original against the published hash.

Files are only ever read with `torch.load(..., weights_only=True)`, which cannot run code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from . import vgg
from .download import HashMismatchError, cache_dir, check_hash, fetch, file_hash
from .files import atomic_write
from .registry import WEIGHTS_ENV, find_override, override_dir

KERAS_PRIMARY = "https://storage.googleapis.com/tensorflow/keras-applications"
KERAS_MIRROR = "https://github.com/fchollet/deep-learning-models/releases/download/v0.1"
TORCHVISION = "https://download.pytorch.org/models"
ENV_VAR = WEIGHTS_ENV


@dataclass(frozen=True)
class Convention:
    """How a network wants its input: x_net = (x[:, order] * scale - mean) / std, x RGB in [0, 1]."""

    name: str
    bgr: bool  # True: flip RGB to BGR
    scale: float
    mean: tuple[float, float, float]  # in the network's channel order
    std: tuple[float, float, float]


CONVENTIONS = {
    "caffe": Convention("caffe", True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    "torchvision": Convention(
        "torchvision", False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ),
}


@dataclass(frozen=True)
class WeightsEntry:
    arch: str  # 'vgg16' or 'vgg19'
    source: str  # 'caffe' or 'torchvision'; also the input convention's name
    original: str  # the file that is downloaded
    urls: tuple[str, ...]
    bytes: int
    md5: str | None
    sha256: str | None  # may be a prefix (torchvision publishes 8 hex digits in the file name)
    licence: str
    credit: str
    converted_sha256: str | None = None  # of the converted file `filename`, where the course has pinned it

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.source}"

    @property
    def filename(self) -> str:
        """The converted file: a features-only state_dict with torchvision's keys."""
        return f"{self.name}-features.pth"

    @property
    def convention(self) -> Convention:
        return CONVENTIONS[self.source]


_CAFFE_CREDIT = (
    "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition "
    "(ICLR 2015), Oxford VGG's Caffe release as converted to Keras by F. Chollet"
)
_CAFFE_LICENCE = "CC BY 4.0 (Oxford VGG); trained on ImageNet"
_TV_CREDIT = "torchvision's VGG weights (PyTorch team), trained on ImageNet"
_TV_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet"


def _keras(arch: str, nbytes: int, md5: str, converted_sha256: str | None = None) -> WeightsEntry:
    original = f"{arch}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    urls = (f"{KERAS_PRIMARY}/{arch}/{original}", f"{KERAS_MIRROR}/{original}")
    return WeightsEntry(arch, "caffe", original, urls, nbytes, md5, None, _CAFFE_LICENCE, _CAFFE_CREDIT,
                        converted_sha256)


def _torchvision(arch: str, original: str, nbytes: int) -> WeightsEntry:
    prefix = original.split("-")[1].split(".")[0]
    return WeightsEntry(
        arch, "torchvision", original, (f"{TORCHVISION}/{original}",), nbytes, None, prefix,
        _TV_LICENCE, _TV_CREDIT,
    )


REGISTRY = {
    e.name: e
    for e in (
        # the converted file's sha256 is that of ../shared/weights/vgg16-caffe-features.pth (its README)
        _keras("vgg16", 58_889_256, "6d6bbae143d832006294945121d1f1fc",
               "a753c0bbed8d88e916d12ac57948374f760688eca6cacee2cbcd5100a1b73804"),
        _keras("vgg19", 80_134_624, "253f8cb515780f3b799900260a226db6"),
        _torchvision("vgg16", "vgg16-397923af.pth", 553_433_881),
        _torchvision("vgg19", "vgg19-dcbb9e9d.pth", 574_673_361),
    )
}


def entry(arch: str = "vgg16", source: str = "caffe") -> WeightsEntry:
    vgg.check_arch(arch)
    if source not in CONVENTIONS:
        raise ValueError(f"weights source must be one of {tuple(CONVENTIONS)}, got {source!r}")
    return REGISTRY[f"{arch}-{source}"]


def weights_dir_override() -> Path | None:
    """The folder $NSTLIB_WEIGHTS_DIR names, or None."""
    return override_dir(ENV_VAR)


# ----------------------------------------------------------------------------- conversion

def convert_keras_h5(path: str | Path, arch: str = "vgg16") -> dict[str, torch.Tensor]:
    """Keras 'notop' HDF5 file -> features-only state_dict with torchvision's keys.

    Keras stores each conv of layer group `block{b}_conv{i}` as datasets named in the group's
    `weight_names` attribute: the kernel in HWIO order (3, 3, in, out) and the bias. PyTorch wants
    OIHW, so W.transpose(3, 2, 0, 1). Input channels stay in Caffe's BGR order.
    """
    import h5py

    state = {}
    shapes = vgg.conv_shapes(arch)
    names = vgg.layer_names(arch)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        for index, (in_ch, out_ch) in shapes.items():
            block, i = names[index][4:].split("_")  # 'conv3_2' -> '3', '2'
            group_name = f"block{block}_conv{i}"
            if group_name not in f:
                raise ValueError(
                    f"{path}: no layer {group_name}; not a Keras {arch} 'notop' weights file"
                )
            group = f[group_name]
            if len(group.attrs.get("weight_names", [])) != 2:
                raise ValueError(f"{path}: {group_name} does not name a kernel and a bias")
            weight_names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            kernel, bias = (group[n][()].astype("float32") for n in weight_names)
            if kernel.shape != (3, 3, in_ch, out_ch) or bias.shape != (out_ch,):
                raise ValueError(
                    f"{path}: {group_name} has shapes {kernel.shape}, {bias.shape}; "
                    f"expected (3, 3, {in_ch}, {out_ch}) and ({out_ch},)"
                )
            state[f"features.{index}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
            state[f"features.{index}.bias"] = torch.from_numpy(bias.copy())
    return state


def convert_torchvision(path: str | Path, arch: str = "vgg16") -> dict[str, torch.Tensor]:
    """torchvision's full VGG state_dict -> its `features.*` part (the classifier is not needed)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if k.startswith("features.")}
    check_state_dict(state, arch, path)
    return state


def check_state_dict(state: dict, arch: str, origin, up_to: int | None = None) -> None:
    """Raise ValueError unless `state` holds exactly the conv weights of `arch` with right shapes.
    With `up_to` (a layer index), the layers after it may be absent: a stack truncated there, like
    the GPU kit's VGG-16 that stops at relu4_1, is enough for an extractor that stops there too."""
    known = {}
    for index, (in_ch, out_ch) in vgg.conv_shapes(arch).items():
        known[f"features.{index}.weight"] = (index, (out_ch, in_ch, 3, 3))
        known[f"features.{index}.bias"] = (index, (out_ch,))
    expected = {k: shape for k, (index, shape) in known.items()
                if up_to is None or index <= up_to or k in state}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{origin}: not a {arch} features state_dict (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ValueError(f"{origin}: {key} has shape {tuple(state[key].shape)}, expected {shape}")


def _convert(e: WeightsEntry, original: Path) -> dict[str, torch.Tensor]:
    if e.source == "caffe":
        return convert_keras_h5(original, e.arch)
    return convert_torchvision(original, e.arch)


def _save_atomic(state: dict, path: Path, expect_sha256: str | None = None, label=None) -> str:
    """torch.save `state` to `path` atomically and durably (files.atomic_write, which keeps the file
    name, so torch writes the same archive as a direct save and a conversion of the public file
    reproduces the pinned hash); hash-checked against `expect_sha256` if given before the rename.
    Returns the file's sha256. On any failure an existing `path` is left as it was."""
    with atomic_write(path) as part:
        torch.save(state, part)
        digest = file_hash(part)
        if expect_sha256 is not None and digest != expect_sha256:
            raise HashMismatchError(
                f"{label or path}: its converted weights have sha256 {digest}, expected the registry's "
                f"{expect_sha256}; it is corrupt or not the file the registry names. Nothing was cached."
            )
    return digest


# ----------------------------------------------------------------------------- verification

STAMPS = "verified.json"


def _stamps_file() -> Path:
    return cache_dir("weights", create=False) / STAMPS


def _read_stamps() -> dict:
    try:
        stamps = json.loads(_stamps_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _write_stamp(path: Path, sha256: str) -> None:
    """Record that `path`, at its present size and mtime, was verified (its sha256 then). Written
    only after a check, so a later look-up needs a stat instead of hashing 59-575 MB again."""
    try:
        directory = cache_dir("weights")
        stamps = _read_stamps()
        st = path.stat()
        stamps[str(path.resolve())] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
        with atomic_write(directory / STAMPS) as tmp:
            tmp.write_text(json.dumps(stamps, indent=1), encoding="utf-8")
    except OSError:
        pass  # a read-only cache: the file is hashed again next time, which is only slower


def verify_converted(path: Path, e: WeightsEntry) -> None:
    """Raise HashMismatchError unless the converted file `path` is the one the registry pins (or one
    nstlib converted from a hash-checked original and stamped). Cheap when a stamp matches the
    file's size and mtime; otherwise the file is hashed (about 0.1 s per 60 MB)."""
    path = Path(path)
    st = path.stat()
    stamp = _read_stamps().get(str(path.resolve()))
    if stamp and stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns:
        return  # stamps are written only after a check: this file, unchanged since, passed it
    got = file_hash(path)
    if got == e.converted_sha256 or (stamp and got == stamp.get("sha256")):
        _write_stamp(path, got)
        return
    in_cache = path.parent == cache_dir("weights", create=False)
    fix = ("delete it and it is made again from the original" if in_cache
           else f"replace it with a good copy, or unset {ENV_VAR} to download the original")
    if e.converted_sha256 is None:
        raise HashMismatchError(
            f"{path}: the registry pins no sha256 for {e.filename}, so this copy cannot be checked; put the "
            f"original {e.original} in {ENV_VAR} instead (it is hash-checked and converted), or {fix}"
        )
    raise HashMismatchError(
        f"{path}: sha256 is {got}, expected {e.converted_sha256}; it is corrupt or not the file the "
        f"registry names: {fix}"
    )


def _original_matches(path: Path, e: WeightsEntry) -> bool:
    """Whether a local original is the published file (the registry's md5 / sha256 prefix)."""
    try:
        check_hash(path, md5=e.md5, sha256=e.sha256, delete=False)
        return True
    except HashMismatchError:
        return False


def _load_converted(path: Path, arch: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - zip, pickle and EOF errors all mean a damaged file
        raise ValueError(f"{path}: not a readable weights file ({type(e).__name__}); replace it") from None
    check_state_dict(state, arch, path)
    return state


# ----------------------------------------------------------------------------- look-up

def find_local(arch: str = "vgg16", source: str = "caffe") -> Path | None:
    """The converted or original file `load_state_dict` would use without downloading, or None.
    Creates nothing (hashes are checked by `load_state_dict`)."""
    e = entry(arch, source)
    local = find_override(ENV_VAR, e.filename, e.original)
    if local is not None:
        return local
    cache = cache_dir("weights", create=False)
    return next((cache / name for name in (e.filename, e.original) if (cache / name).is_file()), None)


def load_state_dict(arch: str = "vgg16", source: str = "caffe") -> dict[str, torch.Tensor]:
    """The features state_dict of `arch` from `source`, found locally or downloaded and converted.

    Every file is hash-checked: a converted file against the registry's pinned sha256 (or the stamp
    nstlib wrote when it converted a checked original), an original against the published md5 /
    sha256. A local original that is not the published file byte for byte (e.g. the same weights
    re-saved in Keras' layout) is accepted only if its conversion reproduces the pinned converted
    file exactly: the values are what the course reads, and the pin identifies them. Mismatches raise
    HashMismatchError naming the file; nothing unchecked is ever cached."""
    e = entry(arch, source)
    local = find_local(arch, source)
    if local is not None and local.name == e.filename:
        verify_converted(local, e)
        return _load_converted(local, arch)
    downloaded = local is None
    if local is None:
        hint = (
            f"Or set {ENV_VAR} to a directory that holds the converted file {e.filename} "
            f"(or the original {e.original})."
        )
        local = fetch(e.urls, cache_dir("weights") / e.original, md5=e.md5, sha256=e.sha256,
                      size=e.bytes, hint=hint)
        checked = True  # fetch checked the hash
    else:
        checked = _original_matches(local, e)
        if not checked and e.converted_sha256 is None:
            check_hash(local, md5=e.md5, sha256=e.sha256, delete=False)  # raises, naming the file
    state = _convert(e, local)
    target = cache_dir("weights") / e.filename
    digest = _save_atomic(state, target, None if checked else e.converted_sha256, label=local)
    _write_stamp(target, digest)
    if downloaded:
        local.unlink()  # the converted file is all we need; the original is 59-575 MB
    return state
