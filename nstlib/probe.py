"""A linear probe on frozen VGG statistics: does a translated image look like its target domain?

CycleGAN's paper (Zhu et al. 2017, Sec. 5.1.1) scores translations with a network trained on real
data (the "FCN score": a segmentation net trained on real photos, run on the translations). The course
does the same offline and cheaply, for two-domain tasks such as horse2zebra (notebook 07): a
logistic regression, trained on real images of the two domains, reads each image through the
course's frozen VGG-16 as its per-channel feature statistics (the statistics AdaIN and the Gram
matrix work with, notebooks 02 and 05):

    s(x) = [mu_c(phi_l(x)), sigma_c(phi_l(x))]  for each channel c of each layer l in PROBE_LAYERS
    p(B | x) = sigmoid(w . z(x) + b),   z = (s - m) / d    (m, d: the training features' mean and std)

fitted by minimising the mean binary cross-entropy plus (l2 / 2) ||w||^2 (full batch, L-BFGS); the
penalty l2 is chosen by k-fold cross-validation on the training images.

A real horse the probe calls a zebra is its error; a *translated* horse it calls a zebra is a
translation that carries the zebra domain's statistics. Like the FCN score, a high score can be
fooled (stripes anywhere, even on the rider, count): read it next to the images and a measure that
the layout survived (luminance SSIM, nstlib.metrics).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .features import VGGFeatures

PROBE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # VGG-16: texture from fine to coarse
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def vgg_statistics(vgg: VGGFeatures, images: Sequence[torch.Tensor] | torch.Tensor,
                   layers: Sequence[str] = PROBE_LAYERS) -> torch.Tensor:
    """s(x) for each image ((1, 3, H, W) tensors, or a (B, 3, H, W) batch, in [0, 1]): the mean and
    standard deviation over positions of every channel at `layers`, concatenated: (N, 2 sum_l C_l)."""
    rows = []
    with torch.no_grad():
        for x in (images.split(1) if torch.is_tensor(images) else images):
            feats = vgg.extract(x.to(vgg.mean.device), tuple(layers))
            parts = []
            for layer in layers:
                f = feats[layer].float().flatten(2)  # (1, C, HW)
                parts += [f.mean(-1), f.std(-1, unbiased=False)]
            rows.append(torch.cat(parts, dim=1))
    return torch.cat(rows).cpu().double()


@dataclass
class LinearProbe:
    """p(B | x) = sigmoid(w . (s - m) / d + b): label 1 for domain B, 0 for domain A."""
    weight: torch.Tensor  # (D,)
    bias: float
    mean: torch.Tensor  # m, (D,)
    scale: torch.Tensor  # d, (D,)
    l2: float

    def probability(self, statistics: torch.Tensor) -> torch.Tensor:
        """p(B | x) for rows of `vgg_statistics`: (N,)."""
        return torch.sigmoid(((statistics.double() - self.mean) / self.scale) @ self.weight + self.bias)

    def accuracy(self, statistics: torch.Tensor, labels: torch.Tensor) -> float:
        return float(((self.probability(statistics) > 0.5).double() == labels.double()).double().mean())


def _fit(z: torch.Tensor, y: torch.Tensor, l2: float, iterations: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """w, b minimising mean BCE(sigmoid(z w + b), y) + l2/2 ||w||^2 on standardised features z (N, D)."""
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iterations, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = probe_loss(z, y, w, b, l2)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def probe_loss(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, l2: float) -> torch.Tensor:
    """The probe's objective: mean_n BCE(sigmoid(z_n . w + b), y_n) + (l2 / 2) ||w||^2."""
    return F.binary_cross_entropy_with_logits(z @ w + b, y.double()) + 0.5 * l2 * w.pow(2).sum()


def _standardise(statistics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, scale = statistics.mean(0), statistics.std(0, unbiased=False)
    return mean, torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant feature stays 0


def fit_probe(statistics_a: torch.Tensor, statistics_b: torch.Tensor, l2: float | None = None,
              folds: int = 5) -> LinearProbe:
    """A LinearProbe trained to tell domain A (label 0) from domain B (label 1) by their
    `vgg_statistics`. l2=None picks the penalty from L2_GRID by `folds`-fold cross-validation
    (accuracy, ties to the larger penalty; folds interleaved, so the choice is deterministic)."""
    if len(statistics_a) < folds or len(statistics_b) < folds:
        raise ValueError(f"need at least {folds} images of each domain, got {len(statistics_a)} and {len(statistics_b)}")
    s = torch.cat([statistics_a, statistics_b]).double()
    y = torch.cat([torch.zeros(len(statistics_a)), torch.ones(len(statistics_b))]).double()
    if l2 is None:
        scores = {}
        for penalty in L2_GRID:
            right = 0.0
            for k in range(folds):
                held = torch.arange(len(s)) % folds == k
                mean, scale = _standardise(s[~held])
                w, b = _fit((s[~held] - mean) / scale, y[~held], penalty)
                right += float((((s[held] - mean) / scale @ w + b > 0).double() == y[held]).sum())
            scores[penalty] = right / len(s)
        l2 = max(L2_GRID, key=lambda p: (scores[p], p))
    mean, scale = _standardise(s)
    w, b = _fit((s - mean) / scale, y, l2)
    return LinearProbe(w, float(b), mean, scale, l2)


def translation_scores(probe: LinearProbe, vgg: VGGFeatures, to_b, to_a, images_a: Sequence[torch.Tensor],
                       images_b: Sequence[torch.Tensor]) -> dict[str, list[float] | float]:
    """Issue 21's measure of a two-way translation on held-out images ((1, 3, H, W) in [0, 1]):
    `to_b`, `to_a` map images of A to B and of B to A (e.g. a CycleGAN's G and F).

    * 'real_accuracy': the probe's accuracy on the real images of both domains;
    * 'a_called_b': per image of A, p(B | to_b(a)) > 0.5 (1.0 or 0.0): translated As read as B;
    * 'b_called_a': per image of B, p(B | to_a(b)) < 0.5: translated Bs read as A;
    * 'ssim_a', 'ssim_b': luminance SSIM between each input and its translation (the layout kept).
    """
    from .metrics import ssim_luminance

    with torch.no_grad():
        fake_b = [to_b(a).clamp(0, 1) for a in images_a]
        fake_a = [to_a(b).clamp(0, 1) for b in images_b]
    real = torch.cat([vgg_statistics(vgg, images_a), vgg_statistics(vgg, images_b)])
    labels = torch.cat([torch.zeros(len(images_a)), torch.ones(len(images_b))])
    return {"real_accuracy": probe.accuracy(real, labels),
            "a_called_b": (probe.probability(vgg_statistics(vgg, fake_b)) > 0.5).double().tolist(),
            "b_called_a": (probe.probability(vgg_statistics(vgg, fake_a)) < 0.5).double().tolist(),
            "ssim_a": [float(ssim_luminance(y, x)[0]) for x, y in zip(images_a, fake_b)],
            "ssim_b": [float(ssim_luminance(y, x)[0]) for x, y in zip(images_b, fake_a)]}
