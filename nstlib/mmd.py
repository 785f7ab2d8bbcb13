"""Style as distribution matching: Li, Wang, Liu & Hou, "Demystifying Neural Style Transfer"
(IJCAI 2017).

Treat the M columns of a layer's features F in R^{N x M} as M samples f_1 ... f_M in R^N, one
per position, and the style image's columns s_1 ... s_{M_s} as samples of the style's
distribution. The squared maximum mean discrepancy with a kernel k is

    MMD^2 = 1/M^2 sum_{a,b} k(f_a, f_b) + 1/M_s^2 sum_{a,b} k(s_a, s_b) - 2/(M M_s) sum_{a,b} k(f_a, s_b)

(the biased "V-statistic"; the unbiased "U-statistic" leaves out the a = b terms of the first two
sums). Expanding Gatys' ||G - A||_F^2 with G = F F^T / M gives exactly the V-statistic with
k(x, y) = (x^T y)^2, so the Gram style loss is E_l = MMD^2 / (4 N_l^2): matching Gram matrices
matches the distributions of feature vectors (notebook 04 derives it step by step).

Each kernel below is a style loss for one layer, normalised by Li et al.'s Z (Sec. 4):

    linear      k = x^T y                        MMD^2 = ||mean(f) - mean(s)||^2       / N_l
    polynomial  k = (x^T y + c)^d                (d = 2, c = 0: the Gram loss)         / N_l^2
    Gaussian    k = exp(-||x - y||^2 / (2 s^2))                                        / 1
    BN stats    1/N_l sum_i (mu_F^i - mu_S^i)^2 + (sigma_F^i - sigma_S^i)^2  (per-channel statistics)

Cost. A kernel matrix over all pairs of positions is M x M: 4e9 entries for relu1_1 at 256 px.
Linear and degree-2 polynomial kernels have exact closed forms through means and Gram matrices
(O(N^2 M)). The Gaussian kernel (and polynomials of other degrees) use random subsets of
`samples` positions per image, drawn afresh at every evaluation, with the unbiased U-statistic:
its expectation over the draws is exactly the all-positions U-statistic (tests/test_mmd.py checks
this in a simulation), so the optimiser follows an unbiased, stochastic estimate.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from .losses import gram, layer_weight_dict
from .optimize import STYLE_LAYERS, Term, layer_tuple


def samples(features: torch.Tensor) -> torch.Tensor:
    """(1, N, H, W) features -> (M, N): one row per position, the 'samples' of the distribution."""
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"expected the (1, N, H, W) features of one image, got {tuple(features.shape)}")
    n = features.shape[1]
    return features.reshape(n, -1).t()  # (M, N)


def mmd2(x: torch.Tensor, y: torch.Tensor, kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
         unbiased: bool = False) -> torch.Tensor:
    """MMD^2 between sample sets x (m, N) and y (n, N) from full kernel matrices: the reference
    definition (O(m n N)); `unbiased` leaves out the diagonal terms (the U-statistic)."""
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)  # (m, m), (n, n), (m, n)
    m, n = x.shape[0], y.shape[0]
    if unbiased:
        if m < 2 or n < 2:
            raise ValueError("the unbiased estimate needs at least 2 samples per set")
        xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
        yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    else:
        xx, yy = kxx.mean(), kyy.mean()
    return xx + yy - 2 * kxy.mean()


# ----------------------------------------------------------------------------- kernels

def linear_kernel(x, y):
    """k(x, y) = x^T y for every pair of rows: (m, N), (n, N) -> (m, n)."""
    return x @ y.t()


def polynomial_kernel(c: float = 0.0, d: int = 2):
    """k(x, y) = (x^T y + c)^d."""
    return lambda x, y: (x @ y.t() + c) ** d


def gaussian_kernel(sigma2: float):
    """k(x, y) = exp(-||x - y||^2 / (2 sigma^2))."""
    return lambda x, y: torch.exp(-squared_distances(x, y) / (2 * sigma2))


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_a - y_b||^2 for every pair of rows, (m, n), via ||x||^2 + ||y||^2 - 2 x^T y."""
    d = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None] - 2 * x @ y.t()
    return d.clamp_min(0)  # rounding can make it slightly negative


