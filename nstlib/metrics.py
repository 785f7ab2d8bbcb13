"""Measuring a stylisation: content preservation, style match, colour, photorealism and speed; and a
translation against its known answer (PSNR, SSIM).

No single number says whether a style transfer result is good; each paper reports its own. This
module gathers the measures the course uses (notebook 10), each defined below by its equation and
built from what the library already has: the course's VGG-16 (nstlib.features), Gatys' losses
(nstlib.losses), AdaIN's statistics (nstlib.adain.mean_std), the luminance Y (nstlib.color).

Conventions. Every metric takes the course's images, float (B, 3, H, W) RGB in [0, 1] (values
outside [0, 1] are an error: clamp a network's output first), and returns a float64 tensor (B,),
one value per image of the batch. The reference (content or style) is (B, 3, ...) or (1, 3, ...),
the latter compared with every image of the batch.

* Content measures compare positions, so output and content must have the same size (else a
  ValueError that says so; resize with nstlib.images.resize).
* Style and colour measures compare statistics, so the style image may have any size.
* VGG measures use the course's extractor (VGG-16, Caffe weights, max pooling) unless `vgg=` is
  given, on the images' device, without gradients.

    metric                   equation (per image)                                        better
    ssim_luminance           SSIM(Y(x), Y(c)), scikit-image, 7x7 window, data range 1     higher (1)
    content_distance         1/(N M) sum_ij (F_ij(x) - F_ij(c))^2 at relu4_2                lower (0)
    lpips_vgg                sum_l 1/M_l sum_m ||f^l_m(x)/|f^l_m(x)| - f^l_m(c)/|f^l_m(c)| ||^2   lower (0)
    gram_distance            sum_l 1/L ||G_l(x) - G_l(s)||_F^2 / (4 N_l^2)  (Gatys' L_style)  lower (0)
    mean_std_distance        sum_l ||mu_l(x) - mu_l(s)||_2 + ||sigma_l(x) - sigma_l(s)||_2   lower (0)
    patch_similarity         1/P sum_i max_j cos(psi_i(x), psi_j(s)), 3x3 patches at relu3_1  higher (1)
    colour_distance          1/3 sum_c sum_k |CDF_c,k(x) - CDF_c,k(y)| / 32  (1-D EMD, 32 bins) lower (0)
    gradient_ssim            SSIM(|grad Y(x)|, |grad Y(c)|), Sobel magnitudes               higher (1)
    time_callable            median wall time of repeated calls after warm-up                lower

(x: the output, c: the content photo, s: the style image; F, f: VGG features; Y: luminance.)

Two scores compare a whole batch with the answer it should be (a translation G(a) with T(a) in
nstlib.translation_task, a reconstruction with its photo in notebook 06) and return one float:

    psnr                     10 log10(1 / MSE), MSE pooled over the batch, scikit-image      higher (inf)
    ssim                     SSIM of the RGB images (per channel), mean over the batch        higher (1)
"""
from __future__ import annotations

import inspect
import statistics
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from . import adain, color, losses, mrf
from .features import VGGFeatures, load_vgg
from .images import check_image
from .optimize import CONTENT_LAYERS, STYLE_LAYERS

CONTENT_LAYER = CONTENT_LAYERS[0]  # the course's layers: Gatys et al.'s (nstlib.optimize)
MEAN_STD_LAYERS = adain.STYLE_LAYERS  # relu1_1 ... relu4_1, AdaIN's Eq. 13
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")  # LPIPS' VGG taps (Zhang et al.)
PATCH_LAYER = "relu3_1"
PATCH_SIZE = 3
HISTOGRAM_BINS = 32

# name -> (function, reference it compares with, better direction): what `compare` reports
METRICS: dict[str, tuple[str, str, str]] = {
    "ssim": ("ssim_luminance", "content", "higher"),
    "content_relu4_2": ("content_distance", "content", "lower"),
    "lpips_vgg": ("lpips_vgg", "content", "lower"),
    "gram": ("gram_distance", "style", "lower"),
    "mean_std": ("mean_std_distance", "style", "lower"),
    "patch_sim": ("patch_similarity", "style", "higher"),
    "colour_emd_style": ("colour_distance", "style", "lower"),
    "colour_emd_content": ("colour_distance", "content", "lower"),
    "gradient_ssim": ("gradient_ssim", "content", "higher"),
}


