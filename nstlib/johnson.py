"""Fast feed-forward style transfer: Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution" (ECCV 2016), with instance normalisation (Ulyanov, Vedaldi & Lempitsky,
"Instance Normalization: The Missing Ingredient for Fast Stylization", 2016) and conditional instance
normalisation (Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic Style", ICLR 2017).
Notebook 08 is built on this module.

Gatys' method optimises every image anew. Johnson trains a *transformation network* f_W once per
style, so that stylising a photo is one forward pass (Sec. 3.1):

    conv 9x9/32 s1 -> conv 3x3/64 s2 -> conv 3x3/128 s2 -> 5 residual blocks (3x3/128, 3x3/128)
    -> transposed conv 3x3/64 s2 -> transposed conv 3x3/32 s2 -> conv 9x9/3 s1 -> scaled tanh

every convolution followed by a normalisation layer and a ReLU, except the second convolution of each
residual block (its sum with the block's input is not rectified) and the last one. `TransformNet`
is that network exactly as lengstrom/fast-style-transfer (src/transform.py) defines it, because that
is the network whose trained weights are published (`pretrained`, `load_ml5`):

* instance normalisation (Ulyanov et al.: normalising each image on its own removes its contrast,
  which a style should not depend on), per image and channel, biased variance, eps = 1e-3:
  IN(x) = scale * (x - mu(x)) / sqrt(var(x) + 1e-3) + shift;
* TensorFlow 'SAME' zero padding, reproduced exactly (`same_padding`); no conv biases;
* input RGB in 0..255, output tanh(x) * 150 + 255 / 2, in (-22.5, 277.5).

At the course's interface `model(x)` takes (B, 3, H, W) RGB in [0, 1] and returns the same: the
module multiplies by 255 on the way in, divides by 255 on the way out, and clamps to [0, 1] for
display (lengstrom's evaluate.py clips to 0..255 the same way); `clamp=False` keeps the unclamped
output, which training needs (a clamp would stop the gradient at the bounds).

Conditional instance normalisation (Dumoulin et al., Eq. 5): one network for N styles, in
which every normalisation layer holds one (gamma, beta) pair per style and all other weights are
shared:

    CIN(x, s) = gamma_s * (x - mu(x)) / sigma(x) + beta_s

A style is a point in the space of these parameters (3,206 numbers per style here, against 1.67 M
shared ones); a convex combination sum_i w_i (gamma_i, beta_i), w_i >= 0, sum w_i = 1, mixes styles
(the paper's style-interpolation figures). `TransformNet(n_styles=N)` builds it; `model(x, style)` takes a style index, N mixing
weights, or per-image indices / weights.

Training (Sec. 3.2): `perceptual_loss` holds Johnson's feature reconstruction, Gram style and total
variation losses (Eq. 2-5) with their normalisations; the loop lives in johnson_training.py.
`held_out_scores` measures a trained network on photos it never saw.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import losses as gatys
from .images import check_image

WIDTHS = (32, 64, 128)  # channels after the first three convolutions
N_RESIDUAL = 5
EPS = 1e-3  # lengstrom's _instance_norm (TensorFlow); PyTorch's InstanceNorm2d default is 1e-5
TANH_SCALE, TANH_SHIFT = 150.0, 255.0 / 2  # output = tanh(x) * 150 + 255/2, in 0..255 units
NORMS = ("instance", "batch")


# ----------------------------------------------------------------------------- TensorFlow 'SAME'

def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding of one spatial side: (before, after).

    The output has ceil(size / stride) positions; the padding that needs is
    total = max((out - 1) * stride + kernel - size, 0), of which TF puts floor(total / 2) *before* and
    the rest after. A stride-1 odd kernel gets (k // 2, k // 2), as PyTorch's padding=k//2. A 3x3
    stride-2 convolution on an even side gets total = 1: (0, 1), nothing before and one row after,
    where PyTorch's padding=1 would pad (1, 1) and sample every position one pixel off.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's 'SAME' padding (`same_padding`), computed per input
    size: symmetric padding goes to conv2d itself, asymmetric (stride 2 on an even side) is an explicit
    zero F.pad of (before, after) first."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(c_in, c_out, kernel, stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        (top, bottom), (left, right) = (same_padding(n, k, s) for n in x.shape[-2:])
        if top == bottom and left == right:
            return F.conv2d(x, self.weight, None, s, (top, left))
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, None, s)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """TensorFlow's conv2d_transpose(padding='SAME') with the output size lengstrom asks for,
    (stride * H, stride * W), bias-free.

    conv2d_transpose is the adjoint (gradient) of the 'SAME' convolution from that output size back to
    (H, W): input position i spreads x[i] * w[j] onto output position stride * i + j - before, with
    `before` the SAME padding of the forward convolution (`same_padding(stride * H, k, stride)`; 0 for
    a 3x3 stride 2). PyTorch's ConvTranspose2d(padding=0) writes x[i] * w[j] to stride * i + j, a
    (H - 1) * stride + k side; taking rows [before, before + stride * H) of it is TF's result (for 3x3
    stride 2: the first 2H of 2H + 1). The kernel is not flipped in either framework, so TF's
    [kh, kw, out, in] kernel becomes PyTorch's (in, out, kh, kw) by transpose(3, 2, 0, 1).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 2):
        super().__init__(c_in, c_out, kernel, stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        y = F.conv_transpose2d(x, self.weight, None, s)
        (h, w), crops = [n * s for n in x.shape[-2:]], [same_padding(n * s, k, s)[0] for n in x.shape[-2:]]
        return y[..., crops[0]: crops[0] + h, crops[1]: crops[1] + w]


# ----------------------------------------------------------------------------- normalisation

class ConditionalInstanceNorm2d(nn.Module):
    """Conditional instance normalisation (Dumoulin et al. 2017, Eq. 5): one (gamma, beta) per style,

        CIN(x, s) = gamma_s * (x - mu(x)) / sqrt(var(x) + eps) + beta_s

    mu and var per image and channel over positions (biased variance), as in instance normalisation.
    `weight` is (n_styles, C) (the gammas, initialised to 1), `bias` (n_styles, C) (the betas, 0).

    `forward(x, style)`: `style` as in `style_weights` (an index, N mixing weights, or per-image
    indices or weights). Mixing weights w give gamma = sum_i w_i gamma_i and beta = sum_i w_i beta_i:
    the convex combination of the styles' parameters with which Dumoulin et al. blend styles.
    """

    def __init__(self, num_features: int, n_styles: int, eps: float = EPS):
        super().__init__()
        if n_styles < 1:
            raise ValueError(f"n_styles must be >= 1, got {n_styles}")
        self.num_features, self.n_styles, self.eps = num_features, n_styles, eps
        self.weight = nn.Parameter(torch.ones(n_styles, num_features))
        self.bias = nn.Parameter(torch.zeros(n_styles, num_features))

    def forward(self, x: torch.Tensor, style) -> torch.Tensor:
        w = style_weights(style, self.n_styles, x.shape[0]).to(self.weight)  # (B or 1, N)
        gamma, beta = w @ self.weight, w @ self.bias  # (B or 1, C)
        return F.instance_norm(x, eps=self.eps) * gamma[:, :, None, None] + beta[:, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.num_features}, n_styles={self.n_styles}, eps={self.eps}"


def style_weights(style, n_styles: int, batch: int | None = None) -> torch.Tensor:
    """The (1, N) or (B, N) mixing weights a CIN network uses for `style`:

    * an int i: style i alone (one-hot);
    * N numbers (a list, tuple or 1-D float tensor): a convex mix of the N styles, normalised to sum 1
      (each >= 0, not all 0);
    * a 1-D integer tensor of B style indices: style b for image b (a training batch of mixed styles);
    * a (B, N) float tensor: one mix per image, each row normalised to sum 1.
    """
    if isinstance(style, bool) or style is None:
        raise ValueError(f"a CIN network needs a style: an index in 0..{n_styles - 1} or {n_styles} mixing weights")
    if isinstance(style, (int, np.integer)):
        if not 0 <= style < n_styles:
            raise ValueError(f"style {style} out of range: this network has {n_styles} styles")
        return F.one_hot(torch.tensor([int(style)]), n_styles).float()
    w = style if torch.is_tensor(style) else torch.tensor(list(style), dtype=torch.float32)
    if not w.is_floating_point():  # per-image indices
        if w.dim() != 1 or (batch is not None and len(w) != batch) or w.min() < 0 or w.max() >= n_styles:
            raise ValueError(f"per-image styles must be {batch} indices in 0..{n_styles - 1}, got {w.tolist()}")
        return F.one_hot(w.long(), n_styles).float()
    w = w.float()
    if w.dim() == 1:
        w = w[None]
    if w.dim() != 2 or w.shape[1] != n_styles or (batch is not None and w.shape[0] not in (1, batch)):
        raise ValueError(f"mixing weights must be {n_styles} numbers (or ({batch}, {n_styles})), got shape "
                         f"{tuple(w.shape)}")
    if (w < 0).any() or (w.sum(dim=1) <= 0).any():
        raise ValueError(f"mixing weights must be >= 0 and not all 0, got {w.tolist()}")
    return w / w.sum(dim=1, keepdim=True)


def _norm(kind: str, channels: int, n_styles: int | None) -> nn.Module:
    if n_styles is not None:
        return ConditionalInstanceNorm2d(channels, n_styles)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, eps=EPS, affine=True)
    return nn.BatchNorm2d(channels, eps=EPS)  # Johnson's original choice; the IN-vs-BN ablation