class StyleKernel:
    """A per-layer style loss between the generated image's features F and a prepared target."""

    name = "kernel"

    def prepare(self, style_features: torch.Tensor):
        """Whatever the loss needs from the style image's (1, N, H, W) features, computed once."""
        return style_features

    def loss(self, features: torch.Tensor, target) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self):
        return self.name


class Linear(StyleKernel):
    """k = x^T y: MMD^2 = ||mean(f) - mean(s)||^2 (only the feature means are matched); / N_l."""

    name = "linear"

    def prepare(self, style_features):
        return samples(style_features).mean(0)  # (N,)

    def loss(self, features, target):
        mean = samples(features).mean(0)
        return (mean - target).pow(2).sum() / features.shape[1]


class Polynomial(StyleKernel):
    """k = (x^T y + c)^d, divided by N_l^2. For d = 2 the exact V-statistic costs O(N^2 M):

        MMD^2 = ||G_F - G_S||_F^2 + 2 c ||mean(f) - mean(s)||^2    (G = F F^T / M; c^2 cancels)

    so c = 0 is Gatys' Gram loss times 4. Other degrees use `samples` random positions per image
    (unbiased U-statistic)."""

    def __init__(self, c: float = 0.0, d: int = 2, samples: int = 1024, generator=None):
        if d < 1 or int(d) != d:
            raise ValueError(f"degree d must be a positive integer, got {d}")
        self.c, self.d, self.samples, self.generator = float(c), int(d), samples, generator
        self.name = f"polynomial (c={c:g}, d={d})"

    def prepare(self, style_features):
        if self.d == 2:
            return gram(style_features), samples(style_features).mean(0)
        return samples(style_features)

    def loss(self, features, target):
        n = features.shape[1]
        if self.d == 2:
            g_target, mean_target = target
            value = (gram(features) - g_target).pow(2).sum()
            if self.c:
                value = value + 2 * self.c * (samples(features).mean(0) - mean_target).pow(2).sum()
            return value / n**2
        x, y = _subsets(samples(features), target, self.samples, self.generator)
        return mmd2(x, y, polynomial_kernel(self.c, self.d), unbiased=True) / n**2


class Gaussian(StyleKernel):
    """k = exp(-||x - y||^2 / (2 sigma^2)) on `samples` random positions per image (unbiased
    U-statistic); Z = 1. sigma^2 is fixed once per layer from the style image's features: 'mean'
    (Li et al.: the mean squared distance between sampled style vectors), 'median' (the median
    heuristic), either times `scale` (to widen or narrow every layer's kernel by one factor), or a
    number, the same for every layer.
    """

    def __init__(self, bandwidth: str | float = "mean", samples: int = 1024, generator=None, scale: float = 1.0):
        if isinstance(bandwidth, str) and bandwidth not in ("mean", "median"):
            raise ValueError(f"bandwidth must be 'mean', 'median' or a number, got {bandwidth!r}")
        if not isinstance(bandwidth, str) and not bandwidth > 0:
            raise ValueError(f"a numeric bandwidth sigma^2 must be > 0, got {bandwidth!r}")
        if not scale > 0 or (not isinstance(bandwidth, str) and scale != 1.0):
            raise ValueError(f"scale multiplies the 'mean' or 'median' bandwidth and must be > 0, got {scale!r}")
        self.bandwidth, self.samples, self.generator, self.scale = bandwidth, samples, generator, float(scale)
        if not isinstance(bandwidth, str):
            self.name = f"Gaussian (sigma^2={bandwidth:g})"
        else:
            self.name = f"Gaussian ({bandwidth})" if scale == 1.0 else f"Gaussian ({scale:g} x {bandwidth})"

    def prepare(self, style_features):
        s = samples(style_features)
        if isinstance(self.bandwidth, str):
            subset = s[_pick(s.shape[0], self.samples, self.generator, s.device)]
            d = squared_distances(subset, subset)
            off_diagonal = d[~torch.eye(d.shape[0], dtype=torch.bool, device=d.device)]
            sigma2 = self.scale * (off_diagonal.mean() if self.bandwidth == "mean" else off_diagonal.median())
        else:
            sigma2 = torch.tensor(float(self.bandwidth))
        return s, float(sigma2)

    def loss(self, features, target):
        s, sigma2 = target
        x, y = _subsets(samples(features), s, self.samples, self.generator)
        return mmd2(x, y, gaussian_kernel(sigma2), unbiased=True)


