"""Image optimisation: find pixels whose VGG features match targets (Gatys et al. 2016, Sec. 2-3).

Content reconstruction (notebook 01), texture synthesis (02) and style transfer (03) are one
procedure: start from an image (white noise, the content photo, or the style image), compute a
loss between its features and fixed targets, and follow the gradient with respect to the pixels.
Each part of the loss is a *term*:

    ContentTerm(photo, layers=["relu4_2"])         1/2 sum (F - P)^2 per layer       (Eq. 1)
    StyleTerm(painting, layers=[...])              sum_l w_l ||G - A||^2 / (4 N^2)   (Eq. 4-5)
    TVTerm()                                       total variation of the pixels

    result = optimize_image(init, [ContentTerm(x, weight=1), StyleTerm(s, weight=1e3)], steps=300)
    result.image, result.history["total"]

Notebook 09's terms live with their methods and plug in the same way: `nstlib.mrf.MRFTerm`
(CNNMRF's patch matching) and `nstlib.photorealism.PhotorealismTerm` (the matting Laplacian).
`optimize_scales` runs the loop coarse-to-fine, at increasing sizes.

Choices, stated once:
* Targets are computed once, before the first step, with gradients off.
* Every iteration runs the VGG once, only as deep as the deepest layer any term needs.
* Pixels stay in [0, 1] by a **reparameterisation**: the optimiser works on unconstrained
  logits z and the image is x = sigmoid(z). Clamping after each iteration, the other common
  choice, breaks L-BFGS: its curvature history no longer matches the points it visited, and on
  texture synthesis we measured the loss falling to ~40 and then jumping to ~1e8. Without any
  constraint the pixels drift far outside [0, 1] ([-0.8, 1.6] on the same run). The start image
  is mapped to z = logit(clamp(init, 1e-3, 1 - 1e-3)), so it is reproduced to within 1e-3.
* L-BFGS (the paper's optimiser) runs one iteration per `step` with its stopping tolerances set to
  0, so it never stops early; `steps` counts **optimizer iterations**, not loss evaluations. By
  default it uses a strong-Wolfe line search, about 2 evaluations per iteration
  (`result.evaluations` counts them): without one, a single oversized early step can throw the
  pixels into the sigmoid's flat tails, where they never recover (we saw the texture loss jump
  from 1e6 to 1e8 at iteration 2 and stay there). line_search=None gives one evaluation per
  iteration for those who want to see that. Adam (lr in logit units) is the alternative.
* Precision (`precision`, default `runtime.precision()`: fp32 unless NSTLIB_PRECISION=bf16; `stylize`
  passes bf16 where the device runs it natively): with 'bf16' the VGG runs under bfloat16 autocast in
  channels-last memory (1.8x faster per evaluation on a 2-core AVX-512-bf16 CPU, `benchmarks/run.py
  --only engine`), while the logits z, the targets (computed once, in float32), the features once
  they leave the VGG, the Gram matrices, the loss sums and the optimizer's state stay float32. bf16
  is not the default here because a reconstruction's loss should reach ~0, and features with three
  significant digits put a floor under it (runtime.BF16_MEASURED); a stylisation's loss does not
  get near that floor.
* A non-finite loss stops the run with a warning and keeps the last good image; Ctrl-C
  (KeyboardInterrupt) stops it and returns the best image so far. `result.image` is always the
  image with the lowest total loss seen. When that is the start image and the run went uphill
  from it, a warning says so: it never came back (we met this with
  fixed-step L-BFGS on CNNMRF's saw-tooth energy, which silently returned the photo unchanged).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch

from . import runtime
from .features import VGGFeatures, load_vgg
from .images import as_mask, check_image
from .losses import (content_loss, gram, guided_gram, layer_guide, layer_weight_dict, style_layer_loss,
                     tv_loss)

# Gatys et al. 2016's layers (Sec. 2-3), the rectified responses (the Caffe model's in-place ReLU;
# nstlib.features): content on conv4_2's, style on conv1_1's ... conv5_1's; every term's default
CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.1}  # Adam: in logit units, ~0.025 in pixel units mid-range
EPS = 1e-3  # the start image is clipped to [EPS, 1 - EPS] before the logit


# ----------------------------------------------------------------------------- loss terms

class Term:
    """A weighted loss on the generated image's features (or pixels). Subclasses define
    `layers`, `prepare(vgg)` (compute targets, once) and `value(features, image)` (unweighted)."""

    name = "term"
    layers: tuple[str, ...] = ()

    def __init__(self, weight: float = 1.0):
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be a finite number >= 0, got {weight}")
        self.weight = float(weight)

    def prepare(self, vgg: VGGFeatures) -> None:
        pass

    def value(self, features: Mapping[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ContentTerm(Term):
    """sum over `layers` of 1/2 sum (F - P)^2, P the features of `image` (Gatys Eq. 1)."""

    name = "content"

    def __init__(self, image: torch.Tensor, layers: Sequence[str] = CONTENT_LAYERS, weight: float = 1.0):
        super().__init__(weight)
        self.image = check_image(image, "content image")
        self.layers = layer_tuple(layers)
        self.targets: dict[str, torch.Tensor] = {}

    def prepare(self, vgg):
        with torch.no_grad():
            self.targets = vgg.extract(self.image.to(vgg.mean.device), self.layers)

    def value(self, features, image):
        return sum(content_loss(features[l], self.targets[l]) for l in self.layers)


class StyleTerm(Term):
    """sum_l w_l E_l with Gram targets of `image` (Gatys Eq. 4-5); w_l = 1/L unless given.

    Spatial control (Gatys et al. 2017, Sec. 4): with `mask`, a (1, 1, H, W) guide in [0, 1] the
    size of the generated image, the generated image's Gram matrices become guided Gram matrices
    (`losses.guided_gram`), so only the masked region is asked to have this style; `style_mask`
    does the same for the region of the style image the targets come from. Two StyleTerms with
    masks m and 1 - m put two styles in two regions; a mask of all ones is the unmasked term.
    Both are checked by `nstlib.images.as_mask` (shape, values in [0, 1], not empty; the style
    mask the size of the style image).
    """

    name = "style"

    def __init__(
        self,
        image: torch.Tensor,
        layers: Sequence[str] = STYLE_LAYERS,
        layer_weights: Mapping[str, float] | Sequence[float] | None = None,
        weight: float = 1.0,
        mask: torch.Tensor | None = None,
        style_mask: torch.Tensor | None = None,
    ):
        super().__init__(weight)
        self.image = check_image(image, "style image")
        self.layers = layer_tuple(layers)
        self.layer_weights = layer_weight_dict(self.layers, layer_weights)
        self.mask = None if mask is None else as_mask(mask, name="mask")
        self.style_mask = None if style_mask is None else as_mask(style_mask, like=self.image, name="style_mask")
        self.targets: dict[str, torch.Tensor] = {}
        self._guides: dict[str, torch.Tensor] = {}  # the mask at each layer's resolution

    def prepare(self, vgg):
        with torch.no_grad():
            feats = vgg.extract(self.image.to(vgg.mean.device), self.layers)
        if self.style_mask is None:
            self.targets = {l: gram(f) for l, f in feats.items()}  # A^l, computed once
        else:
            m = self.style_mask.to(vgg.mean.device)
            self.targets = {l: guided_gram(f, layer_guide(m, f)) for l, f in feats.items()}
        self._guides = {}

    def value(self, features, image):
        return sum(self.layer_weights[l] * style_layer_loss(self._gram(l, features[l], image), self.targets[l])
                   for l in self.layers)

    def _gram(self, layer, f, image):
        if self.mask is None:
            return gram(f)
        if layer not in self._guides:
            if self.mask.shape[-2:] != image.shape[-2:]:
                raise ValueError(f"StyleTerm: the mask is {tuple(self.mask.shape[-2:])} but the image is "
                                 f"{tuple(image.shape[-2:])}; resize it, e.g. nstlib.images.load_mask(source, size=(H, W))")
            self._guides[layer] = layer_guide(self.mask.to(f.device), f)
        return guided_gram(f, self._guides[layer])


class TVTerm(Term):
    """Total variation of the pixels (see nstlib.losses.tv_loss); needs no VGG layer."""

    name = "tv"

    def value(self, features, image):
        return tv_loss(image)


def layer_tuple(layers) -> tuple[str, ...]:
    """A loss term's `layers` argument as a tuple of names: one name or several, at least one."""
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    if not layers:
        raise ValueError("a loss term needs at least one layer")
    return layers


