"""nstlib.losses: the equations of Gatys et al. 2016 (content, Gram, style per layer, style) and
total variation, checked against hand-computed numbers and explicit loops, in float64; their
gradients (gradcheck); and the permutation invariance of the Gram matrix."""
import pytest
import torch
from torch.autograd import gradcheck

from nstlib.losses import content_loss, gram, style_layer_loss, style_loss, tv_loss


def _rand(*shape, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(requires_grad)


# ----------------------------------------------------------------------------- content (Eq. 1)

def test_content_loss_hand_computed():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).reshape(1, 1, 2, 2)
    p = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    # 1/2 (1 + 4 + 9 + 16) = 15
    assert content_loss(f, p).item() == 15.0
    # differences F - P = [0, 2, 2, 3]: 1/2 (0 + 4 + 4 + 9) = 8.5
    p2 = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64).reshape(1, 1, 2, 2)
    assert content_loss(f, p2).item() == 8.5
    assert content_loss(p2, f).item() == 8.5  # symmetric in its arguments
    assert content_loss(f, f).item() == 0.0


def test_content_loss_sums_over_batch_and_channels():
    f, p = _rand(2, 3, 4, 5, seed=1), _rand(2, 3, 4, 5, seed=2)
    expected = sum(0.5 * float(((f[b] - p[b]) ** 2).sum()) for b in range(2))
    assert content_loss(f, p).item() == pytest.approx(expected, rel=1e-12)


def test_content_loss_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        content_loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        content_loss(torch.zeros(2, 2, 2, 2), torch.zeros(1, 2, 2, 2))


# ----------------------------------------------------------------------------- Gram (Eq. 3, / M)

def test_gram_matches_triple_loop():
    x = _rand(2, 3, 4, 5, seed=3)
    b, n, h, w = x.shape
    m = h * w
    f = x.reshape(b, n, m).tolist()
    expected = torch.zeros(b, n, n, dtype=torch.float64)
    for bb in range(b):
        for i in range(n):
            for j in range(n):
                expected[bb, i, j] = sum(f[bb][i][k] * f[bb][j][k] for k in range(m)) / m
    g = gram(x)
    assert g.shape == (2, 3, 3)
    assert g.dtype == torch.float64
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g.transpose(1, 2), rtol=1e-12, atol=1e-12)  # symmetric
    # each batch element has its own Gram matrix (not mixed across the batch)
    torch.testing.assert_close(g[1:], gram(x[1:]), rtol=1e-12, atol=1e-12)


def test_gram_hand_computed():
    a = [[1.0, 0.0], [1.0, 0.0]]  # flattened: [1, 0, 1, 0]
    b = [[1.0, 1.0], [0.0, 0.0]]  # flattened: [1, 1, 0, 0]
    x = torch.tensor([[a, b]], dtype=torch.float64)  # (1, 2, 2, 2), M = 4
    # G_aa = (1 + 1) / 4, G_bb = (1 + 1) / 4, G_ab = (1 * 1) / 4
    expected = torch.tensor([[[0.5, 0.25], [0.25, 0.5]]], dtype=torch.float64)
    torch.testing.assert_close(gram(x), expected, rtol=0, atol=0)


def test_gram_is_independent_of_image_size():
    # tiling the feature map 2 x 2 doubles M and the sums, so G = F F^T / M is unchanged
    x = _rand(1, 3, 4, 5, seed=4)
    torch.testing.assert_close(gram(x.repeat(1, 1, 2, 2)), gram(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5, 6), (12,)])
def test_gram_rejects_non_4d(shape):
    with pytest.raises(ValueError, match=r"\(B, N, H, W\)"):
        gram(torch.zeros(shape))


# ----------------------------------------------------------------------------- style (Eq. 4-5)

def test_style_layer_loss_equals_paper_form():
    n = 3
    f = _rand(1, n, 4, 5, seed=5)  # generated image, M = 20
    s = _rand(1, n, 2, 10, seed=6)  # style image, other shape but the same M = 20
    m = 20
    ff = f.reshape(n, m)
    ss = s.reshape(n, m)
    paper = float(((ff @ ff.T - ss @ ss.T) ** 2).sum()) / (4 * n**2 * m**2)
    ours = style_layer_loss(gram(f), gram(s)).item()
    assert ours == pytest.approx(paper, rel=1e-12)
    assert ours > 0