class BNStatistics(StyleKernel):
    """Match each channel's mean and standard deviation (Li et al.'s BN-statistics loss):

        L = 1/N_l sum_i (mu_F^i - mu_S^i)^2 + (sigma_F^i - sigma_S^i)^2

    with mu^i, sigma^i the mean and (biased) standard deviation of channel i over positions.
    This is what AdaIN aligns in one feed-forward step (notebook 05)."""

    name = "BN statistics"

    def prepare(self, style_features):
        return _mean_std(style_features)

    def loss(self, features, target):
        mu, sigma = _mean_std(features)
        mu_s, sigma_s = target
        return ((mu - mu_s).pow(2).sum() + (sigma - sigma_s).pow(2).sum()) / features.shape[1]


def _mean_std(features: torch.Tensor, eps: float = 1e-8):
    s = samples(features)  # (M, N)
    mu = s.mean(0)
    sigma = ((s - mu).pow(2).mean(0) + eps).sqrt()  # biased, as in BN; eps keeps the gradient finite
    return mu, sigma


def _pick(m: int, k: int, generator, device) -> torch.Tensor:
    """k distinct random positions out of m (all of them if k >= m)."""
    if k >= m:
        return torch.arange(m, device=device)
    return torch.randperm(m, generator=generator)[:k].to(device)


def _subsets(x: torch.Tensor, y: torch.Tensor, k: int, generator):
    return x[_pick(x.shape[0], k, generator, x.device)], y[_pick(y.shape[0], k, generator, y.device)]


KERNELS = {"linear": Linear, "polynomial": Polynomial, "gaussian": Gaussian, "bn": BNStatistics}


def make_kernel(kind: str | StyleKernel, **options) -> StyleKernel:
    """A StyleKernel by name ('linear', 'polynomial', 'gaussian', 'bn'), with its options."""
    if isinstance(kind, StyleKernel):
        return kind
    if kind not in KERNELS:
        raise ValueError(f"kernel must be one of {tuple(KERNELS)}, got {kind!r}")
    return KERNELS[kind](**options)


class MMDStyleTerm(Term):
    """A style term for nstlib.optimize: sum_l w_l loss_l with any StyleKernel, in place of the
    Gram loss (StyleTerm). With Polynomial(c=0, d=2) it equals 4 x the Gram StyleTerm."""

    name = "style"

    def __init__(self, image: torch.Tensor,
                 layers: Sequence[str] = STYLE_LAYERS,
                 kernel: str | StyleKernel = "polynomial",
                 layer_weights: Mapping[str, float] | Sequence[float] | None = None,
                 weight: float = 1.0):
        super().__init__(weight)
        from .images import check_image

        self.image = check_image(image, "style image")
        self.layers = layer_tuple(layers)
        self.kernel = make_kernel(kernel)
        self.layer_weights = layer_weight_dict(self.layers, layer_weights)
        self.targets = {}

    def prepare(self, vgg):
        with torch.no_grad():
            feats = vgg.extract(self.image.to(vgg.mean.device), self.layers)
        self.targets = {l: self.kernel.prepare(f) for l, f in feats.items()}

    def value(self, features, image):
        return sum(self.layer_weights[l] * self.kernel.loss(features[l], self.targets[l])
                   for l in self.layers)
