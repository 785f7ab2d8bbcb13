"""nstlib.photorealism (Luan et al. 2017): the matting Laplacian of Levin et al. 2008 against a
brute-force construction of Eq. 12, its null space (constant and affine-in-the-photo images have
zero energy), symmetry and positive semi-definiteness, in float64; the energy L_m and its gradient
2 M V; PhotorealismTerm in optimize_image; the semantic masks and the augmented style loss; the
paper's examples. Images of 8-32 px."""
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from nstlib.optimize import StyleTerm, initial_image, optimize_image
from nstlib.photorealism import (DEEP_PHOTO_PALETTE, PhotorealismTerm, deep_photo_pair, matting_laplacian,
                                 matting_loss, segmentation_masks, semantic_style_terms, to_torch_sparse)
from nstlib import training_sets
from tests.conftest import shared_file


def _photo(h=8, w=8, seed=0):
    """Random colours with a flat 3 x 4 corner: windows there have a singular covariance, which
    only eps keeps invertible."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=gen, dtype=torch.float64)
    x[..., :3, :4] = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64)[:, None, None]
    return x


def _brute_force_laplacian(image, eps=1e-7, radius=1):
    """Levin et al. 2008, Eq. 12, term by term: for every window w_k wholly inside the image and
    every pair (i, j) in it, add delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/|w_k| I)^-1 (I_j - mu_k)) / |w_k|."""
    h, w = image.shape[-2:]
    colors = image[0].permute(1, 2, 0).reshape(-1, 3).numpy()
    d = 2 * radius + 1
    n = d * d
    lap = np.zeros((h * w, h * w))
    for cy in range(radius, h - radius):
        for cx in range(radius, w - radius):
            ids = [(cy + dy) * w + cx + dx for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
            mu = colors[ids].mean(axis=0)
            sigma = sum(np.outer(colors[i] - mu, colors[i] - mu) for i in ids) / n
            inverse = np.linalg.inv(sigma + eps / n * np.eye(3))
            for i in ids:
                for j in ids:
                    lap[i, j] += (i == j) - (1 + (colors[i] - mu) @ inverse @ (colors[j] - mu)) / n
    return lap


def _energy(lap, v):
    """sum_c V_c^T M V_c of a (1, 3, H, W) image, V_c row-major."""
    cols = v[0].reshape(3, -1).numpy()
    return float(sum(c @ (lap @ c) for c in cols))


# ----------------------------------------------------------------------------- the matting Laplacian

def test_laplacian_matches_a_brute_force_construction_on_an_8x8_image():
    photo = _photo()
    lap = matting_laplacian(photo, eps=1e-7)
    assert lap.shape == (64, 64) and lap.dtype == np.float64
    np.testing.assert_allclose(lap.toarray(), _brute_force_laplacian(photo), rtol=0, atol=1e-10)
    # radius 2 (5 x 5 windows) on a non-square image, and another eps
    photo = _photo(7, 9, seed=1)
    np.testing.assert_allclose(matting_laplacian(photo, eps=1e-3, radius=2).toarray(),
                               _brute_force_laplacian(photo, eps=1e-3, radius=2), rtol=0, atol=1e-10)


@pytest.mark.parametrize("radius", [1, 2])
def test_laplacian_is_symmetric_positive_semidefinite(radius):
    lap = matting_laplacian(_photo(9, 11, seed=2), radius=radius)
    dense = lap.toarray()
    assert np.array_equal(dense, dense.T)  # exactly: each pair is computed once and written twice
    eigenvalues = np.linalg.eigvalsh(dense)
    assert eigenvalues.min() > -1e-9 * eigenvalues.max()
    assert eigenvalues.max() > 1  # not the zero matrix


def test_constant_images_have_zero_energy():
    lap = matting_laplacian(_photo())
    np.testing.assert_allclose(lap @ np.ones(64), 0, atol=1e-12)  # every row sums to 0
    constant = torch.tensor([0.1, 0.6, 0.9], dtype=torch.float64)[None, :, None, None].expand(1, 3, 8, 8)
    assert abs(_energy(lap, constant)) < 1e-12
    assert _energy(lap, torch.rand(1, 3, 8, 8, dtype=torch.float64)) > 1  # and other images do not


def test_locally_affine_images_have_zero_energy():
    """O = A I + b, an affine function of the photo's colours in every window, costs at most
    eps |a|^2 per window (the regulariser of Levin's cost): zero as eps -> 0, unlike any other image."""
    photo, eps = _photo(), 1e-7
    lap = matting_laplacian(photo, eps=eps)
    a = torch.tensor([[0.5, 0.2, -0.1], [0.0, 1.0, 0.3], [-0.4, 0.1, 0.8]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    recoloured = torch.einsum("cd,bdhw->bchw", a, photo) + b[None, :, None, None]
    windows = 6 * 6
    bound = eps * windows * float((a ** 2).sum())  # sum over channels c of eps |a_c|^2 per window
    assert 0 <= _energy(lap, recoloured) <= bound * (1 + 1e-6)
    assert _energy(lap, photo) <= eps * windows * 3 * (1 + 1e-6)  # the photo itself: a = identity
    # a recolouring that is not affine in the photo's colours is not free
    assert _energy(lap, recoloured ** 2) > 1e3 * bound


def test_bad_arguments():
    with pytest.raises(ValueError, match="one photo"):
        matting_laplacian(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="no 3x3 window"):
        matting_laplacian(torch.rand(1, 3, 2, 8))
    with pytest.raises(ValueError, match="radius must be a positive integer"):
        matting_laplacian(torch.rand(1, 3, 8, 8), radius=0)
    with pytest.raises(ValueError, match="build it from the photo at this size"):
        matting_loss(torch.rand(1, 3, 8, 8), to_torch_sparse(matting_laplacian(torch.rand(1, 3, 6, 6))))


# ----------------------------------------------------------------------------- L_m and its gradient

def test_matting_loss_value_and_gradient_2_M_V():
    photo = _photo()
    lap = matting_laplacian(photo)
    m = to_torch_sparse(lap, dtype=torch.float64)
    v = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)  # a batch: the sum of both
    loss = matting_loss(v, m)
    assert loss.item() == pytest.approx(_energy(lap, v[:1].detach()) + _energy(lap, v[1:].detach()), rel=1e-12)
    loss.backward()
    expected = 2 * (lap @ v.detach().reshape(6, 64).numpy().T).T.reshape(2, 3, 8, 8)
    np.testing.assert_allclose(v.grad.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x: matting_loss(x, m), (torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True),))


def test_photorealism_term_in_optimize_image_lowers_its_loss(vgg16):
    photo = _photo(32, 32).float()
    term = PhotorealismTerm(photo)
    start = initial_image("noise", photo, seed=0)
    r = optimize_image(start, [term], steps=5, vgg=vgg16, progress=False)
    h = r.history["photorealism"]
    assert r.stopped == "finished" and h[-1] < 0.1 * h[0], h
    assert term.laplacian.shape == (1024, 1024)  # built once, in prepare
    with pytest.raises(ValueError, match="the photo is"):
        term.value({}, torch.rand(1, 3, 16, 16))


# ----------------------------------------------------------------------------- masks and the augmented style loss

def test_segmentation_masks_follow_the_authors_tolerance():
    colors = torch.tensor([[0, 0, 1], [0.95, 0.97, 0.02], [0.5, 0.45, 0.55], [0.8, 0.15, 0.75]]).T  # blue, ~yellow, ~grey, none
    seg = colors.reshape(1, 3, 2, 2)
    masks = segmentation_masks(seg)
    names = list(DEEP_PHOTO_PALETTE)
    assert masks.shape == (1, 9, 2, 2) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert masks[0, names.index("blue"), 0, 0] == 1 and masks[0, names.index("yellow"), 0, 1] == 1
    assert masks[0, names.index("grey"), 1, 0] == 1
    assert masks[0, :, 1, 1].sum() == 0  # near no colour: in no class
    assert masks.sum(1).max() == 1  # never in two
    nearest = segmentation_masks(seg, tolerance=None)  # every pixel in exactly one class
    assert torch.equal(nearest.sum(1), torch.ones(1, 2, 2)) and nearest[0, names.index("purple"), 1, 1] == 1


def test_semantic_style_terms_one_guided_gram_term_per_shared_class(vgg16):
    style = torch.rand(1, 3, 32, 40)
    content_masks, style_masks = torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 40)
    content_masks[:, 0, :, :8] = 1  # class a: a quarter of the content
    content_masks[:, 1, :, 8:] = 1  # class b: the rest
    style_masks[:, 1, :20] = 1  # b and c in the style, a not
    style_masks[:, 2, 20:] = 1
    terms = semantic_style_terms(style, content_masks, style_masks, ["relu1_1"], weight=10.0, classes="abc")
    assert [t.name for t in terms] == ["style:b"]  # a: not in the style, c: not in the content
    (term,) = terms
    assert isinstance(term, StyleTerm) and term.weight == pytest.approx(7.5)  # Gamma * share of the content
    assert torch.equal(term.mask, content_masks[:, 1:2]) and torch.equal(term.style_mask, style_masks[:, 1:2])
    assert semantic_style_terms(style, content_masks, style_masks, ["relu1_1"], weight=10.0,
                                area_weighted=False)[0].weight == 10.0
    with pytest.raises(ValueError, match="no class occurs in both"):
        semantic_style_terms(style, content_masks[:, :1], style_masks[:, :1])


def test_deep_photo_pair_loads_photos_and_class_masks():
    shared_file(training_sets.DATASETS_ENV, "deep_photo/input/in47.png")  # the developers' copy (CI: ../shared)
    pair = deep_photo_pair(47, max_size=64, download=False)
    assert pair.content.shape == (1, 3, 43, 64) and pair.style.shape == (1, 3, 43, 64)
    assert pair.content_masks.shape == (1, 9, 43, 64) and pair.style_masks.shape == (1, 9, 43, 64)
    for masks in (pair.content_masks, pair.style_masks):
        assert masks.min() >= 0 and masks.sum(1).max() <= 1 + 1e-6  # area-resized: fractional edges, no overlap
    assert {"black", "white", "red"} <= set(pair.shared_classes)
    with pytest.raises(ValueError, match="choose one of"):
        deep_photo_pair(23)  # the authors' tar23.png is a symlink: not in the set
