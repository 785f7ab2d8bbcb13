"""Gatys style transfer in one call: Gatys, Ecker & Bethge, "Image Style Transfer Using
Convolutional Neural Networks" (CVPR 2016), with the controls of Gatys, Ecker, Bethge, Hertzmann
& Shechtman, "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017).

    result = stylize("tubingen", "starry_night")                 # 512 px, 300 L-BFGS iterations
    result = stylize("tubingen", "starry_night", preserve_colors="luminance")
    result = stylize(photo, ["the_scream", "starry_night"], blend=[0.7, 0.3])
    result = stylize(photo, ["la_muse", "the_scream"], masks=[mask, 1 - mask])   # two regions
    result = stylize(photo, "starry_night", max_size=1024, scales=(256, 512))    # coarse-to-fine
    result = stylize(photo, "starry_night", preset="gatys2016")  # the paper: VGG-19, avg pooling

The loss is Gatys' Eq. 7, alpha * L_content + beta * L_style (+ a total-variation term),
optimised over the pixels by `nstlib.optimize.optimize_image` (notebook 03 explains each part).

Weights, stated once (`PRESETS`). L_content (Eq. 1) is a sum over feature positions, so it grows
with the image's area while the Gram style loss (an average) does not: the same alpha/beta is
content-heavy at 1024 px and style-heavy at 256 px. `content_weight` is therefore given for a
512 x 512 image and multiplied by 512^2 / (H * W) at other sizes (so is `tv_weight`, also a
sum over pixels), which keeps the balance
(measured on four pairs: the weight at which content and style losses balance changed by less
than 2x between 256 and 512 px, against 4x without the rescaling). The defaults,
content_weight 1 and style_weight 1e3 with relu4_2 for content and relu1_1 ... relu5_1 for style,
were chosen by looking at a sweep over style weights 1e2, 1e3, 1e4 on three pairs (tubingen x
starry_night, golden_gate x the_scream, chicago x woman_with_hat_matisse): at 1e2 the strokes of
the latter two stay light, at 1e4 the photos' buildings start to dissolve (notebook 03 shows the
sweep and six pairs at 512 px with these defaults).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from . import color, runtime
from .features import VGGFeatures, load_vgg
from .images import MIN_SIDE, as_mask, check_image, load_image, load_mask, resize
from .optimize import (CONTENT_LAYERS, OPTIMIZERS, STYLE_LAYERS, ContentTerm, Result, StyleTerm, Term, TVTerm,
                       initial_image, optimize_scales)
from .runtime import get_device

REFERENCE_AREA = 512 * 512  # content_weight is stated for an image of this many pixels
COLOR_MODES = color.PRESERVE_COLORS  # preserve_colors: None, 'luminance' or 'histogram'
INITS = ("content", "noise", "style")

# every default in one place; explicit arguments to stylize() override the preset's
PRESETS = {
    # the course: VGG-16 with the original Caffe weights, max pooling, weights chosen in notebook 03
    "course": dict(arch="vgg16", weights="caffe", pooling="max", content_layers=CONTENT_LAYERS,
                   style_layers=STYLE_LAYERS, content_weight=1.0, style_weight=1e3, tv_weight=0.0),
    # Gatys et al. 2016: VGG-19, average pooling (Sec. 2), the same layers (the paper's conv4_2 and
    # conv1_1 ... conv5_1 are rectified in its Caffe model: relu4_2 and relu1_1 ... relu5_1 here)
    "gatys2016": dict(arch="vgg19", weights="caffe", pooling="avg", content_layers=CONTENT_LAYERS,
                      style_layers=STYLE_LAYERS, content_weight=1.0, style_weight=1e3, tv_weight=0.0),
}


@dataclass
class StylizeResult:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1]: the stylised image, colours preserved if asked
    history: dict[str, list[float]]  # losses of the last (finest) scale, see optimize.Result
    stages: list[tuple[int, Result]] = field(default_factory=list)  # (longer side, result) per scale done
    seconds: float = 0.0  # wall time of the whole call, loading included
    settings: dict = field(default_factory=dict)  # the resolved arguments, for the record

    @property
    def stopped(self) -> str:
        return self.stages[-1][1].stopped if self.stages else "finished"


def resolve_settings(preset: str = "course", **overrides) -> dict:
    """The preset's settings with every non-None override applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    settings = dict(PRESETS[preset])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def stylize(
    content,
    style,
    *,
    max_size: int = 512,
    steps: int | Sequence[int] = 300,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    style_layer_weights: Sequence[float] | None = None,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    blend: Sequence[float] | None = None,
    masks: Sequence | None = None,
    preserve_colors: str | None = None,
    init: str = "content",
    optimizer: str = "lbfgs",
    lr: float | None = None,
    scales: Sequence[int] = (),
    style_scale: float = 1.0,
    preset: str = "course",
    arch: str | None = None,
    pooling: str | None = None,
    vgg: VGGFeatures | None = None,
    device: str | torch.device | None = None,
    seed: int | None = 0,
    progress: bool = True,
    callback: Callable[[int, torch.Tensor, dict], None] | None = None,
    callback_every: int = 10,
    precision: str | None = None,
) -> StylizeResult:
    """Paint the content image in the style of the style image(s); returns a `StylizeResult`.

    content, style: anything `load_image` takes (registry name, path, PIL, array, tensor); style
        may be a list of them, blended by `blend` (one weight per style, normalised to sum 1) or
        placed in regions by `masks` (one mask per style: a tensor, checked by `images.as_mask`, or
        anything `load_mask` takes; resized to the content image).
    max_size: longer side of the result, px. steps: L-BFGS/Adam iterations, per scale if a sequence.
    content_weight (alpha) and tv_weight, both for a 512 x 512 image (see the module docstring),
        and style_weight (beta): None takes the preset's value.
    preserve_colors: None, 'luminance' (transfer on luminance, keep the photo's chroma) or
        'histogram' (recolour the style to the photo's colour statistics first).
    init: 'content', 'noise' or 'style'. scales: smaller longer sides to optimise at first,
        ascending, each result upsampled to initialise the next (coarse-to-fine, Gatys 2017 Sec. 6).
    style_scale: the style image's longer side relative to `max_size`.
    preset: 'course' (VGG-16, Caffe, max pooling) or 'gatys2016' (VGG-19, avg pooling); both
        use the paper's layers; arch and pooling override it.
    vgg: an extractor to reuse across calls (it then decides the network, not preset/arch/pooling);
        device: default the extractor's, else the best available; seed: of the noise start.
    progress, callback(step, image, losses), callback_every: as in `optimize_image`, per scale.
    precision: 'fp32' or 'bf16' for the VGG (see `optimize_image`); None: `runtime.precision()`,
        bf16 where the device runs it natively (measured: the loss within 0.6% of fp32's, README),
        else fp32 (NSTLIB_PRECISION chooses too).
    Ctrl-C stops the current scale, skips the rest and returns the best image so far.

    The work is three steps: `_load_inputs` (images and masks, once, at the final size),
    `_optimize_scales` (per scale: `loss_terms`, then `optimize_image`) and, with 'luminance', the
    photo's chroma put back on the result.
    """
    start = time.perf_counter()
    if precision is not None:
        runtime.precision(precision)  # a bad value fails here, before anything slow
    s = resolve_settings(preset, content_layers=content_layers, style_layers=style_layers,
                         content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                         arch=arch, pooling=pooling)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    sizes, steps_per_scale = _check_arguments(
        max_size=max_size, steps=steps, scales=scales, styles=styles, blend=blend, masks=masks,
        preserve_colors=preserve_colors, init=init, optimizer=optimizer, style_scale=style_scale, settings=s)
    device = torch.device(device) if device is not None else (vgg.mean.device if vgg is not None else get_device())
    precision = runtime.precision(precision, device, "stylize")
    inputs = _load_inputs(content, styles, masks, max_size=max_size, style_scale=style_scale,
                          preserve_colors=preserve_colors, device=device)  # a bad image or mask fails here
    if vgg is None:
        vgg = load_vgg(s["arch"], s["weights"], pooling=s["pooling"], device=device)
    blend = _blend_weights(blend, len(styles), masks is not None)
    stages = _optimize_scales(inputs, sizes, steps_per_scale, settings=s, blend=blend,
                              style_layer_weights=style_layer_weights, style_scale=style_scale,
                              preserve_colors=preserve_colors, init=init, seed=seed, optimizer=optimizer, lr=lr,
                              vgg=vgg, callback=callback, callback_every=callback_every, progress=progress,
                              precision=precision)
    image = stages[-1][1].image  # the finest scale reached (all of them unless interrupted)
    if preserve_colors == "luminance":  # the result's luminance with the photo's chroma (Sec. 5.1)
        c = inputs.content
        c = c if image.shape[-2:] == c.shape[-2:] else resize(c, size=tuple(image.shape[-2:]))
        image = color.transfer_luminance(image, c)
    settings = dict(s, max_size=max_size, steps=list(steps_per_scale), scales=list(sizes[:-1]), init=init,
                    optimizer=optimizer, preserve_colors=preserve_colors, style_scale=style_scale,
                    blend=blend, preset=preset, device=str(device), precision=precision)
    return StylizeResult(image=image, history=stages[-1][1].history, stages=stages,
                         seconds=time.perf_counter() - start, settings=settings)