# ----------------------------------------------------------------------------- checks

def _check(x: torch.Tensor, name: str) -> torch.Tensor:
    check_image(x, name)
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0 or not torch.isfinite(x).all()):
        raise ValueError(f"{name} values must lie in [0, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}] "
                         "(clamp a network's output with .clamp(0, 1) first)")
    return x


def _pair(x: torch.Tensor, ref: torch.Tensor, ref_name: str, same_size: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks the output x (B, 3, H, W) and the reference (B or 1, 3, H', W'); returns ref expanded to B."""
    _check(x, "output")
    _check(ref, ref_name)
    if ref.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"the {ref_name} batch has {ref.shape[0]} images for {x.shape[0]} outputs; give 1 or {x.shape[0]}")
    if same_size and ref.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"output {tuple(x.shape[-2:])} and {ref_name} {tuple(ref.shape[-2:])} must have the same "
                         f"size to compare them position by position; resize one with nstlib.images.resize")
    if ref.device != x.device:
        raise ValueError(f"output is on {x.device} but the {ref_name} on {ref.device}; move one with .to(device)")
    return x, ref.expand(x.shape[0], -1, -1, -1)


def _vgg(vgg: VGGFeatures | None, x: torch.Tensor) -> VGGFeatures:
    return vgg if vgg is not None else load_vgg(device=x.device)


def _features(vgg: VGGFeatures, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {k: v.double() for k, v in vgg.extract(x.to(vgg.mean.dtype), layers).items()}


def _y(x: torch.Tensor) -> np.ndarray:
    """Luminance Y (B, H, W) as float64 NumPy, by nstlib.color.luminance."""
    return color.luminance(x.detach().double())[:, 0].cpu().numpy()


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image's SSIM (7x7 uniform windows, data range 1) of two (H, W) images, or of two
    (C, H, W) images (the mean of the C channels' SSIMs): the one SSIM of this module."""
    from skimage.metrics import structural_similarity

    if min(a.shape[-2:]) < 7:
        raise ValueError(f"SSIM needs images of at least 7 x 7 px (its window), got {a.shape[-1]} x {a.shape[-2]}")
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=0 if a.ndim == 3 else None))


# ----------------------------------------------------------------------------- content preservation

