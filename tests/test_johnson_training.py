"""nstlib.johnson_training: Johnson's transform network and the CIN network learn, a resumed run ends
bit for bit where an uninterrupted one does (fp32), bf16 runs the networks in bfloat16, the style
weights are fast-neural-style's, and the train-johnson command trains, resumes and exports."""
import pytest
import torch
import torch.nn.functional as F

from nstlib import johnson
from nstlib.datasets import ImageSet
from nstlib.features import VGGFeatures
from nstlib.johnson import TransformNet
from nstlib.johnson_training import (JohnsonSettings, draw_styles, layer_style_weights, network_description,
                                     train_transform_net)
from nstlib.models import training_record
from nstlib.training import CHECKPOINT, load_checkpoint

TINY = dict(batch_size=2, crop=32, load_size=48, style_size=64, checkpoint_every=2, sample_every=100)
WIDTHS = (8, 16, 32)  # the real network's layout with fewer channels: the same code, 40x faster
STYLES = ["the_scream", "starry_night"]


@pytest.fixture(scope="module")
def vgg():
    return VGGFeatures("vgg16", "caffe", up_to="relu4_3")


@pytest.fixture(scope="module")
def photos():
    return ImageSet(["tubingen", "golden_gate", "chelsea"], load_size=48)


def _net(seed, norm="instance", n_styles=None):
    torch.manual_seed(seed)  # the network's initial weights
    return TransformNet(norm, n_styles, WIDTHS)


def _styles(n_styles):
    return STYLES[:n_styles or 1]


@pytest.mark.parametrize("n_styles", [None, 2])
def test_training_lowers_the_loss_and_writes_samples(vgg, photos, tmp_path, n_styles):
    run = train_transform_net(_net(0, n_styles=n_styles), photos, _styles(n_styles), vgg, tmp_path, steps=30,
                              lr=1e-2, progress=False, **{**TINY, "sample_every": 15})
    total = run.history["total"]
    assert run.stopped == "finished" and run.step == 30 and len(total) == 30
    assert sum(total[-5:]) < 0.3 * sum(total[:5])  # seeded: 0.07 (one style), 0.10 (CIN)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_0000015.jpg", "step_0000030.jpg"]
    from PIL import Image

    w, h = Image.open(tmp_path / "samples" / "step_0000030.jpg").size
    assert (w, h) == (32 * (1 + (n_styles or 1)), 32 * 4)  # photo | one column per style, 4 rows


@pytest.mark.parametrize("norm, n_styles, extra", [("instance", None, {}), ("batch", None, {}), ("instance", 2, {}),
                                                    ("instance", 2, {"one_style_per_batch": True})])