# ----------------------------------------------------------------------------- the three steps

@dataclass
class _Inputs:
    """The images stylize() works from, loaded once at the final size, on the device."""
    content: torch.Tensor  # (1, 3, H, W), longer side max_size
    styles: list[torch.Tensor]  # (1, 3, H', W') each, longer side max_size * style_scale
    masks: list[torch.Tensor] | None  # (1, 1, H, W) each, the content's size; None: no regions


def _load_inputs(content, styles: list, masks: Sequence | None, *, max_size: int, style_scale: float,
                 preserve_colors: str | None, device: torch.device) -> _Inputs:
    """Load the content, the styles (recoloured to the photo's colours with 'histogram', Sec. 5.2)
    and the masks (checked by `as_mask`, resized to the content)."""
    content = _load(content, "content", max_size).to(device)
    style_side = max(MIN_SIDE, round(max_size * style_scale))
    styles = [_load(x, f"style {i + 1}", style_side).to(device) for i, x in enumerate(styles)]
    if preserve_colors == "histogram":
        styles = [color.match_histogram(x, content) for x in styles]
    if masks is not None:
        masks = [_load_mask(m, content, f"mask {i + 1}").to(device) for i, m in enumerate(masks)]
    return _Inputs(content, styles, masks)


def _load(source, label: str, max_size: int) -> torch.Tensor:
    if torch.is_tensor(source):
        return resize(check_image(source, label)[:1].float(), max_size=max_size)
    return load_image(source, max_size=max_size)


