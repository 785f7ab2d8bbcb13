"""nstlib.color: YIQ conversion, luminance-only transfer and colour histogram matching
(Gatys et al. 2017, Sec. 5), checked against their equations in float64."""
import pytest
import torch

from nstlib import color


def _image(seed, h=24, w=20, tint=(1.0, 1.0, 1.0)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64) * 0.6 + 0.2
    return x * torch.tensor(tint, dtype=torch.float64)[None, :, None, None]


def test_yiq_round_trip_and_luma_of_grey():
    x = _image(0)
    assert torch.allclose(color.yiq_to_rgb(color.rgb_to_yiq(x)), x, atol=1e-12)
    grey = torch.full((1, 3, 4, 4), 0.3, dtype=torch.float64)
    yiq = color.rgb_to_yiq(grey)
    assert torch.allclose(yiq[:, 0], torch.full((1, 4, 4), 0.3, dtype=torch.float64))  # Y = grey level
    assert yiq[:, 1:].abs().max() < 1e-6  # a grey has no chroma


def test_luminance_is_the_y_channel_in_three_copies():
    x = _image(1)
    lum = color.luminance(x)
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        assert torch.allclose(lum[:, c], expected, atol=1e-12)


def test_match_luminance_gives_the_contents_mean_and_std():
    style, content = _image(2, tint=(0.5, 0.4, 0.3)), _image(3, 30, 40)
    matched = color.match_luminance(style, content)[:, :1]
    yc = color.rgb_to_yiq(content)[:, :1]
    assert torch.allclose(matched.mean(), yc.mean(), atol=1e-9)
    assert torch.allclose(matched.std(), yc.std(), atol=1e-9)


def test_luminance_transfer_keeps_the_contents_chroma_and_the_stylised_luminance():
    content = _image(4, tint=(1.0, 0.6, 0.4))  # a warm photo
    stylized = _image(5)  # stand-in for a stylised image: other colours entirely
    out = color.transfer_luminance(stylized, content)
    yiq_out, yiq_c, yiq_s = color.rgb_to_yiq(out), color.rgb_to_yiq(content), color.rgb_to_yiq(stylized)
    inside = ((color.yiq_to_rgb(torch.cat([yiq_s[:, :1], yiq_c[:, 1:]], 1)) - 0.5).abs() <= 0.5).all(1)
    assert inside.float().mean() > 0.9  # the test is about pixels that needed no clamping
    assert torch.allclose(yiq_out[:, 1:].permute(1, 0, 2, 3)[:, inside], yiq_c[:, 1:].permute(1, 0, 2, 3)[:, inside],
                          atol=1e-9)
    assert torch.allclose(yiq_out[:, 0][inside], yiq_s[:, 0][inside], atol=1e-9)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("mode", color.HISTOGRAM_MODES)
def test_colour_transform_maps_style_statistics_onto_content(mode):
    style, content = _image(6, tint=(0.3, 0.9, 1.0)), _image(7, 16, 16, tint=(1.0, 0.7, 0.2))
    a, b = color.colour_transform(style, content, mode, eps=0.0)
    mu_s, cov_s = color.colour_statistics(style)
    mu_c, cov_c = color.colour_statistics(content)
    assert torch.allclose(a @ cov_s @ a.T, cov_c, atol=1e-10)  # A Sigma_S A^T = Sigma_C
    assert torch.allclose(a @ mu_s + b, mu_c, atol=1e-12)  # mean mapped onto mean
    if mode == "eigen":  # Image Analogies: A = Sigma_C^1/2 Sigma_S^-1/2
        half_c, half_s = color._sqrtm(cov_c), color._sqrtm(cov_s)
        assert torch.allclose(half_c @ half_c, cov_c, atol=1e-12)
        assert torch.allclose(a @ half_s, half_c, atol=1e-10)


def test_match_histogram_result_has_the_contents_colour_statistics():
    style, content = _image(8, tint=(0.4, 0.5, 1.0)), _image(9, 32, 28, tint=(1.0, 0.8, 0.5))
    out = color.match_histogram(style, content)
    assert out.shape == style.shape
    mu_o, cov_o = color.colour_statistics(out)
    mu_c, cov_c = color.colour_statistics(content)
    assert torch.allclose(mu_o, mu_c, atol=2e-3)  # clamping at 0 and 1 moves it a little
    assert torch.allclose(cov_o, cov_c, atol=2e-3)


def test_flat_colour_style_does_not_break_histogram_matching():
    flat = torch.full((1, 3, 8, 8), 0.5)
    out = color.match_histogram(flat, _image(10).float())
    assert torch.isfinite(out).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="mode"):
        color.colour_transform(_image(0), _image(1), mode="lab")
    with pytest.raises(ValueError, match="same size"):
        color.transfer_luminance(_image(0, 8, 8), _image(1, 9, 8))
    with pytest.raises(ValueError, match="one image"):
        color.colour_statistics(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        color.rgb_to_yiq(torch.rand(3, 8, 8))
