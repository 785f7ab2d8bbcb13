"""nstlib.adain_training: the decoder learns, checkpoints resume exactly (also after Ctrl-C),
and a checkpoint refuses to resume a run with other settings."""
import pytest
import torch

from nstlib import runtime
from nstlib.adain import AdaIN, Encoder
from nstlib.adain_training import learning_rate, train_decoder
from nstlib.training import CHECKPOINT, load_checkpoint
from nstlib.datasets import ImageSet
from nstlib.models import training_record

TINY = dict(batch_size=2, crop=32, load_size=48, checkpoint_every=2, sample_every=3)


@pytest.fixture(scope="module")
def sets():
    return ImageSet(["tubingen", "golden_gate", "chelsea"], load_size=48), ImageSet(["starry_night", "the_scream"],
                                                                                     load_size=48)


def _model(vgg16, seed):
    torch.manual_seed(seed)  # the decoder's initial weights
    return AdaIN(encoder=Encoder(vgg=vgg16))


def test_learning_rate_schedule():
    assert learning_rate(0, 1e-4, 5e-5) == 1e-4
    assert learning_rate(20_000, 1e-4, 5e-5) == pytest.approx(5e-5)


def test_training_lowers_the_loss_and_writes_samples(vgg16, sets, tmp_path):
    run = train_decoder(_model(vgg16, 0), *sets, tmp_path, steps=40, lr=1e-3, progress=False,
                        **{**TINY, "sample_every": 20})
    total = run.history["total"]
    assert run.stopped == "finished" and run.step == 40 and len(total) == 40
    assert sum(total[-5:]) < 0.75 * sum(total[:5])  # seeded: 0.62 with the normalised encoder
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_0000020.jpg", "step_0000040.jpg"]
    assert load_checkpoint(tmp_path / CHECKPOINT)["step"] == 40
    # the default precision: bf16 where native (measured at parity), recorded with the run
    assert run.settings["precision"] == runtime.precision(device="cpu", method="adain training")


def test_resuming_matches_an_uninterrupted_run(vgg16, sets, tmp_path):
    straight = _model(vgg16, 0)
    train_decoder(straight, *sets, tmp_path / "a", steps=5, progress=False, **TINY)

    first_half = _model(vgg16, 0)
    train_decoder(first_half, *sets, tmp_path / "b", steps=3, progress=False, **TINY)
    resumed = _model(vgg16, 123)  # other initial weights: the checkpoint must replace them
    run = train_decoder(resumed, *sets, tmp_path / "b", steps=5, progress=False, **TINY)
    assert run.step == 5 and len(run.history["total"]) == 5
    for (k, a), b in zip(straight.decoder.state_dict().items(), resumed.decoder.state_dict().values()):
        assert torch.equal(a, b), k
    a_hist = load_checkpoint(tmp_path / "a" / CHECKPOINT)["history"]
    assert a_hist["total"] == run.history["total"]


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(vgg16, sets, tmp_path):
    straight = _model(vgg16, 1)
    train_decoder(straight, *sets, tmp_path / "a", steps=4, progress=False, **TINY)

    def interrupt(step, losses, model):
        if step == 3:
            raise KeyboardInterrupt

    stopped = train_decoder(_model(vgg16, 1), *sets, tmp_path / "b", steps=4, progress=False, callback=interrupt,
                            **TINY)
    assert stopped.stopped == "interrupted" and stopped.step == 3
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 3  # saved on Ctrl-C, between checkpoints
    resumed = _model(vgg16, 99)
    train_decoder(resumed, *sets, tmp_path / "b", steps=4, progress=False, **TINY)
    for a, b in zip(straight.decoder.state_dict().values(), resumed.decoder.state_dict().values()):
        assert torch.equal(a, b)


def test_a_checkpoint_resumes_only_its_own_settings(vgg16, sets, tmp_path):
    train_decoder(_model(vgg16, 0), *sets, tmp_path, steps=1, progress=False, **TINY)
    with pytest.raises(ValueError, match="other settings"):
        train_decoder(_model(vgg16, 0), *sets, tmp_path, steps=2, progress=False, **{**TINY, "lr": 1e-3})
    with pytest.raises(TypeError):
        train_decoder(_model(vgg16, 0), *sets, tmp_path, steps=2, progress=False, learning_rate=1.0)