def test_resuming_matches_an_uninterrupted_run(vgg, photos, tmp_path, norm, n_styles, extra):
    settings = {**TINY, **extra}
    straight = _net(0, norm, n_styles)
    train_transform_net(straight, photos, _styles(n_styles), vgg, tmp_path / "a", steps=5, progress=False, **settings)

    train_transform_net(_net(0, norm, n_styles), photos, _styles(n_styles), vgg, tmp_path / "b", steps=3,
                        progress=False, **settings)
    resumed = _net(123, norm, n_styles)  # other initial weights: the checkpoint must replace them
    run = train_transform_net(resumed, photos, _styles(n_styles), vgg, tmp_path / "b", steps=5, progress=False,
                              **settings)
    assert run.step == 5 and len(run.history["total"]) == 5
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k  # BN's running statistics included
    assert load_checkpoint(tmp_path / "a" / CHECKPOINT)["history"]["total"] == run.history["total"]


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(vgg, photos, tmp_path):
    straight = _net(1, n_styles=2)
    train_transform_net(straight, photos, STYLES, vgg, tmp_path / "a", steps=4, progress=False, **TINY)

    def interrupt(step, values, model):
        if step == 3:
            raise KeyboardInterrupt

    stopped = train_transform_net(_net(1, n_styles=2), photos, STYLES, vgg, tmp_path / "b", steps=4, progress=False,
                                  callback=interrupt, **TINY)
    assert stopped.stopped == "interrupted" and load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 3
    resumed = _net(99, n_styles=2)
    train_transform_net(resumed, photos, STYLES, vgg, tmp_path / "b", steps=4, progress=False, **TINY)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_sigterm_stops_after_the_step_and_saves_a_checkpoint_that_resumes_exactly(vgg, photos, tmp_path):
    """`kill -TERM <pid>` (a batch system, a closing session) ends the run as Ctrl-C does: after
    the step in progress, with a checkpoint; before, it lost every step since the last one."""
    import os
    import signal

    straight = _net(2)
    train_transform_net(straight, photos, STYLES[:1], vgg, tmp_path / "a", steps=4, progress=False, **TINY)

    def terminate(step, values, model):
        if step == 3:  # not a checkpoint step (checkpoint_every=2)
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    stopped = train_transform_net(_net(2), photos, STYLES[:1], vgg, tmp_path / "b", steps=4, progress=False,
                                  callback=terminate, **TINY)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the run's only
    assert stopped.stopped == "interrupted" and stopped.step == 3
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 3
    resumed = _net(98)
    train_transform_net(resumed, photos, STYLES[:1], vgg, tmp_path / "b", steps=4, progress=False, **TINY)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_bf16_runs_the_networks_in_bfloat16_and_the_losses_in_float32(vgg, photos, tmp_path):
    model = _net(0, n_styles=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = {"net": set(), "vgg": set(), "layout": set()}
    hooks = [model.conv1.conv.register_forward_hook(lambda m, i, o: seen["net"].add(o.dtype)),
             vgg.features[0].register_forward_hook(lambda m, i, o: seen["vgg"].add(o.dtype)),
             model.conv1.conv.register_forward_hook(
                 lambda m, i, o: seen["layout"].add(m.weight.is_contiguous(memory_format=torch.channels_last)))]
    try:
        run = train_transform_net(model, photos, STYLES, vgg, tmp_path, steps=2, precision="bf16", progress=False,
                                  **TINY)
    finally:
        for h in hooks:
            h.remove()
    assert torch.bfloat16 in seen["net"] and torch.bfloat16 in seen["vgg"]
    assert torch.float32 in seen["vgg"]  # the style targets: computed once, in float32
    assert run.settings["precision"] == "bf16" and all(torch.isfinite(torch.tensor(run.history["total"])))
    assert all(v.dtype == torch.float32 for v in model.state_dict().values() if v.is_floating_point())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert seen["layout"] == {True}  # trained in channels-last ...
    for net in (model, vgg):  # ... and handed back in the layout they came in (training.Precision.restore)
        assert all(t.is_contiguous() for t in net.parameters())
    # a bf16 run may be resumed in fp32 (precision is not one of the compared settings)
    run = train_transform_net(model, photos, STYLES, vgg, tmp_path, steps=3, precision="fp32", progress=False,
                              **TINY)
    assert run.step == 3


def test_bf16_training_hands_back_the_networks_as_it_found_them(vgg, photos, tmp_path):
    """Precision.restore runs on every way out of run_training: a network the caller keeps in
    channels-last stays so (converted in place, so an optimizer holding its weights still does),
    and a resume refused for other settings, after the trainer had put its VGG in channels-last for
    the style targets, leaves that VGG in the default layout it came in."""
    model = _net(0).to(memory_format=torch.channels_last)
    weight = model.conv1.conv.weight
    train_transform_net(model, photos, STYLES[:1], vgg, tmp_path, steps=1, precision="bf16", progress=False, **TINY)
    assert model.conv1.conv.weight is weight and not weight.is_contiguous()
    assert weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="other settings"):
        train_transform_net(model, photos, STYLES[:1], vgg, tmp_path, steps=2, precision="bf16", lr=0.5,
                            progress=False, **TINY)
    assert all(t.is_contiguous() for t in vgg.parameters())


def test_memory_format_of_reads_the_layout_and_skips_what_cannot_tell():
    from nstlib.training import memory_format_of

    conv = torch.nn.Conv2d(3, 8, 3)
    assert memory_format_of(conv) == torch.contiguous_format
    assert memory_format_of(conv.to(memory_format=torch.channels_last)) == torch.channels_last
    pointwise = torch.nn.Conv2d(4, 4, 1).to(memory_format=torch.channels_last)  # both layouts at once
    assert memory_format_of(pointwise) == torch.contiguous_format
    assert memory_format_of(torch.nn.Sequential(pointwise, conv)) == torch.channels_last