class ConvBlock(nn.Module):
    """Convolution ('SAME'; transposed for upsampling), normalisation, optional ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, transposed: bool = False,
                 relu: bool = True, norm: str = "instance", n_styles: int | None = None):
        super().__init__()
        self.conv = (SameConvTranspose2d if transposed else SameConv2d)(c_in, c_out, kernel, stride)
        self.norm = _norm(norm, c_out, n_styles)
        self.relu = relu

    def forward(self, x: torch.Tensor, style=None) -> torch.Tensor:
        x = self.conv(x)
        x = self.norm(x, style) if isinstance(self.norm, ConditionalInstanceNorm2d) else self.norm(x)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))): no ReLU after the sum (lengstrom's _residual_block)."""

    def __init__(self, channels: int, norm: str = "instance", n_styles: int | None = None):
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, 3, norm=norm, n_styles=n_styles)
        self.conv2 = ConvBlock(channels, channels, 3, relu=False, norm=norm, n_styles=n_styles)

    def forward(self, x: torch.Tensor, style=None) -> torch.Tensor:
        return x + self.conv2(self.conv1(x, style), style)


class TransformNet(nn.Module):
    """Johnson's image transformation network f_W as lengstrom/fast-style-transfer builds it.

    `model(x)`: (B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) in [0, 1], any size. Inside, `network`
    runs TensorFlow's graph on x * 255; sides that are not multiples of 4 come out of it rounded up to
    one (two stride-2 convolutions, two x2 upsamplings), and the extra bottom rows and right columns
    are cropped. `clamp=True` (default) clamps to [0, 1] for display; training passes clamp=False.

    norm:     'instance' (eps 1e-3, a scale and shift per layer: the published networks) or 'batch'
              (Johnson's original; for the ablation of Ulyanov et al.).
    n_styles: None for one style; N builds the CIN network (every norm layer a
              ConditionalInstanceNorm2d with N (gamma, beta) pairs), and `model(x, style)` then needs a
              style (see `style_weights`).
    widths:   channels of the first three convolutions (32, 64, 128); `load_ml5` reads them from the
              checkpoint's shapes.
    """

    def __init__(self, norm: str = "instance", n_styles: int | None = None, widths: Sequence[int] = WIDTHS,
                 style_names: Sequence[str] | None = None):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if n_styles is not None and norm != "instance":
            raise ValueError("conditional instance normalisation (n_styles) needs norm='instance'")
        if style_names is not None and len(style_names) != (n_styles or 1):
            raise ValueError(f"{len(style_names)} style names for {n_styles or 1} styles")
        a, b, c = widths
        kw = {"norm": norm, "n_styles": n_styles}
        self.conv1 = ConvBlock(3, a, 9, **kw)
        self.conv2 = ConvBlock(a, b, 3, 2, **kw)
        self.conv3 = ConvBlock(b, c, 3, 2, **kw)
        self.residual = nn.ModuleList(ResidualBlock(c, **kw) for _ in range(N_RESIDUAL))
        self.up1 = ConvBlock(c, b, 3, 2, transposed=True, **kw)
        self.up2 = ConvBlock(b, a, 3, 2, transposed=True, **kw)
        self.conv_out = ConvBlock(a, 3, 9, relu=False, **kw)
        self.norm_kind, self.n_styles, self.widths = norm, n_styles, tuple(widths)
        self.style_names = list(style_names) if style_names is not None else (
            [f"style {i}" for i in range(n_styles)] if n_styles else [])
        # lengstrom's evaluate.py and ml5 feed 0..255; his training graph fed x / 255. The first
        # convolution has no bias and IN follows it, so the scale only enters through eps.
        self.input_scale = 255.0

    def network(self, x255: torch.Tensor, style=None) -> torch.Tensor:
        """TensorFlow's graph: 0..255 RGB in, tanh(.) * 150 + 255/2 out, both (B, 3, ., .); sides
        rounded up to multiples of 4. `style`: the CIN mixing weights (`style_weights`)."""
        y = self.conv3(self.conv2(self.conv1(x255, style), style), style)
        for block in self.residual:
            y = block(y, style)
        y = self.conv_out(self.up2(self.up1(y, style), style), style)
        return torch.tanh(y) * TANH_SCALE + TANH_SHIFT

    def forward(self, x: torch.Tensor, style=None, clamp: bool = True) -> torch.Tensor:
        check_image(x)
        h, w = x.shape[-2:]
        if self.n_styles:
            if isinstance(style, str):
                style = self.style_id(style)
            style = style_weights(style, self.n_styles, x.shape[0]).to(x.device)
        elif style is not None:
            raise ValueError("this network has one style; `style` is for CIN networks (n_styles=N)")
        y = self.network(x * self.input_scale, style)[..., :h, :w] / 255.0
        return y.clamp(0.0, 1.0) if clamp else y

    def style_id(self, name: str) -> int:
        if name not in self.style_names:
            raise ValueError(f"this network has no style {name!r}; it has {', '.join(self.style_names)}")
        return self.style_names.index(name)

    def norm_layers(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, (ConditionalInstanceNorm2d, nn.InstanceNorm2d,
                                                            nn.BatchNorm2d))]

    def extra_repr(self) -> str:
        return (f"norm={self.norm_kind}, n_styles={self.n_styles}, widths={self.widths}, "
                f"input_scale={self.input_scale}")


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- the ml5 checkpoints

