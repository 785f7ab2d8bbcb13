"""nstlib.metrics: each metric on a hand-computed case (a stand-in "VGG" whose features are the image
itself makes the feature metrics' equations checkable by hand), identical images at 0 / 1 on the real
VGG-16, direction sanity (a blurred, noisier or shifted image scores worse), batches, size and range
errors, and the timer."""
import math
import time

import pytest
import torch
import torch.nn.functional as F

from nstlib import metrics as m
from nstlib.images import load_image


class PixelsAsFeatures:
    """A stand-in extractor: every layer's features are the image's own 3 channels (float64)."""

    mean = torch.zeros(1, 3, 1, 1, dtype=torch.float64)

    def extract(self, x, layers):
        layers = [layers] if isinstance(layers, str) else list(layers)
        return {l: x.double() for l in layers}


PIX = PixelsAsFeatures()


def _img(r, g, b):
    """(1, 3, H, W) float64 from three H x W lists."""
    return torch.tensor([[r, g, b]], dtype=torch.float64)


def _grey(v, h=16, w=16):
    return torch.full((1, 3, h, w), float(v), dtype=torch.float64)


def _blur(x, k):
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="reflect"), k, 1)


@pytest.fixture(scope="module")
def photos():
    content = load_image("tubingen", max_size=64)
    style = load_image("starry_night", max_size=64)
    return content, style


# ----------------------------------------------------------------------------- hand-computed cases

def test_ssim_of_two_grey_images_by_hand():
    # constant images: sigma = 0, so SSIM is the luminance term (2 a b + C1) / (a^2 + b^2 + C1)
    c1 = 0.01 ** 2
    expected = (2 * 0.5 * 0.25 + c1) / (0.5 ** 2 + 0.25 ** 2 + c1)
    assert float(m.ssim_luminance(_grey(0.5), _grey(0.25))[0]) == pytest.approx(expected, rel=1e-9)


def test_content_distance_by_hand():
    x = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    c = x.clone()
    c[0, 0, 0, 0] = 1.0
    c[0, 1, 1, 1] = 0.5
    # mean over N M = 3 * 4 entries of the squared differences: (1 + 0.25) / 12
    assert float(m.content_distance(x, c, vgg=PIX)[0]) == pytest.approx(1.25 / 12, rel=1e-12)


def test_lpips_vgg_by_hand():
    # every position of x is (1, 0, 0), of c (0, 0.5, 0): unit vectors differ by |(1, -1, 0)|^2 = 2
    # (to 1e-9: LPIPS' eps 1e-10 in the normalisation)
    x = _img([[1.0, 1.0]], [[0.0, 0.0]], [[0.0, 0.0]])
    c = _img([[0.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]]) * 0.5
    assert float(m.lpips_vgg(x, c, layers=["a"], vgg=PIX)[0]) == pytest.approx(2.0, rel=1e-9)
    # equal weights, summed over layers; length does not matter, only direction
    assert float(m.lpips_vgg(x, c, layers=["a", "b"], vgg=PIX)[0]) == pytest.approx(4.0, rel=1e-9)
    half = _img([[1.0, 0.0]], [[0.0, 0.3]], [[0.0, 0.0]])  # second position agrees with c
    assert float(m.lpips_vgg(half, c, layers=["a"], vgg=PIX)[0]) == pytest.approx(1.0, rel=1e-9)


def test_gram_distance_by_hand():
    # F = [[1, 0], [0, 1], [0, 0]] (N = 3, M = 2): G = F F^T / 2 = diag(1/2, 1/2, 0); A = 0 (black style)
    x = _img([[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]])
    s = torch.zeros(1, 3, 3, 3, dtype=torch.float64)  # another size: Gram matrices are averages
    # E = ||G - A||_F^2 / (4 N^2) = (1/4 + 1/4) / 36 = 1/72, one layer with weight 1
    assert float(m.gram_distance(x, s, layers=["a"], vgg=PIX)[0]) == pytest.approx(1 / 72, rel=1e-12)
    # two layers, default weights 1/2 each: the same
    assert float(m.gram_distance(x, s, layers=["a", "b"], vgg=PIX)[0]) == pytest.approx(1 / 72, rel=1e-12)