def ssim_luminance(output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Structural similarity of the luminances (Wang, Bovik, Sheikh & Simoncelli 2004, Eq. 13):

        SSIM(a, b) = mean_windows (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))

    with a = Y(output), b = Y(content) (Y = 0.299 R + 0.587 G + 0.114 B, nstlib.color.luminance),
    scikit-image's `structural_similarity` (uniform 7x7 windows, C1 = (0.01)^2, C2 = (0.03)^2 for
    data range 1). Luminance only, because a stylisation is meant to change the colours: this asks
    whether the photo's light and dark structure survived. 1 for identical luminance. Same size.
    """
    x, c = _pair(output, content, "content", same_size=True)
    ya, yb = _y(x), _y(c)
    return torch.tensor([_ssim(a, b) for a, b in zip(ya, yb)], dtype=torch.float64)


def content_distance(output: torch.Tensor, content: torch.Tensor, layer: str = CONTENT_LAYER,
                     vgg: VGGFeatures | None = None) -> torch.Tensor:
    """Feature distance at `layer` (relu4_2, the course's content layer): Gatys' content loss
    (Eq. 1, nstlib.losses.content_loss) divided by half the number of entries,

        D = 2 L_content / (N M) = 1/(N M) sum_ij (F_ij(output) - F_ij(content))^2

    the mean squared difference of the features, so that it does not grow with the image size.
    0 for identical images. Same size."""
    x, c = _pair(output, content, "content", same_size=True)
    v = _vgg(vgg, x)
    f, p = _features(v, x, [layer])[layer], _features(v, c, [layer])[layer]
    n_entries = f[0].numel()
    return torch.stack([2 * losses.content_loss(f[b:b + 1], p[b:b + 1]) / n_entries for b in range(len(f))]).cpu()


def _unit(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each position's feature vector divided by its length (LPIPS' normalize_tensor, eps 1e-10)."""
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


def lpips_vgg(output: torch.Tensor, content: torch.Tensor, layers: Sequence[str] = LPIPS_LAYERS,
              vgg: VGGFeatures | None = None) -> torch.Tensor:
    """An LPIPS-style perceptual distance on the course's own VGG-16 (not LPIPS itself):

        d = sum_l 1/M_l sum_m || f^l_m(output)/|f^l_m(output)| - f^l_m(content)/|f^l_m(content)| ||_2^2

    f^l_m is the N_l-vector of layer l at position m (one of M_l), unit-normalised along the
    channels; layers relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS' VGG taps), equally weighted.
    Zhang, Isola, Efros, Shechtman & Wang ("The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric", CVPR 2018, Eq. 1) weight each channel's squared difference with weights w_l
    learned on human judgements, on torchvision's ImageNet VGG; those weights and that backbone cannot
    be downloaded here, so this is their formula with w_l = 1 (the paper's "baseline" variant) on the
    Caffe VGG-16. Its values are therefore not comparable with published LPIPS numbers. Each layer's
    term lies in [0, 4]; 0 for identical images. Same size."""
    x, c = _pair(output, content, "content", same_size=True)
    v = _vgg(vgg, x)
    fx, fc = _features(v, x, layers), _features(v, c, layers)
    return sum((_unit(fx[l]) - _unit(fc[l])).pow(2).sum(1).mean(dim=(1, 2)) for l in layers).cpu()


# ----------------------------------------------------------------------------- style match

def gram_distance(output: torch.Tensor, style: torch.Tensor, layers: Sequence[str] = STYLE_LAYERS,
                  layer_weights: Mapping[str, float] | Sequence[float] | None = None,
                  vgg: VGGFeatures | None = None) -> torch.Tensor:
    """The course's style loss (Gatys et al. 2016, Eq. 4-5; nstlib.losses.style_loss):

        L_style = sum_l w_l ||G_l(output) - G_l(style)||_F^2 / (4 N_l^2),   G = F F^T / M,  w_l = 1/L

    on relu1_1 ... relu5_1 (the course's style layers). Sizes may differ (G is an average over
    positions). 0 for identical images; on the scale of the Caffe VGG's features (0..255 input)."""
    x, s = _pair(output, style, "style", same_size=False)
    v = _vgg(vgg, x)
    fx, fs = _features(v, x, layers), _features(v, s, layers)
    values = []
    for b in range(x.shape[0]):
        targets = {l: losses.gram(fs[l][b:b + 1]) for l in layers}
        values.append(losses.style_loss({l: fx[l][b:b + 1] for l in layers}, targets, layer_weights))
    return torch.stack(values).cpu()


def mean_std_distance(output: torch.Tensor, style: torch.Tensor, layers: Sequence[str] = MEAN_STD_LAYERS,
                      vgg: VGGFeatures | None = None, per_layer: bool = False):
    """AdaIN's style loss (Huang & Belongie 2017, Eq. 13), each channel's mean and standard
    deviation over positions (nstlib.adain.mean_std: biased, sigma = sqrt(var + 1e-5)):

        L_s = sum_l ||mu(phi_l(output)) - mu(phi_l(style))||_2 + ||sigma(phi_l(output)) - sigma(phi_l(style))||_2

    with Euclidean norms (not squared) over the N_l channels, on relu1_1 ... relu4_1 of the course's
    VGG, unscaled (the AdaIN model divides its encoder's features by fixed scales; this metric does
    not). per_layer=True returns {layer: (B,) tensor} instead of the sum. Sizes may differ."""
    x, s = _pair(output, style, "style", same_size=False)
    v = _vgg(vgg, x)
    fx, fs = _features(v, x, layers), _features(v, s, layers)
    terms = {}
    for l in layers:
        mu_x, sd_x = adain.mean_std(fx[l])  # (B, N, 1, 1) each
        mu_s, sd_s = adain.mean_std(fs[l])
        terms[l] = ((mu_x - mu_s).flatten(1).norm(dim=1) + (sd_x - sd_s).flatten(1).norm(dim=1)).cpu()
    return terms if per_layer else sum(terms.values())


def patch_similarity(output: torch.Tensor, style: torch.Tensor, layer: str = PATCH_LAYER,
                     size: int = PATCH_SIZE, vgg: VGGFeatures | None = None, chunk: int = 1024) -> torch.Tensor:
    """How well every local piece of the output is found in the painting:

        S = 1/P sum_{i=1..P} max_j  <psi_i(x), psi_j(s)> / (|psi_i(x)| |psi_j(s)|)

    psi_i(x): the i-th of the P 3x3 patches (stride 1) of the output's relu3_1 features, a vector of
    N x 9 numbers; psi_j(s) the style image's. Each output patch is matched to its nearest style patch
    by normalised cross-correlation, exactly the matching of CNNMRF (Li & Wand, "Combining Markov
    Random Fields and Convolutional Neural Networks for Image Synthesis", CVPR 2016, Eq. 3), and the
    score is the mean best match. In the spirit of CFSD (Chung, Hyun & Heo, "Style Injection in
    Diffusion", CVPR 2024), which compares VGG patch similarities, but against the style's patches
    rather than within one image; it is a measure of our own, not a published one. ReLU features are
    >= 0, so S lies in [0, 1]; S = 1 when every output patch occurs in the style image (identical
    images), and unlike a Gram matrix it sees the arrangement inside a patch. Sizes may differ.
    Costs P x P_s dot products; `chunk` output patches are compared at a time."""
    x, s = _pair(output, style, "style", same_size=False)
    v = _vgg(vgg, x)
    fx, fs = _features(v, x, [layer])[layer], _features(v, s, [layer])[layer]
    values = []
    for b in range(x.shape[0]):
        ps = mrf.normalize_patches(mrf.extract_patches(fs[b:b + 1], size)).flatten(1)  # (P_s, D), rows of length 1
        px = mrf.normalize_patches(mrf.extract_patches(fx[b:b + 1], size)).flatten(1)  # (P, D)
        best = torch.cat([(px[i:i + chunk] @ ps.t()).amax(1) for i in range(0, len(px), chunk)])
        values.append(best.mean())
    return torch.stack(values).cpu()


# ----------------------------------------------------------------------------- colour

def colour_histograms(x: torch.Tensor, bins: int = HISTOGRAM_BINS) -> torch.Tensor:
    """(B, 3, bins) normalised per-channel histograms: bin k holds the values in [k/bins, (k+1)/bins)
    (1.0 in the last bin); each histogram sums to 1."""
    _check(x, "image")
    idx = (x.detach().double() * bins).floor().clamp(0, bins - 1).long().flatten(2)  # (B, 3, H W)
    h = torch.zeros(*idx.shape[:2], bins, dtype=torch.float64, device=x.device)
    h.scatter_add_(2, idx, torch.ones_like(idx, dtype=torch.float64))
    return (h / idx.shape[2]).cpu()


def colour_distance(output: torch.Tensor, reference: torch.Tensor, bins: int = HISTOGRAM_BINS) -> torch.Tensor:
    """Earth mover's distance between colour histograms, per RGB channel, averaged:

        D = 1/3 sum_{c in R,G,B} (1/K) sum_{k=1..K} |H_c^x(k) - H_c^r(k)|,   K = 32 bins on [0, 1]

    H_c(k) the cumulative normalised histogram (the fraction of pixels whose channel c falls in bins
    0..k; nstlib.metrics.colour_histograms). In 1-D the EMD is the area between the two cumulative
    distributions, here in units of intensity: moving every pixel up by a whole number j of bins
    costs exactly j / 32. Compare with the style (did the palette transfer?) or the content (did the
    photo's colours survive?). 0 for the same histograms; at most 1. Sizes may differ."""
    x, r = _pair(output, reference, "reference", same_size=False)
    cdf_x, cdf_r = colour_histograms(x, bins).cumsum(2), colour_histograms(r, bins).cumsum(2)
    return (cdf_x - cdf_r).abs().sum(2).mean(1) / bins


# ----------------------------------------------------------------------------- photorealism

def gradient_magnitude(x: torch.Tensor) -> np.ndarray:
    """(B, H, W) Sobel gradient magnitude of the luminance, by scikit-image's `sobel`:
    sqrt((S_h * Y)^2 + (S_v * Y)^2) / sqrt(2) with S_h = [1, 2, 1]^T [1, 0, -1] / 4 (reflected
    borders): a straight step from black to white has magnitude 1/sqrt(2), and values stay in [0, 1]."""
    from skimage.filters import sobel

    return np.stack([sobel(y) for y in _y(_check(x, "image"))])


def gradient_ssim(output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Photorealism as edge fidelity: SSIM between the gradient magnitudes of the luminances,

        GSSIM = SSIM(|grad Y(output)|, |grad Y(content)|)     (scikit-image SSIM, data range 1)

    |grad Y| by `gradient_magnitude` (Sobel). A photorealistic transfer (Luan et al., "Deep Photo
    Style Transfer", CVPR 2017) may change colours and tones freely but should keep the photo's
    edges where they are and add none: a global brightness change leaves GSSIM at 1, painterly
    strokes, blur and noise lower it. (The same idea as gradient-based SSIM variants, e.g. Chen et
    al. 2006's GSSIM, which replaces SSIM's structure term by gradients.) Same size."""
    x, c = _pair(output, content, "content", same_size=True)
    gx, gc = gradient_magnitude(x), gradient_magnitude(c)
    return torch.tensor([_ssim(a, b) for a, b in zip(gx, gc)], dtype=torch.float64)


# ----------------------------------------------------------------------------- against a known answer

def _same_shape(output: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Checks two (B, 3, H, W) batches in [0, 1] of one shape; returns them as float64 NumPy."""
    _check(output, "output")
    _check(target, "target")
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} must have the same shape")
    return output.detach().double().cpu().numpy(), target.detach().double().cpu().numpy()


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of a batch against its known answer, one number:

        PSNR = 10 log10(1 / MSE),   MSE = mean over all images, channels and pixels of (output - target)^2

    (peak 1: images in [0, 1]); inf when they are identical. The MSE is pooled over the batch (not
    the PSNRs averaged). scikit-image's `peak_signal_noise_ratio` on float64; it equals the
    former float32 formula of nstlib.translation_task to < 1e-6 dB on the registry's photos
    (tests/test_metrics.py)."""
    from skimage.metrics import peak_signal_noise_ratio

    x, y = _same_shape(output, target)
    if np.array_equal(x, y):
        return float("inf")  # scikit-image would divide by zero, with a warning
    return float(peak_signal_noise_ratio(y, x, data_range=1.0))


def ssim(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean structural similarity (Wang et al. 2004, Eq. 13; see `ssim_luminance`) of a batch
    against its known answer, one number: each image's SSIM is the mean of its R, G and B channels'
    (scikit-image, 7x7 windows, data range 1), averaged over the batch. 1 when identical. Colour
    matters here (a translation must get the colours right); METRICS' "ssim" of a stylisation is
    `ssim_luminance`, per image."""
    x, y = _same_shape(output, target)
    return float(np.mean([_ssim(a, b) for a, b in zip(x, y)]))


# ----------------------------------------------------------------------------- speed

def time_callable(fn: Callable[[], object], warmup: int = 1, repeats: int = 3,
                  device: str | torch.device | None = None) -> dict:
    """Wall time of `fn()`: `warmup` untimed calls (lazy initialisation, cuDNN's algorithm search,
    caches), then `repeats` timed calls. On CUDA the GPU is synchronised before starting and after
    each call, since kernels run asynchronously and the call would otherwise return before the work
    is done. Returns {'seconds': median, 'times': [each call], 'result': the last call's value}."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    device = torch.device(device) if device is not None else None
    cuda = device is not None and device.type == "cuda" or (device is None and torch.cuda.is_available())

    def sync():
        if cuda:
            torch.cuda.synchronize(device if device is not None and device.type == "cuda" else None)

    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "times": times, "result": result}


# ----------------------------------------------------------------------------- all at once

def evaluate(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
             vgg: VGGFeatures | None = None) -> dict[str, float]:
    """Every metric of METRICS for one result (1, 3, H, W) against its content (same size) and
    style: {name: value}."""
    if output.shape[0] != 1:
        raise ValueError(f"evaluate takes one result (1, 3, H, W), got a batch of {output.shape[0]}")
    refs = {"content": content, "style": style}
    out = {}
    for name, (function, ref, _) in METRICS.items():
        f = globals()[function]
        kwargs = {"vgg": vgg} if "vgg" in inspect.signature(f).parameters else {}
        out[name] = float(f(output, refs[ref], **kwargs)[0])
    return out