def test_bf16_vgg_features_come_back_in_float32(vgg):
    from nstlib.johnson_training import MixedPrecisionVGG
    from nstlib.training import Precision

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    feats = MixedPrecisionVGG(vgg, Precision("bf16", "cpu")).extract(x, ["relu1_2", "relu4_3"])
    assert all(f.dtype == torch.float32 for f in feats.values())  # the Gram matrices are then float32
    exact = vgg.extract(x, ["relu1_2"])["relu1_2"]
    assert not torch.equal(feats["relu1_2"], exact)  # computed in bf16 ...
    assert (feats["relu1_2"] - exact).abs().mean() < 0.02 * exact.abs().mean()  # ... and close


def test_the_style_weight_is_fast_neural_styles_mse_over_gram_entries(vgg):
    """lambda_s / C_j^2 on the paper's Eq. 4 (a sum over the Gram's entries) equals fast-neural-style's
    lambda_s * nn.MSECriterion(G(y^), G(y_s)) (a mean over the batch and the C_j^2 entries)."""
    gen = torch.Generator().manual_seed(0)
    out, content, style = (torch.rand(b, 3, 32, 32, generator=gen) for b in (2, 2, 1))
    targets = johnson.style_targets(vgg, style)
    weights = layer_style_weights(5.0, targets)
    assert weights == {"relu1_2": 5.0 / 64**2, "relu2_2": 5.0 / 128**2, "relu3_3": 5.0 / 256**2,
                       "relu4_3": 5.0 / 512**2}
    got = johnson.perceptual_loss(vgg, out, content, targets, "relu3_3", 0.0, weights, 0.0)["total"]
    feats = vgg.extract(out, johnson.STYLE_LAYERS)
    mse = sum(F.mse_loss(johnson.johnson_gram(feats[j]), targets[j].expand(2, -1, -1), reduction="mean")
              for j in johnson.STYLE_LAYERS)
    assert got.item() == pytest.approx(5.0 * mse.item(), rel=1e-5)


def test_styles_are_drawn_per_image_or_per_batch():
    g = torch.Generator().manual_seed(0)
    per_image = torch.stack([draw_styles(4, 8, g) for _ in range(20)])  # (20, 8)
    assert per_image.shape == (20, 8) and set(per_image.flatten().tolist()) == {0, 1, 2, 3}
    assert any(len(set(row.tolist())) > 1 for row in per_image)  # batches mix styles
    per_batch = torch.stack([draw_styles(4, 8, g, one_per_batch=True) for _ in range(20)])
    assert all(len(set(row.tolist())) == 1 for row in per_batch)
    assert len(set(per_batch[:, 0].tolist())) > 1  # but batches differ


def test_the_defaults_are_johnsons():
    cfg = JohnsonSettings()
    assert (cfg.lr, cfg.batch_size, cfg.crop, cfg.steps) == (1e-3, 4, 256, 40_000)  # Sec. 4.1
    assert (cfg.content_layer, cfg.content_weight, cfg.style_weight) == ("relu3_3", 1.0, 5.0)  # train.lua
    assert cfg.tv_weight == pytest.approx(1e-6 * 255**2)


def test_bad_arguments_are_refused_before_training(vgg, photos, tmp_path):
    with pytest.raises(ValueError, match="2 style images for a network with 1 style"):
        train_transform_net(_net(0), photos, STYLES, vgg, tmp_path, steps=1, progress=False, **TINY)
    with pytest.raises(ValueError, match="1 style images for a network with 2 styles"):
        train_transform_net(_net(0, n_styles=2), photos, ["the_scream"], vgg, tmp_path, steps=1, progress=False, **TINY)
    with pytest.raises(ValueError, match="content_layer must be one of"):
        train_transform_net(_net(0), photos, "the_scream", vgg, tmp_path, steps=1, progress=False,
                            **{**TINY, "content_layer": "relu5_3"})
    with pytest.raises(ValueError, match="for CIN networks"):
        train_transform_net(_net(0), photos, "the_scream", vgg, tmp_path, steps=1, progress=False,
                            **{**TINY, "one_style_per_batch": True})
    with pytest.raises(ValueError, match="must reach relu4_3"):
        train_transform_net(_net(0), photos, "the_scream", VGGFeatures("vgg16", None, up_to="relu3_3"), tmp_path,
                            steps=1, progress=False, **TINY)
    with pytest.raises(TypeError):
        train_transform_net(_net(0), photos, "the_scream", vgg, tmp_path, steps=1, progress=False, learning_rate=1.0)
    assert not (tmp_path / CHECKPOINT).exists()


