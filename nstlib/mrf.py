"""CNNMRF: Li & Wand, "Combining Markov Random Fields and Convolutional Neural Networks for Image
Synthesis" (CVPR 2016). Notebook 09 sets it against the Gram matrix of notebooks 02-04.

A Gram matrix averages over positions, so it keeps which features occur together and forgets
where. CNNMRF keeps local structure instead: it cuts the style image's feature map into small
patches and asks every patch of the generated image's feature map to look like its best match
among them (a Markov random field on the features: each patch depends on its neighbourhood).

    patches    Psi(Phi(x_s)): every k x k patch (k = 3, stride 1) of the style's features at a layer
    matching   NN(i) = argmax_j <Psi_i(Phi(x)), Psi_j(Phi(x_s))> / (|Psi_i(Phi(x))| |Psi_j(Phi(x_s))|)   (Eq. 3)
    energy     E_s = sum_i ||Psi_i(Phi(x)) - Psi_NN(i)(Phi(x_s))||^2                                    (Eq. 2)
    total      E_s + alpha_1 E_c + alpha_2 Y(x),   Y(x) = sum (x_{i,j+1} - x_{i,j})^2 + (x_{i+1,j} - x_{i,j})^2   (Eq. 1, 4, 5)

    mrf = MRFTerm(style, weight=5e-3)                       # relu3_1 and relu4_1, 3 x 3 patches
    result = optimize_image(photo, [ContentTerm(photo, ["relu4_2"]), mrf, TVTerm(1e5)], line_search=None)
    result = mrf_transfer(photo, style)                     # the paper's recipe, coarse-to-fine

Choices, stated once:
* The matching is a normalised cross-correlation computed as a **convolution**, as the paper does:
  each style patch divided by its norm is one filter, `conv2d(features, filters)` scores every
  position against every style patch at once, and an argmax over the filters picks NN(i). The
  division by |Psi_i(Phi(x))| is left out: for one output patch i it is the same for every j, so
  it cannot change the argmax. The search runs without gradient at every evaluation: NN(i) is a
  constant, and the gradient flows through Psi_i(Phi(x)) of Eq. 2 only, as in the authors' code.
* Style patches are taken at stride 1 (`stride`), every output patch is matched (the conv's
  stride 1). The authors' code samples both at stride 2 by default, which is 4x cheaper per side.
* The paper also matches against rotated and scaled copies of the style image (more patches for
  the same style). That is **not** done here: it multiplies the matching cost, and the course's
  pairs do not need it; rotate or rescale the style image and pass several MRFTerms to try it.
* Eq. 2 is a sum over patches, not an average: like the content loss (Gatys Eq. 1) it grows with
  the image's area, so the balance between the two does not change with size (and the weights of
  `mrf_transfer` stay the same at every scale). Layers are weighted like `StyleTerm`'s: w_l = 1/L
  unless given.
* The regulariser Y(x) of Eq. 5 is the squared-gradient total variation, exactly
  `nstlib.losses.tv_loss`: use `nstlib.optimize.TVTerm`, as `mrf_transfer` does.
* Coarse-to-fine (the paper's multi-resolution synthesis) is `optimize.optimize_scales`,
  the loop `stylize(..., scales=...)` runs on (notebook 03); `mrf_transfer` gives it the terms.
* Because the matches change between evaluations, E_s jumps where a match switches; `mrf_transfer`
  runs L-BFGS without a line search, as the authors' code does (its docstring says why).
"""
from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from . import runtime
from .features import VGGFeatures, load_vgg
from .images import MIN_SIDE, check_image, resize
from .losses import layer_weight_dict
from .optimize import ContentTerm, Term, TVTerm, initial_image, layer_tuple, optimize_scales

MRF_LAYERS = ("relu3_1", "relu4_1")  # Li & Wand's implementation details (VGG-19 there)
CONTENT_LAYERS = ("relu4_2",)  # idem
PATCH_SIZE = 3
MAX_SCORES = 2**24  # entries of one block of the correlation map (64 MB in float32); bounds memory


