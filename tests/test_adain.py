"""nstlib.adain: the AdaIN operation against its equation, the decoder's architecture, the
model's controls (alpha, interpolation, masks, colours) and the training losses."""
import pytest
import torch
import torch.nn as nn

from nstlib import adain as adain_lib
from nstlib.adain import STYLE_LAYERS, AdaIN, Encoder, adain, build_decoder, decoder_losses, mean_std


@pytest.fixture(scope="module")
def model(vgg16):
    torch.manual_seed(0)
    return AdaIN(encoder=Encoder(vgg=vgg16))


def _images(seed, n=1, h=64, w=48):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_mean_std_is_the_biased_per_channel_statistic():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    mu, sd = mean_std(x, eps=0.0)
    flat = x.reshape(2, 3, 20)
    assert torch.allclose(mu[..., 0, 0], flat.mean(-1))
    assert torch.allclose(sd[..., 0, 0], ((flat - flat.mean(-1, keepdim=True)) ** 2).mean(-1).sqrt())  # / M, not M-1


def test_adain_output_has_the_styles_channel_statistics():
    gen = torch.Generator().manual_seed(0)
    content = torch.randn(2, 8, 6, 7, generator=gen, dtype=torch.float64) * 3 + 1
    style = torch.randn(2, 8, 9, 5, generator=gen, dtype=torch.float64) * 0.5 - 2
    out = adain(content, style, eps=0.0)
    mu_o, sd_o = mean_std(out, eps=0.0)
    mu_s, sd_s = mean_std(style, eps=0.0)
    assert torch.allclose(mu_o, mu_s, atol=1e-12) and torch.allclose(sd_o, sd_s, atol=1e-12)
    # the definition, Eq. 8
    mu_c, sd_c = mean_std(content, eps=0.0)
    assert torch.allclose(out, sd_s * (content - mu_c) / sd_c + mu_s)
    # with the default eps the std is matched to within eps's effect
    _, sd_eps = mean_std(adain(content.float(), style.float()), eps=0.0)
    assert torch.allclose(sd_eps, sd_s.float(), rtol=1e-4)


def test_adain_errors():
    with pytest.raises(ValueError, match="equal C"):
        adain(torch.rand(1, 4, 3, 3), torch.rand(1, 5, 3, 3))


@pytest.mark.parametrize("arch, convs", [("vgg16", 8), ("vgg19", 9)])
def test_decoder_mirrors_the_encoder(arch, convs):
    dec = build_decoder(arch)
    conv_layers = [m for m in dec if isinstance(m, nn.Conv2d)]
    assert len(conv_layers) == convs
    assert conv_layers[0].in_channels == 512 and conv_layers[-1].out_channels == 3
    assert sum(isinstance(m, nn.Upsample) and m.mode == "nearest" for m in dec) == 3
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in dec) == convs
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) for m in dec)
    assert not isinstance(dec[-1], nn.ReLU)  # the last conv outputs RGB
    assert dec(torch.rand(1, 512, 5, 6)).shape == (1, 3, 40, 48)


def test_alpha_zero_keeps_the_content_features_and_alpha_one_is_adain(model):
    c, s = _images(1), _images(2, h=56)
    fc = model.encoder(c)
    assert torch.allclose(model.target(c, s, alpha=0.0), fc)
    assert torch.allclose(model.target(c, s, alpha=1.0), adain(fc, model.encoder(s)))
    half = model.target(c, s, alpha=0.5)
    assert torch.allclose(half, 0.5 * fc + 0.5 * adain(fc, model.encoder(s)), atol=1e-5)


def test_interpolation_and_masks(model):
    c, s1, s2 = _images(3), _images(4), _images(5)
    only_first = model.target(c, [s1, s2], blend=[1, 0])
    assert torch.allclose(only_first, model.target(c, s1), atol=1e-6)
    full_mask = model.target(c, [s1], masks=[torch.ones(64, 48)])
    assert torch.allclose(full_mask, model.target(c, s1), atol=1e-6)
    left = torch.zeros(64, 48)
    left[:, :24] = 1
    split = model.target(c, [s1, s2], masks=[left, 1 - left])
    fc = model.encoder(c)  # (1, 512, 8, 6): the mask's halves are feature columns 0-2 and 3-5
    # the paper's spatial control: each region is AdaIN'd *on its own positions*, as the authors'
    # code does by gathering them, so its statistics are the region's, not the whole image's
    for region, style in ((slice(0, 3), s1), (slice(3, 6), s2)):
        assert torch.allclose(split[..., region], adain(fc[..., region], model.encoder(style)), atol=1e-4)
    whole_image_stats = adain(fc, model.encoder(s1))[..., :3]
    assert not torch.allclose(split[..., :3], whole_image_stats, atol=1e-3)  # the old blend differs
    out = model(c, [s1, s2], masks=[left, 1 - left])
    assert out.shape == c.shape and out.min() >= 0 and out.max() <= 1