ML5_COMMIT = "0612a3e7c51cbffdc5db701dff49d16d1ac26fa8"
ML5_URL = (f"https://raw.githubusercontent.com/ml5js/ml5-data-and-models/{ML5_COMMIT}"
           "/models/style-transfer/")  # + <style>/<file>
ML5_DIR = "johnson-ml5"  # under NSTLIB_WEIGHTS_DIR and the weights cache: <style>/<49 files>
ML5_LICENCE = ("ml5js/ml5-data-and-models: MIT; the checkpoints: Copyright (c) 2016 Logan Engstrom, free for "
               "research use with attribution (lengstrom/fast-style-transfer)")


@dataclass(frozen=True)
class Ml5Style:
    name: str  # the folder in the ml5 repository
    painting: str  # what the network imitates
    registry: str | None  # the painting's name in nstlib's data registry, where it has it

    @property
    def credit(self) -> str:
        return (f"{self.painting}: Logan Engstrom's fast-style-transfer network (Johnson et al. 2016), "
                f"converted by Reiichiro Nakano, from ml5js/ml5-data-and-models@{ML5_COMMIT[:7]} ({ML5_LICENCE})")


ML5_STYLES = {s.name: s for s in (
    Ml5Style("la_muse", "Pablo Picasso, La Muse (1935)", "la_muse"),
    Ml5Style("scream", "Edvard Munch, The Scream (1893)", "the_scream"),
    Ml5Style("udnie", "Francis Picabia, Udnie (1913)", None),
    Ml5Style("wave", "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831)", None),
    Ml5Style("wreck", "J. M. W. Turner, The Shipwreck (1805)", "shipwreck"),
)}


