"""Arbitrary style transfer in one forward pass: Huang & Belongie, "Arbitrary Style Transfer in
Real-time with Adaptive Instance Normalization" (ICCV 2017).

Notebook 04 showed that matching each channel's mean and standard deviation (the BN-statistics
kernel) already transfers much of a style. AdaIN does that matching *in feature space, in one
step*, and trains a decoder to turn the matched features back into an image:

    t = AdaIN(f(c), f(s)) = sigma(f(s)) * (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s))    (Eq. 8)
    T(c, s) = g((1 - alpha) f(c) + alpha t)                                          (Eq. 14)

f is VGG up to relu4_1 (fixed; each layer divided by its mean activation, like the paper's normalised VGG:
see FEATURE_SCALES), g the decoder (trained). mu and sigma are per sample and per
channel, over positions; sigma is the biased standard deviation (divide by H W), as in the
original code, plus eps inside the square root.

Training (Sec. 6): with t as the target, L = L_c + lambda L_s, lambda = 10 (`decoder_losses`):

    L_c = || f(g(t)) - t ||^2                                             (Eq. 12; mean squared)
    L_s = sum_{i=1..4} || mu(phi_i(g(t))) - mu(phi_i(s)) ||^2
                     + || sigma(phi_i(g(t))) - sigma(phi_i(s)) ||^2        (Eq. 13; relu1_1..relu4_1)

`pretrained()` gives the model with the decoder this project trained for the VGG-16 encoder
(data/models/, see nstlib.models); `export_decoder` / `load_decoder` save and load others;
`load_authors` loads the paper's VGG-19 encoder and decoder as naoto0804/pytorch-AdaIN releases them
(that port divides sigma's variance by H W - 1, and so does the model it returns).

The decoder mirrors the encoder: nearest-neighbour upsampling where the encoder pools, reflection
padding, no normalisation layers (Sec. 6.1). With the course's VGG-16 it has 8 convolutions
(VGG-19, the paper's: 9).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import color, vgg as vgg_arch
from .download import file_hash
from .features import VGGFeatures
from .images import as_mask, check_image

ENCODER_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
STYLE_LOSS_WEIGHT = 10.0  # lambda, Sec. 6.2
EPS = 1e-5


def mean_std(features: torch.Tensor, eps: float = EPS, unbiased: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and biased std over positions: two (B, C, 1, 1) tensors,
    sigma = sqrt(mean((x - mu)^2) + eps). unbiased=True divides by H W - 1 instead, as
    naoto0804/pytorch-AdaIN's calc_mean_std does (torch's default .var(); see `load_authors`)."""
    if features.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) features, got shape {tuple(features.shape)}")
    mu = features.mean(dim=(2, 3), keepdim=True)
    var = features.var(dim=(2, 3), keepdim=True, unbiased=unbiased)
    return mu, (var + eps).sqrt()


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = EPS, unbiased: bool = False) -> torch.Tensor:
    """AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y) per sample and channel (Eq. 8).

    content: (B, C, H, W); style: (B or 1, C, H', W'), any spatial size. The output has, per
    channel, the style's mean and (up to eps) its std. `unbiased`: as in `mean_std`.
    """
    if content.dim() != 4 or style.dim() != 4 or content.shape[1] != style.shape[1]:
        raise ValueError(f"adain expects (B, C, H, W) features with equal C, got {tuple(content.shape)} "
                         f"and {tuple(style.shape)}")
    mu_c, sd_c = mean_std(content, eps, unbiased)
    mu_s, sd_s = mean_std(style, eps, unbiased)
    return sd_s * (content - mu_c) / sd_c + mu_s


