"""Photorealistic style transfer: Luan, Paris, Shechtman & Bala, "Deep Photo Style Transfer"
(CVPR 2017), with the matting Laplacian of Levin, Lischinski & Weiss, "A Closed-Form Solution to
Natural Image Matting" (TPAMI 2008). Notebook 09.

Gatys' method, given two photos, still paints: edges wobble and textures appear where the photo
had none. Luan et al. add two things to its loss:

    photorealism   L_m = sum_{c=1..3} V_c[O]^T M_I V_c[O],   dL_m / dV_c[O] = 2 M_I V_c[O]       (Eq. 2)
    style, masked  L_s+^l = sum_c 1 / (2 N_l^2) sum_ij (G_{l,c}[O] - G_{l,c}[S])_ij^2,                (Eq. 3a)
                   F_{l,c}[O] = F_l[O] M_{l,c}[I],   F_{l,c}[S] = F_l[S] M_{l,c}[S]                     (Eq. 3b)
    total          sum_l alpha_l L_c^l + Gamma sum_l beta_l L_s+^l + lambda L_m                         (Eq. 4)

V_c[O] is channel c of the output as a vector of N = H W pixels, M_I the matting Laplacian of the
input photo I: V^T M_I V is small exactly when V is, in every small window, an affine function of
I's colours, so the output may recolour the photo but not redraw it. M_{l,c} is the mask of
semantic class c (sky, building, ...) at layer l: style moves only between regions of the same
class. (Equation numbers: the CVPR paper, arXiv v3.)

    pair = deep_photo_pair(47, max_size=192)         # the paper's examples, with their class masks
    L = matting_laplacian(pair.content)              # scipy.sparse, N x N
    terms = [ContentTerm(pair.content, ["relu4_2"]), PhotorealismTerm(pair.content, weight=1e8),
             *semantic_style_terms(pair.style, pair.content_masks, pair.style_masks, weight=10)]
    result = optimize_image(pair.content, terms)

(Those weights, on example 47 at 192 x 128 px, 60 L-BFGS iterations from the photo: without the
photorealism term the sky and hills turn painterly, with it they stay photographic. The content
loss and L_m are both sums over pixels, so their ratio holds at any size; the Gram-matrix style
loss is an average, so its weight relative to the other two scales with the area, as in
`nstlib.stylize`. The paper's Gamma = 1e2 and lambda = 1e4 are in its own units.)

The matting Laplacian (Levin et al., Eq. 12), windows w_k of (2r+1)^2 = 9 pixels (r = 1):

    M_ij = sum_{k | i, j in w_k} ( delta_ij - 1/|w_k| (1 + (I_i - mu_k)^T (Sigma_k + eps/|w_k| I_3)^-1 (I_j - mu_k)) )

with mu_k and Sigma_k the mean and covariance (1/|w_k|, not 1/(|w_k| - 1)) of the colours in w_k,
eps = 1e-7 as in Luan et al., and only windows that lie wholly inside the image (Levin's code).

Choices, stated once:
* Pixel i of the matrix is row-major, i = y W + x: `V_c = image[0, c].reshape(-1)`. Colours in
  [0, 1] (the range eps is meant for).
* The Laplacian is built on the CPU in float64 (numpy, scipy.sparse), once per photo and size:
  0.3 s at 256 x 256, 0.9 s at 512 x 341 on one CPU thread. In the optimisation it becomes a torch
  sparse (COO) matrix on the image's device and dtype (CPU or CUDA), and L_m is a `torch.autograd.Function` whose backward is Eq. 2's
  2 M V, reusing the M V its forward computed (M is symmetric).
* The augmented style loss (Eq. 3) is `optimize.StyleTerm` with `mask` and `style_mask`, one term
  per class: its guided Gram matrix (`losses.guided_gram`, notebook 03) is F o M, normalised by the
  region's size. A class in only one of the two images is skipped (the authors' code would ask that
  region for the Gram matrix of nothing, i.e. zero). Each class's term is weighted by the class's
  share of the content image, as the authors' code does (Eq. 3 sums the classes unweighted): a
  few stray pixels of a class then cannot weigh as much as the sky. Masks reach each layer by area
  averaging (`losses.layer_guide`); the authors halve them at each pooling and blur them 3 x 3 at
  each convolution.
* Masks: the examples' segmentations are colour-coded with the palette of the authors' README
  (`DEEP_PHOTO_PALETTE`). A pixel belongs to a class when each of its channels is within
  `tolerance` = 0.1 of the class's colour (the authors' `ExtractMask`); 0.4-3.3 % of the pixels of
  the ten shared masks, anti-aliased edges, belong to none and are asked for no style.
  `tolerance=None` snaps every pixel to the nearest colour instead. Masks are made at the
  segmentation's full resolution and then area-resized with the photo (the authors resize the
  colour image bilinearly first, which mixes colours at the edges).
* **Post-processing: not done.** The authors' code also writes a second output, in which the
  result is replaced by the best locally affine function of the input, smoothed with a joint
  bilateral filter (`SmoothLocalAffine` in deepmatting_seg.lua, a CUDA kernel; the README's
  figures come from yet another step, 'refine_posterization'). The paper's method (Eq. 4) is the
  optimisation, and L_m already asks for the same local affinity; the filter is not in the paper's
  equations, needs a CUDA kernel or a slow loop on a CPU, and would make the notebook's comparison
  "with and without lambda L_m" a comparison of two things at once. The course shows the
  optimisation's own output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F

from .images import check_image, load_image
from .optimize import StyleTerm, Term

EPS = 1e-7  # Luan et al. (the authors' Laplacian files are named "..._1e-7_CSR<id>.mat")
RADIUS = 1  # 3 x 3 windows

# the class colours of the authors' README / ExtractMask, in their order, RGB in [0, 1]
DEEP_PHOTO_PALETTE: dict[str, tuple[float, float, float]] = {
    "blue": (0.0, 0.0, 1.0), "green": (0.0, 1.0, 0.0), "black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0),
    "red": (1.0, 0.0, 0.0), "yellow": (1.0, 1.0, 0.0), "grey": (0.5, 0.5, 0.5), "lightblue": (0.0, 1.0, 1.0),
    "purple": (1.0, 0.0, 1.0),
}
MASK_TOLERANCE = 0.1  # per channel, as ExtractMask
DEEP_PHOTO_PAIRS = (1, 8, 14, 21, 27, 34, 40, 47, 53, 60)  # the examples in the pinned set (training_sets)


# ----------------------------------------------------------------------------- the matting Laplacian

def matting_laplacian(image: torch.Tensor, eps: float = EPS, radius: int = RADIUS) -> scipy.sparse.csr_matrix:
    """The matting Laplacian M of a (1, 3, H, W) photo in [0, 1] (Levin et al. 2008, Eq. 12) as an
    N x N scipy.sparse CSR matrix in float64, N = H W, pixels in row-major order (i = y W + x).

    Symmetric, positive semi-definite, every row sums to 0 (constants are in its null space, and so,
    up to eps, is every image that is an affine function of the photo's colours). Windows of
    (2 radius + 1)^2 pixels wholly inside the image; entries couple pixels up to 2 radius apart.
    """
    check_image(image, "image")
    if image.shape[0] != 1:
        raise ValueError(f"matting_laplacian takes one photo, (1, 3, H, W), got a batch of {image.shape[0]}")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise ValueError(f"radius must be a positive integer, got {radius!r}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    h, w = image.shape[-2:]
    d = 2 * radius + 1  # window side
    if h < d or w < d:
        raise ValueError(f"matting_laplacian: a {h}x{w} image has no {d}x{d} window")
    colors = image[0].detach().to("cpu", torch.float64).permute(1, 2, 0).reshape(-1, 3).numpy()  # (N, 3)
    index = np.arange(h * w).reshape(h, w)
    windows = np.lib.stride_tricks.sliding_window_view(index, (d, d)).reshape(-1, d * d)  # (K, n) pixel ids
    n = d * d  # |w_k|
    pixels = colors[windows]  # (K, n, 3)
    mu = pixels.mean(axis=1, keepdims=True)  # (K, 1, 3): mu_k
    centred = pixels - mu  # (K, n, 3): I_i - mu_k
    sigma = np.einsum("kia,kib->kab", centred, centred) / n  # (K, 3, 3): Sigma_k
    inverse = np.linalg.inv(sigma + (eps / n) * np.eye(3))  # (K, 3, 3): (Sigma_k + eps/|w_k| I_3)^-1
    projected = np.einsum("kia,kab->kib", centred, inverse)  # (K, n, 3): (I_i - mu_k)^T (...)^-1

    # M has a band structure: pixels i, j interact only when dy, dx are within 2r. Accumulate each
    # pixel's row as a (N, (4r+1)^2) band, one pair (a, b) of window positions at a time: for a fixed
    # position a, the K windows put it on K different pixels, so a plain indexed += is safe.
    span = 2 * d - 1  # 4r + 1 offsets per axis
    band = np.zeros((h * w, span * span))  # band[i, offset(j - i)] = M_ij
    for a in range(n):
        for b in range(a, n):  # M is symmetric: compute a <= b, write both
            # delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/n I)^-1 (I_j - mu_k)) / n, for every window k
            value = float(a == b) - (1.0 + np.einsum("ki,ki->k", projected[:, a], centred[:, b])) / n  # (K,)
            (ya, xa), (yb, xb) = divmod(a, d), divmod(b, d)
            band[windows[:, a], (yb - ya + d - 1) * span + (xb - xa + d - 1)] += value
            if b != a:
                band[windows[:, b], (ya - yb + d - 1) * span + (xa - xb + d - 1)] += value

    dy, dx = np.divmod(np.arange(span * span), span)
    dy, dx = dy - (d - 1), dx - (d - 1)  # (span^2,) offsets of the band's columns
    y, x = np.divmod(np.arange(h * w), w)
    yy, xx = y[:, None] + dy[None], x[:, None] + dx[None]  # (N, span^2): the neighbour's coordinates
    inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    rows = np.broadcast_to(np.arange(h * w)[:, None], band.shape)[inside]
    cols = (yy * w + xx)[inside]
    return scipy.sparse.csr_matrix((band[inside], (rows, cols)), shape=(h * w, h * w))


def to_torch_sparse(matrix: scipy.sparse.spmatrix, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A scipy.sparse matrix as a coalesced torch sparse COO tensor on `device` (CPU or CUDA), for
    `M @ V`. (COO rather than CSR: PyTorch calls its CSR support beta and warns about it.)"""
    m = scipy.sparse.coo_matrix(scipy.sparse.csr_matrix(matrix))  # from CSR: (row, col) sorted, no duplicates
    indices = torch.from_numpy(np.stack([m.row, m.col]).astype(np.int64))  # (2, nnz)
    values = torch.from_numpy(m.data)
    t = torch.sparse_coo_tensor(indices, values, size=m.shape, check_invariants=False)
    return t.coalesce().to(device=device, dtype=dtype)


class _QuadraticForm(torch.autograd.Function):
    """sum_c V_c^T M V_c for the columns V_c of v (N, C), with a symmetric sparse M; the backward
    is 2 M V_c (Luan et al. Eq. 2), the forward's M V reused."""

    @staticmethod
    def forward(ctx, v, matrix):
        mv = matrix @ v  # (N, C): M V_c, one sparse product for all channels
        ctx.save_for_backward(mv)
        return (v * mv).sum()

    @staticmethod
    def backward(ctx, grad):
        (mv,) = ctx.saved_tensors
        return 2 * grad * mv, None


def matting_loss(image: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
    """L_m = sum_c V_c[O]^T M V_c[O] (Luan et al., Eq. 2), summed over the batch, for `image`
    (B, 3, H, W) and `laplacian` the (H W) x (H W) torch sparse matrix of the input photo
    (`to_torch_sparse(matting_laplacian(photo))`) on the image's device, in its dtype."""
    check_image(image, "image")
    b, c, h, w = image.shape
    if tuple(laplacian.shape) != (h * w, h * w):
        raise ValueError(f"matting_loss: the Laplacian is {tuple(laplacian.shape)} but the image has {h}x{w} = "
                         f"{h * w} pixels; build it from the photo at this size")
    v = image.reshape(b * c, h * w).transpose(0, 1)  # (N, B*3): column (b, c) is V_c of image b
    return _QuadraticForm.apply(v, laplacian)


class PhotorealismTerm(Term):
    """lambda L_m (Luan et al., Eq. 2 and 4): the matting Laplacian of `photo`, the input image,
    applied to the generated image's colour channels. Needs no VGG layer.

    The Laplacian is built (CPU, float64) the first time the term is prepared, or given as
    `laplacian` (a scipy.sparse matrix, e.g. built once and kept for several runs); the generated
    image must have the photo's size. lambda (`weight`): about 1e8 times the content weight on the
    course's losses (see the module docstring); the paper's 1e4 is in its own units.
    """

    name = "photorealism"

    def __init__(self, photo: torch.Tensor, weight: float = 1.0, eps: float = EPS, radius: int = RADIUS,
                 laplacian: scipy.sparse.spmatrix | None = None):
        super().__init__(weight)
        self.photo = check_image(photo, "photo")[:1]
        self.eps, self.radius = eps, radius
        n = self.photo.shape[-1] * self.photo.shape[-2]
        if laplacian is not None and laplacian.shape != (n, n):
            raise ValueError(f"PhotorealismTerm: the Laplacian is {laplacian.shape}, the photo has {n} pixels")
        self.laplacian = laplacian
        self._torch: dict[tuple, torch.Tensor] = {}  # (device, dtype) -> torch sparse copy

    def prepare(self, vgg):
        if self.laplacian is None:
            self.laplacian = matting_laplacian(self.photo, self.eps, self.radius)

    def value(self, features, image):
        if image.shape[-2:] != self.photo.shape[-2:]:
            raise ValueError(f"PhotorealismTerm: the image is {tuple(image.shape[-2:])} but the photo is "
                             f"{tuple(self.photo.shape[-2:])}; make the term from the photo at this size")
        if self.laplacian is None:  # used outside optimize_image, without prepare
            self.prepare(None)
        key = (image.device, image.dtype)
        if key not in self._torch:
            self._torch[key] = to_torch_sparse(self.laplacian, image.device, image.dtype)
        return matting_loss(image, self._torch[key])


# ----------------------------------------------------------------------------- semantic masks

def segmentation_masks(segmentation: torch.Tensor, palette: Mapping[str, Sequence[float]] = DEEP_PHOTO_PALETTE,
                       tolerance: float | None = MASK_TOLERANCE) -> torch.Tensor:
    """Class masks (B, K, H, W), 0 or 1, from a colour-coded segmentation (B, 3, H, W) in [0, 1]:
    channel k is 1 where the pixel has colour k of `palette` (K colours, in its order).

    tolerance: a pixel has colour k when every channel is within `tolerance` of it (the authors'
    ExtractMask, 0.1); a pixel near no colour is in no class. None: every pixel takes the nearest
    colour (Euclidean in RGB), so the masks partition the image.
    """
    check_image(segmentation, "segmentation")
    colors = torch.tensor([list(c) for c in palette.values()], dtype=segmentation.dtype,
                          device=segmentation.device)  # (K, 3)
    diff = segmentation[:, None] - colors[None, :, :, None, None]  # (B, K, 3, H, W)
    if tolerance is None:
        nearest = diff.pow(2).sum(2).argmin(1)  # (B, H, W)
        return F.one_hot(nearest, len(colors)).permute(0, 3, 1, 2).to(segmentation.dtype)
    return (diff.abs() < tolerance).all(dim=2).to(segmentation.dtype)  # (B, K, H, W)


def semantic_style_terms(
    style: torch.Tensor,
    content_masks: torch.Tensor,
    style_masks: torch.Tensor,
    layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    layer_weights: Mapping[str, float] | Sequence[float] | None = None,
    weight: float = 1.0,
    classes: Sequence[str] | None = None,
    area_weighted: bool = True,
) -> list[StyleTerm]:
    """The augmented style loss L_s+ (Luan et al., Eq. 3) as one `StyleTerm` per class: class k
    asks the region `content_masks[:, k]` of the generated image for the Gram matrices of the
    region `style_masks[:, k]` of `style` (guided Gram matrices, Gatys et al. 2017 Sec. 4).

    content_masks: (1, K, H, W) at the generated image's size; style_masks: (1, K, H', W') at the
    style's size (`segmentation_masks`, `deep_photo_pair`). Classes empty in either are skipped.
    weight: Gamma; with `area_weighted` each class's term has weight Gamma * (its share of the
    content image), the authors' code; without, Gamma each (Eq. 3 as printed). classes: names for
    the terms (history keys 'style:<name>'), default the palette's when K matches it.
    """
    check_image(style, "style image")
    if content_masks.dim() != 4 or style_masks.dim() != 4 or content_masks.shape[:2] != style_masks.shape[:2] \
            or content_masks.shape[0] != 1:
        raise ValueError(f"semantic_style_terms expects (1, K, H, W) content and style masks with the same K, got "
                         f"{tuple(content_masks.shape)} and {tuple(style_masks.shape)}")
    if style_masks.shape[-2:] != style.shape[-2:]:
        raise ValueError(f"the style masks are {tuple(style_masks.shape[-2:])} but the style image is "
                         f"{tuple(style.shape[-2:])}")
    k = content_masks.shape[1]
    if classes is None:
        classes = list(DEEP_PHOTO_PALETTE) if k == len(DEEP_PHOTO_PALETTE) else [str(i) for i in range(k)]
    terms = []
    for i, name in enumerate(classes):
        mask, style_mask = content_masks[:, i:i + 1], style_masks[:, i:i + 1]
        if mask.max() <= 0 or style_mask.max() <= 0:
            continue  # a class in one image only: nothing to transfer
        share = float(mask.mean()) if area_weighted else 1.0
        term = StyleTerm(style, layers, layer_weights, weight=weight * share, mask=mask, style_mask=style_mask)
        term.name = f"style:{name}"
        terms.append(term)
    if not terms:
        raise ValueError("semantic_style_terms: no class occurs in both the content and the style masks")
    return terms


# ----------------------------------------------------------------------------- the paper's examples

@dataclass
class DeepPhotoPair:
    """One example of Luan et al.: images (1, 3, H, W) in [0, 1] and their class masks (1, K, H, W),
    channel k for `classes[k]` (the palette's order)."""
    number: int  # the example's number in the authors' repository (in<number>.png)
    content: torch.Tensor
    style: torch.Tensor
    content_masks: torch.Tensor
    style_masks: torch.Tensor
    classes: tuple[str, ...]

    @property
    def shared_classes(self) -> tuple[str, ...]:
        """The classes present in both images: those that transfer style."""
        return tuple(c for i, c in enumerate(self.classes)
                     if self.content_masks[:, i].max() > 0 and self.style_masks[:, i].max() > 0)


def deep_photo_pair(number: int, max_size: int | None = None, tolerance: float | None = MASK_TOLERANCE,
                    download: bool = True) -> DeepPhotoPair:
    """Example `number` (one of DEEP_PHOTO_PAIRS: 1, 8, ..., 60, the authors' numbering) of the
    pinned `deep_photo` set (`nstlib.training_sets`: $NSTLIB_DATASETS_DIR, the cache, or a
    download, every file hash-checked): the input photo, the style photo and their class masks.

    max_size: longer side of both photos (None: as stored, 700 px); each mask is made at its
    segmentation's full size (`segmentation_masks` with `tolerance`) and area-resized to its photo,
    so edges become fractional.
    """
    from .training_sets import dataset

    if number not in DEEP_PHOTO_PAIRS:
        raise ValueError(f"no Deep Photo example {number!r} in the course's set; choose one of {DEEP_PHOTO_PAIRS}")
    root = dataset("deep_photo", download=download)
    content = load_image(root / "input" / f"in{number}.png", max_size=max_size)
    style = load_image(root / "style" / f"tar{number}.png", max_size=max_size)
    masks = []
    for name, photo in ((f"in{number}.png", content), (f"tar{number}.png", style)):
        m = segmentation_masks(load_image(root / "segmentation" / name), tolerance=tolerance)
        masks.append(F.interpolate(m, size=photo.shape[-2:], mode="area") if m.shape[-2:] != photo.shape[-2:] else m)
    return DeepPhotoPair(number, content, style, masks[0], masks[1], tuple(DEEP_PHOTO_PALETTE))
