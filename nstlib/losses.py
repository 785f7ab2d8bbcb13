"""The losses of Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks"
(CVPR 2016, Sec. 2), plus total variation.

Notation (paper, Sec. 2.1): layer l has N_l filters; its response to an image is
F^l in R^{N_l x M_l}, M_l = H_l * W_l positions (one row per filter, one column per position).
P^l is the response to the content image, A^l the Gram matrix of the style image.

    content    L_content = 1/2 sum_ij (F_ij - P_ij)^2                                  (Eq. 1)
    Gram       G = F F^T / M                       (B, N, N); the paper's G is F F^T    (Eq. 3)
    style, l   E_l = ||G - A||_F^2 / (4 N_l^2)                                          (Eq. 4)
    style      L_style = sum_l w_l E_l                                                  (Eq. 5)
    TV         L_tv = sum_{b,c,i,j} (x_{i,j+1} - x_{i,j})^2 + (x_{i+1,j} - x_{i,j})^2
    guided     G_T = (F o T)(F o T)^T / sum_m T_m^2   (Gatys et al. 2017, Sec. 4)

Normalisation: dividing the Gram matrix by M makes it the average outer product of the feature
vectors, independent of image size; then E_l = ||G - A||^2 / (4 N^2) equals the paper's
1/(4 N^2 M^2) sum (F F^T - A_paper)^2 exactly (when content and style images have the same M), and
it equals MMD^2 / (4 N_l^2) with the kernel k(x, y) = (x^T y)^2 (Li et al. 2017; notebook 04).

All losses take batches and sum over the batch, like the paper's sums over every entry.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_content = 1/2 sum_ij (F_ij - P_ij)^2 over every entry (Gatys et al. 2016, Eq. 1).

    features, target: (B, N, H, W) responses of one layer to the generated and the content image.
    """
    _same_shape(features, target, "content_loss")
    return 0.5 * (features - target).pow(2).sum()


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = F F^T / M: the (B, N, N) Gram matrices of (B, N, H, W) features (M = H * W positions).

    G_ij is the average over positions of the product of filters i and j: which features occur
    together, wherever they are in the image.
    """
    if features.dim() != 4:
        raise ValueError(f"gram expects (B, N, H, W) features, got shape {tuple(features.shape)}")
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)  # (B, N, M): row i is filter i over all positions
    return _OuterProduct.apply(f) / (h * w)  # (B, N, N)


class _OuterProduct(torch.autograd.Function):
    """F F^T with a one-matmul backward: dL/dF = (dG + dG^T) F.

    Autograd treats the two factors of `f @ f.transpose(1, 2)` as unrelated, so its backward runs
    two (B, N, M) matmuls and adds their (B, N, M) results; summing the small (B, N, N) gradient
    with its transpose first does the same in one. On one Gatys evaluation (VGG-16, style at
    relu1_1..relu5_1, 2-core CPU) that saved 4% at 256 px and 12% at 512 px; for a symmetric
    incoming gradient (every loss of G here) the result is bitwise the same.
    """

    @staticmethod
    def forward(ctx, f):
        ctx.save_for_backward(f)
        return f @ f.transpose(1, 2)

    @staticmethod
    def backward(ctx, grad):
        (f,) = ctx.saved_tensors
        # autocast may have run the forward in bf16 while f is float32: answer in f's dtype
        return (grad + grad.transpose(1, 2)).to(f.dtype) @ f


def guided_gram(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """The guided Gram matrix of Gatys et al. 2017 ("Controlling Perceptual Factors in Neural
    Style Transfer", CVPR 2017, Sec. 4): weight every position by the guidance channel first,

        F_T[:, m] = F[:, m] * T_m,    G_T = F_T F_T^T / sum_m T_m^2      (B, N, N)

    so that only the region where T is large contributes. features: (B, N, H, W); guide:
    (B or 1, 1, H, W) in [0, 1] at the layer's resolution (see `layer_guide`). The paper leaves
    G_T unnormalised; dividing by sum T^2 makes it an average over the region, independent of
    the region's size, and makes a guide of all ones give exactly `gram(features)`.
    """
    if features.dim() != 4 or guide.dim() != 4 or guide.shape[1] != 1 or guide.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"guided_gram expects (B, N, H, W) features and a (B, 1, H, W) guide, got "
                         f"{tuple(features.shape)} and {tuple(guide.shape)}")
    b, n, h, w = features.shape
    f = (features * guide).reshape(b, n, h * w)  # (B, N, M): F o T
    mass = guide.pow(2).reshape(guide.shape[0], 1, h * w).sum(-1, keepdim=True)  # (B, 1, 1)
    if (mass <= 0).any():
        raise ValueError("guided_gram: the guide is zero everywhere at this layer (an empty region)")
    return f @ f.transpose(1, 2) / mass  # (B, N, N)


def layer_guide(mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """A (B, 1, H, W) mask in [0, 1], resized to the (h, w) of a layer's features by area
    averaging: the fraction of each feature position's pixel block inside the region. (Gatys et al.
    2017 also describe eroding the guide so that only positions whose whole receptive field is
    inside count; averaging is the simpler of their two propagations.)"""
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"a mask must be (B, 1, H, W), got shape {tuple(mask.shape)}")
    return torch.nn.functional.interpolate(mask, size=features.shape[-2:], mode="area")


def style_layer_loss(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """E_l = ||G - A||_F^2 / (4 N_l^2), summed over the batch (Gatys et al. 2016, Eq. 4 with G / M).

    g, a: (B, N, N) Gram matrices (see `gram`) of the generated and the style image; a may have
    batch size 1 and is then compared with every image of the batch.
    """
    if g.dim() != 3 or g.shape[-1] != g.shape[-2] or a.shape[-2:] != g.shape[-2:]:
        raise ValueError(f"style_layer_loss expects (B, N, N) Gram matrices, got {tuple(g.shape)} "
                         f"and {tuple(a.shape)}")
    n = g.shape[-1]
    return (g - a).pow(2).sum() / (4 * n**2)


def style_loss(
    features: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | Sequence[float] | None = None,
) -> torch.Tensor:
    """L_style = sum_l w_l E_l over the layers of `targets` (Gatys et al. 2016, Eq. 5).

    features: layer -> (B, N, H, W) responses of the generated image.
    targets:  layer -> (B or 1, N, N) Gram matrices of the style image.
    layer_weights: w_l by layer name or in the order of `targets`; default 1 / (number of layers),
    the paper's choice.
    """
    layers = list(targets)
    weights = layer_weight_dict(layers, layer_weights)
    return sum(weights[l] * style_layer_loss(gram(features[l]), targets[l]) for l in layers)


def layer_weight_dict(
    layers: Sequence[str], layer_weights: Mapping[str, float] | Sequence[float] | None
) -> dict[str, float]:
    """Layer weights as a dict for `layers`: equal 1/L by default, or given by name or by order."""
    if layer_weights is None:
        return {l: 1.0 / len(layers) for l in layers}
    if isinstance(layer_weights, Mapping):
        missing = [l for l in layers if l not in layer_weights]
        if missing:
            raise ValueError(f"no weight for layers {missing}")
        return {l: float(layer_weights[l]) for l in layers}
    layer_weights = list(layer_weights)
    if len(layer_weights) != len(layers):
        raise ValueError(f"{len(layer_weights)} weights for {len(layers)} layers {list(layers)}")
    return {l: float(w) for l, w in zip(layers, layer_weights)}


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation, squared differences of neighbouring pixels, summed:

        L_tv = sum_{b,c,i,j} (x_{b,c,i,j+1} - x_{b,c,i,j})^2 + (x_{b,c,i+1,j} - x_{b,c,i,j})^2

    (Mahendran & Vedaldi 2015's V^beta with beta = 2). It penalises high-frequency noise and
    smooths the optimised image; image is (B, C, H, W).
    """
    if image.dim() != 4:
        raise ValueError(f"tv_loss expects (B, C, H, W), got shape {tuple(image.shape)}")
    dx = image[..., :, 1:] - image[..., :, :-1]  # (B, C, H, W-1) horizontal neighbours
    dy = image[..., 1:, :] - image[..., :-1, :]  # (B, C, H-1, W) vertical neighbours
    return dx.pow(2).sum() + dy.pow(2).sum()


def _same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)} "
                         "(content and generated image must have the same size)")
