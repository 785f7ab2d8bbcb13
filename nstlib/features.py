"""The VGG feature extractor every optimisation-based method in the course stands on.

Gatys et al. (2016, "Image Style Transfer Using Convolutional Neural Networks", Sec. 2) describe an
image by the responses of a pretrained VGG: layer l with N_l filters turns an image into
F^l in R^{N_l x M_l}, M_l = H_l * W_l positions. Content is matched on one deep layer (the paper's
conv4_2), style on the Gram matrices of several (conv1_1 ... conv5_1). In the Caffe model the paper used,
each ReLU overwrites its convolution's output, so those blobs hold rectified responses: relu4_2 and
relu1_1 ... relu5_1 here (the authors' PyTorch code names them r42, r11 ... r51; notebook 01).

    vgg = VGGFeatures()                                  # VGG-16, Caffe weights, max pooling
    feats = vgg.extract(x, ["relu1_1", "conv4_2"])       # dict: name -> (B, N_l, H_l, W_l)

* Input is RGB in [0, 1], (B, 3, H, W); the weights' own input convention (Caffe BGR 0..255 minus
  the mean, or torchvision's mean/std) is applied inside, as the weights registry says.
* `extract` returns exactly the requested layers and runs the network only up to the deepest of
  them; `up_to=` drops the unused layers from memory altogether (AdaIN's encoder stops at relu4_1).
* Here `conv4_2` really is the pre-activation and `relu4_2` its rectified copy: the ReLU modules are not
  in-place, and `extract` rectifies in place only where the convolution's output was not asked for
  (which saves writing a copy of each of the largest tensors).
* The network is frozen (no parameter gradients) and always in eval mode; gradients still flow to
  the input image, which is what the optimisation needs.
"""
from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import torch
import torch.nn as nn

from . import vgg, weights as weights_registry
from .images import check_image
from .registry import WEIGHTS_ENV

DEFAULT_ARCH = "vgg16"
DEFAULT_WEIGHTS = "caffe"


