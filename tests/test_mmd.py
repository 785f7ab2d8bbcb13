"""nstlib.mmd: style losses as MMD^2 (Li, Wang, Liu & Hou 2017, "Demystifying Neural Style Transfer").

Checked in float64 against the reference definition `mmd2` (full kernel matrices): Gatys' Gram loss
is MMD^2 / (4 N^2) with k = (x^T y)^2; the closed forms of the linear and degree-2 polynomial
kernels; the subset U-statistic (exact when the subset is the whole set, unbiased in a simulation
in which the biased V-statistic would be caught); the Gaussian bandwidths; the BN-statistics loss;
gradients (gradcheck); make_kernel; and MMDStyleTerm with the real VGG-16 on 32 px images.
"""
import statistics

import pytest
import torch
from torch.autograd import gradcheck

from nstlib import mmd
from nstlib.losses import gram, style_layer_loss
from nstlib.mmd import (BNStatistics, Gaussian, Linear, MMDStyleTerm, Polynomial, gaussian_kernel,
                        linear_kernel, make_kernel, mmd2, polynomial_kernel, samples,
                        squared_distances)
from nstlib.optimize import StyleTerm, initial_image, optimize_image


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Every tensor here is tiny: intra-op threads only add synchronisation, and on a busy machine
    their spin-waiting made a (256, 64) @ (64, 256) product 25x slower (28 ms instead of 1 ms).
    One thread for this module, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rand(*shape, seed=0, scale=1.0, shift=0.0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + shift
    return x.requires_grad_(requires_grad)


def _close(a, b, rel=1e-10, abs=1e-10):
    a, b = float(a), float(b)
    assert a == pytest.approx(b, rel=rel, abs=abs), (a, b)


# (N, H, W) of F and (H2, W2) of S: different numbers of positions M and M_s
SHAPES = [((3, 4, 5), (6, 2)), ((8, 5, 5), (3, 7)), ((16, 2, 9), (7, 4))]


def _pair(shape, seed):
    (n, h, w), (h2, w2) = shape
    f = _rand(1, n, h, w, seed=seed)
    s = _rand(1, n, h2, w2, seed=seed + 100, scale=1.5, shift=0.3)
    return f, s


# ----------------------------------------------------------------------------- samples, distances

def test_samples_rows_are_positions():
    f = _rand(1, 3, 4, 5)
    x = samples(f)
    assert x.shape == (20, 3)
    w = f.shape[-1]
    for a in range(20):
        assert torch.equal(x[a], f[0, :, a // w, a % w])


def test_samples_rejects_batches_and_3d():
    with pytest.raises(ValueError):
        samples(_rand(2, 3, 4, 5))
    with pytest.raises(ValueError):
        samples(_rand(3, 4, 5))


def test_squared_distances_match_cdist_and_are_non_negative():
    x, y = _rand(7, 5, seed=1), _rand(9, 5, seed=2)
    d = squared_distances(x, y)
    assert d.shape == (7, 9)
    torch.testing.assert_close(d, torch.cdist(x, y) ** 2, rtol=1e-10, atol=1e-10)
    # large norms, tiny differences: the expansion ||x||^2 + ||y||^2 - 2 x^T y loses everything to
    # rounding, and unclamped it goes negative; the result must still be >= 0
    z = 1e4 + 1e-6 * _rand(30, 4, seed=3)
    dz = squared_distances(z, z)
    assert (dz >= 0).all()
    assert (squared_distances(x, y) >= 0).all()


# ----------------------------------------------------------------------------- mmd2, the reference

def test_mmd2_unbiased_needs_two_samples():
    x, y = _rand(1, 4, seed=1), _rand(5, 4, seed=2)
    with pytest.raises(ValueError):
        mmd2(x, y, linear_kernel, unbiased=True)
    with pytest.raises(ValueError):
        mmd2(y, x, linear_kernel, unbiased=True)
    mmd2(x, y, linear_kernel)  # the V-statistic is defined for one sample


@pytest.mark.parametrize("kernel", [linear_kernel, polynomial_kernel(0.0, 2), polynomial_kernel(1.0, 3),
                                    gaussian_kernel(2.0)])
def test_mmd2_of_a_set_with_itself_is_zero(kernel):
    x = _rand(11, 4, seed=5)
    assert abs(float(mmd2(x, x, kernel))) < 1e-12
    assert float(mmd2(x, _rand(11, 4, seed=6, shift=1.0), kernel)) > 1e-3  # and not always zero


# ----------------------------------------------------------------------------- Gram loss = MMD^2

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gram_loss_is_mmd2_with_squared_dot_kernel(shape, seed):
    f, s = _pair(shape, seed)
    n = f.shape[1]
    gatys = style_layer_loss(gram(f), gram(s))
    reference = mmd2(samples(f), samples(s), polynomial_kernel(0.0, 2)) / (4 * n**2)
    assert float(gatys) > 1e-3
    _close(gatys, reference)


# ----------------------------------------------------------------------------- linear kernel

@pytest.mark.parametrize("shape", SHAPES)
def test_linear_kernel_matches_means(shape):
    f, s = _pair(shape, 3)
    n = f.shape[1]
    mean_distance = (samples(f).mean(0) - samples(s).mean(0)).pow(2).sum()
    assert float(mean_distance) > 1e-3
    _close(mmd2(samples(f), samples(s), linear_kernel), mean_distance)
    kernel = Linear()
    _close(kernel.loss(f, kernel.prepare(s)), mean_distance / n)


# ----------------------------------------------------------------------------- polynomial kernel

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("c", [0.0, 0.5, 2.0])
def test_polynomial_degree_2_closed_form(shape, c):
    f, s = _pair(shape, 4)
    n = f.shape[1]
    kernel = Polynomial(c=c, d=2)
    value = kernel.loss(f, kernel.prepare(s))
    _close(value, mmd2(samples(f), samples(s), polynomial_kernel(c, 2)) / n**2)


@pytest.mark.parametrize("shape", SHAPES)
def test_polynomial_c0_is_four_times_gram_loss(shape):
    f, s = _pair(shape, 5)
    kernel = Polynomial(c=0, d=2)
    _close(kernel.loss(f, kernel.prepare(s)), 4 * style_layer_loss(gram(f), gram(s)))


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_polynomial_degree_3_full_subset_is_the_u_statistic(c):
    f, s = _pair(SHAPES[0], 6)
    n, m = f.shape[1], f.shape[2] * f.shape[3]
    kernel = Polynomial(c=c, d=3, samples=m + 5)  # >= M and >= M_s: every position
    value = kernel.loss(f, kernel.prepare(s))
    x, y = samples(f), samples(s)
    u = mmd2(x, y, polynomial_kernel(c, 3), unbiased=True) / n**2
    v = mmd2(x, y, polynomial_kernel(c, 3), unbiased=False) / n**2
    _close(value, u)
    assert abs(float(u - v)) > 1e-3 * abs(float(u))  # the V-statistic would not pass
    # with fewer samples than positions it is a random subset: the value depends on the draw
    draws = {float(Polynomial(c=c, d=3, samples=5, generator=torch.Generator().manual_seed(i))
                   .loss(f, kernel.prepare(s))) for i in range(4)}
    assert len(draws) > 1


def test_polynomial_rejects_bad_degrees():
    for d in (0, -1, 1.5):
        with pytest.raises(ValueError):
            Polynomial(d=d)


# ----------------------------------------------------------------------------- Gaussian kernel

def _off_diagonal_squared_distances(s):
    """Squared distances of distinct pairs a < b of style samples, with cdist (not the library)."""
    d = torch.cdist(s, s) ** 2
    i, j = torch.triu_indices(len(s), len(s), offset=1)
    return d[i, j]


@pytest.mark.parametrize("bandwidth", ["mean", "median", 3.5])
def test_gaussian_full_subset_is_the_u_statistic(bandwidth):
    f, s = _pair(SHAPES[1], 7)
    kernel = Gaussian(bandwidth=bandwidth, samples=1000)  # > M, M_s: every position
    target = kernel.prepare(s)
    sigma2 = target[1]
    value = kernel.loss(f, target)
    x, y = samples(f), samples(s)
    u = mmd2(x, y, gaussian_kernel(sigma2), unbiased=True)
    v = mmd2(x, y, gaussian_kernel(sigma2), unbiased=False)
    _close(value, u)
    assert abs(float(u - v)) > 1e-3  # the V-statistic would not pass
    if bandwidth == 3.5:
        assert sigma2 == 3.5  # a number is used as is


def test_gaussian_bandwidths():
    f, s = _pair(SHAPES[1], 8)
    pairs = _off_diagonal_squared_distances(samples(s)).tolist()
    mean = Gaussian("mean", samples=1000).prepare(s)[1]
    median = Gaussian("median", samples=1000).prepare(s)[1]
    _close(mean, statistics.fmean(pairs))
    # torch.median takes the lower of the two middle values; over the M_s (M_s - 1) off-diagonal
    # entries (each distance twice) that is the lower median of the distinct pairs
    _close(median, statistics.median_low(pairs))
    assert min(pairs) <= median <= max(pairs)
    assert mean != pytest.approx(median, rel=1e-3)  # skewed distances: the two differ
    assert Gaussian(0.25, samples=1000).prepare(s)[1] == 0.25
    assert Gaussian(2, samples=1000).prepare(s)[1] == 2.0


def test_gaussian_scale_multiplies_each_layers_own_bandwidth():
    """scale widens every layer's heuristic bandwidth by one factor: each layer keeps its own rule."""
    for shape in SHAPES[:2]:
        _, s = _pair(shape, 8)
        for rule in ("mean", "median"):
            _close(Gaussian(rule, samples=1000, scale=4.0).prepare(s)[1], 4.0 * Gaussian(rule, samples=1000).prepare(s)[1])
    _, s1 = _pair(SHAPES[0], 8)
    _, s2 = _pair(SHAPES[1], 9)
    assert Gaussian("mean", samples=1000).prepare(s1)[1] != pytest.approx(Gaussian("mean", samples=1000).prepare(s2)[1])
    assert Gaussian("mean", scale=0.5).name == "Gaussian (0.5 x mean)"


def test_gaussian_rejects_unknown_bandwidth():
    with pytest.raises(ValueError):
        Gaussian(bandwidth="mode")
    with pytest.raises(ValueError):
        Gaussian(bandwidth="Mean")
    with pytest.raises(ValueError, match="scale"):
        Gaussian(bandwidth="mean", scale=0)
    with pytest.raises(ValueError, match="scale"):
        Gaussian(bandwidth=2.0, scale=3.0)  # a number is used as is: no factor


def test_gaussian_subset_estimator_is_unbiased(monkeypatch):
    """E over the random subsets of the subset U-statistic = the all-positions U-statistic.

    2000 draws of 10 of M = 40 (and 10 of M_s = 36) positions. Each evaluation also records the
    biased V-statistic of the same two subsets (through a wrapper around mmd2): its mean differs
    from the all-positions V-statistic by (1/10 - 1/M)(1 - mean off-diagonal k) per set, ~45x its
    standard error here, so a library that used the V-statistic on subsets would fail.
    """
    draws = 2000
    f = _rand(1, 4, 5, 8, seed=10)
    s = _rand(1, 4, 6, 6, seed=11, scale=1.3, shift=0.4)
    target = Gaussian("mean", samples=100).prepare(s)
    sigma2 = target[1]
    x, y = samples(f), samples(s)
    exact_u = float(mmd2(x, y, gaussian_kernel(sigma2), unbiased=True))
    exact_v = float(mmd2(x, y, gaussian_kernel(sigma2), unbiased=False))

    recorded_u, recorded_v = [], []
    reference = mmd.mmd2

    def recording_mmd2(a, b, kernel, unbiased=False):
        assert a.shape == (10, 4) and b.shape == (10, 4)
        u = reference(a, b, kernel, unbiased=unbiased)
        recorded_u.append(float(u))
        recorded_v.append(float(reference(a, b, kernel, unbiased=False)))
        return u

    monkeypatch.setattr(mmd, "mmd2", recording_mmd2)
    losses = torch.tensor([
        float(Gaussian(sigma2, samples=10, generator=torch.Generator().manual_seed(i)).loss(f, target))
        for i in range(draws)], dtype=torch.float64)
    monkeypatch.undo()
    assert losses.tolist() == recorded_u  # the loss is the statistic the wrapper saw
    assert len(set(losses.tolist())) > draws // 2  # really random subsets

    se_u = float(losses.std() / draws**0.5)
    assert abs(float(losses.mean()) - exact_u) < 4 * se_u, (float(losses.mean()), exact_u, se_u)

    v = torch.tensor(recorded_v, dtype=torch.float64)
    se_v = float(v.std() / draws**0.5)
    assert abs(float(v.mean()) - exact_v) > 4 * se_v, (float(v.mean()), exact_v, se_v)


# ----------------------------------------------------------------------------- BN statistics

def _hand_bn(f, s):
    mu_f, mu_s = f.mean((0, 2, 3)), s.mean((0, 2, 3))
    sd_f = f.var((0, 2, 3), unbiased=False).sqrt()
    sd_s = s.var((0, 2, 3), unbiased=False).sqrt()
    return ((mu_f - mu_s).pow(2) + (sd_f - sd_s).pow(2)).sum() / f.shape[1]


def test_bn_statistics_zero_for_same_channel_statistics():
    f = _rand(1, 6, 4, 5, seed=12, scale=2.0, shift=0.7)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    permuted = f.reshape(1, 6, 20)[:, :, perm].reshape(1, 6, 4, 5)
    assert not torch.equal(permuted, f)
    repeated = torch.cat([f, f.flip(-1), f], dim=-1)  # (1, 6, 4, 15): other size, same statistics
    kernel = BNStatistics()
    for s in (permuted, repeated, f):
        assert abs(float(kernel.loss(f, kernel.prepare(s)))) < 1e-12


def test_bn_statistics_formula():
    f = _rand(1, 6, 4, 5, seed=13)
    kernel = BNStatistics()
    for s in (2.0 * f + 1.0,  # affine per image: both statistics change
              _rand(1, 6, 3, 7, seed=14, scale=0.5, shift=-0.2)):
        value = float(kernel.loss(f, kernel.prepare(s)))
        assert value > 1e-2
        # eps = 1e-8 under the square root changes the stds by ~5e-9: well inside rel 1e-6
        _close(value, _hand_bn(f, s), rel=1e-6, abs=0)
    # biased std, not the unbiased one (M = 20: a factor sqrt(20/19) on the stds)
    s = 2.0 * f
    unbiased = ((f.std((0, 2, 3)) - s.std((0, 2, 3))).pow(2).sum()) / 6  # means equal: 0
    assert float(kernel.loss(f, kernel.prepare(s))) != pytest.approx(float(unbiased), rel=1e-3)


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("kernel", [Linear(), Polynomial(c=1.0, d=2), BNStatistics(),
                                    Gaussian("mean", samples=100), Polynomial(c=0.5, d=3, samples=100)],
                         ids=repr)
def test_gradcheck(kernel):
    f = _rand(1, 3, 3, 4, seed=20, requires_grad=True)
    s = _rand(1, 3, 2, 5, seed=21, scale=1.2, shift=0.3)
    target = kernel.prepare(s)
    assert gradcheck(lambda x: kernel.loss(x, target), (f,), eps=1e-6, atol=1e-5)


# ----------------------------------------------------------------------------- make_kernel

def test_make_kernel():
    assert type(make_kernel("linear")) is Linear
    assert type(make_kernel("polynomial")) is Polynomial
    assert type(make_kernel("gaussian")) is Gaussian
    assert type(make_kernel("bn")) is BNStatistics
    p = make_kernel("polynomial", c=1.0, d=2)
    assert (p.c, p.d) == (1.0, 2)
    q = make_kernel("polynomial", c=0.5, d=3, samples=17)
    assert (q.c, q.d, q.samples) == (0.5, 3, 17)
    g = make_kernel("gaussian", bandwidth="median", samples=7)
    assert (g.bandwidth, g.samples) == ("median", 7)
    instance = Gaussian(2.0)
    assert make_kernel(instance) is instance
    for bad in ("rbf", "Linear", "gram"):
        with pytest.raises(ValueError):
            make_kernel(bad)


# ----------------------------------------------------------------------------- MMDStyleTerm, real VGG

def _style_image(h=32, w=32):
    """Diagonal stripes in colour."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    st = ((xx + yy) // 4 % 2).float()
    return torch.stack([st, 1 - st, 0.5 * st + 0.25])[None]


@pytest.fixture(scope="module")
def style():
    return _style_image()


@pytest.fixture(scope="module")
def noise(style):
    return initial_image("noise", style, seed=0)


def test_mmd_style_term_polynomial_is_four_gram_style_terms(vgg16, style, noise):
    layers = ["conv1_1", "conv2_1"]
    term = MMDStyleTerm(style, layers=layers, kernel="polynomial")
    gatys = StyleTerm(style, layers=layers)
    term.prepare(vgg16)
    gatys.prepare(vgg16)
    with torch.no_grad():
        feats = vgg16.extract(noise, layers)
        value, reference = term.value(feats, noise), gatys.value(feats, noise)
    assert float(reference) > 0
    assert float(value) == pytest.approx(4 * float(reference), rel=1e-5)
    # one layer alone also matches (so the sum over layers is not hiding a per-layer error)
    single = {"conv2_1": 1.0, "conv1_1": 0.0}
    t1 = MMDStyleTerm(style, layers=layers, kernel="polynomial", layer_weights=single)
    g1 = StyleTerm(style, layers=layers, layer_weights=single)
    t1.prepare(vgg16)
    g1.prepare(vgg16)
    with torch.no_grad():
        assert float(t1.value(feats, noise)) == pytest.approx(4 * float(g1.value(feats, noise)), rel=1e-5)


@pytest.mark.parametrize("kind", ["linear", "polynomial", "bn"])
def test_optimize_with_mmd_style_term_lowers_the_loss(vgg16, style, noise, kind):
    term = MMDStyleTerm(style, ["conv1_1"], kernel=kind)
    result = optimize_image(noise, [term], steps=5, vgg=vgg16, progress=False)
    first = result.history["total"][0]
    assert result.stopped == "finished"
    assert 0 < first
    # deterministic losses: 5 L-BFGS iterations cut them by 20x or more; ask for half
    assert result.best_loss < 0.5 * first, (kind, result.history["total"])


def test_optimize_with_gaussian_mmd_style_term_lowers_the_loss(vgg16, style, noise):
    """The subset estimate is random (256 of M = 1024 positions, drawn afresh per evaluation), so
    'best < first' alone could come from the noise of the estimate: the exact all-positions loss
    of the result must be lower than that of the start image too. Adam, not L-BFGS: L-BFGS's
    line search assumes a deterministic loss, and on this noisy one 5 iterations moved the exact
    loss on 1 generator seed of 5 (even at weight 1e4); Adam lowered it from 0.089 to 0.072-0.078
    on each of 8 seeds."""
    kernel = Gaussian(samples=256, generator=torch.Generator().manual_seed(0))
    term = MMDStyleTerm(style, ["conv1_1"], kernel=kernel)
    result = optimize_image(noise, [term], steps=5, optimizer="adam", vgg=vgg16, progress=False)
    first = result.history["total"][0]
    assert result.stopped == "finished"
    assert 0 < result.best_loss < first, result.history["total"]

    exact = MMDStyleTerm(style, ["conv1_1"], kernel=Gaussian(samples=32 * 32))  # every position
    exact.prepare(vgg16)
    with torch.no_grad():
        start = float(exact.value(vgg16.extract(noise, ["conv1_1"]), noise))
        end = float(exact.value(vgg16.extract(result.image, ["conv1_1"]), result.image))
    assert end < 0.9 * start, (start, end)