def test_regional_adain_matches_its_equation_with_soft_masks():
    from nstlib.adain import feature_masks, regional_adain

    g = torch.Generator().manual_seed(0)
    x, y1, y2 = (torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64) for _ in range(3))
    m = torch.rand(2, 1, 5, 6, generator=g, dtype=torch.float64)
    masks = torch.cat([m, 1 - m], dim=1)
    t = regional_adain(x, [y1, y2], masks, eps=1e-5)
    expected = torch.zeros_like(x)
    for k, y in enumerate((y1, y2)):
        w = masks[:, k: k + 1]
        mu = (w * x).sum((2, 3), keepdim=True) / w.sum((2, 3), keepdim=True)
        var = (w * (x - mu) ** 2).sum((2, 3), keepdim=True) / w.sum((2, 3), keepdim=True)
        mu_y, sd_y = y.mean((2, 3), keepdim=True), (y.var((2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
        expected += w * (sd_y * (x - mu) / (var + 1e-5).sqrt() + mu_y)
    assert torch.allclose(t, expected)
    one = regional_adain(x, [y1], torch.ones(1, 1, 5, 6, dtype=torch.float64))
    assert torch.allclose(one, adain(x, y1))  # one region covering everything is plain AdaIN
    w = feature_masks([torch.ones(10, 12), torch.zeros(10, 12)], (5, 6))
    assert w.shape == (1, 2, 5, 6) and torch.equal(w[:, 0], torch.ones(1, 5, 6))
    uncovered = feature_masks([torch.zeros(10, 12), torch.zeros(10, 12)], (5, 6))
    assert torch.equal(uncovered, torch.full((1, 2, 5, 6), 0.5))
    with pytest.raises(ValueError, match="masks must be"):
        regional_adain(x, [y1, y2], masks[:, :1])


def test_model_errors(model):
    c, s = _images(6), _images(7)
    with pytest.raises(ValueError, match="alpha"):
        model.target(c, s, alpha=1.5)
    with pytest.raises(ValueError, match="one per style"):
        model.target(c, [s, s], masks=[torch.ones(4, 4)])
    with pytest.raises(ValueError, match="one blend weight"):
        model.target(c, [s, s], blend=[1, -1])
    with pytest.raises(ValueError, match="not both"):
        model.target(c, [s, s], blend=[1, 1], masks=[torch.ones(64, 48), torch.ones(64, 48)])
    with pytest.raises(TypeError):
        model.target(c, s, 0.5)  # alpha and the other controls are keyword-only
    with pytest.raises(TypeError, match="unexpected keyword"):
        model(c, [s, s], weights=[1, 1])  # `weights` names the VGG weights (AdaIN(weights="caffe")) only
    with pytest.raises(ValueError, match="at least one style"):
        model.target(c, [])


def test_mask_errors_name_the_mask(model):
    """images.as_mask's checks: shape, [0, 1], not empty, the content image's size."""
    c, s = _images(12), _images(13)
    with pytest.raises(ValueError, match="mask 2 is zero everywhere"):
        model.target(c, [s, s], masks=[torch.ones(64, 48), torch.zeros(64, 48)])
    with pytest.raises(ValueError, match=r"mask 1 values must lie in \[0, 1\]"):
        model.target(c, [s, s], masks=[torch.full((64, 48), 2.0), torch.ones(64, 48)])
    with pytest.raises(ValueError, match="its image's size"):
        model.target(c, [s, s], masks=[torch.ones(32, 48), torch.ones(32, 48)])
    with pytest.raises(TypeError, match="load_mask"):
        model.target(c, [s], masks=[[[1.0]]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adain_lib.feature_masks([torch.full((10, 12), -0.5)], (5, 6))  # it clamped such masks silently


def test_preserve_colors_histogram_recolours_the_style_first(model):
    c, s = _images(8) * torch.tensor([1.0, 0.3, 0.2])[None, :, None, None], _images(9)
    from nstlib.color import match_histogram

    assert torch.allclose(model.target(c, s, preserve_colors="histogram"), model.target(c, match_histogram(s, c)))


@pytest.mark.parametrize("h, w, authors", [(64, 48, False), (61, 45, False), (61, 45, True)])
def test_preserve_colors_luminance_keeps_the_contents_chroma(model, h, w, authors):
    """Gatys et al. 2017, Sec. 5.1 as nstlib.stylize does it: the transfer between the luminances (the
    style's matched to the content's mean and std), then the result's Y with the content's I and Q.
    The decoder's output is 56 x 40 for a 61 x 45 photo (pooling rounds down: the content is cut to
    it), 64 x 48 with the authors' encoder (it rounds up: the content is edge-padded)."""
    from nstlib.adain import AuthorsVGG
    from nstlib.color import luminance, match_luminance, transfer_luminance

    if authors:
        torch.manual_seed(0)
        model = AdaIN(encoder=Encoder(vgg=AuthorsVGG(), scales=dict.fromkeys(STYLE_LAYERS, 1.0)))
    c, s = _images(14, h=h, w=w) * torch.tensor([1.0, 0.5, 0.3])[None, :, None, None], _images(15)
    with torch.no_grad():
        out = model(c, s, preserve_colors="luminance")
        grey = model.decode(model.target(luminance(c), match_luminance(s, c)))
    oh, ow = grey.shape[-2:]
    assert (oh, ow) == ((64, 48) if authors or h == 64 else (56, 40))
    aligned = torch.nn.functional.pad(c[..., :oh, :ow], (0, max(0, ow - w), 0, max(0, oh - h)), mode="replicate")
    assert torch.allclose(out, transfer_luminance(grey, aligned), atol=1e-6)  # (its chroma: tests/test_color.py)
    assert not torch.allclose(out, model(c, s), atol=1e-2)


def test_preserve_colors_takes_the_strings_of_stylize(model):
    c, s = _images(16), _images(17)
    for old in (True, False, 1):
        with pytest.raises(TypeError, match="None, 'luminance' or 'histogram'"):
            model.target(c, s, preserve_colors=old)
    with pytest.raises(ValueError, match="'luminance' or 'histogram'"):
        model(c, s, preserve_colors="yuv")
    assert torch.equal(model.target(c, s, preserve_colors=None), model.target(c, s))


def test_losses_follow_the_paper(model):
    c, s = _images(10, n=2), _images(11, n=2, h=48)
    parts = decoder_losses(model, c, s)
    fc, fs = model.encoder(c), model.encoder.styles(s)
    t = adain(fc, fs["relu4_1"])
    out_feats = model.encoder.styles(model.decoder(t))
    content = ((out_feats["relu4_1"] - t) ** 2).mean()
    style = sum(((mean_std(out_feats[l])[0] - mean_std(fs[l])[0]) ** 2).mean()
                + ((mean_std(out_feats[l])[1] - mean_std(fs[l])[1]) ** 2).mean() for l in STYLE_LAYERS)
    assert torch.allclose(parts["content"], content, rtol=1e-4)
    assert torch.allclose(parts["style"], style, rtol=1e-4)
    assert torch.allclose(parts["total"], content + 10 * style, rtol=1e-4)
    model.decoder.zero_grad()
    parts["total"].backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())  # the encoder stays fixed


def test_exported_fp16_decoder_is_small_and_loads_back(model, tmp_path):
    from nstlib.adain import export_decoder, load_decoder

    digest = export_decoder(model, tmp_path / "decoder.pth")
    size = (tmp_path / "decoder.pth").stat().st_size
    assert len(digest) == 64 and size < 8e6  # the budget for a shipped decoder
    other = AdaIN(encoder=model.encoder)
    load_decoder(other, tmp_path / "decoder.pth")
    c, s = _images(12), _images(13)
    with torch.no_grad():
        assert (other(c, s) - model(c, s)).abs().max() < 2 / 255  # fp16 weights: under 2 grey levels
    wrong = AdaIN(arch="vgg19", weights=None)
    with pytest.raises(ValueError, match="decoder for vgg16"):
        load_decoder(wrong, tmp_path / "decoder.pth")


def test_the_encoder_is_normalised_like_the_papers(vgg16):
    """FEATURE_SCALES are what measure_feature_scales gives on the registry's images, and dividing by
    them brings every layer's mean activation to about 1 (the paper's normalised VGG)."""
    from nstlib import data
    from nstlib.adain import FEATURE_SCALES, measure_feature_scales

    images = data.list_images("content") + data.list_images("style")
    measured = measure_feature_scales(vgg16, images)
    table = FEATURE_SCALES[("vgg16", "caffe")]
    assert measured.keys() == table.keys()
    assert all(abs(measured[k] - table[k]) <= 0.01 * table[k] for k in table), (measured, table)
    encoder = Encoder(vgg=vgg16)
    x = torch.rand(1, 3, 64, 64)
    raw, scaled = vgg16.extract(x, STYLE_LAYERS), encoder.styles(x)
    for layer in STYLE_LAYERS:
        assert torch.allclose(scaled[layer], raw[layer] / table[layer])
    assert torch.allclose(encoder(x), raw["relu4_1"] / table["relu4_1"])
    with pytest.raises(ValueError, match="no feature scales"):
        Encoder(vgg=_FakeVGG(vgg16))


class _FakeVGG:
    """vgg16 under another weights name, for the error path (no second weight file is needed)."""

    def __init__(self, vgg):
        self.arch, self.weights_name, self.layer_names = vgg.arch, "some-other-weights", vgg.layer_names