# ----------------------------------------------------------------------------- the loop

@dataclass
class Result:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], the lowest-loss image seen
    # per iteration, the losses of the image it started from (entry 0: the start image), each
    # weighted term, 'total', and 'seconds' of wall time; line-search trial points are not listed
    history: dict[str, list[float]]
    iterations: int  # optimizer iterations done
    evaluations: int  # loss evaluations (closure calls); equals iterations unless line search
    stopped: str  # 'finished', 'interrupted' or 'non-finite loss'
    best_loss: float = field(default=math.inf)


def optimize_image(
    init: torch.Tensor,
    terms: Sequence[Term],
    steps: int = 300,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    vgg: VGGFeatures | None = None,
    line_search: str | None = "strong_wolfe",
    callback: Callable[[int, torch.Tensor, dict[str, float]], None] | None = None,
    callback_every: int = 1,
    progress: bool = True,
    normalize: bool = True,
    precision: str | None = None,
) -> Result:
    """Optimise the pixels of `init` (1, 3, H, W) in [0, 1] to minimise sum of weight * term.

    steps: optimizer iterations; optimizer: 'lbfgs' or 'adam'; lr: default 1.0 (L-BFGS) or 0.1
    (Adam, in logit units); vgg: the extractor (default: the shared VGG-16 on init's device);
    callback(step, image, losses) every `callback_every` iterations, for live displays.
    normalize: L-BFGS sees the total divided by its value at the start image (the history keeps
    the real values). Dividing by a constant does not move the minimum, but it keeps L-BFGS's
    numbers O(1): its line search interpolates cubically in float32, and with a loss of ~1e13
    (style weight 1e4 at 200 px) the squares overflow and the run ended in NaN at iteration 1.
    Adam is invariant to the scale of the loss (but for its eps, which a normalised loss's tiny
    gradients would bring into play), so it always sees the real loss.
    precision: 'fp32' or 'bf16' for the VGG's forward and backward (see the module docstring);
    None: `runtime.precision()`.
    """
    check_image(init, "init")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if isinstance(callback_every, bool) or not isinstance(callback_every, int) or callback_every < 1:
        raise ValueError(f"callback_every must be a positive integer, got {callback_every!r}")
    if not terms:
        raise ValueError("give at least one loss term (ContentTerm, StyleTerm, TVTerm)")
    precision = runtime.precision(precision)
    vgg = vgg if vgg is not None else load_vgg(device=init.device)
    device = vgg.mean.device
    layers = list(dict.fromkeys(l for t in terms for l in t.layers))  # union, in order
    for term in terms:
        term.prepare(vgg)

    z = torch.logit(init.detach().to(device, torch.float32).clamp(EPS, 1 - EPS)).requires_grad_(True)
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    if optimizer == "lbfgs":
        # tolerances 0: never stop early; max_iter=1: one iteration per step() call; max_eval: room
        # for the line search (PyTorch's default, 5/4 * max_iter = 1, leaves it a single trial)
        opt = torch.optim.LBFGS([z], lr=lr, max_iter=1, max_eval=25, history_size=100,
                                tolerance_grad=0.0, tolerance_change=0.0, line_search_fn=line_search)
    else:
        opt = torch.optim.Adam([z], lr=lr)

    names = [t.name for t in terms]
    if len(set(names)) != len(names):  # two style terms, say: number them
        names = [f"{n}{i}" for i, n in enumerate(names)]
    history = {n: [] for n in names} | {"total": [], "seconds": []}
    state = {"evaluations": 0, "best": math.inf, "best_image": torch.sigmoid(z).detach(), "first": None,
             "scale": None}
    start = time.perf_counter()

    def features(x):
        if precision == "fp32":
            return vgg.extract(x, layers)
        with runtime.autocast(device, precision):
            feats = vgg.extract(x.contiguous(memory_format=torch.channels_last), layers)
        return {l: f.float() for l, f in feats.items()}  # Grams and loss sums in float32

    def closure():
        opt.zero_grad(set_to_none=True)
        x = torch.sigmoid(z)  # (1, 3, H, W), always inside (0, 1)
        feats = features(x) if layers else {}
        parts = [t.weight * t.value(feats, x) for t in terms]
        total = sum(parts)
        state["evaluations"] += 1
        total_value = float(total.detach())
        if not math.isfinite(total_value):
            raise _NonFinite(total_value)
        if state["first"] is None:  # the loss of the image this iteration starts from
            state["first"] = (total_value, [float(p.detach()) for p in parts])
        if total_value < state["best"]:
            state["best"], state["best_image"] = total_value, x.detach().clone()
            state["best_at"] = state["evaluations"]
        if state["scale"] is None:  # fixed once, at the start image
            normalizing = normalize and optimizer == "lbfgs" and total_value > 0
            state["scale"] = 1.0 / total_value if normalizing else 1.0
        scaled = total * state["scale"]
        scaled.backward()
        return scaled

    stopped = "finished"
    bar = _progress(steps, progress)
    iteration = 0
    try:
        for iteration in range(1, steps + 1):
            state["first"] = None
            opt.step(closure)
            total_value, parts = state["first"]
            for n, p in zip(names, parts):
                history[n].append(p)
            history["total"].append(total_value)
            history["seconds"].append(time.perf_counter() - start)
            if bar is not None:
                bar.update(1)
                if iteration % 10 == 0 or iteration == steps:
                    bar.set_postfix(loss=f"{total_value:.4g}")
            if callback is not None and (iteration % callback_every == 0 or iteration == steps):
                image = torch.sigmoid(z.detach())
                callback(iteration, image, {**dict(zip(names, parts)), "total": total_value})
    except _NonFinite as e:
        stopped = "non-finite loss"
        iteration -= 1
        warnings.warn(
            f"optimize_image: the loss became {e.value} at iteration {iteration + 1}; stopped and "
            "kept the last good image. Lower the learning rate or the loss weights.",
            RuntimeWarning, stacklevel=2)
    except KeyboardInterrupt:
        stopped = "interrupted"
        iteration = len(history["total"])  # iterations completed (the callback may raise it too)
    finally:
        if bar is not None:
            bar.close()
    went_uphill = any(v > history["total"][0] for v in history["total"][1:])  # not: stuck at an optimum
    if state.get("best_at") == 1 and went_uphill:
        warnings.warn(
            f"optimize_image: no iteration of {len(history['total'])} lowered the loss below the start "
            f"image's ({state['best']:.4g}); returned the start image. With line_search=None, try the "
            "line search, a smaller lr, or a coarse-to-fine start.", RuntimeWarning, stacklevel=2)
    return Result(image=state["best_image"], history=history, iterations=max(iteration, 0),
                  evaluations=state["evaluations"], stopped=stopped, best_loss=state["best"])