def regional_adain(content: torch.Tensor, styles: Sequence[torch.Tensor], masks: torch.Tensor,
                   eps: float = EPS) -> torch.Tensor:
    """Spatial control as in the paper (Sec. 7.3, the authors' `-mask` option): region k of the
    content takes style k, with the *region's own* content statistics.

    content: (B, C, H, W); styles: K feature maps (B or 1, C, H', W'); masks: (B or 1, K, H, W)
    region weights at the feature map's size, >= 0, summing to 1 at every position. With m_k(p)
    the weight of position p in region k:

        mu_k = sum_p m_k(p) x(p) / sum_p m_k(p),  sigma_k^2 = sum_p m_k(p) (x(p) - mu_k)^2 / sum_p m_k(p) + eps
        t(p) = sum_k m_k(p) [ sigma(y_k) (x(p) - mu_k) / sigma_k + mu(y_k) ]

    With 0/1 masks this is AdaIN applied to each region's positions on their own (the authors' code
    gathers them); soft weights at region borders blend the two regions' results.
    """
    if masks.dim() != 4 or masks.shape[1] != len(styles) or masks.shape[-2:] != content.shape[-2:]:
        raise ValueError(f"masks must be (B, {len(styles)}, {content.shape[-2]}, {content.shape[-1]}) for "
                         f"{len(styles)} styles, got {tuple(masks.shape)}")
    for k in range(len(styles)):  # each region's weights: finite, in [0, 1], a batch of 1 or B
        as_mask(masks[:, k: k + 1], like=content, name=f"region {k + 1}'s weights", batch=True, allow_empty=True)
    t = torch.zeros_like(content)
    for k, style in enumerate(styles):
        m = masks[:, k: k + 1]  # (B, 1, H, W)
        area = m.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
        mu_k = (m * content).sum(dim=(2, 3), keepdim=True) / area  # (B, C, 1, 1)
        sd_k = ((m * (content - mu_k) ** 2).sum(dim=(2, 3), keepdim=True) / area + eps).sqrt()
        mu_s, sd_s = mean_std(style, eps)
        t = t + m * (sd_s * (content - mu_k) / sd_k + mu_s)
    return t


