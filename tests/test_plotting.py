"""nstlib.plotting: grids with labels, log-scale loss curves, the in-place live view."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from nstlib.plotting import LiveView, image_grid, notebook_style, plot_losses


def test_image_grid_lays_out_rows_columns_and_labels():
    img = torch.rand(1, 3, 40, 60)
    fig = image_grid([[img, img, img], [img, None]], row_labels=["a", "b"], col_labels=["x", "y", "z"])
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["x", "y", "z"]
    assert axes[0, 0].get_ylabel() == "a" and axes[1, 0].get_ylabel() == "b"
    assert len(axes[1, 1].images) == 0 and len(axes[1, 2].images) == 0  # None and missing cells stay empty
    assert len(axes[0, 2].images) == 1 and axes[0, 2].images[0].get_array().shape == (40, 60, 3)
    plt.close(fig)


def test_plot_losses_single_and_several_runs():
    history = {"content": [10.0, 5.0, 1.0], "style": [4.0, 2.0, 0.0], "total": [14.0, 7.0, 1.0],
               "seconds": [0.1, 0.2, 0.3]}
    ax = plot_losses(history)
    assert ax.get_yscale() == "log"
    assert [l.get_label() for l in ax.get_lines()] == ["content", "style", "total"]  # not 'seconds'
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [4.0, 2.0])  # zero cannot be drawn on a log scale
    plt.close(ax.figure)
    ax = plot_losses({"L-BFGS": history, "Adam": history}, keys=["total"], x="seconds")
    assert [l.get_label() for l in ax.get_lines()] == ["L-BFGS total", "Adam total"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0.1, 0.2, 0.3])
    assert ax.get_xlabel() == "seconds"
    plt.close(ax.figure)
    ax = plot_losses({"style": [3.0, float("nan"), 2.0, float("nan")]})  # a loss computed every other step
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [1, 3])
    np.testing.assert_allclose(line.get_ydata(), [3.0, 2.0])
    plt.close(ax.figure)
    ax = plot_losses({"style": [3.0, 2.0, 1.5]}, every=25)  # a training record's means over 25 steps
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [25, 50, 75])  # each window's last step
    plt.close(ax.figure)


def test_live_view_draws_every_n_and_at_the_last_step(monkeypatch):
    shown = []

    class Handle:
        def update(self, fig):
            shown.append(("update", fig))

    def fake_display(fig, display_id=False):
        shown.append(("display", fig))
        return Handle()

    monkeypatch.setattr("IPython.display.display", fake_display)
    view = LiveView(every=3, last=7)
    for step in range(1, 8):
        view(step, torch.rand(1, 3, 32, 32), {"total": 1.0 / step})
    # steps 3 and 6 (every 3 calls) and 7 (the last): one display, then in-place updates
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    assert view.steps == list(range(1, 8)) and view.losses[-1] == pytest.approx(1 / 7)
    assert not plt.get_fignums()  # figures are closed after being shown


def test_notebook_style_sets_a_modest_resolution():
    notebook_style(dpi=72)
    assert plt.rcParams["figure.dpi"] == 72