@dataclass(frozen=True)
class Ml5File:
    style: str
    file: str
    sha256: str
    bytes: int

    @property
    def url(self) -> str:
        return f"{ML5_URL}{self.style}/{self.file}"


@lru_cache(maxsize=None)
def ml5_files() -> dict[str, tuple[Ml5File, ...]]:
    """Every file of every style, pinned (data/johnson_ml5.tsv: style, file, sha256, bytes)."""
    from .registry import read_table, shipped_file

    rows = read_table(shipped_file("johnson_ml5.tsv"), Ml5File, bytes=int)
    return {style: tuple(r for r in rows if r.style == style) for style in dict.fromkeys(r.style for r in rows)}


def ml5_layout(widths: Sequence[int] = WIDTHS) -> list[tuple[str, tuple[int, ...], str]]:
    """The 48 variables of the checkpoint in order: (name, TF shape, our parameter).

    Per convolution: its kernel ([kh, kw, in, out]; transposed: [kh, kw, out, in]), then the
    instance norm's shift and scale, in the order lengstrom's code creates them."""
    a, b, c = widths
    convs = [("conv1", 9, 3, a, False), ("conv2", 3, a, b, False), ("conv3", 3, b, c, False)]
    for r in range(N_RESIDUAL):
        convs += [(f"residual.{r}.conv1", 3, c, c, False), (f"residual.{r}.conv2", 3, c, c, False)]
    convs += [("up1", 3, c, b, True), ("up2", 3, b, a, True), ("conv_out", 9, a, 3, False)]
    layout = []
    for name, k, c_in, c_out, transposed in convs:
        i = len(layout)
        kernel = (k, k, c_out, c_in) if transposed else (k, k, c_in, c_out)
        layout += [(_var(i), kernel, f"{name}.conv.weight"), (_var(i + 1), (c_out,), f"{name}.norm.bias"),
                   (_var(i + 2), (c_out,), f"{name}.norm.weight")]
    return layout