def test_the_train_adain_command_trains_resumes_and_exports(tmp_path, capsys):
    from nstlib.__main__ import main

    argv = ["train-adain", "--run-dir", str(tmp_path / "run"), "--content", "tubingen", "--style", "starry_night",
            "--steps", "2", "--batch-size", "1", "--crop", "32", "--load-size", "40", "--sample-every", "2",
            "--device", "cpu", "--export", str(tmp_path / "decoder.pth")]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "finished at step 2" in out and "sha256" in out and (tmp_path / "decoder.pth").is_file()
    record = training_record(tmp_path / "decoder.pth")  # what notebook 05 prints about the shipped decoder
    assert record["steps"] == 2 and record["content"] == ["tubingen"] and record["style"] == ["starry_night"]
    assert record["settings"]["crop"] == 32 and record["seconds"] > 0 and len(record["curves"]["total"]) == 2
    argv[argv.index("--steps") + 1] = "3"
    assert main(argv) == 0
    assert "finished at step 3" in capsys.readouterr().out  # resumed, one more step
    assert main(["train-adain", "--run-dir", str(tmp_path / "r2"), "--crop", "64", "--load-size", "48"]) == 2
    assert "--crop 64 is larger than --load-size 48" in capsys.readouterr().err
    assert main(["train-adain", "--run-dir", str(tmp_path / "r3"), "--content", "nowhere", "--steps", "1"]) == 2
    assert "neither a folder" in capsys.readouterr().err


def test_the_train_adain_command_can_add_photos_and_shuffle_style_colours(tmp_path, capsys):
    from nstlib.__main__ import main

    argv = ["train-adain", "--run-dir", str(tmp_path / "run"), "--content", "tubingen", "chelsea", "--style",
            "starry_night", "--photos-as-styles", "--shuffle-style-channels", "--steps", "1", "--batch-size", "1",
            "--crop", "32", "--load-size", "40", "--device", "cpu", "--export", str(tmp_path / "decoder.pth")]
    assert main(argv) == 0, capsys.readouterr().err
    record = training_record(tmp_path / "decoder.pth")
    assert record["style"] == ["starry_night", "tubingen", "chelsea"]  # the record says what the decoder saw
    assert record["settings"]["shuffle_style_channels"] is True


def test_training_summary_averages_the_curves_over_windows():
    from nstlib.training import TrainRun, training_summary

    history = {"content": [1.0, 3.0, 5.0, 7.0, 9.0], "style": [0.0] * 5, "total": [2.0] * 5, "lr": [1e-4] * 5,
               "seconds": [1.0, 2.0, 3.0, 4.0, 5.5]}
    run = TrainRun(history=history, step=5, stopped="finished", settings={"crop": 32})
    record = training_summary(run, ["a"], ["b"], "cpu", points=2)
    assert record["curve_window"] == 3 and record["curves"]["content"] == [3.0, 8.0]  # means of [1,3,5] and [7,9]
    assert record["seconds"] == 5.5 and "lr" not in record["curves"]


def test_the_held_out_images_are_not_training_images():
    from nstlib import data
    from nstlib.datasets import HELD_OUT, training_images

    for kind in ("content", "style"):
        train = training_images(kind)
        assert not set(train) & set(HELD_OUT[kind])
        assert set(train) | set(HELD_OUT[kind]) == set(data.list_images(kind))  # every other image is used
    with pytest.raises(ValueError, match="kind must be"):
        training_images("mask")


