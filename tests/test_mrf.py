"""nstlib.mrf (Li & Wand 2016): patch extraction, the nearest-neighbour search by normalised
cross-correlation (Eq. 3) against a brute-force loop, the energy of Eq. 2 against an explicit sum
and at its zero (the output made of the style's patches), MRFTerm in optimize_image, and the
coarse-to-fine recipe. Tiny float64 tensors; the VGG runs on 32-64 px images only."""
import pytest
import torch

import nstlib.mrf as mrf
from nstlib.mrf import MRFTerm, extract_patches, mrf_loss, mrf_transfer, nearest_patches, normalize_patches
from nstlib.optimize import TVTerm, initial_image, optimize_image


def _rand(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen, dtype=torch.float64)  # positive, like ReLU features


def _brute_force_nearest(features, patches):
    """Eq. 3 literally: for every output patch, the style patch with the largest
    <a, b> / (|a| |b|), by two Python loops."""
    b, _, h, w = features.shape
    k = patches.shape[-1]
    out = torch.zeros(b, h - k + 1, w - k + 1, dtype=torch.long)
    for bb in range(b):
        for i in range(h - k + 1):
            for j in range(w - k + 1):
                a = features[bb, :, i:i + k, j:j + k].flatten()
                scores = [float(a @ p.flatten()) / (float(a.norm()) * float(p.flatten().norm())) for p in patches]
                out[bb, i, j] = max(range(len(scores)), key=scores.__getitem__)
    return out


# ----------------------------------------------------------------------------- patches

def test_extract_patches_are_the_windows_in_row_major_order():
    f = _rand(2, 3, 5, 6, seed=1)
    p = extract_patches(f)
    assert p.shape == (2 * 3 * 4, 3, 3, 3)
    windows = [f[b, :, i:i + 3, j:j + 3] for b in range(2) for i in range(3) for j in range(4)]
    torch.testing.assert_close(p, torch.stack(windows), rtol=0, atol=0)
    strided = extract_patches(f, patch_size=2, stride=2)
    assert torch.equal(strided, torch.stack([f[b, :, i:i + 2, j:j + 2] for b in range(2)
                                             for i in (0, 2) for j in (0, 2, 4)]))


def test_normalize_patches_gives_unit_norms_and_keeps_zero_patches_zero():
    p = _rand(4, 2, 3, 3, seed=2)
    p[1] = 0
    n = normalize_patches(p).flatten(1).norm(dim=1)
    torch.testing.assert_close(n, torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64))


# ----------------------------------------------------------------------------- nearest neighbours (Eq. 3)

def test_nearest_patches_match_a_brute_force_loop(monkeypatch):
    features = _rand(2, 4, 6, 7, seed=3)  # a batch of two output feature maps
    patches = extract_patches(_rand(1, 4, 5, 6, seed=4))  # 12 style patches
    expected = _brute_force_nearest(features, patches)
    found = nearest_patches(features, patches)
    assert found.shape == (2, 4, 5) and found.dtype == torch.long
    assert torch.equal(found, expected)
    assert torch.equal(nearest_patches(features, normalize_patches(patches), normalized=True), expected)
    # the blocks that bound the score map's memory find the same neighbours
    monkeypatch.setattr(mrf, "MAX_SCORES", 1)
    assert torch.equal(nearest_patches(features, patches), expected)


def test_matching_ignores_the_scale_of_a_patch():
    """Normalised cross-correlation: a style patch twice as bright matches as well as itself, and
    an output patch matches the style patch it is a multiple of, whatever the factor."""
    patches = extract_patches(_rand(1, 3, 4, 4, seed=5))  # 4 patches
    features = 3.0 * patches[2:3]  # one output patch, (1, 3, 3, 3)
    assert nearest_patches(features, patches).item() == 2
    assert nearest_patches(features, patches * torch.tensor([1, 1, 1e-3, 1.0])[:, None, None, None].double()).item() == 2


# ----------------------------------------------------------------------------- the energy (Eq. 2)

def test_mrf_loss_is_the_sum_of_eq_2():
    features = _rand(2, 3, 5, 5, seed=6)
    patches = extract_patches(_rand(1, 3, 6, 4, seed=7))
    nearest = _brute_force_nearest(features, patches)
    expected = sum(float(((features[b, :, i:i + 3, j:j + 3] - patches[nearest[b, i, j]]) ** 2).sum())
                   for b in range(2) for i in range(3) for j in range(3))
    assert mrf_loss(features, patches).item() == pytest.approx(expected, rel=1e-12)
    assert mrf_loss(features, patches, nearest).item() == pytest.approx(expected, rel=1e-12)


