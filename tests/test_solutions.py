"""The solutions of the notebooks' code exercises (notebooks/solutions/) are correct."""
import torch
from skimage.metrics import peak_signal_noise_ratio

import pytest

from nstlib.exercises import EXERCISES, check
from nstlib.losses import gram
from notebooks.solutions import nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09, nb10

NOTEBOOKS = {1: nb01, 2: nb02, 3: nb03, 4: nb04, 5: nb05, 6: nb06, 7: nb07, 8: nb08, 9: nb09, 10: nb10}


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_graded_exercises_reference_solution_passes_its_check(name):
    """Each notebook's graded exercise (nstlib.exercises) has its solution in nbNN.py, under the
    exercise's name, so that the stored notebook can run check(name, nbNN.name)."""
    solution = getattr(NOTEBOOKS[EXERCISES[name].notebook], name)
    assert solution.__doc__
    assert check(name, solution, quiet=True)


def test_nb01_psnr_matches_scikit_image():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 32, 40, generator=gen)
    b = (a + 0.05 * torch.randn(a.shape, generator=gen)).clamp(0, 1)
    expected = peak_signal_noise_ratio(a.numpy(), b.numpy(), data_range=1.0)
    assert abs(nb01.psnr(a, b) - expected) < 1e-6


def test_nb02_gram_loop_matches_the_library():
    f = torch.randn(1, 6, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(nb02.gram_loop(f), gram(f))


def test_nb04_linear_mmd_is_the_distance_of_the_means():
    from nstlib.mmd import linear_kernel, mmd2, samples
    from notebooks.solutions import nb04

    gen = torch.Generator().manual_seed(1)
    f = torch.randn(1, 5, 6, 7, generator=gen, dtype=torch.float64)
    s = torch.randn(1, 5, 4, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(nb04.mmd2_linear(f, s), mmd2(samples(f), samples(s), linear_kernel))
    mean_gap = (f[0].flatten(1).mean(1) - s[0].flatten(1).mean(1)).pow(2).sum()  # the expansion's result
    torch.testing.assert_close(nb04.mmd2_linear(f, s), mean_gap)


def test_nb03_cholesky_colour_transform_matches_the_library_and_the_constraint():
    from nstlib.color import colour_statistics, colour_transform
    from notebooks.solutions import nb03

    gen = torch.Generator().manual_seed(2)
    style, content = torch.rand(1, 3, 12, 10, generator=gen), torch.rand(1, 3, 9, 14, generator=gen) ** 2
    a, b = nb03.cholesky_colour_transform(style, content)
    a_lib, b_lib = colour_transform(style, content, mode="cholesky", eps=0.0)
    torch.testing.assert_close(a, a_lib)
    torch.testing.assert_close(b, b_lib)
    (mu_s, cov_s), (mu_c, cov_c) = colour_statistics(style), colour_statistics(content)
    torch.testing.assert_close(a @ cov_s @ a.T, cov_c)  # the painting's covariance becomes the photo's
    torch.testing.assert_close(a @ mu_s + b, mu_c)
    assert torch.equal(a, a.tril())  # new red from old red alone: the answer in the notebook


def test_nb07_resize_conv_doubles_the_size_without_a_checkerboard():
    from notebooks.solutions import nb07

    torch.manual_seed(3)
    up = nb07.ResizeConvUp(4, 2)
    transposed = torch.nn.ConvTranspose2d(4, 2, 3, 2, 1, output_padding=1)
    x = torch.randn(1, 4, 5, 7)
    assert up(x).shape == transposed(x).shape == (1, 2, 10, 14)
    flat = torch.ones(1, 4, 6, 6)
    with torch.no_grad():
        out = up(flat)
        uneven = transposed(flat)[..., 1:-1, 1:-1]
    assert torch.allclose(out, out[0, :, :1, :1].expand_as(out), atol=1e-6)  # constant per channel
    assert uneven.std(dim=(-1, -2)).min() > 1e-3  # the transposed convolution's checkerboard


def test_nb05_wct_matches_the_style_covariance_and_mean():
    from notebooks.solutions import nb05

    gen = torch.Generator().manual_seed(0)
    content = torch.randn(2, 6, 9, 8, generator=gen, dtype=torch.float64) * 2 + 1
    mixing = torch.randn(6, 6, generator=gen, dtype=torch.float64)  # correlated style channels
    style = (mixing @ torch.randn(2, 6, 70, generator=gen, dtype=torch.float64)).reshape(2, 6, 7, 10) - 3
    out = nb05.wct(content, style, eps=1e-10)

    def stats(x):
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        mu = flat.mean(-1, keepdim=True)
        return mu, (flat - mu) @ (flat - mu).transpose(1, 2) / flat.shape[-1]

    (mu_o, cov_o), (mu_s, cov_s) = stats(out), stats(style)
    assert torch.allclose(mu_o, mu_s, atol=1e-8)
    assert torch.allclose(cov_o, cov_s, atol=1e-6)  # the full covariance, not only its diagonal (AdaIN)
    assert out.shape == content.shape


def test_nb06_pooled_gram_is_the_mean_of_the_per_sample_grams():
    from notebooks.solutions import nb06

    f = torch.rand(3, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    pooled = nb06.pooled_gram(f)
    assert pooled.shape == (1, 4, 4)
    assert torch.allclose(pooled[0], gram(f).mean(0), atol=1e-6)
    assert not torch.allclose(pooled[0], gram(f)[0], atol=1e-3)  # one image's statistics are not the batch's


def test_nb08_baked_mix_paints_what_the_cin_mix_paints():
    from nstlib.johnson import TransformNet
    from notebooks.solutions import nb08

    torch.manual_seed(0)
    cin = TransformNet(n_styles=3, widths=(4, 8, 8)).eval()
    with torch.no_grad():
        for m in cin.norm_layers():  # distinct styles, else every mix is the same network
            m.weight.uniform_(0.5, 2), m.bias.normal_()
    x = torch.rand(1, 3, 20, 24)
    mix = [0.2, 0.0, 0.8]
    baked = nb08.bake_style(cin, mix)
    assert baked.n_styles is None
    torch.testing.assert_close(baked(x), cin(x, mix), atol=1e-5, rtol=0)
    assert not torch.allclose(baked(x), cin(x, 0), atol=1e-3)


def test_nb09_matting_laplacian_by_loops_matches_the_library():
    from nstlib.photorealism import matting_laplacian
    from notebooks.solutions import nb09

    image = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = torch.from_numpy(matting_laplacian(image).toarray())
    torch.testing.assert_close(nb09.matting_laplacian_loops(image), expected, rtol=1e-9, atol=1e-9)


def test_nb10_pair_bootstrap_brackets_the_fit_and_separates_a_clear_winner():
    from nstlib.preference import bradley_terry, make_vote
    from notebooks.solutions import nb10

    votes = []
    for k in range(8):  # A beats B and C on every pair, B beats C on most
        pair = f"photo{k}|painting"
        votes += [make_vote(pair, "A", "B", "a", "v"), make_vote(pair, "C", "A", "b", "v"),
                  make_vote(pair, "B", "C", "a" if k < 6 else "b", "v")]
    intervals = nb10.pair_bootstrap(votes, n=200, seed=1)
    assert intervals == nb10.pair_bootstrap(votes, n=200, seed=1)  # seeded
    fit = bradley_terry(votes)
    for method, (low, high) in intervals.items():
        assert low <= fit[method] <= high
    assert intervals["A"][0] > intervals["C"][1]
