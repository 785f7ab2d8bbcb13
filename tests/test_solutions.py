"""The solutions of the notebooks' code exercises (notebooks/solutions/) are correct."""
import torch
from skimage.metrics import peak_signal_noise_ratio

from nstlib.losses import gram
from notebooks.solutions import nb01, nb02


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


def test_nb03_keep_colours_matches_the_library():
    from nstlib.color import transfer_luminance
    from notebooks.solutions import nb03

    gen = torch.Generator().manual_seed(2)
    stylized, content = torch.rand(1, 3, 12, 10, generator=gen), torch.rand(1, 3, 12, 10, generator=gen)
    torch.testing.assert_close(nb03.keep_colours(stylized, content), transfer_luminance(stylized, content),
                               atol=1e-5, rtol=0)