def test_mean_std_distance_by_hand():
    x = _img([[0.0, 1.0], [0.0, 1.0]], [[0.5] * 2] * 2, [[0.0] * 2] * 2)
    s = torch.zeros(1, 3, 5, 5, dtype=torch.float64)
    eps = 1e-5
    # mu: (0.5, 0.5, 0) vs 0 -> |.| = sqrt(0.5); sigma: (sqrt(.25 + eps), sqrt(eps), sqrt(eps)) vs sqrt(eps)
    expected = math.sqrt(0.5) + (math.sqrt(0.25 + eps) - math.sqrt(eps))
    assert float(m.mean_std_distance(x, s, layers=["a"], vgg=PIX)[0]) == pytest.approx(expected, rel=1e-9)
    per = m.mean_std_distance(x, s, layers=["a", "b"], vgg=PIX, per_layer=True)
    assert set(per) == {"a", "b"} and float(per["a"][0]) == pytest.approx(expected, rel=1e-9)


def test_patch_similarity_by_hand():
    # 1x1 patches: every output pixel (1, 0, 0); style pixels (1, 1, 0) and (0, 0, 1):
    # the best cosine is 1/sqrt(2) everywhere
    x = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    x[:, 0] = 1.0
    s = _img([[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]])
    assert float(m.patch_similarity(x, s, size=1, vgg=PIX)[0]) == pytest.approx(1 / math.sqrt(2), rel=1e-9)
    # an output pixel equal to a style pixel matches it exactly: mean of (1, 1/sqrt 2)
    y = _img([[1.0, 1.0]], [[1.0, 0.0]], [[0.0, 0.0]])
    assert float(m.patch_similarity(y, s, size=1, vgg=PIX)[0]) == pytest.approx((1 + 1 / math.sqrt(2)) / 2, rel=1e-9)
    # chunking does not change the answer
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 9, 8, generator=g), torch.rand(1, 3, 7, 6, generator=g)
    torch.testing.assert_close(m.patch_similarity(a, b, vgg=PIX, chunk=5), m.patch_similarity(a, b, vgg=PIX))