def _var(i: int) -> str:
    return "Variable" if i == 0 else f"Variable_{i}"


def _read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (an ml5 style-transfer checkpoint: manifest.json "
                                "and 48 variable files)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; an ml5 checkpoint folder holds manifest.json and its variables")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a JSON checkpoint manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: not a checkpoint manifest (a JSON object of variables), got a "
                         f"{type(manifest).__name__}")
    for name, spec in manifest.items():
        ok = (isinstance(spec, dict) and isinstance(spec.get("filename"), str)
              and isinstance(spec.get("shape"), list) and all(isinstance(n, int) for n in spec["shape"]))
        if not ok:
            raise ValueError(f"{path}: variable {name!r} needs a 'filename' and a 'shape' (a list of ints), "
                             f"got {spec!r}")
        if Path(spec["filename"]).name != spec["filename"] or spec["filename"] in ("", ".", ".."):
            raise ValueError(f"{path}: variable {name!r} names the file {spec['filename']!r}, not a file in the folder")
    return manifest


def load_ml5(folder: str | Path) -> TransformNet:
    """A `TransformNet` with the weights of an ml5 / deeplearn.js style-transfer checkpoint folder.

    The folder holds manifest.json ({variable: {"filename", "shape"}}) and one file per variable:
    raw float32, little-endian, C order, no header, 4 * prod(shape) bytes. Each file is checked
    against its shape and the manifest's shapes against the network's (`ml5_layout`; the widths are
    read from the first kernels); every failure is a one-line error naming the file. TF kernels
    [kh, kw, in, out] (transposed: [kh, kw, out, in]) become PyTorch's (out, in, kh, kw) (transposed:
    (in, out, kh, kw)) by transpose(3, 2, 0, 1); shift -> norm.bias, scale -> norm.weight.
    Returns the network in eval mode on the CPU.
    """
    folder = Path(folder).expanduser()
    manifest = _read_manifest(folder)
    path = folder / "manifest.json"
    try:
        widths = tuple(manifest[_var(i)]["shape"][-1] for i in (0, 3, 6))
    except (KeyError, IndexError):
        raise ValueError(f"{path}: no kernels Variable, Variable_3, Variable_6: "
                         "not a style-transfer checkpoint") from None
    layout = ml5_layout(widths)
    expected = {name for name, _, _ in layout}
    if set(manifest) != expected:
        missing, extra = sorted(expected - set(manifest)), sorted(set(manifest) - expected)
        raise ValueError(f"{path}: {len(manifest)} variables, the transform net has {len(expected)} "
                         f"(missing {missing[:3]}, unexpected {extra[:3]})")
    state = {}
    for name, shape, key in layout:
        spec = manifest[name]
        if tuple(spec["shape"]) != shape:
            raise ValueError(f"{path}: {name} has shape {spec['shape']}, the transform net needs {list(shape)}")
        file = folder / spec["filename"]
        if not file.is_file():
            raise FileNotFoundError(f"{file}: missing ({name} of {path}, shape {list(shape)})")
        size, want = file.stat().st_size, 4 * math.prod(shape)
        if size != want:
            raise ValueError(f"{file}: {size} bytes, {name} of shape {list(shape)} needs {want} (float32)")
        value = np.fromfile(file, dtype="<f4").reshape(shape)
        if not np.isfinite(value).all():
            raise ValueError(f"{file}: holds values that are not finite; not a trained {name}")
        if len(shape) == 4:
            value = value.transpose(3, 2, 0, 1)
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    model = TransformNet(widths=widths)
    model.load_state_dict(state)
    return model.eval()


