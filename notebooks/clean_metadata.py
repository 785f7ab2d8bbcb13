"""Strip the noisy metadata an execution leaves in notebooks, keeping their outputs.

    python notebooks/clean_metadata.py notebooks/*.ipynb

Removes per-cell execution timestamps, widget state (random model ids that change on every run)
and the widget outputs that need it (progress bars, sliders: without their state they show only
placeholder text), and kernel/interpreter versions, so a re-executed notebook diffs only where its
outputs changed.
"""
import sys

import nbformat


def clean(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
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