def feature_masks(masks: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Image-size region masks ((H, W), (1, H, W), (1, 1, H, W) or (B, 1, H, W) each, in [0, 1],
    checked by `images.as_mask`; an empty one is allowed) as (B, K, h, w) weights at the feature
    map's size `size` = (h, w): each mask averaged over the pixels of a feature cell ('area'), then
    normalised to sum to 1 at every position (a cell no mask covers is split evenly)."""
    resized = []
    for i, m in enumerate(masks):
        m = as_mask(m, name=f"mask {i + 1}", batch=True, allow_empty=True)
        resized.append(F.interpolate(m, size=size, mode="area"))
    w = torch.cat(torch.broadcast_tensors(*resized), dim=1)  # (B, K, h, w)
    total = w.sum(dim=1, keepdim=True)
    return torch.where(total > 0, w / total.clamp_min(1e-8), torch.full_like(w, 1.0 / w.shape[1]))


# ----------------------------------------------------------------------------- networks

# Mean activation of each layer of the course's VGG-16 (Caffe weights, 0..255 BGR input) over the
# registry's 13 photos and 15 paintings at 256 px: `measure_feature_scales` reproduces them and a test
# checks that it does. The paper's encoder is Gatys' *normalised* VGG (vgg_normalised.t7), rescaled
# so that activations average 1; unnormalised Caffe features at relu1_1 are ~10x smaller than at
# relu2_1..relu4_1, so their squared statistics would weigh ~100x less in L_s and the decoder would
# ignore colour. Dividing each layer by its mean activation restores the paper's balance (per layer
# here; Gatys rescaled per channel).
FEATURE_SCALES = {("vgg16", "caffe"): {"relu1_1": 25.5, "relu2_1": 206.6, "relu3_1": 294.7, "relu4_1": 156.8}}


def measure_feature_scales(vgg: VGGFeatures, images, size: int = 256) -> dict[str, float]:
    """Each STYLE_LAYERS layer's mean activation over `images` (registry names, paths, tensors)
    loaded with their shorter side `size`: the divisors that normalise an encoder (FEATURE_SCALES)."""
    from .images import load_image

    totals = dict.fromkeys(STYLE_LAYERS, 0.0)
    with torch.no_grad():
        for image in images:
            x = load_image(image, size=size).to(vgg.mean.device)
            for layer, f in vgg.extract(x, STYLE_LAYERS).items():
                totals[layer] += float(f.mean()) / len(images)
    return {layer: round(v, 1) for layer, v in totals.items()}


class Encoder(nn.Module):
    """f: the fixed VGG up to relu4_1, each layer divided by its mean activation (`scales`, default
    FEATURE_SCALES for the course's VGG-16; 1 for untrained weights) as in the paper's normalised
    VGG; `forward` gives relu4_1, `styles` relu1_1 .. relu4_1."""

    def __init__(self, arch: str = "vgg16", weights: str | None = "caffe", vgg: VGGFeatures | None = None,
                 scales: dict[str, float] | None = None):
        super().__init__()
        self.vgg = vgg if vgg is not None else VGGFeatures(arch, weights, up_to=ENCODER_LAYER)
        if ENCODER_LAYER not in self.vgg.layer_names:
            raise ValueError(f"the encoder's VGG must reach {ENCODER_LAYER}")
        if scales is None:
            key = (self.vgg.arch, self.vgg.weights_name)
            if key in FEATURE_SCALES:
                scales = FEATURE_SCALES[key]
            elif self.vgg.weights_name is None:  # random weights (tests, benchmarks): nothing to normalise
                scales = dict.fromkeys(STYLE_LAYERS, 1.0)
            else:
                raise ValueError(f"no feature scales for {key}: pass scales=measure_feature_scales(vgg, images)")
        self.scales = dict(scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vgg.extract(x, ENCODER_LAYER)[ENCODER_LAYER] / self.scales[ENCODER_LAYER]

    def styles(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v / self.scales[k] for k, v in self.vgg.extract(x, STYLE_LAYERS).items()}


def build_decoder(arch: str = "vgg16") -> nn.Sequential:
    """g: the encoder's convolutions up to relu4_1 in reverse order, channel counts swapped,
    each followed by a ReLU except the last; nearest-neighbour x2 upsampling where the encoder
    pools; 3x3 convolutions with reflection padding; no normalisation (Huang & Belongie, Sec. 6.1).
    The decoder's output is an RGB image, unconstrained during training (the losses keep it near
    [0, 1]); `AdaIN.decode` clamps it for display."""
    names = vgg_arch.layer_names(arch)
    shapes = vgg_arch.conv_shapes(arch)
    last = names.index(ENCODER_LAYER)
    encoder = [(name, shapes.get(i)) for i, name in enumerate(names[: last + 1])]
    layers: list[nn.Module] = []
    convs = [(n, s) for n, s in encoder if n.startswith(("conv", "pool"))][::-1]  # deepest first
    for position, (name, shape) in enumerate(convs):
        if name.startswith("pool"):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            continue
        c_in, c_out = shape
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(c_out, c_in, 3)]  # mirrored: out -> in
        if position < len(convs) - 1:  # no ReLU after the last conv: it outputs RGB
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AdaIN(nn.Module):
    """Encoder (fixed) + AdaIN + decoder (trained): `model(content, style, alpha=...)` -> images.

    Controls (Sec. 7), keyword arguments of `model(...)` and `target`: alpha in [0, 1] trades content
    for style (Eq. 14); several styles with `blend` (one weight per style) mix their AdaIN targets
    (Eq. 15); `masks` gives regions their own style, each with its own content statistics
    (regional_adain); `preserve_colors` keeps the photo's colours as in `nstlib.stylize`:
    'histogram' recolours the styles to the content's colour statistics first (Gatys et al. 2017,
    Sec. 5.2), 'luminance' transfers between luminances and puts the content's chroma back on the
    decoded image (Sec. 5.1). `weights` (the constructor's) names the encoder's VGG weights.
    """

    def __init__(self, arch: str = "vgg16", weights: str | None = "caffe", encoder: Encoder | None = None):
        super().__init__()
        self.encoder = encoder if encoder is not None else Encoder(arch, weights)
        self.decoder = build_decoder(self.encoder.vgg.arch)
        self.unbiased = False  # sigma divides by H W; `load_authors` sets H W - 1, as the authors' code does

    def decode(self, t: torch.Tensor) -> torch.Tensor:
        """g(t), clamped to [0, 1] (for results, not for training)."""
        return self.decoder(t).clamp(0.0, 1.0)

    def target(self, content: torch.Tensor, styles: Sequence[torch.Tensor] | torch.Tensor, *, alpha: float = 1.0,
               blend: Sequence[float] | None = None, masks: Sequence[torch.Tensor] | None = None,
               preserve_colors: str | None = None) -> torch.Tensor:
        """The feature map the decoder turns into the result: (1 - alpha) f(c) + alpha t, with t
        the `blend`-weighted sum of the styles' AdaIN outputs (interpolation, Eq. 15; weights
        normalised to sum 1, default equal), or, with `masks` (one image-size mask per style,
        checked by `images.as_mask`), each region's own AdaIN with its style (regional_adain).
        preserve_colors: None, 'histogram' (the styles recoloured first; one content image) or
        'luminance' (c and s replaced by their luminance, the style's matched to the content's
        mean and std: the decoded image is grey until `forward` puts the content's chroma back)."""
        check_image(content, "content")
        styles = [styles] if torch.is_tensor(styles) else list(styles)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if not styles:
            raise ValueError("give at least one style image")
        styles = [check_image(s, "style") for s in styles]
        if masks is not None:  # checked before any work, at the content image's size
            if blend is not None:
                raise ValueError("give blend (one style mix everywhere) or masks (one style per region), not both")
            if len(masks) != len(styles):
                raise ValueError(f"{len(masks)} masks for {len(styles)} styles: give one per style")
            masks = [as_mask(m, like=content, name=f"mask {i + 1}", batch=True).to(content.device)
                     for i, m in enumerate(masks)]
        if blend is not None:
            blend = [float(w) for w in blend]
            if len(blend) != len(styles) or any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
                raise ValueError(f"need one blend weight >= 0 per style ({len(styles)}), not all 0; got {blend}")
        if color.check_preserve_colors(preserve_colors) == "histogram":  # Gatys et al. 2017, Sec. 5.2
            if content.shape[0] != 1:
                raise ValueError("preserve_colors='histogram' works on one content image at a time")
            styles = [color.match_histogram(s, content) for s in styles]
        elif preserve_colors == "luminance":  # Sec. 5.1: between luminances; forward() restores the chroma
            styles = [color.match_luminance(s, content) for s in styles]
            content = color.luminance(content)
        fc = self.encoder(content)  # (B, 512, H/8, W/8), rounded (up for load_authors' encoder)
        style_feats = [self.encoder(s) for s in styles]
        if masks is not None:  # each region: its own content statistics and its own style (Sec. 7.3)
            t = regional_adain(fc, style_feats, feature_masks(masks, fc.shape[-2:]))
        else:
            targets = [adain(fc, fs, unbiased=self.unbiased) for fs in style_feats]
            blend = blend if blend is not None else [1.0] * len(styles)
            total = sum(blend)
            t = sum((w / total) * ts for w, ts in zip(blend, targets))
        return (1 - alpha) * fc + alpha * t

    def forward(self, content: torch.Tensor, style, *, alpha: float = 1.0, blend: Sequence[float] | None = None,
                masks: Sequence[torch.Tensor] | None = None, preserve_colors: str | None = None) -> torch.Tensor:
        """T(c, s) = g(target(c, s, ...)), clamped to [0, 1]; the controls as in `target`. With
        preserve_colors='luminance', the decoded luminance Y with the content's chroma I, Q
        (color.transfer_luminance; the content aligned at the top left and cut or edge-padded to the
        decoder's size, which rounds to multiples of 8)."""
        out = self.decode(self.target(content, style, alpha=alpha, blend=blend, masks=masks,
                                      preserve_colors=preserve_colors))
        if preserve_colors == "luminance":
            out = color.transfer_luminance(out, _top_left(content.to(out), out.shape[-2:]))
        return out


def _top_left(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`x` (B, C, H, W) cut, or edge-padded at the bottom and right, to `size` (h, w): the decoder's
    pixel (i, j) is the content's (i, j) (pooling drops or, rounding up, pads the last rows)."""
    h, w = size
    x = x[..., :h, :w]
    pad_h, pad_w = h - x.shape[-2], w - x.shape[-1]
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x


# ----------------------------------------------------------------------------- decoder files

def export_decoder(model: AdaIN, path: str | Path, training: dict | None = None) -> str:
    """Save the decoder's weights in float16 (half the bytes; the decoded images differ by far
    less than one 8-bit grey level) with the encoder's arch and an optional record of how it was
    trained (data, steps, time, loss curve: `training_record` reads it back); returns the sha256
    for data/models.tsv. Written atomically."""
    from .training import save_checkpoint

    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.decoder.state_dict().items()}
    path = save_checkpoint(path, {"arch": model.encoder.vgg.arch, "scales": model.encoder.scales, "decoder": state,
                                  "training": training or {}})
    return file_hash(path)


def load_decoder(model: AdaIN, path: str | Path) -> AdaIN:
    """Load weights saved by `export_decoder` into `model` (as float32); checks the arch."""
    from .training import load_checkpoint

    saved = load_checkpoint(path)
    if saved.get("arch") != model.encoder.vgg.arch:
        raise ValueError(f"{path} holds a decoder for {saved.get('arch')}, the model's encoder is "
                         f"{model.encoder.vgg.arch}")
    if saved.get("scales") != model.encoder.scales:
        raise ValueError(f"{path} holds a decoder for encoder features scaled by {saved.get('scales')}, the model's "
                         f"encoder uses {model.encoder.scales}")
    device = model.encoder.vgg.mean.device
    model.decoder.load_state_dict({k: v.float() for k, v in saved["decoder"].items()})
    model.decoder.to(device).eval()
    return model


SHIPPED_DECODERS = {"vgg16": "adain_decoder_vgg16"}  # encoder arch -> name in data/models.tsv


def pretrained(arch: str = "vgg16", weights: str | None = "caffe") -> AdaIN:
    """AdaIN with the decoder the project trained and ships (data/models/, hash-checked), in eval
    mode on the CPU; move it with `.to(device)`. Only the course's default encoder has one."""
    from .models import shipped_model

    if arch not in SHIPPED_DECODERS:
        raise ValueError(f"no shipped AdaIN decoder for {arch}; shipped: {', '.join(SHIPPED_DECODERS)}. "
                         f"Train one with `python -m nstlib train-adain --arch {arch} ...`")
    return load_decoder(AdaIN(arch, weights), shipped_model(SHIPPED_DECODERS[arch]))


# ----------------------------------------------------------------------------- the authors' files

# naoto0804/pytorch-AdaIN, the unofficial PyTorch port that most users load, releases the paper's networks
# (converted from xunhuang1995/AdaIN-style's vgg_normalised.t7 and decoder.t7, per its README's history) as
# two state dicts of the nn.Sequential modules in its net.py; read here: net.py 4a5eef6, test.py 77462eb,
# function.py f3b9a78. https://github.com/naoto0804/pytorch-AdaIN/releases/tag/v0.0.0 publishes no hash.
AUTHORS_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"  # + file name


class AuthorsVGG(VGGFeatures):
    """net.vgg[:31] of naoto0804/pytorch-AdaIN: Gatys' normalised VGG-19 up to relu4_1, with the paper's
    changes (models/download_models.sh of the Torch original): a 1x1 conv first that maps the RGB [0, 1]
    image to the Caffe net's input (their layer 0, learned weights in place of our fixed `normalize`),
    reflection padding, and max pooling that rounds odd sizes up (ceil_mode)."""

    def __init__(self):
        super().__init__("vgg19", weights=None, padding="reflect", up_to=ENCODER_LAYER)
        self.preprocess = nn.Conv2d(3, 3, 1)
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.MaxPool2d):  # theirs: a 75-px side pools to 38, ours to 37
                self.features[i] = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.weights_name = "naoto0804/pytorch-AdaIN"
        self.requires_grad_(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.preprocess(x)  # (B, 3, H, W) RGB [0, 1] -> the Caffe net's input

    def extra_repr(self) -> str:
        return "naoto0804/pytorch-AdaIN vgg_normalised.pth to relu4_1: 1x1 input conv, reflect padding, ceil pooling"


def authors_layout() -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]], dict[int, int]]:
    """The two files' keys and shapes, and our VGG-19 index of each conv -> theirs.

    Their vgg: [1x1 conv, (ReflectionPad2d, 3x3 conv, ReLU) per conv, MaxPool per block] to relu5_4
    (keys 0..51, all checked; the encoder uses 0..29, relu4_1 is their 30). Their decoder is, layer for
    layer, `build_decoder('vgg19')` (pad, conv, ReLU; nearest x2 where the encoder pools; no ReLU after
    the last conv; keys 1..28), so its keys map to themselves."""
    index, ours_to_theirs = 1, {}
    for i, name in enumerate(vgg_arch.layer_names("vgg19")):
        if name.startswith("conv"):
            index += 1  # their ReflectionPad2d before the conv
            ours_to_theirs[i] = index
        index += 1
    vgg_shapes = {"0.weight": (3, 3, 1, 1), "0.bias": (3,)}
    for i, (c_in, c_out) in vgg_arch.conv_shapes("vgg19").items():
        vgg_shapes |= {f"{ours_to_theirs[i]}.weight": (c_out, c_in, 3, 3), f"{ours_to_theirs[i]}.bias": (c_out,)}
    decoder_shapes = {k: tuple(v.shape) for k, v in build_decoder("vgg19").state_dict().items()}
    return vgg_shapes, decoder_shapes, ours_to_theirs