def find_ml5(style: str) -> Path | None:
    """The folder `pretrained(style)` would read without downloading, or None: the override
    directory ($NSTLIB_WEIGHTS_DIR/johnson-ml5/<style>/), else a complete cached copy. Every file is
    checked against its pinned sha256 and size; a mismatch in the override is an error, a corrupt
    cached file is deleted (and downloaded again)."""
    from .download import HashMismatchError, cache_dir
    from .weights import ENV_VAR, weights_dir_override

    files = _style_files(style)
    override = weights_dir_override()
    if override is not None and (override / ML5_DIR / style).is_dir():
        folder = override / ML5_DIR / style
        for f in files:
            path = folder / f.file
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing from {ENV_VAR}'s copy of the {style} checkpoint "
                                        f"({len(files)} files, from {ML5_URL}{style}/)")
            try:
                _check_file(path, f, delete=False)
            except HashMismatchError as e:
                raise HashMismatchError(f"{ENV_VAR} holds a different file: {e}") from None
        return folder
    folder = cache_dir("weights") / ML5_DIR / style
    complete = True
    for f in files:
        path = folder / f.file
        if not path.is_file():
            complete = False
            continue
        try:
            _check_file(path, f, delete=True)
        except HashMismatchError:
            complete = False
    return folder if complete else None


def _check_file(path: Path, f: Ml5File, delete: bool) -> None:
    from .download import HashMismatchError, check_hash

    size = path.stat().st_size
    if size != f.bytes:
        if delete:
            path.unlink()
        raise HashMismatchError(f"{path}: {size} bytes, expected {f.bytes}")
    check_hash(path, sha256=f.sha256, delete=delete)


def _style_files(style: str) -> tuple[Ml5File, ...]:
    table = ml5_files()
    if style not in table:
        raise ValueError(f"no published Johnson network {style!r}; styles: {', '.join(table)}")
    return table[style]


def download_ml5(style: str) -> Path:
    """The folder of `style`'s checkpoint: found locally (`find_ml5`) or its files downloaded from
    ml5js/ml5-data-and-models at the pinned commit into the weights cache, each hash-checked and
    written atomically (a file that is already there and correct is not downloaded again)."""
    from .download import cache_dir, fetch
    from .weights import ENV_VAR

    local = find_ml5(style)
    if local is not None:
        return local
    folder = cache_dir("weights") / ML5_DIR / style
    hint = (f"Or set {ENV_VAR} to a directory that holds {ML5_DIR}/{style}/ with the checkpoint's files "
            f"(manifest.json, Variable, Variable_1, ... Variable_47) from {ML5_URL}{style}/.")
    from tqdm.auto import tqdm

    files = _style_files(style)
    for f in tqdm(files, desc=f"{ML5_DIR}/{style}", unit="file"):  # each file also gets fetch's own bar
        fetch([f.url], folder / f.file, sha256=f.sha256, size=f.bytes, hint=hint)
    return folder


def pretrained(style: str = "scream") -> TransformNet:
    """Engstrom's published Johnson network for `style` (la_muse, scream, udnie, wave, wreck), in eval
    mode on the CPU: `model(x)` maps (B, 3, H, W) images in [0, 1] to stylised images in [0, 1].

    Look-up: $NSTLIB_WEIGHTS_DIR/johnson-ml5/<style>/, the cache, else a download of the 49 files
    (6.7 MB) from ml5js/ml5-data-and-models at commit ML5_COMMIT; every file hash-checked."""
    model = load_ml5(download_ml5(style))
    model.style_names = [style]
    return model


# ----------------------------------------------------------------------------- our own files

SHIPPED = ("johnson_the_scream", "johnson_cin4")  # names in data/models.tsv


