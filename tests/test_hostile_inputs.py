"""Hostile inputs through the command line (issue 24): each row is an argument list (and the
environment it runs in) that a careless or hostile user might give, and the fragment of the one-line
error it must end with. Every row must exit with status 2, print no traceback, write nothing, and
leave every input file as it was. Small images and few steps: the table runs in seconds."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from nstlib import weights
from nstlib.__main__ import main
from tests.http_server import dead_url

FAST = ["--max-size", "64", "--steps", "1"]
TRAIN_FAST = ["--steps", "1", "--batch-size", "1", "--crop", "32", "--load-size", "32"]


@dataclasses.dataclass
class World:
    """The folders a row works in: `inputs` (checked unchanged), `out` (must stay empty)."""
    root: Path
    inputs: Path
    out: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def photo(self) -> str:
        return str(self.inputs / "photo.png")

    def env(self, name: str, value) -> None:
        self.monkeypatch.setenv(name, str(value))

    def offline_weights(self) -> None:
        """No local weights, and every registry URL refuses connections."""
        for name, e in list(weights.REGISTRY.items()):
            self.monkeypatch.setitem(weights.REGISTRY, name, dataclasses.replace(e, urls=(dead_url(),)))


def _weights_copy(w: World, keep_fraction: float | None = None) -> Path:
    src = Path(os.environ["NSTLIB_WEIGHTS_DIR"]) / "vgg16-caffe-features.pth"
    folder = w.inputs / "weights"
    folder.mkdir()
    blob = src.read_bytes()
    if keep_fraction is not None:
        blob = blob[: int(len(blob) * keep_fraction)]
    (folder / src.name).write_bytes(blob)
    return folder


def truncated_weights(w):
    w.env("NSTLIB_WEIGHTS_DIR", _weights_copy(w, keep_fraction=0.5))
    return ["stylize", w.photo, "starry_night", "-o", str(w.out / "r.png"), *FAST]


def empty_weights_dir_offline(w):
    (w.inputs / "empty").mkdir()
    w.env("NSTLIB_WEIGHTS_DIR", w.inputs / "empty")
    w.offline_weights()
    return ["stylize", w.photo, "starry_night", "-o", str(w.out / "r.png"), *FAST]


def corrupt_image_in_data_dir(w):
    folder = w.inputs / "data" / "style"
    folder.mkdir(parents=True)
    (folder / "starry_night.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" * 10)
    w.env("NSTLIB_DATA_DIR", w.inputs / "data")
    return ["stylize", w.photo, "starry_night", "-o", str(w.out / "r.png"), *FAST]


def cache_is_a_file(command):
    def make(w):
        (w.inputs / "cache").write_text("not a folder")
        w.env("NSTLIB_CACHE_DIR", w.inputs / "cache")
        return ["info"] if command == "info" else stylize()(w)
    return make


def stylize(*extra, output="r.png"):
    return lambda w: ["stylize", w.photo, "starry_night", "-o", str(w.out / output), *FAST, *extra]


def output_is_the_photo(w):
    return ["stylize", w.photo, "starry_night", "-o", w.photo, *FAST, "--force"]


def run_dir_is_a_file(w):
    (w.inputs / "run").write_text("my notes")
    return ["train-adain", "--run-dir", str(w.inputs / "run"), "--content", w.photo, "--style", w.photo, *TRAIN_FAST]


def checkpoint_is_a_folder(w):
    (w.inputs / "run" / "checkpoint.pt").mkdir(parents=True)
    return ["train-adain", "--run-dir", str(w.inputs / "run"), "--content", w.photo, "--style", w.photo, *TRAIN_FAST]


def export_is_a_folder(w):
    (w.inputs / "decoder.pth").mkdir()
    return ["train-adain", "--run-dir", str(w.out / "run"), "--content", w.photo, "--style", w.photo, *TRAIN_FAST,
            "--export", str(w.inputs / "decoder.pth")]


def stylebank_export_is_a_folder(w):
    (w.inputs / "bank.pth").mkdir()
    return ["train-stylebank", "--run-dir", str(w.out / "run"), "--content", w.photo, "--style", w.photo,
            *TRAIN_FAST, "--export", str(w.inputs / "bank.pth")]


def train_adain(*extra):
    return lambda w: ["train-adain", "--run-dir", str(w.out / "run"), "--content", w.photo,
                      "--style", w.photo, *TRAIN_FAST, *extra]


NO_CUDA = not torch.cuda.is_available()

ROWS = [
    # issue 24, 6: tracebacks before
    ("huge --max-size", stylize("--max-size", "100000"), "--max-size/--size: '100000' must be at most 4096 px: the optimisation keeps"),
    ("huge style image", stylize("--max-size", "1000", "--style-scale", "10"), "--style-scale 10 makes the style image 10000 px"),
    ("truncated weights", truncated_weights, "vgg16-caffe-features.pth: sha256 is"),
    ("empty weights dir offline", empty_weights_dir_offline, "Could not download vgg16_weights_tf_dim_ordering"),
    ("corrupt image in NSTLIB_DATA_DIR", corrupt_image_in_data_dir, "NSTLIB_DATA_DIR holds a different file"),
    ("--device meta", stylize("--device", "meta"), "--device meta: nstlib runs on cpu, cuda or mps, not meta"),
    ("--device mps absent", stylize("--device", "mps"), "--device mps: MPS (Apple GPU) is not available here"),
    pytest.param("train-adain --device cuda absent", train_adain("--device", "cuda"),
                 "--device cuda: no CUDA GPU is available here",
                 marks=pytest.mark.skipif(not NO_CUDA, reason="a CUDA GPU is present")),
    # issue 24, 13
    ("style typo", lambda w: ["stylize", w.photo, "starry_nite", "-o", str(w.out / "r.png")],
     "style 'starry_nite' is neither a file nor a registry name; did you mean 'starry_night'?"),
    ("content typo", lambda w: ["stylize", "tubingn", "starry_night", "-o", str(w.out / "r.png")],
     "did you mean 'tubingen'?"),
    # issue 24, 9
    ("info, NSTLIB_CACHE_DIR a file", cache_is_a_file("info"), "NSTLIB_CACHE_DIR={inputs}/cache: {inputs}/cache is a file"),
    ("stylize, NSTLIB_CACHE_DIR a file", cache_is_a_file("stylize"), "point NSTLIB_CACHE_DIR at a folder"),
    # issue 24, 11 and 12
    ("huge --seed", stylize("--seed", "99999999999999999999999"), "--seed: '99999999999999999999999' must be at most"),
    ("negative --seed", train_adain("--seed", "-1"), "--seed: '-1' must be at least 0"),
    ("train --seed too big", train_adain("--seed", str(2**64)), "--seed: '18446744073709551616' must be at most"),
    ("--run-dir a file", run_dir_is_a_file, "--run-dir '{inputs}/run' is a file"),
    ("checkpoint.pt a folder", checkpoint_is_a_folder, "the checkpoint '{inputs}/run/checkpoint.pt' is a folder"),
    ("--export a folder", export_is_a_folder, "--export '{inputs}/decoder.pth' is a folder"),
    ("stylebank --export a folder", stylebank_export_is_a_folder, "--export '{inputs}/bank.pth' is a folder"),
    # issue 24, 2 and 5
    ("-o is the content photo", output_is_the_photo, "is the content image"),
    ("-o .psd", stylize(output="r.psd"), "cannot write images of type .psd"),
    ("-o .fits", stylize(output="r.fits"), "cannot write images of type .fits"),
]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def world(tmp_path, monkeypatch):
    from nstlib import features

    features._cached.cache_clear()  # extractors kept by earlier tests would hide the weights rows
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    w = World(tmp_path, tmp_path / "in", tmp_path / "out", monkeypatch)
    w.inputs.mkdir()
    w.out.mkdir()
    Image.new("RGB", (48, 40), (200, 120, 40)).save(w.photo)
    return w


def _param(row):
    if isinstance(row, type(pytest.param())):
        return pytest.param(*row.values, marks=row.marks, id=row.values[0])
    return pytest.param(*row, id=row[0])


@pytest.mark.parametrize("label, make_argv, fragment", [_param(r) for r in ROWS])
def test_hostile_input_gets_a_one_line_error(world, capsys, label, make_argv, fragment):
    argv = make_argv(world)
    fragment = fragment.format(inputs=world.inputs)
    before = _snapshot(world.inputs)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own checks
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, f"{label}: exit {code}\n{err}"
    assert "Traceback" not in err, err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and fragment in error_lines[0], err
    assert err.rstrip().endswith(error_lines[0].rstrip()), err  # nothing after the error line
    assert _snapshot(world.inputs) == before, "an input changed"
    assert list(world.out.iterdir()) == [], "something was written"