def test_two_identical_train_adain_commands_give_identical_decoders(tmp_path, capsys, monkeypatch):
    """Issue 24, 8: --seed did not seed the decoder's initial weights, so two runs differed."""
    from nstlib.__main__ import main

    def run(name):
        torch.manual_seed(12345 if name == "a" else 54321)  # whatever state the process is in
        argv = ["train-adain", "--run-dir", str(tmp_path / name), "--content", "tubingen", "--style",
                "starry_night", "--steps", "1", "--batch-size", "1", "--crop", "32", "--load-size", "40",
                "--device", "cpu", "--seed", "7"]
        assert main(argv) == 0, capsys.readouterr().err
        return load_checkpoint(tmp_path / name / CHECKPOINT)["decoder"]

    a, b = run("a"), run("b")
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "run").write_text("x"), "--run-dir '{p}/run' is a file"),
    (lambda p: (p / "run" / CHECKPOINT).mkdir(parents=True), "the checkpoint '{p}/run/checkpoint.pt' is a folder"),
])
def test_a_bad_run_dir_is_refused_before_the_first_step(vgg16, sets, tmp_path, make, message):
    """Issue 24, 12: caught only after training, when the checkpoint was saved."""
    make(tmp_path)
    steps = []
    with pytest.raises(ValueError, match=message.format(p=tmp_path)):
        train_decoder(_model(vgg16, 0), *sets, tmp_path / "run", steps=1, progress=False,
                      callback=lambda *a: steps.append(a), **TINY)
    assert steps == []


def test_a_resume_on_other_images_is_refused_naming_them(vgg16, tmp_path):
    """Issue 24, 3: a copied run dir resumed with other --content/--style trained on them silently."""
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo)
    content = ImageSet(["tubingen", photo], load_size=48)
    style = ImageSet(["starry_night"], load_size=48)
    train_decoder(_model(vgg16, 0), content, style, tmp_path / "run", steps=1, progress=False, **TINY)

    other_style = ImageSet(["the_scream"], load_size=48)
    with pytest.raises(ValueError, match=r"other data \(style: without starry_night; with new the_scream\)"):
        train_decoder(_model(vgg16, 0), content, other_style, tmp_path / "run", steps=2, progress=False, **TINY)

    Image.new("RGB", (64, 48), (10, 120, 40)).save(photo)  # same name, other pixels
    edited = ImageSet(["tubingen", photo], load_size=48)
    with pytest.raises(ValueError, match=r"content: with changed files photo.png"):
        train_decoder(_model(vgg16, 0), edited, style, tmp_path / "run", steps=2, progress=False, **TINY)


def test_checkpoint_every_does_not_block_a_resume(vgg16, sets, tmp_path):
    """Issue 24, 3: it does not change the weights, so a resume with another value goes on."""
    train_decoder(_model(vgg16, 0), *sets, tmp_path, steps=2, progress=False, **TINY)
    run = train_decoder(_model(vgg16, 0), *sets, tmp_path, steps=3, progress=False,
                        **{**TINY, "checkpoint_every": 5, "sample_every": 1})
    assert run.step == 3


def test_keep_every_keeps_earlier_checkpoints_that_resume(vgg16, sets, tmp_path):
    """The rolling checkpoint is replaced at every save; with keep_every the ones written at its
    multiples stay in run_dir/kept/ (a diverged run keeps its good weights), each a whole checkpoint:
    copied back as the run's checkpoint, it resumes to the same weights as a straight run."""
    from nstlib.training import KEPT

    straight = _model(vgg16, 0)
    train_decoder(straight, *sets, tmp_path / "a", steps=6, progress=False, **TINY)
    model = _model(vgg16, 0)
    train_decoder(model, *sets, tmp_path / "b", steps=6, progress=False, **{**TINY, "keep_every": 4})
    kept = tmp_path / "b" / KEPT
    assert sorted(p.name for p in kept.iterdir()) == ["step_000004.pt"]  # saves at 2, 4, 6: only 4 is kept
    assert load_checkpoint(kept / "step_000004.pt")["step"] == 4
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 6
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / CHECKPOINT).write_bytes((kept / "step_000004.pt").read_bytes())
    resumed = _model(vgg16, 5)
    train_decoder(resumed, *sets, tmp_path / "c", steps=6, progress=False, **TINY)  # keep_every is free
    for (k, a), b in zip(straight.decoder.state_dict().items(), resumed.decoder.state_dict().values()):
        assert torch.equal(a, b), k


def test_keep_every_copies_where_hard_links_fail(vgg16, sets, tmp_path, monkeypatch):
    """On a file system without hard links (a mounted Google Drive) the kept checkpoint is a copy."""
    import os

    from nstlib.training import KEPT

    def no_links(*args):
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    train_decoder(_model(vgg16, 0), *sets, tmp_path, steps=2, progress=False, **{**TINY, "keep_every": 2})
    assert load_checkpoint(tmp_path / KEPT / "step_000002.pt")["step"] == 2
