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
