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

Files are only ever read with `torch.load(..., weights_only=True)`, which cannot run code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import vgg
from .download import cache_dir, check_hash, fetch

KERAS_PRIMARY = "https://storage.googleapis.com/tensorflow/keras-applications"
KERAS_MIRROR = "https://github.com/fchollet/deep-learning-models/releases/download/v0.1"
TORCHVISION = "https://download.pytorch.org/models"
ENV_VAR = "NSTLIB_WEIGHTS_DIR"


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


def _keras(arch: str, nbytes: int, md5: str) -> WeightsEntry:
    original = f"{arch}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    urls = (f"{KERAS_PRIMARY}/{arch}/{original}", f"{KERAS_MIRROR}/{original}")
    return WeightsEntry(arch, "caffe", original, urls, nbytes, md5, None, _CAFFE_LICENCE, _CAFFE_CREDIT)


def _torchvision(arch: str, original: str, nbytes: int) -> WeightsEntry:
    prefix = original.split("-")[1].split(".")[0]
    return WeightsEntry(
        arch, "torchvision", original, (f"{TORCHVISION}/{original}",), nbytes, None, prefix,
        _TV_LICENCE, _TV_CREDIT,
    )


REGISTRY = {
    e.name: e
    for e in (
        _keras("vgg16", 58_889_256, "6d6bbae143d832006294945121d1f1fc"),
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
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser() if value else None


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


def _save_atomic(state: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- look-up

def find_local(arch: str = "vgg16", source: str = "caffe") -> Path | None:
    """The converted or original file `load_state_dict` would use without downloading, or None."""
    e = entry(arch, source)
    places = [d for d in (weights_dir_override(), cache_dir("weights")) if d is not None]
    for directory in places:
        for name in (e.filename, e.original):
            if (directory / name).is_file():
                return directory / name
    return None


def load_state_dict(arch: str = "vgg16", source: str = "caffe") -> dict[str, torch.Tensor]:
    """The features state_dict of `arch` from `source`, found locally or downloaded and converted."""
    e = entry(arch, source)
    local = find_local(arch, source)
    if local is not None and local.name == e.filename:
        state = torch.load(local, map_location="cpu", weights_only=True)
        check_state_dict(state, arch, local)
        return state
    downloaded = local is None
    if local is None:
        hint = (
            f"Or set {ENV_VAR} to a directory that holds the converted file {e.filename} "
            f"(or the original {e.original})."
        )
        local = fetch(e.urls, cache_dir("weights") / e.original, md5=e.md5, sha256=e.sha256,
                      size=e.bytes, hint=hint)
    elif local.parent == cache_dir("weights"):
        # an original someone placed in the cache by hand: check it is the right file, keep it
        check_hash(local, md5=e.md5, sha256=e.sha256, delete=False)
    state = _convert(e, local)
    _save_atomic(state, cache_dir("weights") / e.filename)
    if downloaded:
        local.unlink()  # the converted file is all we need; the original is 59-575 MB
    return state