def _read_authors_file(path, name: str, shapes: dict, other: dict) -> dict[str, torch.Tensor]:
    """The state dict in `path`, checked against the authors' file `name` (keys, shapes), as float32."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (the authors' {name}, from {AUTHORS_RELEASE}{name})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, truncated, or pickled objects weights_only refuses
        raise ValueError(f"{path} is not a PyTorch state dict like the authors' {name} ({error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict like the authors' {name}")
    for key, shape in shapes.items():
        if key not in state:
            swapped = other.keys() <= state.keys()
            raise ValueError(f"{path} is not the authors' {name}: it has no key {key!r}"
                             + (" (it holds the other file's keys: are the two paths swapped?)" if swapped else ""))
        found = tuple(getattr(state[key], "shape", ()))
        if found != shape:
            raise ValueError(f"{path} is not the authors' {name}: {key!r} has shape {found}, theirs is {shape}")
    return {key: state[key].float() for key in shapes}


def load_authors(vgg_path: str | Path, decoder_path: str | Path, device: str | torch.device = "cpu") -> AdaIN:
    """AdaIN with naoto0804/pytorch-AdaIN's released encoder and decoder (`vgg_normalised.pth`,
    `decoder.pth` from AUTHORS_RELEASE, downloaded by the user), in eval mode on `device`.

    `model(content, style, alpha)` takes the course's (B, 3, H, W) RGB [0, 1] images, which is what
    their test.py feeds (transforms.ToTensor()), and gives the image test.py saves:

        f = their vgg[:31] (relu4_1; scales 1: their VGG is already normalised)
        T(c, s) = clamp(decoder((1 - alpha) f(c) + alpha AdaIN(f(c), f(s))), 0, 1)
        sigma = sqrt(sum((x - mu)^2) / (H W - 1) + 1e-5)      (their calc_mean_std: torch's .var())

    (save_image clamps to [0, 1] as `decode` does.) Their pooling rounds odd sizes up, so a side that
    is not a multiple of 8 comes back rounded up to one, as in test.py. Interpolation and masks work as
    in `AdaIN`; preserve_colors='histogram' matches histograms (Gatys' transform), where test.py's
    `--preserve_color` uses CORAL.
    """
    vgg_shapes, decoder_shapes, ours_to_theirs = authors_layout()
    vgg_state = _read_authors_file(vgg_path, "vgg_normalised.pth", vgg_shapes, decoder_shapes)
    decoder_state = _read_authors_file(decoder_path, "decoder.pth", decoder_shapes, vgg_shapes)
    vgg = AuthorsVGG()
    vgg.preprocess.load_state_dict({"weight": vgg_state["0.weight"], "bias": vgg_state["0.bias"]})
    vgg.features.load_state_dict({f"{i}.{p}": vgg_state[f"{j}.{p}"] for i, j in ours_to_theirs.items()
                                  if i < len(vgg.features) for p in ("weight", "bias")})
    model = AdaIN(encoder=Encoder(vgg=vgg, scales=dict.fromkeys(STYLE_LAYERS, 1.0)))
    model.decoder.load_state_dict(decoder_state)
    model.unbiased = True
    return model.to(device).eval()


# ----------------------------------------------------------------------------- training losses

def decoder_losses(model: AdaIN, content: torch.Tensor, style: torch.Tensor,
                   style_weight: float = STYLE_LOSS_WEIGHT) -> dict[str, torch.Tensor]:
    """One training batch's losses (Sec. 6.2): content (B, 3, H, W) and style (B, 3, H', W')
    images pair up by index. Returns {'content', 'style', 'total'}; total = L_c + lambda L_s."""
    # .float(): under bf16 autocast the networks run in bfloat16, but the statistics and losses are
    # computed in float32 (a bf16 sigma has 3 significant digits); a no-op in fp32
    fc = model.encoder(content).float()
    style_feats = {k: v.float() for k, v in model.encoder.styles(style).items()}
    t = adain(fc, style_feats[ENCODER_LAYER]).detach()  # the target: no gradient into the encoder
    out = model.decoder(t)  # g(t), not clamped: clamping would stop the gradient at the bounds
    out_feats = {k: v.float() for k, v in model.encoder.styles(out).items()}
    l_content = F.mse_loss(out_feats[ENCODER_LAYER], t)  # Eq. 12
    l_style = 0.0
    for layer in STYLE_LAYERS:  # Eq. 13, summed over layers as in the original
        mu_o, sd_o = mean_std(out_feats[layer])
        mu_s, sd_s = mean_std(style_feats[layer])
        l_style = l_style + F.mse_loss(mu_o, mu_s) + F.mse_loss(sd_o, sd_s)
    return {"content": l_content, "style": l_style, "total": l_content + style_weight * l_style}