# ----------------------------------------------------------------------------- patches and matching

def extract_patches(features: torch.Tensor, patch_size: int = PATCH_SIZE, stride: int = 1) -> torch.Tensor:
    """Every `patch_size` x `patch_size` patch of (B, C, H, W) features, at `stride`, as a
    (P, C, k, k) tensor, P = B * H' * W' with H' = (H - k) // stride + 1 (patches fully inside the
    map, in row-major order per image)."""
    _check_features(features, patch_size, "extract_patches")
    b, c, _, _ = features.shape
    cols = F.unfold(features, patch_size, stride=stride)  # (B, C*k*k, H'*W'), one column per patch
    return cols.transpose(1, 2).reshape(-1, c, patch_size, patch_size)  # (B*H'*W', C, k, k)


def normalize_patches(patches: torch.Tensor) -> torch.Tensor:
    """Each (C, k, k) patch divided by its Euclidean norm: the filters of the matching convolution.
    An all-zero patch (common after a ReLU) stays zero rather than becoming NaN."""
    norms = patches.flatten(1).norm(dim=1).clamp_min(1e-12)  # (P,)
    return patches / norms[:, None, None, None]


def nearest_patches(features: torch.Tensor, patches: torch.Tensor, normalized: bool = False) -> torch.Tensor:
    """NN(i) for every k x k patch i (stride 1) of `features` (B, C, H, W): the index of the patch
    in `patches` (P, C, k, k) with the largest normalised cross-correlation (Li & Wand, Eq. 3),

        NN(i) = argmax_j <Psi_i, Psi_j^s> / (|Psi_i| |Psi_j^s|),

    computed as conv2d(features, Psi^s / |Psi^s|): one filter per style patch, one score map per
    filter; |Psi_i| is the same for all j and is left out. Returns (B, H - k + 1, W - k + 1) long.
    normalized: the patches are already divided by their norms (`normalize_patches`).
    The filters are applied in blocks so that no score map holds more than MAX_SCORES entries
    (one (P, H', W') map at 512 px, relu3_1, would take 1 GB). No gradient is recorded.
    """
    k = patches.shape[-1]
    _check_features(features, k, "nearest_patches")
    if patches.dim() != 4 or patches.shape[1] != features.shape[1] or patches.shape[-2] != k:
        raise ValueError(f"nearest_patches: patches must be (P, {features.shape[1]}, k, k) like the features' "
                         f"channels, got {tuple(patches.shape)}")
    filters = patches if normalized else normalize_patches(patches)
    b, _, h, w = features.shape
    positions = b * (h - k + 1) * (w - k + 1)
    block = max(1, MAX_SCORES // positions)
    with torch.no_grad():
        best = best_index = None
        for start in range(0, filters.shape[0], block):
            scores = F.conv2d(features, filters[start:start + block])  # (B, block, H', W')
            score, index = scores.max(dim=1)  # (B, H', W') each
            if best is None:
                best, best_index = score, index
            else:  # a later block wins only where it is strictly better: ties keep the first index
                better = score > best
                best = torch.where(better, score, best)
                best_index = torch.where(better, index + start, best_index)
    return best_index


def mrf_loss(features: torch.Tensor, patches: torch.Tensor, nearest: torch.Tensor | None = None) -> torch.Tensor:
    """E_s = sum_i ||Psi_i(Phi(x)) - Psi_NN(i)(Phi(x_s))||^2 (Li & Wand, Eq. 2), summed over the
    batch: every k x k patch (stride 1) of `features` (B, C, H, W) against its nearest style patch.

    patches: the style patches, (P, C, k, k) (`extract_patches`). nearest: NN(i) as
    (B, H - k + 1, W - k + 1) indices (`nearest_patches`); None: searched here, without gradient.
    The gradient reaches `features` through Psi_i only; the matches are constants.
    """
    k = patches.shape[-1]
    if nearest is None:
        nearest = nearest_patches(features.detach(), patches)
    out = F.unfold(features, k)  # (B, C*k*k, L): Psi_i(Phi(x)), one column per position i
    if nearest.shape != (features.shape[0], features.shape[2] - k + 1, features.shape[3] - k + 1):
        raise ValueError(f"mrf_loss: nearest must be (B, H - k + 1, W - k + 1) = {(features.shape[0], *out.shape[-1:])} "
                         f"positions, got {tuple(nearest.shape)}")
    target = patches.flatten(1)[nearest.flatten(1)]  # (B, L, C*k*k): Psi_NN(i)(Phi(x_s))
    return (out - target.transpose(1, 2)).pow(2).sum()


def _check_features(features: torch.Tensor, k: int, what: str) -> None:
    if features.dim() != 4:
        raise ValueError(f"{what} expects (B, C, H, W) features, got shape {tuple(features.shape)}")
    if min(features.shape[-2:]) < k:
        raise ValueError(f"{what}: a {tuple(features.shape[-2:])} feature map has no {k} x {k} patch; "
                         "use a larger image or a shallower layer")


# ----------------------------------------------------------------------------- the loss term

class MRFTerm(Term):
    """sum_l w_l E_s^l (Li & Wand, Eq. 2) against the patches of `image`, the style, at `layers`;
    w_l = 1/L unless given, like `StyleTerm`. Plugs into `optimize_image` like StyleTerm.

    The style's patches and their normalised copies (the matching filters) are computed once, in
    `prepare`; every evaluation searches NN(i) again, without gradient, for the current image.
    patch_size: k (3 in the paper); stride: of the style patches (1: every patch).
    """

    name = "mrf"

    def __init__(
        self,
        image: torch.Tensor,
        layers: Sequence[str] = MRF_LAYERS,
        layer_weights: Mapping[str, float] | Sequence[float] | None = None,
        weight: float = 1.0,
        patch_size: int = PATCH_SIZE,
        stride: int = 1,
    ):
        super().__init__(weight)
        self.image = check_image(image, "style image")
        self.layers = layer_tuple(layers)
        self.layer_weights = layer_weight_dict(self.layers, layer_weights)
        for value, label in ((patch_size, "patch_size"), (stride, "stride")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MRFTerm: {label} must be a positive integer, got {value!r}")
        self.patch_size, self.stride = patch_size, stride
        self.patches: dict[str, torch.Tensor] = {}  # layer -> (P, C, k, k) style patches
        self._filters: dict[str, torch.Tensor] = {}  # the same, each divided by its norm

    def prepare(self, vgg):
        with torch.no_grad():
            feats = vgg.extract(self.image.to(vgg.mean.device), self.layers)
        for layer, f in feats.items():
            if min(f.shape[-2:]) < self.patch_size:
                raise ValueError(f"MRFTerm: the style image ({tuple(self.image.shape[-2:])} px) is too small for "
                                 f"{self.patch_size} x {self.patch_size} patches at {layer} ({tuple(f.shape[-2:])})")
            self.patches[layer] = extract_patches(f.float(), self.patch_size, self.stride)
            self._filters[layer] = normalize_patches(self.patches[layer])

    def value(self, features, image):
        total = 0.0
        for layer in self.layers:
            f = features[layer]
            nearest = nearest_patches(f.detach(), self._filters[layer], normalized=True)  # NN(i), Eq. 3
            total = total + self.layer_weights[layer] * mrf_loss(f, self.patches[layer], nearest)
        return total


# ----------------------------------------------------------------------------- the paper's recipe

def mrf_transfer(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    max_size: int = 384,
    scales: Sequence[int] | None = None,
    steps: int | Sequence[int] = 100,
    content_weight: float = 1.0,
    mrf_weight: float = 5e-3,
    tv_weight: float = 1e5,
    mrf_layers: Sequence[str] = MRF_LAYERS,
    content_layers: Sequence[str] = CONTENT_LAYERS,
    init: str = "content",
    optimizer: str = "lbfgs",
    line_search: str | None = None,
    vgg: VGGFeatures | None = None,
    seed: int | None = 0,
    progress: bool = True,
    callback: Callable[[int, torch.Tensor, dict], None] | None = None,
    callback_every: int = 10,
    precision: str | None = None,
):
    """CNNMRF style transfer (Li & Wand, Eq. 1), coarse-to-fine: returns a `stylize.StylizeResult`.

        E = mrf_weight E_s (relu3_1, relu4_1) + content_weight E_c (relu4_2) + tv_weight Y(x)

    content, style: (1, 3, H, W) images in [0, 1]; the style is resized with the content, to the
    same longer side at every scale. max_size: the result's longer side (384 in the authors' code).
    scales: smaller longer sides to optimise first, ascending; None: the paper's pyramid, three
    resolutions each twice the last (max_size / 4, max_size / 2), those below 64 px left out.
    steps: per scale (100 in the authors' code). init: 'content' (the paper's transfer), 'noise'
    or 'style', at the coarsest scale. vgg: default the course's VGG-16 on content's device.

    optimizer, line_search: L-BFGS **without** a line search by default, like the authors' code.
    E_s is not smooth: every evaluation matches anew, and when a patch's best match by correlation
    switches to a patch farther away in squared distance, E_s jumps up. Along a line it is a saw
    tooth, and the strong-Wolfe search of `optimize_image`'s default kept shrinking its step to
    the first tooth: on tubingen x starry_night at 96 px (MRF weight 3, TV 1e5) it stalled at
    0.9993 of the start loss for 15 iterations (102 evaluations), where fixed steps reached 0.63
    of it in 12 (they too start slowly, until L-BFGS has a usable curvature pair).

    Weights: content 1, MRF 5e-3 and TV 1e5 were chosen by eye on tubingen x starry_night at
    256 px (scales 64, 128; 50 steps each): at 1e-2 the painting's stars cover the houses, at
    3e-3 the strokes stay faint. The balance does not depend on the size (E_s and E_c are both
    sums over positions) but does on the pyramid: the coarser the first scale, the less content
    survives it. The authors' values (1e-4 per MRF layer, 2e1 content, 1e-3 TV) are in their own
    units (Caffe pixel range, content loss averaged, MRF gradients averaged over overlapping
    patches) and do not carry over.
    """
    start = time.perf_counter()
    from .stylize import StylizeResult  # stylize imports optimize, as this module does: no cycle

    content = check_image(content, "content")[:1]
    style = check_image(style, "style")[:1]
    if scales is None:
        scales = [s for s in (max_size // 4, max_size // 2) if s >= 64]
    sizes = list(scales) + [max_size]
    if min(sizes) < MIN_SIDE:
        raise ValueError(f"every scale must be at least {MIN_SIDE} px, got {sizes}")
    vgg = vgg if vgg is not None else load_vgg(device=content.device)
    device = vgg.mean.device
    content, style = content.to(device), style.to(device)

    def stage(size: int, previous: torch.Tensor | None):
        c = resize(content, max_size=size)
        s = resize(style, max_size=size)
        terms: list[Term] = [ContentTerm(c, content_layers, weight=content_weight),
                             MRFTerm(s, mrf_layers, weight=mrf_weight)]
        if tv_weight > 0:
            terms.append(TVTerm(tv_weight))
        if previous is None:
            return initial_image(init, c, style=s, seed=seed), terms
        return resize(previous, size=tuple(c.shape[-2:])), terms  # coarse-to-fine: upsampled

    stages = optimize_scales(stage, sizes, steps, optimizer=optimizer, line_search=line_search, vgg=vgg,
                             progress=progress, callback=callback,
                             callback_every=callback_every, precision=runtime.precision(precision))
    settings = dict(max_size=max_size, scales=sizes[:-1], steps=steps, content_weight=content_weight,
                    mrf_weight=mrf_weight, tv_weight=tv_weight, mrf_layers=tuple(mrf_layers),
                    content_layers=tuple(content_layers), init=init, device=str(device))
    return StylizeResult(image=stages[-1][1].image, history=stages[-1][1].history, stages=stages,
                         seconds=time.perf_counter() - start, settings=settings)
