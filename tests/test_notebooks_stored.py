"""The notebooks are committed as the course design asks: executed top to bottom, outputs kept,
no errors, noisy metadata stripped, a few MB at most. (nbval executes them again in quick mode.)"""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert None not in counts, "some cells were never executed"
    assert counts == list(range(1, len(code) + 1)), "not executed top to bottom in one run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"stored error output: {errors[0].get('ename')}"
    assert "widgets" not in nb.metadata and all("execution" not in c.metadata for c in nb.cells), \
        "run notebooks/clean_metadata.py"
    assert path.stat().st_size < 3_000_000, "figures too large: use nstlib.plotting.notebook_style()"
    first = nb.cells[0].source
    assert first.startswith(f"# {path.name[:2]} · ") and "colab.research.google.com" in first
    printed = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "| full mode" in printed, "the stored outputs must come from a full-mode run (describe())"
    for root in ("/home/", "/Users/", "/root/", "/tmp/", "/work/", "C:\\"):  # no machine path in stored outputs
        assert root not in printed, f"a stored output shows a machine path ({root}...)"
    sources = "\n".join(c.source for c in nb.cells)
    for heading in ("## Learning goals", "## Setup", "## Summary"):
        assert heading in sources, heading


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if not p.name.startswith("00_")], ids=lambda p: p.name)
def test_notebook_has_a_graded_exercise_and_a_questionnaire(path):
    """Every notebook 01-10: the learner writes a core piece, checked by nstlib.exercises, and the
    notebook ends with questions whose answers are collapsed."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "from nstlib.exercises import check" in code and 'check("' in code
    questions = text.split("## Questionnaire", 1)
    assert len(questions) == 2, "no questionnaire"
    assert questions[1].count("<details><summary>Answer</summary>") >= 4


def test_clean_metadata_keeps_the_run_time_and_the_runtime_line(tmp_path):
    import sys

    sys.path.insert(0, str(NOTEBOOKS[0].parent))
    from clean_metadata import clean

    line = "nstlib 0.1.0 | torch 2 | python 3 | device cpu (2 cores, 2 threads) | full mode"
    cells = [nbformat.v4.new_code_cell("print(nstlib.describe())", execution_count=1,
                                       outputs=[nbformat.v4.new_output("stream", name="stdout", text=line + "\n")]),
             nbformat.v4.new_code_cell("x = 1", execution_count=2)]
    for cell, (start, end) in zip(cells, [("10:00:00.5", "10:00:02.0"), ("10:00:03", "10:01:03")]):
        cell.metadata["execution"] = {"iopub.execute_input": f"2026-11-30T{start}Z",
                                      "shell.execute_reply": f"2026-11-30T{end}Z"}
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    clean(str(path))
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["nstlib"] == {"run_seconds": 62, "runtime": line}  # 1.5 s + 60 s, rounded
    assert all("execution" not in c.metadata for c in nb.cells)
    clean(str(path))  # no timestamps left: the record stays
    assert nbformat.read(path, as_version=4).metadata["nstlib"]["run_seconds"] == 62


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_run_time_is_recorded_from_a_full_mode_run(path):
    """Notebook 00's table reads these records: every stored notebook carries its run's time."""
    record = nbformat.read(path, as_version=4).metadata.get("nstlib")
    assert record is not None, "run notebooks/clean_metadata.py on the raw executed notebook"
    assert record["run_seconds"] > 0 and record["runtime"].endswith("| full mode")
