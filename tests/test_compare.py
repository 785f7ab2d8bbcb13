"""`python -m nstlib compare` (nstlib.compare) in tiny mode: 64 px, one pair, few Gatys steps. The CSV,
the images and the grid, the printed means, skipped pairs, resuming (finished rows are not rerun),
quick mode's defaults, and the one-line errors with exit status 2."""
import csv
import shutil
from pathlib import Path

import pytest
from PIL import Image

from nstlib import compare, metrics
from nstlib.__main__ import main

TINY = ["--size", "64", "--steps", "2", "--content", "tubingen", "--style", "the_scream"]


def _rows(out: Path) -> list[dict]:
    with open(out / "compare.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def calls(monkeypatch):
    """Every (method, pair label) the runner stylises, in order."""
    made = []
    real = compare.Runner.call

    def call(self, method, pair, content, style):
        made.append((method, pair.label))
        return real(self, method, pair, content, style)

    monkeypatch.setattr(compare.Runner, "call", call)
    return made


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_tiny_run_writes_csv_grid_and_table_then_resumes(tmp_path, capsys, calls):
    out = tmp_path / "cmp"
    code, text, err = _run(["compare", "-o", str(out), "--methods", "gatys", "adain", *TINY], capsys)
    assert code == 0, err
    assert calls == [("gatys", "tubingen x the_scream"), ("adain", "tubingen x the_scream")]
    rows = _rows(out)
    assert [(r["method"], r["content"], r["style"], r["status"]) for r in rows] == [
        ("gatys", "tubingen", "the_scream", "done"), ("adain", "tubingen", "the_scream", "done")]
    assert list(rows[0]) == compare.COLUMNS
    for r in rows:
        assert r["max_size"] == "64" and float(r["seconds"]) > 0
        for name in metrics.METRICS:
            float(r[name])  # every metric filled in
        assert 0 < float(r["ssim"]) < 1 and float(r["gram"]) > 0
    assert rows[0]["steps"] == "2" and rows[1]["steps"] == ""
    for method in ("gatys", "adain"):
        with Image.open(out / "images" / f"{method}__tubingen__the_scream.png") as im:
            assert max(im.size) == 64
    with Image.open(out / "grid.png") as grid:
        assert grid.size[0] > grid.size[1] > 100  # one row, four columns
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["method", "done", "skip"] and "gatys_steps" not in text
    gatys = next(line for line in lines if line.startswith("gatys"))
    assert f"{float(rows[0]['ssim']):.4f}" in gatys

    # resume: the same command runs nothing; a new method runs only itself
    calls.clear()
    code, _, err = _run(["compare", "-o", str(out), "--methods", "gatys", "adain", *TINY], capsys)
    assert code == 0, err
    assert calls == []
    assert _rows(out) == rows
    code, text, err = _run(["compare", "-o", str(out), "--methods", "gatys", "adain", "johnson", *TINY], capsys)
    assert code == 0, err
    assert calls == [("johnson", "tubingen x the_scream")]
    assert [r["method"] for r in _rows(out)] == ["gatys", "adain", "johnson"]
    assert _rows(out)[:2] == rows  # finished rows kept as they were

    # a row removed from the CSV (an interrupted run) is redone, the others not
    with open(out / "compare.csv", newline="") as f:
        kept = list(csv.DictReader(f))[1:]
    compare.write_rows(out / "compare.csv", kept)
    calls.clear()
    assert _run(["compare", "-o", str(out), "--methods", "gatys", "adain", *TINY], capsys)[0] == 0
    assert calls == [("gatys", "tubingen x the_scream")]


def test_cnnmrf_runs_coarse_to_fine(tmp_path, capsys, monkeypatch):
    """CNNMRF runs its pyramid, `steps` per scale: at full size alone it returned two photos unchanged."""
    from nstlib import mrf

    stages, real = [], mrf.mrf_transfer

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        stages.append([(size, len(r.history["total"])) for size, r in result.stages])
        return result

    monkeypatch.setattr(mrf, "mrf_transfer", spy)
    code, _, err = _run(["compare", "-o", str(tmp_path / "cmp"), "--methods", "cnnmrf", "--size", "128",
                         *TINY[2:]], capsys)
    assert code == 0, err
    assert stages == [[(64, 2), (128, 2)]]  # 128 / 4 = 32 px is below the VGG's minimum: left out


def test_cnnmrf_records_its_steps_and_they_guard_a_resume(tmp_path, capsys, calls):
    """CNNMRF (notebook 09) is an optimisation like Gatys: its rows record `steps`, and a resume with
    other steps is refused, naming it."""
    out = tmp_path / "cmp"
    code, text, err = _run(["compare", "-o", str(out), "--methods", "cnnmrf", *TINY], capsys)
    assert code == 0, err
    assert calls == [("cnnmrf", "tubingen x the_scream")]
    (row,) = _rows(out)
    assert (row["method"], row["status"], row["steps"]) == ("cnnmrf", "done", "2")
    assert 0 < float(row["ssim"]) <= 1 and 0 < float(row["patch_sim"]) <= 1
    assert "2 L-BFGS steps" in text
    with Image.open(out / "images" / "cnnmrf__tubingen__the_scream.png") as im:
        assert max(im.size) == 64
    code, _, err = _run(["compare", "-o", str(out), "--methods", "cnnmrf", *TINY[:2], "--steps", "3", *TINY[4:]],
                        capsys)
    assert code == 2 and "holds cnnmrf results with --steps 2, not 3" in err


def test_methods_without_the_style_are_skipped_and_said_so(tmp_path, capsys, calls):
    out = tmp_path / "cmp"
    code, text, err = _run(["compare", "-o", str(out), "--methods", "johnson", "stylebank", "--size", "64",
                            "--content", "chelsea", "--style", "woman_with_hat_matisse"], capsys)
    assert code == 0, err
    assert calls == []
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert "no Johnson network for woman_with_hat_matisse" in rows[0]["note"]
    assert "no StyleBank bank for woman_with_hat_matisse" in rows[1]["note"]
    assert "skipped johnson on chelsea x woman_with_hat_matisse: no Johnson network" in text
    assert (out / "grid.png").is_file()
    assert not (out / "images").exists() or not list((out / "images").iterdir())


def test_quick_mode_is_tiny(tmp_path, capsys, monkeypatch, calls):
    monkeypatch.setenv("NSTLIB_QUICK", "1")
    out = tmp_path / "cmp"
    code, text, err = _run(["compare", "-o", str(out), "--methods", "adain"], capsys)
    assert code == 0, err
    rows = _rows(out)
    assert len(rows) == 2 and {r["max_size"] for r in rows} == {"64"}  # 2 of the 12 held-out pairs, 64 px
    assert rows[0]["content"] == "tubingen"
    assert "2 pairs at 64 px" in text


def test_summary_table_means_by_hand():
    base = {"max_size": 64, "steps": "", "note": "", "seconds": "1"}
    rows = [dict(base, method="adain", content="a", style="b", status="done", **{n: "1" for n in metrics.METRICS}),
            dict(base, method="adain", content="c", style="b", status="done", **{n: "3" for n in metrics.METRICS}),
            dict(base, method="johnson", content="a", style="b", status="skipped", note="no network")]
    table = compare.summary_table(rows, ["adain", "johnson"])
    adain = next(line for line in table.splitlines() if line.startswith("adain")).split()
    assert adain[1:3] == ["2", "0"] and adain[3] == "2" and adain[-1] == "1"
    johnson = next(line for line in table.splitlines() if line.startswith("johnson")).split()
    assert johnson[1:3] == ["0", "1"] and set(johnson[3:]) == {"-"}
    assert "skipped johnson on a x b: no network" in table


def _error(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_one_line_errors(tmp_path, capsys, calls):
    out = tmp_path / "cmp"
    assert main(["compare", "-o", str(out), "--methods", "adain", *TINY]) == 0
    capsys.readouterr()
    before = (out / "compare.csv").read_bytes()
    # resuming with another size would mix results
    assert "holds results at --max-size 64, not 96" in _error(
        ["compare", "-o", str(out), "--methods", "adain", "--size", "96", "--content", "tubingen",
         "--style", "the_scream"], capsys)
    assert (out / "compare.csv").read_bytes() == before
    # an output folder that is a file; a CSV that is not a comparison table
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file" in _error(["compare", "-o", str(afile), *TINY], capsys)
    other = tmp_path / "other"
    other.mkdir()
    (other / "compare.csv").write_text("a,b\n1,2\n")
    assert "is not a comparison table" in _error(["compare", "-o", str(other), "--methods", "adain", *TINY], capsys)
    # an output that is an input
    photo = tmp_path / "in" / "grid.png"
    photo.parent.mkdir()
    shutil.copy(out / "images" / "adain__tubingen__the_scream.png", photo)
    before = photo.read_bytes()
    assert "would overwrite the content" in _error(
        ["compare", "-o", str(photo.parent), "--methods", "adain", "--size", "64", "--content", str(photo),
         "--style", "the_scream"], capsys)
    assert photo.read_bytes() == before
    # unknown inputs and methods
    assert "neither a file nor a registry name" in _error(["compare", "-o", str(out), "--content", "nosuch"], capsys)
    with pytest.raises(SystemExit) as e:
        main(["compare", "-o", str(out), "--methods", "cyclegan"])
    assert e.value.code == 2
    assert calls == [("adain", "tubingen x the_scream")]  # only the first, successful run stylised