def test_colour_histograms_by_hand():
    x = torch.tensor([0.0, 0.5 / 32, 1 / 32, 0.999, 1.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    h = m.colour_histograms(x)
    assert h.shape == (1, 3, 32)
    assert h[0, 0, 0] == pytest.approx(2 / 5) and h[0, 0, 1] == pytest.approx(1 / 5)
    assert h[0, 0, 31] == pytest.approx(2 / 5)  # 0.999 and 1.0 (the last bin is closed)
    torch.testing.assert_close(h.sum(2), torch.ones(1, 3, dtype=torch.float64))


def test_colour_distance_of_a_constant_shift_is_the_shift():
    # every value at a bin centre, then moved up 8 bins: EMD = 8 / 32 = 0.25 in every channel
    g = torch.Generator().manual_seed(1)
    bins = torch.randint(0, 24, (1, 3, 10, 12), generator=g)
    x = (bins.double() + 0.5) / 32
    assert float(m.colour_distance(x + 8 / 32, x)[0]) == pytest.approx(0.25, rel=1e-12)
    assert float(m.colour_distance(x, x + 8 / 32)[0]) == pytest.approx(0.25, rel=1e-12)  # symmetric
    # shifting one channel only: a third of it
    y = x.clone()
    y[:, 2] += 3 / 32
    assert float(m.colour_distance(y, x)[0]) == pytest.approx(3 / 32 / 3, rel=1e-12)
    # half the pixels one bin down, half one bin up: the mass moves one bin, 1/32
    two = torch.tensor([0.5 / 32, 2.5 / 32]).repeat(8).view(1, 1, 4, 4).expand(1, 3, 4, 4)
    one = torch.full((1, 3, 3, 3), 1.5 / 32)  # another size: histograms are normalised
    assert float(m.colour_distance(two, one)[0]) == pytest.approx(1 / 32, rel=1e-12)


def test_gradient_ssim_ignores_a_brightness_shift_but_not_blur():
    g = torch.Generator().manual_seed(2)
    x = _blur(torch.rand(1, 3, 32, 32, generator=g), 3) * 0.7
    brighter = x + 0.2  # the same gradients, different luminance
    assert float(m.gradient_ssim(brighter, x)[0]) == pytest.approx(1.0, abs=1e-9)
    assert float(m.ssim_luminance(brighter, x)[0]) < 0.99
    assert float(m.gradient_ssim(_blur(x, 3), x)[0]) < 0.9


# ----------------------------------------------------------------------------- the real VGG-16

def test_identical_images_score_perfectly(photos, vgg16):
    content, style = photos
    values = m.evaluate(content, content, content, vgg=vgg16)
    assert set(values) == set(m.METRICS)
    for name, (_, _, better) in m.METRICS.items():
        assert values[name] == pytest.approx(1.0 if better == "higher" else 0.0, abs=1e-9), name
    # and the style metrics are not 0 against a painting
    other = m.evaluate(content, content, style, vgg=vgg16)
    assert other["gram"] > 0 and other["mean_std"] > 0 and other["patch_sim"] < 0.9 and other["colour_emd_style"] > 0


def test_blurrier_preserves_content_worse(photos, vgg16):
    content, _ = photos
    light, heavy = _blur(content, 3), _blur(content, 7)
    for f, better in [(m.ssim_luminance, "higher"), (m.gradient_ssim, "higher"),
                      (lambda a, b: m.content_distance(a, b, vgg=vgg16), "lower"),
                      (lambda a, b: m.lpips_vgg(a, b, vgg=vgg16), "lower")]:
        a, b = float(f(light, content)[0]), float(f(heavy, content)[0])
        assert (a > b) if better == "higher" else (a < b), (f, a, b)


def test_noisier_matches_style_worse(photos, vgg16):
    _, style = photos
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(style.shape, generator=g)
    little, much = (style + 0.05 * noise).clamp(0, 1), (style + 0.3 * noise).clamp(0, 1)
    for f, better in [(m.gram_distance, "lower"), (m.mean_std_distance, "lower"), (m.patch_similarity, "higher")]:
        a, b = float(f(little, style, vgg=vgg16)[0]), float(f(much, style, vgg=vgg16)[0])
        assert (a > b) if better == "higher" else (a < b), (f, a, b)
    assert float(m.colour_distance((style + 0.05).clamp(0, 1), style)[0]) < \
        float(m.colour_distance((style + 0.2).clamp(0, 1), style)[0])


def test_gram_distance_is_the_course_style_loss(photos, vgg16):
    from nstlib.losses import gram, style_loss

    content, style = photos
    fx = vgg16.extract(content, m.STYLE_LAYERS)
    targets = {l: gram(f) for l, f in vgg16.extract(style, m.STYLE_LAYERS).items()}
    expected = float(style_loss(fx, targets))
    assert float(m.gram_distance(content, style, vgg=vgg16)[0]) == pytest.approx(expected, rel=1e-4)


def test_batches_give_one_value_per_image(photos, vgg16):
    content, style = photos
    pair = torch.cat([content, _blur(content, 5)])
    for f in (m.ssim_luminance, m.gradient_ssim, m.colour_distance):
        both = f(pair, content)
        assert both.shape == (2,)
        torch.testing.assert_close(both[1:], f(pair[1:], content))
    both = m.lpips_vgg(pair, torch.cat([content, content]), vgg=vgg16)
    torch.testing.assert_close(both[1:], m.lpips_vgg(pair[1:], content, vgg=vgg16))
    both = m.gram_distance(pair, style, vgg=vgg16)
    torch.testing.assert_close(both[1:], m.gram_distance(pair[1:], style, vgg=vgg16))


# ----------------------------------------------------------------------------- errors

def test_content_metrics_need_the_same_size():
    with pytest.raises(ValueError, match="same size.*nstlib.images.resize"):
        m.ssim_luminance(_grey(0.5, 16, 16), _grey(0.5, 16, 20))
    with pytest.raises(ValueError, match="same size"):
        m.content_distance(_grey(0.5, 16, 16), _grey(0.5, 20, 16), vgg=PIX)


@pytest.mark.parametrize("bad, fragment", [
    (torch.full((1, 3, 8, 8), 1.5), r"\[0, 1\]"),
    (torch.full((1, 3, 8, 8), float("nan")), r"\[0, 1\]"),
    (torch.zeros(1, 4, 8, 8), r"\(B, 3, H, W\)"),
    (torch.zeros(3, 8, 8), r"\(B, 3, H, W\)"),
])
def test_bad_images_are_refused(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        m.colour_distance(bad, torch.zeros(1, 3, 8, 8))


def test_batch_sizes_must_agree():
    with pytest.raises(ValueError, match="give 1 or 2"):
        m.colour_distance(torch.zeros(2, 3, 8, 8), torch.zeros(3, 3, 8, 8))


# ----------------------------------------------------------------------------- speed

def test_time_callable_warms_up_untimed():
    calls = []

    def fn():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.2)  # the first call is slow (lazy initialisation)
        return len(calls)

    t = m.time_callable(fn, warmup=1, repeats=3, device="cpu")
    assert len(calls) == 4 and len(t["times"]) == 3 and t["result"] == 4
    assert t["seconds"] < 0.1
    with pytest.raises(ValueError):
        m.time_callable(fn, repeats=0)


# ----------------------------------------------------------------------------- against a known answer

def test_psnr_and_ssim_by_hand():
    # MSE 0.01 everywhere: 10 log10(1 / 0.01) = 20 dB; identical batches: inf
    assert m.psnr(_grey(0, 2, 2), _grey(0.1, 2, 2)) == pytest.approx(20.0, rel=1e-12)
    assert m.psnr(_grey(0.5), _grey(0.5)) == math.inf
    # pooled MSE, not averaged PSNRs: errors 0.1 and 0 in two images -> MSE 0.005
    pair = torch.cat([_grey(0.6), _grey(0.5)])
    assert m.psnr(pair, torch.cat([_grey(0.5)] * 2)) == pytest.approx(10 * math.log10(1 / 0.005), rel=1e-9)
    # constant images: each channel's SSIM is the luminance term (2 a b + C1) / (a^2 + b^2 + C1)
    c1 = 0.01 ** 2
    expected = (2 * 0.5 * 0.25 + c1) / (0.5 ** 2 + 0.25 ** 2 + c1)
    assert m.ssim(_grey(0.5), _grey(0.25)) == pytest.approx(expected, rel=1e-9)
    # the mean over the batch of the mean over the channels
    x = torch.cat([_grey(0.5), _grey(0.5)])
    x[1, 0] = 0.25  # one channel of the second image differs
    assert m.ssim(x, torch.cat([_grey(0.5)] * 2)) == pytest.approx((1 + (2 + expected) / 3) / 2, rel=1e-9)


def test_psnr_and_ssim_equal_the_former_translation_task_code_on_photos():
    """psnr and ssim moved from nstlib.translation_task, psnr to scikit-image: on real photos and
    the three kinds of change a translation makes (a colour grade, noise, a shift), both equal the
    former code (float32 torch PSNR; scikit-image SSIM on float32 H x W x 3 arrays) to 1e-6."""
    import numpy as np
    from skimage.metrics import structural_similarity

    from nstlib.translation_task import tone_transform

    def former_psnr(x, y):
        return float(10 * np.log10(1.0 / float((x - y).pow(2).mean())))

    def former_ssim(x, y):
        return float(np.mean([structural_similarity(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(),
                                                    channel_axis=2, data_range=1.0) for a, b in zip(x, y)]))

    g = torch.Generator().manual_seed(4)
    for name in ("tubingen", "chelsea", "astronaut"):
        x = load_image(name, max_size=128)
        noisy = (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        for y in (tone_transform(x), noisy, x.roll(3, -1)):
            assert m.psnr(y, x) == pytest.approx(former_psnr(y, x), abs=1e-6), name
            assert m.ssim(y, x) == pytest.approx(former_ssim(y, x), abs=1e-6), name


def test_psnr_and_ssim_refuse_what_they_cannot_compare():
    with pytest.raises(ValueError, match="same shape"):
        m.psnr(_grey(0.5, 16, 16), _grey(0.5, 16, 20))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.ssim(_grey(1.5), _grey(0.5))
    with pytest.raises(ValueError, match="at least 7 x 7"):
        m.ssim(_grey(0.5, 4, 4), _grey(0.5, 4, 4))