class _NonFinite(Exception):
    def __init__(self, value: float):
        self.value = value


def _progress(steps: int, enabled: bool):
    if not enabled or steps == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="optimising", unit="it", leave=False)


# ----------------------------------------------------------------------------- coarse-to-fine

def optimize_scales(stage: Callable[[int, torch.Tensor | None], tuple[torch.Tensor, Sequence[Term]]], sizes: Sequence[int], steps: int | Sequence[int] = 300,
                    **optimize_options) -> list[tuple[int, Result]]:
    """Coarse-to-fine: run `optimize_image` at each longer side in `sizes` (ascending), each scale
    starting from the previous scale's result, upsampled (Gatys et al. 2017, Sec. 6; Li & Wand 2016
    synthesise the same way). The coarse scales settle the large structures cheaply, where a
    VGG filter sees a large part of the image; the fine ones add the detail. Taught in notebook 03
    (`stylize(..., scales=...)` runs on it); notebook 09's CNNMRF uses it too (`nstlib.mrf`).

    stage(size, previous) -> (start, terms): the start image and the loss terms at longer side
        `size`. `previous` is None at the first scale, else the previous scale's result
        (1, 3, h, w), which the stage upsamples to its own (H, W), usually
        `nstlib.images.resize(previous, size=(H, W))`: the stage knows the exact size, since it
        resizes the content photo (rounding makes H of "longer side 2s" differ from 2 H of "longer
        side s" by a pixel at times).
    steps: optimizer iterations, the same at every scale or one count per scale.
    optimize_options: as `optimize_image` (optimizer, lr, vgg, callback, progress, precision ...).
    Returns (size, result) per scale done; Ctrl-C ends the scale it interrupts and skips the rest.
    """
    sizes = list(sizes)
    if not sizes or any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"sizes must be one or more increasing longer sides, got {sizes}")
    steps = [steps] * len(sizes) if isinstance(steps, int) else list(steps)
    if len(steps) != len(sizes):
        raise ValueError(f"give one step count per scale ({len(sizes)}: {sizes}), got {steps}")
    stages: list[tuple[int, Result]] = []
    for size, n_steps in zip(sizes, steps):
        start, terms = stage(size, stages[-1][1].image if stages else None)
        result = optimize_image(start, terms, steps=n_steps, **optimize_options)
        stages.append((size, result))
        if result.stopped == "interrupted":
            break
    return stages


# ----------------------------------------------------------------------------- initialisation

def initial_image(kind: str, like: torch.Tensor, style: torch.Tensor | None = None,
                  seed: int | None = 0) -> torch.Tensor:
    """The starting image: 'content' (a copy of `like`), 'noise' or 'style' (`style` resized to
    the size of `like`).

    'noise' is seeded white noise the size of `like`: independent pixels, uniform in
    [0.25, 0.75]. Mid-grey plus noise rather than uniform in [0, 1] because the optimiser works on
    logits (x = sigmoid(z)): pixels that start near 0 or 1 sit where the sigmoid is flat and
    barely move (reconstructing conv1_2 from [0, 1] noise ended 25x higher in loss).
    """
    check_image(like, "like")
    if kind == "content":
        return like.detach().clone()
    if kind == "noise":
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = 0.25 + 0.5 * torch.rand(like.shape, generator=gen)
        return noise.to(like.device)
    if kind == "style":
        if style is None:
            raise ValueError("init 'style' needs the style image")
        from .images import resize

        return resize(check_image(style, "style"), size=tuple(like.shape[-2:])).to(like.device)
    raise ValueError(f"init must be 'content', 'noise' or 'style', got {kind!r}")
