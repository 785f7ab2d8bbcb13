"""Colour preservation: Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual
Factors in Neural Style Transfer" (CVPR 2017, Sec. 5).

Style transfer copies the painting's colours along with its brush strokes. To keep the photo's
colours, the paper gives two methods:

* **Luminance-only transfer** (Sec. 5.1). Work in YIQ, where Y is the luminance and I, Q the
  chroma. Transfer style between the luminance channels only, after matching the style's
  luminance statistics to the content's,

      Y_S' = sigma_C / sigma_S (Y_S - mu_S) + mu_C,

  then recombine the result's Y with the content's I and Q.
* **Colour histogram matching** (Sec. 5.2). Before the transfer, recolour the style image with a
  linear map x_S' = A (x_S - mu_S) + mu_C chosen so that its colours have the content's mean and
  covariance: A Sigma_S A^T = Sigma_C. Two choices of A are in the paper: the symmetric one from
  Image Analogies, A = Sigma_C^(1/2) Sigma_S^(-1/2) ('eigen'), and A = L_C L_S^(-1) from the
  Cholesky factors ('cholesky').

All functions take and return (B, 3, H, W) RGB images in [0, 1]. Every method with colour control
takes the same `preserve_colors` argument: None, 'luminance' or 'histogram' (`PRESERVE_COLORS`).
"""
from __future__ import annotations

import torch

from .images import check_image

# NTSC 1953 RGB -> YIQ (rows: Y, I, Q); Y is the luma that greyscale conversion uses
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.595716, -0.274453, -0.321263],
                           [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)
HISTOGRAM_MODES = ("eigen", "cholesky")
PRESERVE_COLORS = (None, "luminance", "histogram")  # the values of every method's `preserve_colors`


def check_preserve_colors(value) -> str | None:
    """`value` if it is one of PRESERVE_COLORS: None (the painting's colours), 'luminance' (Sec. 5.1)
    or 'histogram' (Sec. 5.2). Anything else that is not a string (True, say: AdaIN's old flag for
    'histogram') is a TypeError, another string a ValueError."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"preserve_colors must be None, 'luminance' or 'histogram', got {value!r} "
                        f"({type(value).__name__}); for colour histogram matching pass 'histogram'")
    if value not in PRESERVE_COLORS:
        raise ValueError(f"preserve_colors must be None, 'luminance' or 'histogram', got {value!r}")
    return value


def _apply_matrix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's 3-vector by `matrix`: (B, 3, H, W) -> (B, 3, H, W)."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(x.device, x.dtype), x)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> YIQ: Y in [0, 1], I and Q roughly in [-0.6, 0.6]."""
    return _apply_matrix(check_image(x), RGB_TO_YIQ)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_yiq` (not clamped: out-of-gamut YIQ gives RGB outside [0, 1])."""
    return _apply_matrix(check_image(x, "YIQ image"), YIQ_TO_RGB)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """The luminance Y of an RGB image, repeated into 3 channels so VGG can take it."""
    y = rgb_to_yiq(x)[:, :1]  # (B, 1, H, W)
    return y.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style's luminance with the content's mean and std (Gatys et al. 2017, Sec. 5.1):

        Y_S' = sigma_C / sigma_S (Y_S - mu_S) + mu_C

    as a 3-channel grey image, clamped to [0, 1]. Without this step a dark painting would darken
    the photo, since the Gram matrices also carry the mean luminance."""
    ys = rgb_to_yiq(style)[:, :1]
    yc = rgb_to_yiq(content)[:, :1]
    mu_s, sd_s = ys.mean(dim=(2, 3), keepdim=True), ys.std(dim=(2, 3), keepdim=True)
    mu_c, sd_c = yc.mean(dim=(2, 3), keepdim=True), yc.std(dim=(2, 3), keepdim=True)
    matched = (sd_c / sd_s.clamp_min(1e-6)) * (ys - mu_s) + mu_c
    return matched.clamp(0.0, 1.0).expand(-1, 3, -1, -1).contiguous()


def transfer_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Combine the luminance Y of `stylized` with the chroma I, Q of `content` (same size), then
    convert back to RGB and clamp to [0, 1] (Gatys et al. 2017, Sec. 5.1). Where no channel had to
    be clamped, the result's I and Q are exactly the content's."""
    check_image(stylized, "stylized")
    if stylized.shape[-2:] != content.shape[-2:]:
        raise ValueError(f"stylized image {tuple(stylized.shape[-2:])} and content {tuple(content.shape[-2:])} "
                         "must have the same size")
    yiq = torch.cat([rgb_to_yiq(stylized)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)  # (B, 3, H, W)
    return yiq_to_rgb(yiq).clamp(0.0, 1.0)


def colour_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (3,) and covariance (3, 3) of the pixel colours of one image (1, 3, H, W), in float64."""
    check_image(x)
    if x.shape[0] != 1:
        raise ValueError(f"expected one image (1, 3, H, W), got a batch of {x.shape[0]}")
    p = x[0].reshape(3, -1).double()  # (3, M): one column per pixel
    mu = p.mean(dim=1)
    centred = p - mu[:, None]
    return mu, centred @ centred.T / p.shape[1]


def colour_transform(style: torch.Tensor, content: torch.Tensor, mode: str = "eigen",
                     eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """A (3, 3) and b (3,) such that A x + b maps the style's colour mean and covariance onto the
    content's: A Sigma_S A^T = Sigma_C and b = mu_C - A mu_S (Gatys et al. 2017, Sec. 5.2).
    eps * I is added to both covariances so that a flat-coloured image does not make them
    singular. Float64."""
    if mode not in HISTOGRAM_MODES:
        raise ValueError(f"mode must be one of {HISTOGRAM_MODES}, got {mode!r}")
    mu_s, cov_s = colour_statistics(style)
    mu_c, cov_c = colour_statistics(content)
    eye = torch.eye(3, dtype=torch.float64, device=cov_s.device)
    cov_s, cov_c = cov_s + eps * eye, cov_c + eps * eye
    if mode == "eigen":
        a = _sqrtm(cov_c) @ torch.linalg.inv(_sqrtm(cov_s))  # Sigma_C^(1/2) Sigma_S^(-1/2)
    else:
        a = torch.linalg.cholesky(cov_c) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))  # L_C L_S^-1
    return a, mu_c - a @ mu_s


def _sqrtm(cov: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive-definite matrix, by eigendecomposition."""
    values, vectors = torch.linalg.eigh(cov)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T


def match_histogram(style: torch.Tensor, content: torch.Tensor, mode: str = "eigen") -> torch.Tensor:
    """Recolour `style` so that its colours have the mean and covariance of `content`'s
    (Gatys et al. 2017, Sec. 5.2): x' = A x + b per pixel, clamped to [0, 1]. The images may have
    different sizes; only their colour statistics meet."""
    a, b = colour_transform(style, content, mode)
    out = _apply_matrix(style.double(), a) + b.to(style.device)[None, :, None, None]
    return out.to(style.dtype).clamp(0.0, 1.0)