class VGGFeatures(nn.Module):
    """A frozen VGG-16/19 convolutional stack that returns the activations of named layers.

    arch:       'vgg16' (course default) or 'vgg19' (Gatys et al., AdaIN).
    weights:    'caffe' (original Oxford weights), 'torchvision', None (random init, for
                experiments on what training adds), or a path to a features state_dict.
    pooling:    'max' or 'avg' (Gatys et al. used avg).
    padding:    'zero' (as trained), 'reflect' or 'circular' (nstlib.vgg).
    up_to:      the deepest layer this extractor will ever need; later layers are not built.
    convention: the input convention ('caffe' or 'torchvision'); taken from the registry for
                registry weights, required for a path (default 'caffe').
    """

    def __init__(
        self,
        arch: str = DEFAULT_ARCH,
        weights: str | Path | None = DEFAULT_WEIGHTS,
        pooling: str = "max",
        padding: str = "zero",
        up_to: str | None = None,
        convention: str | None = None,
    ):
        super().__init__()
        all_names = vgg.layer_names(arch)
        last = _index_of(up_to, all_names, arch) if up_to is not None else len(all_names) - 1
        self.arch, self.pooling, self.padding = arch, pooling, padding
        self.layer_names = all_names[: last + 1]
        self.features = vgg.build(arch, pooling, padding)[: last + 1]  # keeps torchvision's keys

        if weights in weights_registry.CONVENTIONS:
            state = weights_registry.load_state_dict(arch, weights)
            convention = convention or weights
        elif weights is None:
            convention = convention or "caffe"
            state = None
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: no such weights file (or give one of "
                    f"{tuple(weights_registry.CONVENTIONS)} or None)"
                )
            state = torch.load(path, map_location="cpu", weights_only=True)
            # a file may hold a truncated stack (the GPU kit's), as long as it reaches up_to
            weights_registry.check_state_dict(state, arch, path, up_to=last)
            convention = convention or "caffe"
        if state is not None:
            own = self.features.state_dict()
            # the stack may be truncated (up_to): load the keys it has, all of which must exist
            self.features.load_state_dict({k[len("features."):]: v for k, v in state.items()
                                           if k[len("features."):] in own})
        self.weights_name = weights if isinstance(weights, str) or weights is None else str(weights)
        self.convention = weights_registry.CONVENTIONS[convention]
        c = self.convention
        self.register_buffer("mean", torch.tensor(c.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):
        """Always eval: the extractor is a fixed measuring instrument, never trained."""
        return super().train(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the network's input convention, x_net = (x[:, order] * scale - mean) / std."""
        if self.convention.bgr:
            x = x.flip(1)  # RGB -> BGR
        return (x * self.convention.scale - self.mean) / self.std

    def extract(self, x: torch.Tensor, layers: str | Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of `layers` for images `x` (B, 3, H, W) RGB in [0, 1], in the order asked.

        Runs the network only as deep as the deepest requested layer.
        """
        check_image(x)
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("ask for at least one layer, e.g. ['relu1_1', 'conv4_2']")
        wanted = {_index_of(n, self.layer_names, self.arch): n for n in names}
        if x.device != self.mean.device:
            raise ValueError(
                f"the image is on {x.device} but the VGG is on {self.mean.device}; "
                "move one of them with .to(device)"
            )
        h = self.normalize(x.to(self.mean.dtype))
        out = {}
        for index in range(max(wanted) + 1):
            layer = self.features[index]
            if isinstance(layer, vgg.ReLU) and index - 1 not in wanted:
                # nobody asked for the conv output before this ReLU: overwrite it (the ReLU's
                # backward needs only its own output, the conv's backward never needs its output)
                h = layer(h, inplace=True)
            else:
                h = layer(h)
            if index in wanted:
                out[wanted[index]] = h
        return {n: out[n] for n in names}

    def forward(self, x: torch.Tensor, layers: str | Iterable[str]) -> dict[str, torch.Tensor]:
        return self.extract(x, layers)

    def extra_repr(self) -> str:
        return (f"arch={self.arch}, weights={self.weights_name}, convention={self.convention.name}, "
                f"pooling={self.pooling}, padding={self.padding}, up_to={self.layer_names[-1]}")


def _index_of(name: str, names: list[str], arch: str) -> int:
    if name in names:
        return names.index(name)
    full = vgg.layer_names(arch)
    if name in full:
        raise ValueError(f"{name} is deeper than this extractor, which stops at {names[-1]} (up_to)")
    close = difflib.get_close_matches(str(name), full, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"{name!r} is not a {arch} layer.{hint} Layers are named conv{{b}}_{{i}}, relu{{b}}_{{i}} "
        f"and pool{{b}}; nstlib.vgg.layer_names('{arch}') lists them."
    )


@lru_cache(maxsize=8)
def _cached(arch, weights, pooling, padding, device, places) -> VGGFeatures:
    return VGGFeatures(arch, weights, pooling, padding).to(device)


def _weights_places() -> tuple[str | None, str | None]:
    """Where weights are looked up ($NSTLIB_WEIGHTS_DIR, $NSTLIB_CACHE_DIR): part of the cache key, so
    an extractor loaded before one of them changed (mid-session, or between tests) is not reused."""
    return os.environ.get(WEIGHTS_ENV), os.environ.get("NSTLIB_CACHE_DIR")


def load_vgg(
    arch: str = DEFAULT_ARCH,
    weights: str | None = DEFAULT_WEIGHTS,
    pooling: str = "max",
    padding: str = "zero",
    device: str | torch.device = "cpu",
) -> VGGFeatures:
    """A shared, frozen extractor for these settings on `device` (built once per session and place the
    weights come from)."""
    return _cached(arch, weights, pooling, padding, torch.device(device), _weights_places())


def extract(x: torch.Tensor, layers: str | Iterable[str], **settings) -> dict[str, torch.Tensor]:
    """`load_vgg(**settings).extract(x, layers)` on x's device: the one-line way to get features."""
    return load_vgg(device=x.device, **settings).extract(x, layers)
