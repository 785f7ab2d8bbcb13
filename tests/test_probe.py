"""nstlib.probe: the probe's objective against its equation, the VGG statistics against a hand
computation, a fit on separable data, and the real horse2zebra probe on held-out photos."""
import math

import pytest
import torch

from nstlib.probe import L2_GRID, PROBE_LAYERS, fit_probe, probe_loss, vgg_statistics


def test_probe_loss_is_mean_cross_entropy_plus_half_l2():
    g = torch.Generator().manual_seed(0)
    z, w = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    y, b = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    by_hand = 0.0
    for zn, yn in zip(z.tolist(), y.tolist()):
        p = 1 / (1 + math.exp(-(sum(a * c for a, c in zip(zn, w.tolist())) + 0.3)))
        by_hand -= (yn * math.log(p) + (1 - yn) * math.log(1 - p)) / 6
    by_hand += 0.5 * 0.1 * sum(v * v for v in w.tolist())
    assert float(probe_loss(z, y, w, b, 0.1)) == pytest.approx(by_hand, rel=1e-12)


def test_vgg_statistics_are_channel_means_and_stds(vgg16):
    x = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    s = vgg_statistics(vgg16, x)
    widths = [64, 128, 256, 512]  # relu1_2, relu2_2, relu3_3, relu4_3 of VGG-16
    assert s.shape == (2, 2 * sum(widths)) and len(PROBE_LAYERS) == 4
    f = vgg16.extract(x[1:], "relu2_2")["relu2_2"][0].flatten(1)  # (128, HW)
    start = 2 * 64
    torch.testing.assert_close(s[1, start:start + 128], f.mean(1).double(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(s[1, start + 128:start + 256], f.std(1, unbiased=False).double(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(vgg_statistics(vgg16, [x[:1], x[1:]]), s)  # a list of images gives the same rows


def test_fit_probe_separates_two_gaussians_and_cross_validates():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(40, 5, generator=g, dtype=torch.float64) * 2 + 10  # raw scale: the probe standardises
    b = a[torch.randperm(40, generator=g)] + torch.tensor([12.0, 0, 0, 0, 0], dtype=torch.float64)
    probe = fit_probe(a[:30], b[:30])
    assert probe.l2 in L2_GRID
    labels = torch.cat([torch.zeros(10), torch.ones(10)])
    assert probe.accuracy(torch.cat([a[30:], b[30:]]), labels) >= 0.9
    assert float(probe.weight[0].abs()) > 3 * float(probe.weight[1:].abs().max())  # it found the one axis
    heavy = fit_probe(a[:30], b[:30], l2=100.0)
    assert float(heavy.weight.norm()) < 0.2 * float(probe.weight.norm())  # the penalty shrinks w
    with pytest.raises(ValueError, match="at least 5 images"):
        fit_probe(a[:3], b[:30])


def test_the_probe_tells_held_out_horses_from_zebras(vgg16):
    """Trained on horse2zebra's trainA/trainB, scored on testA/testB (never seen). At 128 px:
    40/40 horses and 37/40 zebras right when measured (256 px: 40 and 39)."""
    from nstlib.images import load_image
    from nstlib.training_sets import dataset_files

    def stats(split):
        return vgg_statistics(vgg16, [load_image(f, size=128) for f in sorted(dataset_files("horse2zebra", split))])

    probe = fit_probe(stats("trainA"), stats("trainB"))
    horses, zebras = stats("testA"), stats("testB")
    assert len(horses) == len(zebras) == 40
    right = probe.accuracy(torch.cat([horses, zebras]), torch.cat([torch.zeros(40), torch.ones(40)]))
    assert right >= 0.9, right


def test_translation_scores_of_doing_nothing_and_of_swapping(vgg16):
    """Two extremes with known answers. 'Translating' by returning the input: the probe calls each
    translated image what its input is (so a_called_b = 1 - the real As' accuracy), SSIM 1. A
    translation that returns an image of the other domain: called what that image is."""
    from nstlib.probe import translation_scores

    g = torch.Generator().manual_seed(3)
    dark = [torch.rand(1, 3, 32, 32, generator=g) * 0.3 for _ in range(6)]  # domain A: dark noise
    bright = [0.7 + torch.rand(1, 3, 32, 32, generator=g) * 0.3 for _ in range(6)]  # domain B: bright noise
    probe = fit_probe(vgg_statistics(vgg16, dark[:5]), vgg_statistics(vgg16, bright[:5]))
    same = translation_scores(probe, vgg16, lambda x: x, lambda x: x, dark, bright)
    assert same["real_accuracy"] == 1.0
    assert same["a_called_b"] == [0.0] * 6 and same["b_called_a"] == [0.0] * 6
    assert same["ssim_a"] == pytest.approx([1.0] * 6) and same["ssim_b"] == pytest.approx([1.0] * 6)
    swap = translation_scores(probe, vgg16, lambda x: bright[0], lambda x: dark[0], dark, bright)
    assert swap["a_called_b"] == [1.0] * 6 and swap["b_called_a"] == [1.0] * 6
    assert max(swap["ssim_a"]) < 0.5
