"""nstlib.stylize: presets, the content-weight area rule, style blending, masks, colour
preservation and coarse-to-fine, on tiny images (64 px) with the real VGG-16 and registry images."""
import pytest
import torch

from nstlib import color
from nstlib.features import load_vgg
from nstlib.images import load_image, resize
from nstlib.losses import content_loss
from nstlib.optimize import initial_image
from nstlib.stylize import PRESETS, REFERENCE_AREA, resolve_settings, stylize

TINY = dict(max_size=64, steps=2, progress=False)


@pytest.fixture(scope="module")
def photo():
    return load_image("tubingen", max_size=64)


def test_presets_are_one_argument_away():
    paper = resolve_settings("gatys2016")
    assert (paper["arch"], paper["pooling"]) == ("vgg19", "avg")
    assert paper["content_layers"] == ("relu4_2",)  # the paper's conv4_2, rectified in place in Caffe
    assert paper["style_layers"] == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    course = resolve_settings("course", style_weight=5.0, arch=None)
    assert (course["arch"], course["weights"], course["style_weight"]) == ("vgg16", "caffe", 5.0)
    assert course["content_layers"] == ("relu4_2",)
    assert course["style_layers"] == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_settings("johnson")
    assert set(PRESETS) == {"course", "gatys2016"}


def test_content_weight_is_rescaled_to_a_512px_image(photo):
    """history['content'][0] = content_weight * 512^2 / (H W) * L_content(noise, photo)."""
    r = stylize(photo, "starry_night", init="noise", steps=1, max_size=64, content_weight=2.0, progress=False)
    vgg = load_vgg()
    noise = initial_image("noise", photo, seed=0).clamp(1e-3, 1 - 1e-3)
    expected = content_loss(vgg.extract(noise, "relu4_2")["relu4_2"], vgg.extract(photo, "relu4_2")["relu4_2"])
    area = REFERENCE_AREA / (photo.shape[-1] * photo.shape[-2])
    assert r.history["content"][0] == pytest.approx(2.0 * area * expected.item(), rel=1e-3)


def test_a_full_mask_equals_the_unmasked_result(photo):
    plain = stylize(photo, "starry_night", **TINY)
    masked = stylize(photo, "starry_night", masks=[torch.ones(photo.shape[-2:])], **TINY)
    assert torch.allclose(plain.image, masked.image, atol=1e-6)


def test_two_masked_regions_get_two_styles(photo):
    mask = torch.zeros(photo.shape[-2:])
    mask[:, : photo.shape[-1] // 2] = 1
    r = stylize(photo, ["starry_night", "the_scream"], masks=[mask, 1 - mask], **TINY)
    assert r.image.shape == photo.shape
    assert r.settings["blend"] == [1.0, 1.0]  # each region gets the full style weight
    assert set(r.history) >= {"style1", "style2", "content0"}


def test_blend_weights_one_zero_equal_the_first_style(photo):
    single = stylize(photo, "starry_night", **TINY)
    blended = stylize(photo, ["starry_night", "the_scream"], blend=[1, 0], **TINY)
    assert torch.allclose(single.image, blended.image, atol=1e-6)
    assert stylize(photo, ["starry_night", "the_scream"], blend=[3, 1], steps=0, max_size=64,
                   progress=False).settings["blend"] == [0.75, 0.25]


def test_luminance_transfer_keeps_the_photos_chroma(photo):
    r = stylize(photo, "the_scream", preserve_colors="luminance", **TINY)
    yiq_r, yiq_c = color.rgb_to_yiq(r.image), color.rgb_to_yiq(photo)
    unclamped = ((r.image > 1e-4) & (r.image < 1 - 1e-4)).all(1)  # (1, H, W)
    assert unclamped.float().mean() > 0.9
    diff = (yiq_r[:, 1:] - yiq_c[:, 1:]).abs().amax(1)  # (1, H, W): worst of I and Q
    assert diff[unclamped].max() < 1e-4
    plain = stylize(photo, "the_scream", **TINY)
    assert (color.rgb_to_yiq(plain.image)[:, 1:] - yiq_c[:, 1:]).abs().mean() > 10 * diff[unclamped].mean()


def test_histogram_matching_moves_the_result_towards_the_photos_colours(photo):
    plain = stylize(photo, "the_scream", **TINY)
    matched = stylize(photo, "the_scream", preserve_colors="histogram", **TINY)
    mu_photo = photo.mean(dim=(2, 3))
    assert (matched.image.mean(dim=(2, 3)) - mu_photo).norm() < (plain.image.mean(dim=(2, 3)) - mu_photo).norm()


def test_coarse_to_fine_starts_each_scale_from_the_upsampled_previous_result(photo):
    r = stylize(photo, "starry_night", max_size=64, scales=(48,), steps=(3, 0), progress=False)
    assert [s for s, _ in r.stages] == [48, 64]
    coarse = r.stages[0][1].image
    assert coarse.shape[-1] == 48 and r.image.shape == photo.shape
    assert torch.allclose(r.image, resize(coarse, size=tuple(photo.shape[-2:])).clamp(1e-3, 1 - 1e-3), atol=1e-5)


def test_noise_init_is_reproducible_with_a_seed(photo):
    a = stylize(photo, "starry_night", init="noise", seed=3, **TINY)
    b = stylize(photo, "starry_night", init="noise", seed=3, **TINY)
    assert torch.equal(a.image, b.image)


def test_the_loss_goes_down(photo):
    r = stylize(photo, "starry_night", max_size=64, steps=5, progress=False)
    assert r.history["total"][-1] < 0.5 * r.history["total"][0]
    assert r.stopped == "finished" and r.seconds > 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_size=16), "max_size must be an integer >= 32"),
    (dict(steps=-1), "steps"),
    (dict(steps=(1, 2)), "one step count per scale"),
    (dict(scales=(96,)), "scales must increase"),
    (dict(scales=(48, 40)), "scales must increase"),
    (dict(style_weight=-1.0), "style_weight"),
    (dict(content_weight=float("nan")), "content_weight"),
    (dict(preserve_colors="yuv"), "preserve_colors"),
    (dict(init="zeros"), "init"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(style_scale=0), "style_scale"),
    (dict(blend=[1, 2]), "2 blend weights for 1 style"),
    (dict(blend=[0]), "not all 0"),
    (dict(masks=[torch.ones(4, 4), torch.ones(4, 4)]), "one mask per style"),
    (dict(preset="johnson"), "unknown preset"),
])
def test_bad_arguments_fail_before_any_work(photo, kwargs, message):
    with pytest.raises(ValueError, match=message):
        stylize(photo, "starry_night", **{**TINY, **kwargs})