def _load_mask(source, content: torch.Tensor, name: str) -> torch.Tensor:
    """A mask at the content's size: a tensor as it is, anything else through `load_mask`, then
    checked by `as_mask` and resized by area averaging (edges become fractional)."""
    mask = as_mask(source if torch.is_tensor(source) else load_mask(source), name=name)
    return F.interpolate(mask, size=content.shape[-2:], mode="area")


def loss_terms(content: torch.Tensor, styles: Sequence[torch.Tensor], settings: dict, *, blend: Sequence[float],
                masks: Sequence[torch.Tensor] | None = None,
                style_layer_weights: Sequence[float] | None = None) -> list[Term]:
    """Gatys' Eq. 7 at one scale: alpha L_content + sum_i beta w_i L_style,i (+ lambda_tv TV).

    alpha and lambda_tv are stated for a 512 x 512 image and multiplied by 512^2 / (H W) (both
    losses are sums over positions; see the module docstring); w_i: the `blend` weight of style i;
    with `masks`, style i is asked for only in region i (a guided Gram, Gatys 2017 Sec. 4), each
    mask area-resized to the content's size."""
    area_scale = REFERENCE_AREA / (content.shape[-1] * content.shape[-2])
    terms: list[Term] = [ContentTerm(content, settings["content_layers"], weight=settings["content_weight"] * area_scale)]
    for i, (style, w) in enumerate(zip(styles, blend)):
        mask = None if masks is None else F.interpolate(masks[i], size=content.shape[-2:], mode="area")
        terms.append(StyleTerm(style, settings["style_layers"], style_layer_weights,
                               weight=settings["style_weight"] * w, mask=mask))
    if settings["tv_weight"] > 0:  # a sum over pixels, like L_content: the same area rule
        terms.append(TVTerm(settings["tv_weight"] * area_scale))
    return terms


