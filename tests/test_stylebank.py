"""nstlib.stylebank and its training: the architecture, both fusions, the per-sample Gram loss,
the (T+1) alternation with the auto-encoder gradient rescaling, incremental banks, and resume."""
import math

import pytest
import torch
import torch.nn as nn

from nstlib import runtime
from nstlib.datasets import ImageSet
from nstlib.losses import gram, style_layer_loss
from nstlib.stylebank import (StyleBank, build_bank, build_decoder, build_encoder, parameter_count, style_targets,
                              stylising_losses)
from nstlib.stylebank_training import train_stylebank
from nstlib.training import CHECKPOINT, load_checkpoint


def _images(seed, n=2, h=32, w=40):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _randomise_style_norms(model, seed):
    """Give every style its own decoder scales and shifts (a fresh model's are all 1 and 0, the same
    as the decoder's own, so a test with them could not tell them apart)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norms in model.style_norms:
            norms.scale.copy_(0.5 + torch.rand(norms.scale.shape, generator=g))
            norms.shift.copy_(torch.randn(norms.shift.shape, generator=g))
    return model


def _decoder_with(model, scale, shift, kind=nn.InstanceNorm2d):
    """A copy of the model's decoder whose instance norms' own affine (or ChannelAffines', `kind`)
    is (scale, shift), split over them in order: conditional instance norm written out layer by layer."""
    import copy

    decoder, start = copy.deepcopy(model.decoder), 0
    with torch.no_grad():
        for layer in decoder:
            if isinstance(layer, kind):
                n = layer.num_features
                layer.weight.copy_(scale[start:start + n])
                layer.bias.copy_(shift[start:start + n])
                start += n
    assert start == scale.numel() == 96
    return decoder


def test_architecture_follows_the_paper():
    enc, dec = build_encoder(), build_decoder()
    convs = [m for m in enc if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [((9, 9), (1, 1), 32), ((3, 3), (2, 2), 64),
                                                                          ((3, 3), (2, 2), 128)]
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in enc) == 3
    dconvs = [m for m in dec if isinstance(m, nn.Conv2d)]
    assert dconvs[-1].kernel_size == (9, 9) and dconvs[-1].out_channels == 3
    assert isinstance(dec[-1], nn.Conv2d)  # no normalisation or activation after the last conv
    assert parameter_count(build_bank()) == 128 * 128 * 9  # a style costs 147k parameters
    x = _images(0)
    assert enc(x).shape == (2, 128, 8, 10) and dec(enc(x)).shape == x.shape


def test_forward_branches_and_errors():
    torch.manual_seed(0)
    model = _randomise_style_norms(StyleBank(3), 4)
    x = _images(1)
    assert model(x, None).shape == model(x, 2).shape == x.shape
    with pytest.raises(ValueError, match="out of range"):
        model(x, 3)
    odd = torch.rand(1, 3, 30, 41)
    assert model(odd, 0).shape == odd.shape  # padded to 32 x 44 inside, cropped back
    with torch.no_grad():  # the masks are padded like the image: a full mask still equals the single style
        full = model.fuse_regions(odd, [torch.zeros(30, 41), torch.zeros(30, 41), torch.ones(30, 41)])
        assert full.shape == odd.shape and torch.allclose(full, model(odd, 2), atol=1e-5)
        assert torch.allclose(model.fuse_linear(odd, [0, 1, 0]), model(odd, 1), atol=1e-5)
    with pytest.raises(ValueError, match="image's size"):
        model.fuse_regions(odd, [torch.ones(32, 44)] * 3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, 32, 32), 0)
    assert model.add_style() == 3 and model.n_styles == 4 == len(model.style_norms)


def test_linear_fusion_one_zero_equals_bank_one_and_is_linear():
    torch.manual_seed(1)
    model = _randomise_style_norms(StyleBank(2).eval(), 1)
    x = _images(2)
    with torch.no_grad():
        assert torch.allclose(model.fuse_linear(x, [1, 0]), model(x, 0), atol=1e-5)
        assert torch.allclose(model.fuse_linear(x, [0, 3]), model(x, 1), atol=1e-5)
        f = model.encoder(x)
        mixed = 0.25 * model.banks[0](f) + 0.75 * model.banks[1](f)  # convolution is linear in the filters
        a, b = model.style_norms  # and the decoder's scales and shifts are blended with the same weights
        blended = _decoder_with(model, 0.25 * a.scale + 0.75 * b.scale, 0.25 * a.shift + 0.75 * b.shift)
        assert torch.allclose(model.fuse_linear(x, [1, 3]), blended(mixed), atol=1e-5)
        paper = StyleBank(2, style_norms=False).eval()  # the paper's network: one decoder for all
        f = paper.encoder(x)
        mixed = 0.25 * paper.banks[0](f) + 0.75 * paper.banks[1](f)
        assert torch.allclose(paper.fuse_linear(x, [1, 3]), paper.decoder(mixed), atol=1e-5)
    with pytest.raises(ValueError, match="weights"):
        model.fuse_linear(x, [1])


def test_each_style_owns_the_decoder_norms_scale_and_shift():
    """D_i(F): the decoder with gamma_i, beta_i in place of its own affine at every instance norm
    (conditional instance norm, Dumoulin et al. Eq. 5); the auto-encoder branch keeps D's own."""
    torch.manual_seed(12)
    model = _randomise_style_norms(StyleBank(3).eval(), 2)
    x = _images(13)
    with torch.no_grad():
        for i in range(3):
            by_hand = _decoder_with(model, model.style_norms[i].scale, model.style_norms[i].shift)
            expected = by_hand(model.banks[i](model.encoder(x)))
            assert torch.allclose(model(x, i), expected, atol=1e-5)
        assert torch.allclose(model(x, None), model.decoder(model.encoder(x)), atol=1e-6)
        before = [model(x, i) for i in range(3)] + [model(x, None)]
        model.style_norms[1].shift[-32:] += 1.0  # style 1's last norm: a brighter or darker output
        after = [model(x, i) for i in range(3)] + [model(x, None)]
    assert not torch.allclose(before[1], after[1])  # only style 1 moved
    assert all(torch.equal(b, a) for k, (b, a) in enumerate(zip(before, after)) if k != 1)
    assert [p.shape for p in model.style_parameters(0)] == [(128, 128, 3, 3), (96,), (96,)]
    assert [p.shape for p in StyleBank(1, style_norms=False).style_parameters(0)] == [(128, 128, 3, 3)]


def test_the_paper_decoder_erases_a_banks_gain_and_offset():
    """Why every style shared one colour cast: the decoder's first norm resets each channel's mean
    and spread, so D(a K(F) + b) = D(K(F)); a style's own scale and shift are what set them now."""
    torch.manual_seed(14)
    model = StyleBank(1, style_norms=False).eval()
    x = _images(15, n=1, h=64, w=64)
    with torch.no_grad():
        f = model.banks[0](model.encoder(x))
        assert (model.decoder(3 * f + 0.5) - model.decoder(f)).abs().max() < 1e-3


def test_region_fusion_with_a_full_mask_equals_the_single_style():
    torch.manual_seed(2)
    model = _randomise_style_norms(StyleBank(2).eval(), 3)
    x = _images(3)
    ones, zeros = torch.ones(32, 40), torch.zeros(32, 40)
    with torch.no_grad():
        assert torch.allclose(model.fuse_regions(x, [ones, zeros]), model(x, 0), atol=1e-5)
        assert torch.allclose(model.fuse_regions(x, [zeros, ones]), model(x, 1), atol=1e-5)
    with pytest.raises(ValueError, match="one mask per style"):
        model.fuse_regions(x, [ones])
    # images.as_mask's checks (an all-zero mask stays allowed: that bank is left out)
    with pytest.raises(ValueError, match=r"mask 2 values must lie in \[0, 1\]"):
        model.fuse_regions(x, [ones, torch.full((32, 40), 255.0)])
    with pytest.raises(ValueError, match=r"mask 1 values must lie in \[0, 1\]"):
        model.fuse_regions(x, [torch.full((32, 40), float("nan")), zeros])
    with pytest.raises(TypeError, match="load_mask"):
        model.fuse_regions(x, ["mask.png", zeros])
    with torch.no_grad():  # one mask per image of the batch: each image as if fused on its own
        per_image = torch.stack([ones, zeros])[:, None]  # (2, 1, H, W): image 0 style 0, image 1 style 1
        fused = model.fuse_regions(x, [per_image, 1 - per_image])
        assert torch.allclose(fused[:1], model(x[:1], 0), atol=1e-5)
        assert torch.allclose(fused[1:], model(x[1:], 1), atol=1e-5)


def test_feathered_masks_cross_fade_and_still_sum_to_one():
    from nstlib.stylebank import feather_masks

    left = torch.zeros(1, 1, 40, 64)
    left[..., :32] = 1
    masks = torch.cat([left, 1 - left], dim=1)
    assert torch.equal(feather_masks(masks, 0), masks)
    soft = feather_masks(masks, 4.0)
    assert torch.allclose(soft.sum(1), torch.ones(1, 40, 64), atol=1e-6)  # still a partition
    row = soft[0, 0, 20]
    assert row[0] == pytest.approx(1, abs=1e-6) and row[-1] == pytest.approx(0, abs=1e-6)
    assert 0.4 < row[31] < 0.6 and 0.4 < row[32] < 0.6 and bool((row[1:] <= row[:-1] + 1e-6).all())  # a ramp
    torch.manual_seed(16)
    model = _randomise_style_norms(StyleBank(2).eval(), 6)
    x = _images(17, n=1, h=40, w=64)
    with torch.no_grad():  # whole-image masks are unchanged by feathering
        full = model.fuse_regions(x, [torch.ones(40, 64), torch.zeros(40, 64)], feather=3)
        assert torch.allclose(full, model(x, 0), atol=1e-5)
        hard = model.fuse_regions(x, [left[0, 0], 1 - left[0, 0]])
        assert not torch.allclose(model.fuse_regions(x, [left[0, 0], 1 - left[0, 0]], feather=3), hard)
    with pytest.raises(ValueError, match="feather"):
        model.fuse_regions(x, [left[0, 0], 1 - left[0, 0]], feather=-1)


def test_linear_fusion_takes_the_blend_by_name():
    torch.manual_seed(3)
    model = StyleBank(2).eval()
    x = _images(4, n=1)
    with torch.no_grad():
        assert torch.equal(model.fuse_linear(x, blend=[1, 3]), model.fuse_linear(x, [1, 3]))
    with pytest.raises(ValueError, match="blend weights"):
        model.fuse_linear(x, blend=[1, float("nan")])


def test_style_loss_uses_one_gram_matrix_per_sample(vgg16):
    a, b = _images(4, n=1), _images(5, n=1)
    batch = torch.cat([a, b])
    targets = style_targets(vgg16, [_images(6, n=1)], 64)[0]
    weights = dict(content_weight=0, tv_weight=0, style_weight=1)
    both = stylising_losses(vgg16, batch, batch, targets, **weights)["style"]
    each = [stylising_losses(vgg16, x, x, targets, **weights)["style"] for x in (a, b)]
    assert torch.allclose(both, (each[0] + each[1]) / 2, rtol=1e-5)  # the batch's mean of per-image losses
    f = vgg16.extract(batch, "relu2_2")["relu2_2"]
    pooled = f.transpose(0, 1).reshape(1, f.shape[1], -1)  # the wrong way: one Gram over the batch
    batch_gram = pooled @ pooled.transpose(1, 2) / pooled.shape[-1]
    assert not torch.allclose(gram(f)[0], batch_gram[0], rtol=1e-2)
    assert style_layer_loss(gram(f), targets["relu2_2"]) > 0


@pytest.fixture(scope="module")
def photos():
    return ImageSet(["tubingen", "chelsea"], load_size=48)


TINY = dict(batch_size=2, crop=32, style_size=64, checkpoint_every=2, T=2)


def test_alternation_and_gradient_rescaling(vgg16, photos, tmp_path):
    torch.manual_seed(3)
    model = StyleBank(2)
    seen = []
    run = train_stylebank(model, photos, ["starry_night", "the_scream"], vgg16, tmp_path, steps=6, progress=False,
                          callback=lambda step, values, model: seen.append(values["branch"]), **TINY)
    assert [b < 0 for b in seen] == [False, False, True] * 2  # T = 2 stylising steps, then the auto-encoder
    assert run.history["reconstruction"][2] > 0
    # the default precision: bf16 where native (measured at parity), recorded with the run
    assert run.settings["precision"] == runtime.precision(device="cpu", method="stylebank training")


def test_auto_encoder_gradient_is_rescaled_to_the_stylising_gradient(vgg16, photos, tmp_path, monkeypatch):
    """Capture the shared parameters' gradient norm at the optimizer step of an auto-encoder step:
    it must be lambda times the last stylising step's norm."""
    torch.manual_seed(4)
    model = StyleBank(1)
    shared = list(model.encoder.parameters()) + list(model.decoder.parameters())
    norms = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        norms.append(float(torch.sqrt(sum(p.grad.pow(2).sum() for p in shared if p.grad is not None))))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    train_stylebank(model, photos, ["starry_night"], vgg16, tmp_path, steps=3, progress=False, ae_lambda=0.5,
                    **{**TINY, "T": 2})
    assert norms[2] == pytest.approx(0.5 * norms[1], rel=1e-4)


def test_incremental_training_changes_only_the_new_bank(vgg16, photos, tmp_path):
    torch.manual_seed(5)
    model = StyleBank(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = model.add_style()
    initial_new_bank = model.banks[new][1].weight.detach().clone()
    run = train_stylebank(model, photos, ["starry_night", "the_scream"], vgg16, tmp_path, only_styles=[new],
                          steps=3, progress=False, **TINY)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # encoder, decoder, bank 0 untouched
    assert not torch.equal(after[f"banks.{new}.1.weight"], initial_new_bank)  # the new bank learned
    assert not torch.equal(after[f"style_norms.{new}.shift"], torch.zeros(96))  # and its decoder shifts
    assert all(b == new for b in run.history["branch"])  # no auto-encoder steps
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again afterwards


def test_resume_matches_an_uninterrupted_run(vgg16, photos, tmp_path):
    styles = ["starry_night", "the_scream"]
    torch.manual_seed(6)
    straight = StyleBank(2)
    train_stylebank(straight, photos, styles, vgg16, tmp_path / "a", steps=5, progress=False, **TINY)
    torch.manual_seed(6)
    part = StyleBank(2)
    train_stylebank(part, photos, styles, vgg16, tmp_path / "b", steps=3, progress=False, **TINY)
    torch.manual_seed(99)
    resumed = StyleBank(2)  # other initial weights: the checkpoint replaces them
    run = train_stylebank(resumed, photos, styles, vgg16, tmp_path / "b", steps=5, progress=False, **TINY)
    assert run.step == 5
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 5
    with pytest.raises(ValueError, match="other settings"):
        train_stylebank(StyleBank(2), photos, styles, vgg16, tmp_path / "b", steps=6, progress=False,
                        **{**TINY, "T": 3})


def test_each_styles_parameters_learn_at_the_scaled_rate(vgg16, photos, tmp_path):
    model = StyleBank(2)
    train_stylebank(model, photos, ["starry_night", "the_scream"], vgg16, tmp_path, steps=1, progress=False,
                    lr=2e-3, style_lr_scale=5, **TINY)
    groups = load_checkpoint(tmp_path / CHECKPOINT)["optimizer"]["param_groups"]
    shared = len(list(model.encoder.parameters())) + len(list(model.decoder.parameters()))
    assert [(g["lr"], len(g["params"])) for g in groups] == [(2e-3, shared), (1e-2, 2 * 3)]


def test_training_lowers_the_style_loss(vgg16, photos, tmp_path):
    torch.manual_seed(7)
    model = StyleBank(1)
    run = train_stylebank(model, photos, ["starry_night"], vgg16, tmp_path, steps=30, progress=False,
                          **{**TINY, "T": 30, "checkpoint_every": 100})
    style = run.history["style"]
    assert sum(style[-5:]) / 5 < 0.5 * sum(style[:5]) / 5  # the perceptual loss is what it learns


def test_style_names_and_lookup():
    model = StyleBank(2, ["starry_night", "the_scream"])
    assert model.style_id("the_scream") == 1
    assert model.add_style("mondrian") == 2 and model.style_names[2] == "mondrian"
    assert StyleBank(2).style_names == ["style 0", "style 1"]
    with pytest.raises(ValueError, match="has no style 'monet'"):
        model.style_id("monet")
    with pytest.raises(ValueError, match="1 style names for 2 styles"):
        StyleBank(2, ["a"])


def test_export_in_fp16_and_load_back(tmp_path):
    from nstlib.models import training_record
    from nstlib.stylebank import export_stylebank, load_stylebank

    torch.manual_seed(8)
    model = _randomise_style_norms(StyleBank(2, ["starry_night", "the_scream"]).eval(), 5)
    digest = export_stylebank(model, tmp_path / "sb.pth", {"steps": 7})
    assert len(digest) == 64
    loaded = load_stylebank(tmp_path / "sb.pth")
    assert loaded.style_names == model.style_names and not loaded.training
    x = _images(9, n=1)
    with torch.no_grad():
        assert (loaded(x, 1) - model(x, 1)).abs().max() < 2e-2  # fp16 weights: far below one 8-bit level
    assert training_record(tmp_path / "sb.pth") == {"steps": 7}
    fp32 = sum(v.numel() * 4 for v in model.state_dict().values())
    assert (tmp_path / "sb.pth").stat().st_size < 0.6 * fp32
    torch.save({"kind": "adain"}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a StyleBank"):
        load_stylebank(tmp_path / "other.pth")
    # a file written before style_norms existed (no such entry) holds the paper's network
    export_stylebank(StyleBank(1, style_norms=False), tmp_path / "paper.pth")
    saved = load_checkpoint(tmp_path / "paper.pth")
    del saved["style_norms"]
    torch.save(saved, tmp_path / "old.pth")
    assert load_stylebank(tmp_path / "old.pth").style_norms is None
    assert load_stylebank(tmp_path / "sb.pth").style_norms is not None
    assert load_stylebank(tmp_path / "old.pth").instance_norm and load_stylebank(tmp_path / "sb.pth").instance_norm
    plain = StyleBank(1, instance_norm=False).eval()  # the network without instance norm comes back as such
    export_stylebank(plain, tmp_path / "plain.pth")
    back = load_stylebank(tmp_path / "plain.pth")
    with torch.no_grad():
        assert not back.instance_norm and (back(x, 0) - plain(x, 0)).abs().max() < 2e-2


def test_cli_trains_resumes_and_exports(tmp_path, capsys):
    from nstlib.__main__ import main
    from nstlib.models import training_record

    argv = ["train-stylebank", "--run-dir", str(tmp_path / "run"), "--style", "starry_night", "the_scream",
            "--content", "tubingen", "--steps", "3", "--batch-size", "1", "--crop", "32", "--load-size", "48",
            "--style-size", "64", "--device", "cpu", "--export", str(tmp_path / "sb.pth")]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "finished at step 3" in out and "sha256" in out
    record = training_record(tmp_path / "sb.pth")
    assert record["steps"] == 3 and record["style"] == ["starry_night", "the_scream"] and record["content"] == ["tubingen"]
    assert len(record["curves"]["reconstruction"]) == 3 and math.isnan(record["curves"]["reconstruction"][0])
    argv[argv.index("--steps") + 1] = "4"
    assert main(argv) == 0 and "finished at step 4" in capsys.readouterr().out  # resumed, not restarted
    assert main([*argv[:-2], "--crop", "34"]) == 2 and "multiple of 4" in capsys.readouterr().err
    assert main([*argv[:6], "nowhere.png", *argv[6:]]) == 2 and "nowhere.png" in capsys.readouterr().err
    plain = [*argv[:2], str(tmp_path / "plain"), *argv[3:-1], str(tmp_path / "plain.pth"), "--no-instance-norm"]
    assert main(plain) == 0, capsys.readouterr().err
    from nstlib.stylebank import load_stylebank
    assert not load_stylebank(tmp_path / "plain.pth").instance_norm and load_stylebank(tmp_path / "sb.pth").instance_norm


def test_first_step_below_uses_a_window_of_stylising_steps():
    from nstlib.stylebank_training import first_step_below

    history = {"branch": [0, 0, -1, 0, 0, -1, 1, 0], "style": [9, 7, math.nan, 3, 1, math.nan, 0, 1],
               "seconds": [1, 2, 3, 4, 5, 6, 7, 8]}
    assert first_step_below(history, 5, window=2) == (4, 4)  # mean(7, 3) = 5 at the 4th step; the AE step counts
    assert first_step_below(history, 2, window=2, branch=0) == (5, 5)  # mean(3, 1)
    assert first_step_below(history, 0.4, window=2) is None


def test_the_encoder_cannot_see_a_global_gain_or_colour_offset():
    """conv1 is linear and instance norm removes each channel's mean and std, so E(aI + b) = E(I):
    notebook 06 uses this to explain the auto-encoder's colour errors."""
    torch.manual_seed(10)
    enc = build_encoder().eval()
    x = _images(11, n=1, h=64, w=64)
    shifted = 0.6 * x + torch.tensor([0.2, 0.05, 0.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        a, b = enc(x), enc(shifted)
        assert (a - b).abs().max() < 1e-3 * a.abs().max()
        assert (a - enc(x.flip(-1))).abs().max() > 0.1 * a.abs().max()  # it does see the content


def test_without_instance_norm_the_auto_encoder_keeps_a_global_gain_and_colour_offset():
    """instance_norm=False: no norm in E, a per-channel scale and shift (ChannelAffine) in D where
    each IN was. Nothing then removes a channel's mean or spread, so E(aI + b) differs from E(I),
    and a style's own scale and shift act on the features as they are:
    D_i(F) = D(F) with x -> gamma_i x + beta_i at each of those places."""
    from nstlib.stylebank import ChannelAffine

    enc, dec = build_encoder(instance_norm=False), build_decoder(instance_norm=False)
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in [*enc, *dec])
    assert [m.num_features for m in dec if isinstance(m, ChannelAffine)] == [64, 32]
    assert [type(m) for m in enc] == [type(m) for m in build_encoder() if not isinstance(m, nn.InstanceNorm2d)]
    torch.manual_seed(16)
    model = _randomise_style_norms(StyleBank(2, instance_norm=False).eval(), 6)
    x = _images(17, n=1, h=64, w=64)
    shifted = 0.6 * x + torch.tensor([0.2, 0.05, 0.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        a, b = model.encoder(x), model.encoder(shifted)
        assert (a - b).abs().max() > 0.05 * a.abs().max()
        for i in range(2):  # the style's scales and shifts in place of the decoder's own, no normalisation
            by_hand = _decoder_with(model, model.style_norms[i].scale, model.style_norms[i].shift, ChannelAffine)
            assert torch.allclose(model(x, i), by_hand(model.banks[i](model.encoder(x))), atol=1e-5)
        f = model.banks[0](model.encoder(x))  # and a bank's gain now reaches the output (cf. the paper's decoder)
        assert (model.decoder(3 * f + 0.5) - model.decoder(f)).abs().max() > 0.01
        assert torch.allclose(model.fuse_linear(x, [0, 1]), model(x, 1), atol=1e-5)


def test_without_instance_norm_the_convolutions_start_from_he_initialisation():
    """Nothing rescales the activations of the network without instance norm, so its convolutions
    start with He et al.'s weights, std sqrt(2 / fan_in) before a ReLU and sqrt(1 / fan_in) for the
    last one (to RGB), biases 0; a bank added later too. The paper's network keeps PyTorch's default."""
    torch.manual_seed(18)
    model = StyleBank(1, instance_norm=False)
    model.add_style()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 + 3 + 2
    for conv in convs:
        fan_in = conv.weight[0].numel()
        gain = 1.0 if conv.out_channels == 3 else 2.0
        assert abs(float(conv.weight.detach().std()) / math.sqrt(gain / fan_in) - 1) < 0.1, conv
        assert conv.bias is None or not conv.bias.any()
    paper = StyleBank(1).encoder[1]  # PyTorch's default: uniform within +-1/sqrt(fan_in)
    assert float(paper.weight.detach().abs().max()) <= 1 / math.sqrt(paper.weight[0].numel())


def test_a_resume_with_the_banks_holding_other_paintings_is_refused(vgg16, photos, tmp_path):
    """Issue 24, 3: only bank indices were compared, not which painting each bank holds."""
    train_stylebank(StyleBank(2), photos, ["starry_night", "the_scream"], vgg16, tmp_path, steps=1,
                    progress=False, **TINY)
    with pytest.raises(ValueError, match=r"other data \(bank 0 held starry_night, now the_scream; "
                                         r"bank 1 held the_scream, now starry_night\)"):
        train_stylebank(StyleBank(2), photos, ["the_scream", "starry_night"], vgg16, tmp_path, steps=2,
                        progress=False, **TINY)
    # checkpoint_every does not change the weights: a resume with another value goes on
    run = train_stylebank(StyleBank(2), photos, ["starry_night", "the_scream"], vgg16, tmp_path, steps=2,
                          progress=False, **{**TINY, "checkpoint_every": 7})
    assert run.step == 2


def test_held_out_scores_on_a_model_that_paints_each_painting(vgg16):
    """An oracle that returns painting i for style i: its outputs are nearest their own painting, at
    style distance 0 and colour distance 0; its auto-encoder halves the photo (PSNR known), which
    recolouring to the photo's colour statistics undoes exactly."""
    from nstlib.stylebank import held_out_scores

    paintings = [_images(20 + i, n=1, h=48, w=48) * (0.3 + 0.3 * i) for i in range(3)]
    photos = [_images(30 + i, n=1, h=48, w=48) for i in range(2)]

    class Oracle(torch.nn.Module):
        def forward(self, content, style_id):
            return 0.5 * content if style_id is None else paintings[style_id]

    targets = style_targets(vgg16, paintings, 48)
    r = held_out_scores(Oracle(), vgg16, photos, targets, paintings)
    assert r["nearest"] == [0, 1, 2] * 2 and max(r["style_distance"]) < 1e-6 * min(r["photo_distance"])
    assert r["colour_to_painting"] == pytest.approx([0] * 6, abs=1e-6)
    photo_rgb = [p.mean((0, 2, 3)) for p in photos]
    expected = [float((photo_rgb[k] - paintings[i].mean((0, 2, 3))).norm()) for k in range(2) for i in range(3)]
    assert r["colour_of_photo"] == pytest.approx(expected, rel=1e-5)
    expected_psnr = [float(10 * torch.log10(1 / (0.5 * p).pow(2).mean())) for p in photos]
    assert r["psnr"] == pytest.approx(expected_psnr, rel=1e-4)
    assert min(r["psnr_colour_matched"]) > 60  # 0.5 x mapped back onto x: only rounding left
    assert len(r["ssim"]) == 6 and r["mean_colour"][2] == pytest.approx(paintings[2].mean((0, 2, 3)).tolist(), rel=1e-5)


def test_the_gradient_norm_is_logged_and_clipping_bounds_it(vgg16, photos, tmp_path, monkeypatch):
    """History 'grad_norm' is the step's gradient norm before clipping; with clip_grad_norm the
    gradient Adam sees is at most that (captured at the optimizer step)."""
    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        seen.append(float(torch.sqrt(sum(g.pow(2).sum() for g in grads))))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    torch.manual_seed(17)
    run = train_stylebank(StyleBank(1), photos, ["starry_night"], vgg16, tmp_path / "free", steps=3,
                          progress=False, **TINY)
    assert run.history["grad_norm"] == pytest.approx(seen, rel=1e-4)  # no clipping: the same norms
    limit = 0.5 * min(seen)
    torch.manual_seed(17)
    seen.clear()
    clipped = train_stylebank(StyleBank(1), photos, ["starry_night"], vgg16, tmp_path / "clipped", steps=3,
                              progress=False, clip_grad_norm=limit, **TINY)
    assert clipped.history["grad_norm"][0] == pytest.approx(run.history["grad_norm"][0], rel=1e-4)
    assert all(n <= limit * (1 + 1e-4) for n in seen)  # what Adam received


def test_lr_decay_keeps_every_group_constant_for_half_the_run_then_falls_to_zero(vgg16, photos, tmp_path, monkeypatch):
    """lr_decay: each parameter group's rate (shared, and the styles' own at style_lr_scale times it)
    is its base rate times training.lr_factor(step, steps), seen at each optimizer step."""
    from nstlib.training import lr_factor

    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append([g["lr"] for g in self.param_groups])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    torch.manual_seed(17)
    train_stylebank(StyleBank(1), photos, ["starry_night"], vgg16, tmp_path, steps=6, progress=False,
                    lr_decay=True, **{**TINY, "lr": 2e-3, "style_lr_scale": 5.0})
    factors = [lr_factor(s, 6) for s in range(6)]
    assert factors == [1, 1, 1, 1, pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert seen == [[pytest.approx(2e-3 * f), pytest.approx(1e-2 * f)] for f in factors]


def test_the_content_layer_setting_moves_the_content_loss_to_that_layer(vgg16, photos, tmp_path):
    """content_layer: L_content = mean (phi(O) - phi(I))^2 at that VGG-16 layer (the paper's relu4_2 by
    default), by hand; a layer outside STYLE_LAYERS is refused before any step."""
    from nstlib.stylebank import CONTENT_LAYER

    torch.manual_seed(3)
    out, photo = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    targets = style_targets(vgg16, ["starry_night"], 64)[0]
    for layer in (CONTENT_LAYER, "relu2_2"):
        mine = stylising_losses(vgg16, out, photo, targets, content_layer=layer)["content"]
        by_hand = (vgg16.extract(out, layer)[layer] - vgg16.extract(photo, layer)[layer]).pow(2).mean()
        assert float(mine) == pytest.approx(float(by_hand), rel=1e-5), layer
    with pytest.raises(ValueError, match="content_layer must be one of"):
        stylising_losses(vgg16, out, photo, targets, content_layer="relu5_1")
    with pytest.raises(ValueError, match="content_layer must be one of"):
        train_stylebank(StyleBank(1), photos, ["starry_night"], vgg16, tmp_path, steps=1, progress=False,
                        content_layer="relu3_3", **TINY)