def shipped(name: str = "johnson_the_scream") -> TransformNet:
    """A network this project trained and ships (data/models.tsv: file, sha256 and the command that
    trained it), in eval mode on the CPU, both trained on BSDS500 on the project's CPU (notebook 08):
    'johnson_the_scream', one style; 'johnson_cin4', a CIN network for four styles (La Muse, The
    Scream, The Shipwreck, The Starry Night: `model(x, "la_muse")`, or four mixing weights).
    `pretrained` loads the published networks instead."""
    from .models import shipped_model

    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not a Johnson network shipped with nstlib; shipped: {', '.join(SHIPPED)}")
    return load_transform_net(shipped_model(name))


def held_out_scores(model: TransformNet, photos: Sequence[torch.Tensor], paintings: Sequence[torch.Tensor],
                    vgg=None) -> dict[str, list]:
    """How a network does on photos it never saw (notebook 08, tests/test_johnson.py), with the course's
    metrics (notebook 10): `photos` (1, 3, H, W) and `paintings` (1, 3, ., .) in [0, 1], one painting
    per style of the model, in its order. Lists per photo x style, photo-major:

    * 'gram' (metrics.gram_distance of the output to its own painting; Gatys' L_style) and
      'gram_photo' (the photo's own distance to that painting: the baseline a stylisation must beat);
    * 'nearest': the index of the painting whose Gram statistics the output is nearest to (a CIN
      network that paints every style alike fails this, whatever its distances);
    * 'mean_std' and 'mean_std_photo': the same with AdaIN's statistics (metrics.mean_std_distance);
    * 'ssim': luminance SSIM of the output to the photo (how much of its structure is left)."""
    from . import metrics

    styles = list(range(model.n_styles)) if model.n_styles else [None]
    if len(paintings) != len(styles):
        raise ValueError(f"{len(paintings)} paintings for a network with {len(styles)} style(s)")
    out = {k: [] for k in ("gram", "gram_photo", "nearest", "mean_std", "mean_std_photo", "ssim")}
    with torch.no_grad():
        for photo in photos:
            photo_gram = [float(metrics.gram_distance(photo, p, vgg=vgg)[0]) for p in paintings]
            photo_mean_std = [float(metrics.mean_std_distance(photo, p, vgg=vgg)[0]) for p in paintings]
            for i, style in enumerate(styles):
                y = model(photo, style)
                d = [float(metrics.gram_distance(y, p, vgg=vgg)[0]) for p in paintings]
                out["gram"].append(d[i])
                out["gram_photo"].append(photo_gram[i])
                out["nearest"].append(min(range(len(d)), key=d.__getitem__))
                out["mean_std"].append(float(metrics.mean_std_distance(y, paintings[i], vgg=vgg)[0]))
                out["mean_std_photo"].append(photo_mean_std[i])
                out["ssim"].append(float(metrics.ssim_luminance(y, photo)[0]))
    return out


def export_transform_net(model: TransformNet, path: str | Path, training: dict | None = None) -> str:
    """Save a TransformNet (one style or CIN) in float16 with its settings, style names and an optional
    training record (`models.training_record`); atomic; returns the sha256."""
    from .training import save_checkpoint
    from .download import file_hash

    state = {k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    path = save_checkpoint(path, {"kind": "johnson", "norm": model.norm_kind, "n_styles": model.n_styles,
                                  "widths": list(model.widths), "style_names": model.style_names,
                                  "input_scale": model.input_scale, "model": state, "training": training or {}})
    return file_hash(path)


def load_transform_net(path: str | Path) -> TransformNet:
    """A TransformNet saved by `export_transform_net`, in float32, eval mode, on the CPU."""
    from .training import load_checkpoint

    saved = load_checkpoint(path)
    if saved.get("kind") != "johnson":
        raise ValueError(f"{path} is not a Johnson transform network exported by nstlib (kind {saved.get('kind')!r})")
    n = saved["n_styles"]
    model = TransformNet(saved["norm"], n, saved["widths"], saved["style_names"] if n else None)
    model.style_names = list(saved["style_names"])
    model.input_scale = saved["input_scale"]
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in saved["model"].items()})
    return model.eval()


# ----------------------------------------------------------------------------- perceptual losses

