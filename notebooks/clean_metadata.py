"""Strip the noisy metadata an execution leaves in notebooks, keeping their outputs and their run time.

    python notebooks/clean_metadata.py notebooks/*.ipynb

Removes per-cell execution timestamps, widget state (random model ids that change on every run)
and the widget outputs that need it (progress bars, sliders: without their state they show only
placeholder text), and kernel/interpreter versions, so a re-executed notebook diffs only where its
outputs changed.

Before the timestamps go, their sum is kept: `metadata["nstlib"]` records the seconds the stored run
spent executing code cells and the runtime line that run printed (`nstlib.describe()`: device, cores,
mode). Notebook 00 tabulates them. A notebook without timestamps (cleaned before, or edited without
running) keeps the record it has.
"""
import sys
from datetime import datetime

import nbformat


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def run_record(nb) -> dict | None:
    """{'run_seconds', 'runtime'} from the cells' execution timestamps, or None if there are none."""
    seconds, timed, runtime = 0.0, False, None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        stamps = cell.metadata.get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            seconds += (_time(stamps["shell.execute_reply"]) - _time(stamps["iopub.execute_input"])).total_seconds()
            timed = True
        for output in cell.outputs:
            text = output.get("text", "")
            if runtime is None and text.startswith("nstlib ") and "| device " in text:
                runtime = text.splitlines()[0]
    if not timed:
        return None
    return {"run_seconds": round(seconds), "runtime": runtime}


def clean(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    record = run_record(nb) or nb.metadata.get("nstlib")
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    if record:
        nb.metadata["nstlib"] = record
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs
                        if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]
        for output in cell.outputs:
            output.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        clean(notebook)
