"""`python -m nstlib stylize`: a real run writes the image, and every bad argument ends with a
one-line error and exit status 2, before any work and without touching an existing output."""
import os
import subprocess
import sys
import types

import pytest
from PIL import Image

from nstlib.__main__ import main

FAST = ["--max-size", "64", "--steps", "1"]


def _fails(capsys, argv, message):
    """main() either returns 2 (our checks) or argparse exits with 2 (its type checks)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    return err


def test_stylize_writes_the_image(tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main(["stylize", "tubingen", "starry_night", "-o", str(out), *FAST]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as im:
        assert max(im.size) == 64 and im.mode == "RGB"


def test_stylize_takes_files_several_styles_and_the_controls(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (80, 60), (200, 120, 40)).save(photo)
    out = tmp_path / "out.jpg"
    argv = ["stylize", str(photo), "starry_night", "the_scream", "-o", str(out), *FAST,
            "--blend", "2", "1", "--preserve-colors", "luminance", "--scales", "48",
            "--init", "noise", "--tv-weight", "1", "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    with Image.open(out) as im:
        assert im.size == (64, 48)


def test_the_spellings_before_issue_17_still_work(tmp_path, capsys):
    """--size and --blend-weights are older spellings of --max-size (the longer side) and --blend."""
    out = tmp_path / "out.png"
    argv = ["stylize", "tubingen", "starry_night", "the_scream", "-o", str(out), "--size", "64", "--steps", "1",
            "--blend-weights", "1", "0"]
    assert main(argv) == 0, capsys.readouterr().err
    with Image.open(out) as im:
        assert max(im.size) == 64


def test_the_command_line_entry_point_runs_as_a_module(tmp_path):
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-m", "nstlib", "stylize", "tubingen", "nope", "-o", str(out)],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2
    assert "style 'nope' is neither a file nor a registry name" in proc.stderr
    assert "starry_night" in proc.stderr  # the message lists the names there are
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["no_such_photo", "starry_night"], "content 'no_such_photo' is neither a file nor a registry name"),
    (["tubingen", "missing.jpg"], "style 'missing.jpg' is neither a file nor a registry name"),
    (["tubingen", "starry_night", "--max-size", "10"], "--max-size/--size: '10' must be at least 32"),
    (["tubingen", "starry_night", "--max-size", "big"], "--max-size/--size: 'big' is not a whole number"),
    (["tubingen", "starry_night", "--size", "10"], "--size: '10' must be at least 32"),
    (["tubingen", "starry_night", "--steps", "-5"], "--steps: '-5' must be at least 0"),
    (["tubingen", "starry_night", "--style-weight", "-1"], "--style-weight: '-1' must be a finite number >= 0"),
    (["tubingen", "starry_night", "--content-weight", "inf"], "must be a finite number"),
    (["tubingen", "starry_night", "--style-scale", "0"], "--style-scale: '0' must be a finite number > 0"),
    (["tubingen", "starry_night", "--preserve-colors", "yuv"], "invalid choice: 'yuv'"),
    (["tubingen", "starry_night", "--blend", "1", "2"], "2 --blend weights for 1 style images"),
    (["tubingen", "starry_night", "--blend-weights", "1", "2"], "2 --blend weights for 1 style images"),
    (["tubingen", "starry_night", "--scales", "1024"], "scales must increase and stay below max_size=512"),
    (["tubingen", "starry_night", "--device", "toaster"], "--device 'toaster'"),
])
def test_bad_arguments(tmp_path, capsys, args, message):
    out = tmp_path / "out.png"
    _fails(capsys, ["stylize", *args[:2], "-o", str(out), *args[2:]], message)
    assert not out.exists()


def test_bad_files(tmp_path, capsys):
    out = tmp_path / "out.png"
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are not pixels")
    _fails(capsys, ["stylize", str(not_an_image), "starry_night", "-o", str(out), *FAST],
           "not an image file that Pillow can read")
    _fails(capsys, ["stylize", str(tmp_path), "starry_night", "-o", str(out)], "is not a file")
    assert not out.exists()


def test_bad_outputs_are_refused_before_the_work(tmp_path, capsys):
    _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(tmp_path / "nope" / "out.png")],
           "does not exist")
    _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(tmp_path / "out.txt")], "cannot write images of type .txt")
    _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(tmp_path)], "cannot write images of type (no extension)")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(folder)], "is a folder")


def test_a_failed_run_leaves_an_existing_output_untouched(tmp_path, capsys):
    out = tmp_path / "out.png"
    Image.new("RGB", (40, 40), (1, 2, 3)).save(out)
    before = out.read_bytes()
    _fails(capsys, ["stylize", "tubingen", "missing_style", "-o", str(out)], "neither a file")
    assert out.read_bytes() == before


def test_a_non_finite_loss_is_an_error_and_writes_nothing(tmp_path, capsys):
    """Issue 24, 1: the loss overflows at once; the CLI used to write the unchanged photo, exit 0."""
    out = tmp_path / "out.png"
    err = _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(out), *FAST, "--steps", "2",
                          "--style-weight", "1e308"], "the loss became non-finite")
    assert "no image was written" in err.splitlines()[-1]
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".psd", ".fits", ".xpm", ".xbm"])
def test_an_output_type_pillow_cannot_write_is_refused_before_the_work(tmp_path, capsys, suffix):
    """Issue 24, 5: these passed the check (Pillow reads them) and failed after the optimisation."""
    out = tmp_path / f"out{suffix}"
    _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(out), "--steps", "100000"],
           f"cannot write images of type {suffix}")
    assert not out.exists()


def test_an_output_that_is_an_input_is_refused(tmp_path, capsys, monkeypatch):
    """Issue 24, 2: `stylize same.png starry_night -o same.png` replaced the photo."""
    photo = tmp_path / "same.png"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo)
    before = photo.read_bytes()
    _fails(capsys, ["stylize", str(photo), "starry_night", "-o", str(photo), *FAST, "--force"],
           f"output {str(photo)!r} is the content image")
    monkeypatch.chdir(tmp_path)  # another spelling of the same file
    _fails(capsys, ["stylize", "tubingen", "./same.png", "-o", "same.png", *FAST, "--force"],
           "is the style image './same.png'")
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    _fails(capsys, ["stylize", "tubingen", "starry_night", str(photo), "-o", str(link), *FAST, "--force"],
           "is the style 2 image")
    assert photo.read_bytes() == before


def test_an_output_in_the_registrys_folders_is_refused(tmp_path, capsys, monkeypatch):
    data_dir = tmp_path / "data"
    (data_dir / "style").mkdir(parents=True)
    monkeypatch.setenv("NSTLIB_DATA_DIR", str(data_dir))
    _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(data_dir / "style" / "starry_night.jpg")],
           "is the style image 'starry_night'")


def test_an_existing_output_is_overwritten_only_with_force(tmp_path, capsys):
    out = tmp_path / "out.png"
    Image.new("RGB", (40, 40), (1, 2, 3)).save(out)
    before = out.read_bytes()
    _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(out), *FAST], "exists; pass --force")
    assert out.read_bytes() == before
    assert main(["stylize", "tubingen", "starry_night", "-o", str(out), *FAST, "--force"]) == 0
    assert out.read_bytes() != before


def test_help_states_the_overwrite_rule(capsys):
    with pytest.raises(SystemExit):
        main(["stylize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "never one of the inputs, and an existing file only with --force" in text


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".bmp", ".gif", ".psd", ".fits", ".xbm", ".txt", ""])
def test_the_output_check_is_what_save_image_can_write(tmp_path, capsys, monkeypatch, suffix):
    """The command line accepts an output type exactly when save_image writes it, and refuses the
    others at once, before any work, with save_image's own one-line reason (images.output_format)."""
    import torch

    from nstlib import images, stylize

    image = torch.rand(1, 3, 48, 64)
    try:
        images.save_image(image, tmp_path / f"probe{suffix}")
        writable = True
    except (ValueError, OSError):
        writable = False
    calls = []

    def fake_stylize(*args, **kwargs):  # the optimisation, instantly
        calls.append(kwargs)
        return types.SimpleNamespace(image=image, stopped="finished", seconds=0.0)

    monkeypatch.setattr(stylize, "stylize", fake_stylize)
    out = tmp_path / f"out{suffix}"
    argv = ["stylize", "tubingen", "starry_night", "-o", str(out)]
    if writable:
        assert main(argv) == 0, capsys.readouterr().err
        assert out.is_file() and len(calls) == 1
        return
    with pytest.raises(ValueError) as reason:
        images.output_format(out)
    err = _fails(capsys, argv, f"cannot write images of type {suffix or '(no extension)'}")
    assert err.strip().splitlines() == [f"python -m nstlib stylize: error: {reason.value}"]
    assert calls == [] and not out.exists()


@pytest.mark.parametrize("device", ["toaster", "meta", "mps", "cuda:7"])
def test_the_device_check_is_runtime_get_device(tmp_path, capsys, device):
    """--device is checked by runtime.get_device, before any work, and its reason is the one printed."""
    from nstlib import runtime

    try:
        runtime.get_device(device)
        pytest.skip(f"{device} is here")
    except runtime.DeviceError as e:
        reason = e
    out = tmp_path / "out.png"
    err = _fails(capsys, ["stylize", "tubingen", "starry_night", "-o", str(out), "--device", device], reason.reason)
    assert err.strip().splitlines() == [f"python -m nstlib stylize: error: --device {reason.label}: {reason.reason}"]
    assert not out.exists()