def test_a_checkpoint_resumes_only_its_own_network_settings_and_styles(vgg, photos, tmp_path):
    train_transform_net(_net(0), photos, "the_scream", vgg, tmp_path, steps=1, progress=False, **TINY)
    with pytest.raises(ValueError, match="other settings.*network"):
        train_transform_net(_net(0, "batch"), photos, "the_scream", vgg, tmp_path, steps=2, progress=False, **TINY)
    with pytest.raises(ValueError, match="other settings.*style_weight"):
        train_transform_net(_net(0), photos, "the_scream", vgg, tmp_path, steps=2, progress=False,
                            **{**TINY, "style_weight": 1.0})
    with pytest.raises(ValueError, match="other data"):
        train_transform_net(_net(0), photos, "starry_night", vgg, tmp_path, steps=2, progress=False, **TINY)
    assert network_description(_net(0, n_styles=3)) == "norm=instance n_styles=3 widths=[8, 16, 32]"


def test_the_train_johnson_command_trains_resumes_and_exports(tmp_path, capsys):
    from nstlib.__main__ import main

    argv = ["train-johnson", "--run-dir", str(tmp_path / "run"), "--content", "tubingen", "--style", "the_scream",
            "--steps", "2", "--batch-size", "1", "--crop", "32", "--load-size", "40", "--style-size", "64",
            "--sample-every", "2", "--device", "cpu", "--export", str(tmp_path / "scream.pth")]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "finished at step 2" in out and "sha256" in out
    net = johnson.load_transform_net(tmp_path / "scream.pth")
    assert net.n_styles is None and net.style_names == ["the_scream"] and net.widths == johnson.WIDTHS
    record = training_record(tmp_path / "scream.pth")
    assert record["steps"] == 2 and record["style"] == ["the_scream"] and record["settings"]["content_layer"] == "relu3_3"
    assert set(record["curves"]) == {"content", "style", "tv", "total"}
    argv[argv.index("--steps") + 1] = "3"
    assert main(argv) == 0
    assert "finished at step 3" in capsys.readouterr().out  # resumed, one more step


def test_the_train_johnson_command_trains_cin_and_bf16(tmp_path, capsys):
    from nstlib.__main__ import main

    argv = ["train-johnson", "--run-dir", str(tmp_path / "run"), "--content", "tubingen", "--style", "the_scream",
            "starry_night", "--steps", "1", "--batch-size", "2", "--crop", "32", "--load-size", "40", "--style-size",
            "64", "--content-layer", "relu2_2", "--precision", "bf16", "--device", "cpu",
            "--export", str(tmp_path / "cin.pth")]
    assert main(argv) == 0, capsys.readouterr().err
    net = johnson.load_transform_net(tmp_path / "cin.pth")
    assert net.n_styles == 2 and net.style_names == ["the_scream", "starry_night"]
    record = training_record(tmp_path / "cin.pth")
    assert record["settings"]["precision"] == "bf16" and record["settings"]["content_layer"] == "relu2_2"


@pytest.mark.parametrize("extra, message", [
    (["--style", "the_scream", "starry_night", "--norm", "batch"], "several styles need conditional instance norm"),
    (["--style", "the_scream", "--one-style-per-batch"], "--one-style-per-batch is for several styles"),
    (["--style", "nowhere.jpg"], "neither a file nor a registry name"),
    (["--style", "the_scream", "--crop", "64", "--load-size", "48"], "--crop 64 is larger than --load-size 48"),
])
def test_the_train_johnson_command_refuses_bad_arguments_in_one_line(tmp_path, capsys, extra, message):
    from nstlib.__main__ import main

    assert main(["train-johnson", "--run-dir", str(tmp_path / "run"), "--steps", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_the_content_layer_option_offers_only_its_choices(tmp_path, capsys):
    from nstlib.__main__ import main

    with pytest.raises(SystemExit):
        main(["train-johnson", "--run-dir", str(tmp_path), "--style", "the_scream", "--content-layer", "conv9"])
    assert "invalid choice: 'conv9'" in capsys.readouterr().err