def test_style_layer_loss_broadcasts_target_over_batch():
    g = gram(_rand(2, 4, 3, 3, seed=7))
    a = gram(_rand(1, 4, 3, 3, seed=8))
    per_sample = style_layer_loss(g[:1], a) + style_layer_loss(g[1:], a)
    assert style_layer_loss(g, a).item() == pytest.approx(per_sample.item(), rel=1e-12)
    # and equals comparing with an explicitly repeated target
    assert style_layer_loss(g, a).item() == pytest.approx(
        style_layer_loss(g, a.expand(2, 4, 4)).item(), rel=1e-12)


def test_style_layer_loss_hand_computed():
    g = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    a = torch.tensor([[[0.0, 1.0], [1.0, 3.0]]], dtype=torch.float64)
    # ||G - A||^2 = 1 + 1 + 1 + 4 = 7, N = 2: 7 / (4 * 4)
    assert style_layer_loss(g, a).item() == 7 / 16


@pytest.mark.parametrize("g_shape, a_shape", [
    ((3, 3), (3, 3)),  # not batched
    ((1, 3, 4), (1, 3, 4)),  # not square
    ((1, 3, 3), (1, 4, 4)),  # different N
    ((1, 1, 3, 3), (1, 3, 3)),  # features, not a Gram matrix
])
def test_style_layer_loss_wrong_shapes(g_shape, a_shape):
    with pytest.raises(ValueError, match=r"\(B, N, N\)"):
        style_layer_loss(torch.zeros(g_shape), torch.zeros(a_shape))


@pytest.fixture
def two_layers():
    features = {"a": _rand(1, 2, 3, 3, seed=9), "b": _rand(1, 4, 2, 2, seed=10)}
    targets = {"a": gram(_rand(1, 2, 3, 3, seed=11)), "b": gram(_rand(1, 4, 2, 2, seed=12))}
    e = {l: style_layer_loss(gram(features[l]), targets[l]).item() for l in targets}
    assert e["a"] != pytest.approx(e["b"])  # so that swapped weights would show
    return features, targets, e


def test_style_loss_default_weights_is_mean(two_layers):
    features, targets, e = two_layers
    assert style_loss(features, targets).item() == pytest.approx((e["a"] + e["b"]) / 2, rel=1e-12)


def test_style_loss_uses_only_target_layers(two_layers):
    features, targets, e = two_layers
    features = {**features, "c": _rand(1, 2, 2, 2, seed=13)}  # extra features are ignored
    assert style_loss(features, {"b": targets["b"]}).item() == pytest.approx(e["b"], rel=1e-12)


def test_style_loss_weights_by_name_and_by_order(two_layers):
    features, targets, e = two_layers
    expected = 2.0 * e["a"] + 0.5 * e["b"]
    by_name = style_loss(features, targets, {"b": 0.5, "a": 2.0})  # dict order does not matter
    by_order = style_loss(features, targets, [2.0, 0.5])  # in the order of targets: a, b
    assert by_name.item() == pytest.approx(expected, rel=1e-12)
    assert by_order.item() == pytest.approx(expected, rel=1e-12)
    assert style_loss(features, targets, (0.0, 1.0)).item() == pytest.approx(e["b"], rel=1e-12)


def test_style_loss_bad_weights(two_layers):
    features, targets, _ = two_layers
    with pytest.raises(ValueError, match="3 weights for 2 layers"):
        style_loss(features, targets, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="1 weights for 2 layers"):
        style_loss(features, targets, [1.0])
    with pytest.raises(ValueError, match=r"no weight for layers \['b'\]"):
        style_loss(features, targets, {"a": 1.0, "c": 1.0})


# ----------------------------------------------------------------------------- total variation

def test_tv_loss_hand_computed():
    x = torch.tensor([[[[1.0, 2.0, 4.0],
                        [0.0, 3.0, 3.0]]]], dtype=torch.float64)  # (1, 1, 2, 3)
    # horizontal differences: row 0: 1, 2; row 1: 3, 0  -> 1 + 4 + 9 + 0 = 14
    # vertical differences:  -1, 1, -1                  -> 1 + 1 + 1     = 3
    assert tv_loss(x).item() == 17.0
    # transposing the image swaps horizontal and vertical: same total
    assert tv_loss(x.transpose(2, 3)).item() == 17.0


def test_tv_loss_sums_over_batch_and_channels():
    x = _rand(2, 3, 4, 5, seed=14)
    expected = sum(tv_loss(x[b:b + 1, c:c + 1]).item() for b in range(2) for c in range(3))
    assert tv_loss(x).item() == pytest.approx(expected, rel=1e-12)


