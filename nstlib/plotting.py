"""Figures for the notebooks: image grids with row and column labels, loss curves, a live view.

`nstlib.images.show_images` is the simple grid (one caption per image); `image_grid` lays out
experiments the way the papers' figures do (Gatys et al. 2016, Fig. 1 and 3): rows and columns
with labels. `plot_losses` draws an optimisation history on a log scale. `LiveView` is a callback
for `nstlib.optimize.optimize_image` that redraws one figure in place (image + loss curve) instead
of appending a new figure to the notebook's output at every update.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .images import as_display_array


def image_grid(rows: Sequence[Sequence], row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, inches: float = 2.5, title: str | None = None):
    """A figure of images in rows and columns (None leaves a cell empty), each row `inches` high;
    returns the Figure."""
    import matplotlib.pyplot as plt

    nrows, ncols = len(rows), max(len(r) for r in rows)
    cells = [[as_display_array(im) if im is not None else None for im in r] for r in rows]
    aspect = max(a.shape[1] / a.shape[0] for r in cells for a in r if a is not None)
    fig, axes = plt.subplots(nrows, ncols, figsize=(inches * aspect * ncols, inches * nrows + 0.4),
                             squeeze=False)
    for i in range(nrows):
        for j in range(ncols):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(cells[i]) and cells[i][j] is not None:
                ax.imshow(cells[i][j])
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=10)
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_losses(histories: Mapping[str, Sequence[float]] | Mapping[str, Mapping[str, Sequence[float]]],
                keys: Sequence[str] | None = None, x: str = "iteration", ax=None,
                title: str | None = None, every: int = 1):
    """Loss curves on a log scale; returns the Axes.

    histories: one history (`result.history`: key -> values per iteration) or several by label
    ({'L-BFGS': result1.history, 'Adam': result2.history}). keys: which entries to draw (default
    every loss, i.e. all but 'seconds'); x: 'iteration' or 'seconds' (wall time). every: how many
    iterations each value stands for (a training record's 'curve_window', whose curves are means
    over windows of that many steps): value k is drawn at iteration k * every, the window's last.
    NaN entries (steps that did not compute that loss) are skipped and the line joins the others.
    """
    import matplotlib.pyplot as plt

    if histories and all(isinstance(v, Mapping) for v in histories.values()):
        runs = dict(histories)
    else:
        runs = {"": histories}
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, history in runs.items():
        names = keys or [k for k in history if k != "seconds"]
        for name in names:
            values = np.asarray(history[name], dtype=float)
            if x == "seconds":
                xs = np.asarray(history["seconds"], dtype=float)
            else:
                xs = np.arange(1, len(values) + 1) * every
            # NaN marks a loss that a step did not compute (StyleBank's branches alternate): the
            # line joins the computed points instead of breaking at every gap; <= 0 has no log
            keep = np.isfinite(values) & (values > 0)
            ax.plot(xs[keep], values[keep], label=" ".join(filter(None, [label, name])))
    ax.set_yscale("log")
    ax.set_xlabel("optimizer iteration" if x == "iteration" else "seconds")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


class LiveView:
    """An `optimize_image` callback that shows the current image and loss curve in one figure,
    redrawn in place every `every` calls and at step `last` (one output, not one per update)."""

    def __init__(self, every: int = 10, title: str = "", last: int | None = None):
        self.every, self.title, self.last = max(1, every), title, last
        self.steps: list[int] = []
        self.losses: list[float] = []
        self._handle = None

    def __call__(self, step: int, image, losses: Mapping[str, float]) -> None:
        self.steps.append(step)
        self.losses.append(losses["total"])
        if len(self.steps) % self.every == 0 or step == self.last:
            self.draw(image)

    def draw(self, image) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig, (ax_img, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.5),
                                              gridspec_kw={"width_ratios": [1.3, 1]})
        ax_img.imshow(as_display_array(image))
        ax_img.set_axis_off()
        ax_img.set_title(f"{self.title} step {self.steps[-1]}".strip(), fontsize=10)
        ax_loss.plot(self.steps, self.losses)
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("optimizer iteration")
        ax_loss.set_ylabel("total loss")
        ax_loss.grid(True, alpha=0.3)
        fig.tight_layout()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


def notebook_style(dpi: int = 80, image_format: str = "jpeg") -> None:
    """Figure defaults for the course's notebooks: a modest resolution and JPEG figure outputs
    (photos and paintings compress about 10x better than PNG), so a notebook stays a few MB."""
    import matplotlib.pyplot as plt

    plt.rcParams["figure.dpi"] = dpi
    try:
        from IPython import get_ipython
    except ImportError:
        return
    if get_ipython() is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats(image_format)