def test_bad_images_and_masks(photo, tmp_path):
    with pytest.raises(FileNotFoundError):
        stylize(photo, str(tmp_path / "missing.jpg"), **TINY)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stylize(photo, "starry_night", masks=[torch.full((8, 8), 3.0)], **TINY)
    with pytest.raises(ValueError, match="mask 2 is zero everywhere"):  # images.as_mask's checks
        stylize(photo, ["starry_night", "the_scream"], masks=[torch.ones(8, 8), torch.zeros(8, 8)], **TINY)
    with pytest.raises(ValueError, match=r"mask 1 values must lie in \[0, 1\]"):
        stylize(photo, "starry_night", masks=[torch.full((8, 8), float("nan"))], **TINY)
    with pytest.raises(ValueError, match=r"mask 1 must be \(H, W\)"):
        stylize(photo, "starry_night", masks=[torch.ones(2, 8, 8)], **TINY)


def test_a_mask_file_is_loaded_and_resized_to_the_content(photo, tmp_path):
    from PIL import Image

    path = tmp_path / "mask.png"
    Image.new("L", (96, 64), 255).save(path)  # all white: the whole image, like no mask
    plain = stylize(photo, "starry_night", **TINY)
    from_file = stylize(photo, "starry_night", masks=[str(path)], **TINY)
    assert torch.allclose(plain.image, from_file.image, atol=1e-6)


def test_the_argument_names_mean_one_thing(photo):
    """Issue 17: max_size is the longer side, blend the style mix, preserve_colors a string; the
    arguments after content and style are keyword-only."""
    r = stylize(photo, "starry_night", max_size=56, style_scale=1.2, steps=0, progress=False)
    assert max(r.image.shape[-2:]) == 56 and r.settings["max_size"] == 56
    with pytest.raises(TypeError):
        stylize(photo, "starry_night", 48)
    for old in ({"size": 48}, {"style_blend_weights": [1]}):
        with pytest.raises(TypeError, match="unexpected keyword"):
            stylize(photo, "starry_night", **old)
    with pytest.raises(TypeError, match="'luminance' or 'histogram'"):
        stylize(photo, "starry_night", preserve_colors=True, **TINY)


def test_bf16_precision_is_passed_on_and_recorded(photo, monkeypatch):
    fp32 = stylize(photo, "starry_night", max_size=64, steps=5, progress=False, precision="fp32")
    bf16 = stylize(photo, "starry_night", max_size=64, steps=5, progress=False, precision="bf16")
    assert (fp32.settings["precision"], bf16.settings["precision"]) == ("fp32", "bf16")
    assert bf16.image.dtype == torch.float32 and bf16.image.shape == photo.shape
    assert bf16.history["total"][-1] == pytest.approx(fp32.history["total"][-1], rel=0.05)
    with pytest.raises(ValueError, match="precision"):
        stylize(photo, "starry_night", precision="fp8", **TINY)
    # the default: bf16 where the CPU runs it natively (measured at parity: runtime.BF16_MEASURED), else fp32
    from nstlib import runtime

    monkeypatch.delenv("NSTLIB_PRECISION", raising=False)
    for flags, expected in ((("avx512_bf16",), "bf16"), ((), "fp32")):
        monkeypatch.setattr(runtime, "cpu_bf16", lambda flags=flags: flags)
        assert stylize(photo, "starry_night", **TINY).settings["precision"] == expected