def test_tv_loss_constant_image_is_zero():
    assert tv_loss(torch.full((2, 3, 5, 7), 0.37, dtype=torch.float64)).item() == 0.0
    assert tv_loss(_rand(1, 3, 5, 7, seed=15)).item() > 0


def test_tv_loss_rejects_non_4d():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        tv_loss(torch.zeros(3, 4, 4))


# ----------------------------------------------------------------------------- gradients

def test_gradcheck_content_loss():
    f = _rand(1, 2, 3, 3, seed=16, requires_grad=True)
    p = _rand(1, 2, 3, 3, seed=17, requires_grad=True)
    assert gradcheck(content_loss, (f, p))


def test_gradcheck_gram():
    assert gradcheck(gram, (_rand(2, 3, 2, 3, seed=18, requires_grad=True),))


def test_gradcheck_style_layer_loss():
    g = _rand(2, 3, 3, seed=19, requires_grad=True)
    a = _rand(1, 3, 3, seed=20, requires_grad=True)
    assert gradcheck(style_layer_loss, (g, a))


def test_gradcheck_style_loss():
    fa = _rand(1, 2, 3, 3, seed=21, requires_grad=True)
    fb = _rand(1, 3, 2, 2, seed=22, requires_grad=True)
    ta = gram(_rand(1, 2, 3, 3, seed=23))
    tb = gram(_rand(1, 3, 2, 2, seed=24))

    def f(fa, fb):
        return style_loss({"a": fa, "b": fb}, {"a": ta, "b": tb}, {"a": 0.3, "b": 2.0})

    assert gradcheck(f, (fa, fb))


def test_gradcheck_tv_loss():
    assert gradcheck(tv_loss, (_rand(1, 2, 3, 4, seed=25, requires_grad=True),))


# ----------------------------------------------------------------------------- what Gram discards

def test_gram_invariant_to_spatial_permutation():
    """Shuffling the positions (the same way in every channel) keeps the Gram matrix: it records
    which features occur together, not where. The content loss sees the difference."""
    x = _rand(1, 4, 3, 5, seed=26)
    gen = torch.Generator().manual_seed(27)
    perm = torch.randperm(15, generator=gen)
    assert not torch.equal(perm, torch.arange(15))
    shuffled = x.reshape(1, 4, 15)[..., perm].reshape(1, 4, 3, 5)
    torch.testing.assert_close(gram(shuffled), gram(x), rtol=1e-12, atol=1e-12)
    assert style_layer_loss(gram(shuffled), gram(x)).item() == pytest.approx(0.0, abs=1e-20)
    assert content_loss(shuffled, x).item() > 1.0
    # a different permutation per channel breaks the co-occurrences: the Gram matrix changes
    mixed = torch.stack([x[0, c].flatten()[torch.randperm(15, generator=gen)] for c in range(4)])
    assert not torch.allclose(gram(mixed.reshape(1, 4, 3, 5)), gram(x))


# ----------------------------------------------------------------------------- guided Gram (Gatys 2017)

def test_guided_gram_matches_its_definition_in_float64():
    from nstlib.losses import guided_gram

    torch.manual_seed(0)
    f = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    t = torch.rand(2, 1, 4, 3, dtype=torch.float64)
    by_hand = torch.empty(2, 5, 5, dtype=torch.float64)
    for b in range(2):
        ft = f[b].reshape(5, 12) * t[b].reshape(1, 12)  # F o T: every position weighted
        by_hand[b] = ft @ ft.T / (t[b] ** 2).sum()
    assert torch.allclose(guided_gram(f, t), by_hand, atol=1e-12)


def test_guided_gram_with_a_full_guide_is_the_gram_and_a_binary_guide_selects_a_region():
    from nstlib.losses import guided_gram

    torch.manual_seed(1)
    f = torch.randn(1, 6, 8, 8, dtype=torch.float64)
    assert torch.equal(guided_gram(f, torch.ones(1, 1, 8, 8, dtype=torch.float64)), gram(f))
    left = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    left[..., :3] = 1
    assert torch.allclose(guided_gram(f, left), gram(f[..., :3]), atol=1e-12)  # only the region counts


def test_guided_gram_and_layer_guide_errors():
    from nstlib.losses import guided_gram, layer_guide

    f = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match="guide"):
        guided_gram(f, torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="empty region"):
        guided_gram(f, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        layer_guide(torch.ones(1, 3, 8, 8), f)
    half = torch.zeros(1, 1, 16, 16)
    half[..., :8] = 1
    assert torch.equal(layer_guide(half, f)[0, 0, 0], torch.tensor([1., 1, 1, 1, 0, 0, 0, 0]))