CONTENT_LAYER = "relu2_2"  # Sec. 4.1; the authors' released code (fast-neural-style) defaults to relu3_3
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # Sec. 4.1, VGG-16
CONTENT_WEIGHT, STYLE_WEIGHT = 1.0, 5.0  # fast-neural-style's defaults, in its normalisation (see below)
TV_WEIGHT = 1e-6 * 255.0 ** 2  # fast-neural-style's 1e-6 on 0..255 images, for images in [0, 1]


def johnson_gram(features: torch.Tensor) -> torch.Tensor:
    """Johnson's Gram matrix (Eq. 3): G_j(x)_{c,c'} = 1/(C_j H_j W_j) sum_{h,w} phi_{h,w,c} phi_{h,w,c'},
    (B, C, C). It is the course's Gatys Gram (F F^T / M) divided by C_j."""
    return gatys.gram(features) / features.shape[1]


def style_targets(vgg, style: torch.Tensor, layers: Sequence[str] = STYLE_LAYERS) -> dict[str, torch.Tensor]:
    """The style image's Gram matrices G_j(y_s) (Eq. 3), layer -> (1, C, C), computed once per style."""
    with torch.no_grad():
        return {k: johnson_gram(v.float()) for k, v in vgg.extract(style, layers).items()}


def perceptual_loss(vgg, output: torch.Tensor, content: torch.Tensor, targets: Mapping[str, torch.Tensor],
                    content_layer: str = CONTENT_LAYER, content_weight: float = CONTENT_WEIGHT,
                    style_weight: float | Mapping[str, float] = STYLE_WEIGHT,
                    tv_weight: float = TV_WEIGHT) -> dict[str, torch.Tensor]:
    """Johnson's training loss for one batch: output = f_W(content), both (B, 3, H, W) in [0, 1]
    (output unclamped); `targets` from `style_targets`. With phi_j the VGG-16 activations at layer j
    (C_j x H_j x W_j) and the expectation of Eq. 1 taken as the batch mean:

        feature reconstruction (Eq. 2)  l_feat = 1/(C_j H_j W_j) ||phi_j(y^) - phi_j(y_c)||_2^2    j = relu2_2
        Gram matrix (Eq. 3)             G_j(x) = 1/(C_j H_j W_j) sum_{h,w} phi_j(x)_{h,w,c} phi_j(x)_{h,w,c'}
        style reconstruction (Eq. 4)    l_style^j = ||G_j(y^) - G_j(y_s)||_F^2
        total variation                 l_tv = sum (x_{i,j+1} - x_{i,j})^2 + (x_{i+1,j} - x_{i,j})^2   (losses.tv_loss)
        total (Eq. 5; Eq. 1 over a batch) L = lambda_c l_feat + sum_j lambda_s,j l_style^j + lambda_tv l_tv

    each term averaged over the batch. Returns {'content', 'style', 'tv', 'total'}, the first three
    unweighted. `style_weight`: one lambda_s for every layer, or one per layer by name.

    On the weights: the authors' fast-neural-style computes both reconstruction losses with
    nn.MSECriterion, i.e. Eq. 2 as here but Eq. 4 divided by C_j^2 (a mean over the Gram's entries),
    with content 1.0, style 5.0, TV 1e-6 on 0..255 images. To train with its balance pass
    style_weight={j: 5.0 / C_j**2}; STYLE_WEIGHT = 5.0 with the paper's Eq. 4 weighs each layer C_j^2
    times more than that code does (512^2 at relu4_3): tune it when training.
    """
    check_image(output, "output")
    layers = list(targets)
    batch = output.shape[0]
    feats = {k: v.float() for k, v in vgg.extract(output, dict.fromkeys([content_layer, *layers])).items()}
    with torch.no_grad():
        target = vgg.extract(content, content_layer)[content_layer].float()
    l_content = (feats[content_layer] - target).pow(2).mean()  # mean over B C H W: Eq. 2, batch mean
    weights = (dict.fromkeys(layers, float(style_weight)) if not isinstance(style_weight, Mapping)
               else gatys.layer_weight_dict(layers, style_weight))
    per_layer = {j: (johnson_gram(feats[j]) - targets[j]).pow(2).sum() / batch for j in layers}  # Eq. 4
    l_style = sum(per_layer.values())
    l_tv = gatys.tv_loss(output) / batch
    total = (content_weight * l_content + sum(weights[j] * per_layer[j] for j in layers) + tv_weight * l_tv)
    return {"content": l_content, "style": l_style, "tv": l_tv, "total": total}