def test_mrf_loss_is_zero_when_the_output_is_made_of_style_patches():
    style = _rand(1, 4, 7, 8, seed=8)
    patches = extract_patches(style)
    # a crop of the style's features: every output patch is one of the style's patches
    crop = style[..., 2:6, 1:7].clone()
    assert mrf_loss(crop, patches).item() == 0.0
    # the style patches rearranged: the output's own patches in a shuffled bank with distractors
    output = _rand(1, 4, 5, 6, seed=9)
    own = extract_patches(output)
    bank = torch.cat([own, _rand(30, 4, 3, 3, seed=10)])[torch.randperm(own.shape[0] + 30,
                                                                          generator=torch.Generator().manual_seed(0))]
    assert mrf_loss(output, bank).item() == 0.0
    assert mrf_loss(output, patches).item() > 0.1  # and not for patches it is not made of


def test_mrf_loss_gradient_flows_through_the_output_patches_only():
    features = _rand(1, 2, 4, 4, seed=11).requires_grad_(True)
    patches = extract_patches(_rand(1, 2, 5, 5, seed=12))
    nearest = nearest_patches(features.detach(), patches)
    mrf_loss(features, patches, nearest).backward()
    # dE/dF at a position = 2 sum over the patches covering it of (F - matched patch) there
    expected = torch.zeros_like(features)
    for i in range(2):
        for j in range(2):
            expected[0, :, i:i + 3, j:j + 3] += 2 * (features[0, :, i:i + 3, j:j + 3] - patches[nearest[0, i, j]]).detach()
    torch.testing.assert_close(features.grad, expected, rtol=1e-12, atol=1e-12)


def test_bad_shapes():
    with pytest.raises(ValueError, match="no 3 x 3 patch"):
        extract_patches(torch.zeros(1, 2, 2, 5))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        nearest_patches(torch.zeros(2, 5, 5), torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="channels"):
        nearest_patches(torch.zeros(1, 3, 5, 5), torch.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="nearest must be"):
        mrf_loss(torch.zeros(1, 2, 5, 5), torch.ones(4, 2, 3, 3), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="patch_size must be a positive integer"):
        MRFTerm(torch.rand(1, 3, 32, 32), patch_size=0)


# ----------------------------------------------------------------------------- MRFTerm in the engine

def _photo(h=32, w=40):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([xx, yy, 0.5 + 0.4 * torch.sin(6 * xx * yy)])[None].clamp(0, 1)


def _texture(h=40, w=40):
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    s = ((xx // 4 + yy // 4) % 2).float()  # a checkerboard of 4 px squares
    return torch.stack([s, 0.2 + 0.6 * s, 1 - s])[None]


def test_mrf_term_is_the_weighted_sum_of_eq_2_over_its_layers(vgg16):
    style, image = _texture(), _photo()
    layers = ["relu2_1", "relu3_1"]
    term = MRFTerm(style, layers, layer_weights=[0.25, 2.0])
    term.prepare(vgg16)
    with torch.no_grad():
        s = vgg16.extract(style, layers)
        f = vgg16.extract(image, layers)
        expected = sum(w * mrf_loss(f[l], extract_patches(s[l])).item() for l, w in zip(layers, (0.25, 2.0)))
        assert term.value(f, image).item() == pytest.approx(expected, rel=1e-5)
    assert term.patches["relu3_1"].shape == (8 * 8, 256, 3, 3)  # 40 px -> relu3_1 10 x 10 -> 8 x 8 patches
    assert MRFTerm(style).layer_weights == {"relu3_1": 0.5, "relu4_1": 0.5}


def test_a_few_steps_lower_the_mrf_loss(vgg16):
    term = MRFTerm(_texture())  # relu3_1 and relu4_1, as the paper
    r = optimize_image(initial_image("noise", _photo(), seed=0), [term, TVTerm(1e-3)], steps=5, vgg=vgg16,
                       progress=False)
    h = r.history["mrf"]
    assert r.stopped == "finished" and len(h) == 5
    assert h[-1] < 0.5 * h[0], h


def test_the_style_image_must_reach_the_deepest_layer(vgg16):
    term = MRFTerm(torch.rand(1, 3, 16, 16), ["relu4_1"])
    with pytest.raises(ValueError, match="too small"):
        term.prepare(vgg16)


def test_mrf_transfer_runs_coarse_to_fine(vgg16):
    content, style = _photo(48, 64), _texture(48, 48)
    r = mrf_transfer(content, style, max_size=64, scales=[40], steps=[2, 1], vgg=vgg16, progress=False)
    assert [size for size, _ in r.stages] == [40, 64]
    assert r.stages[0][1].image.shape == (1, 3, 30, 40)
    assert r.image.shape == (1, 3, 48, 64) and r.image.min() >= 0 and r.image.max() <= 1
    assert set(r.history) == {"content", "mrf", "tv", "total", "seconds"}
    assert r.settings["scales"] == [40]
    # the default pyramid: three resolutions, each twice the last, none below 64 px
    assert [s for s, _ in mrf_transfer(content, style, max_size=128, steps=0, vgg=vgg16, progress=False).stages] == [64, 128]