def _optimize_scales(inputs: _Inputs, sizes: Sequence[int], steps: Sequence[int], *, settings: dict,
                     blend: Sequence[float], style_layer_weights, style_scale: float, preserve_colors: str | None,
                     init: str, seed: int | None, **optimize_options) -> list[tuple[int, Result]]:
    """Optimise at each longer side in `sizes` (ascending, the last the final size) for its `steps`,
    each scale starting from the previous one's result, upsampled (the first from `init`), by
    `optimize.optimize_scales`. With 'luminance' the images are their luminance (Sec. 5.1).
    `optimize_options` go to `optimize_image`. Returns (longer side, result) per scale done: an
    interrupt ends the loop."""

    def stage(size: int, previous: torch.Tensor | None):
        content = resize(inputs.content, max_size=size) if size != sizes[-1] else inputs.content
        styles = [resize(x, max_size=max(MIN_SIDE, round(size * style_scale))) for x in inputs.styles]
        if preserve_colors == "luminance":  # optimise the luminance channel only (Sec. 5.1)
            styles = [color.match_luminance(x, content) for x in styles]
            content = color.luminance(content)
        terms = loss_terms(content, styles, settings, blend=blend, masks=inputs.masks,
                            style_layer_weights=style_layer_weights)
        if previous is None:
            start_image = initial_image(init, content, style=styles[0], seed=seed)
        else:  # coarse-to-fine: the previous scale's result, upsampled
            start_image = resize(previous, size=tuple(content.shape[-2:]))
            if preserve_colors == "luminance":
                start_image = color.luminance(start_image)
        return start_image, terms

    return optimize_scales(stage, sizes, steps, **optimize_options)


# ----------------------------------------------------------------------------- argument checks

def _blend_weights(weights, n: int, masked: bool) -> list[float]:
    """Style weights per style image: normalised to sum 1 when blending; 1 each with masks (each
    region gets the full style weight, as if it were the only style)."""
    if weights is None:
        return [1.0] * n if masked else [1.0 / n] * n
    total = sum(weights)
    return [float(w) / total for w in weights]


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_arguments(*, max_size, steps, scales, styles, blend, masks, preserve_colors, init, optimizer,
                     style_scale, settings) -> tuple[list[int], list[int]]:
    """Check every argument before anything slow happens; returns the sizes and steps per scale."""
    _positive_int(max_size, "max_size", MIN_SIDE)
    scales = [_positive_int(x, "each of scales", MIN_SIDE) for x in scales]
    if any(b <= a for a, b in zip(scales, scales[1:])) or (scales and scales[-1] >= max_size):
        raise ValueError(f"scales must increase and stay below max_size={max_size}, got {scales}")
    sizes = scales + [max_size]
    if isinstance(steps, int) and not isinstance(steps, bool):
        steps_per_scale = [steps] * len(sizes)
    else:
        steps_per_scale = list(steps)
        if len(steps_per_scale) != len(sizes):
            raise ValueError(f"give one step count per scale ({len(sizes)}: {sizes}), got {steps_per_scale}")
    for x in steps_per_scale:
        _positive_int(x, "steps", 0)
    if not styles:
        raise ValueError("give at least one style image")
    if blend is not None:
        blend = list(blend)
        if len(blend) != len(styles):
            raise ValueError(f"{len(blend)} blend weights for {len(styles)} style images: give one per style")
        if any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
            raise ValueError(f"blend weights must be >= 0 and not all 0, got {blend}")
    if masks is not None and len(masks) != len(styles):
        raise ValueError(f"{len(masks)} masks for {len(styles)} style images: give one mask per style")
    color.check_preserve_colors(preserve_colors)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if not (isinstance(style_scale, (int, float)) and math.isfinite(style_scale) and style_scale > 0):
        raise ValueError(f"style_scale must be a number > 0, got {style_scale!r}")
    for key in ("content_weight", "style_weight", "tv_weight"):
        w = settings[key]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{key} must be a finite number >= 0, got {w!r}")
    return sizes, steps_per_scale
