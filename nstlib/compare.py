"""Every method of the course on the same content x style pairs, measured by nstlib.metrics:
`python -m nstlib compare` (notebook 10).

    rows = run_comparison(default_pairs(), ["adain", "johnson"], "runs/compare", max_size=256)

writes, in the output folder,

    compare.csv     one row per method x pair: method, content, style, max_size, steps, status, note,
                    seconds, then one column per metric (nstlib.metrics.METRICS)
    images/         each result, <method>__<content>__<style>.png (what the grid is made of)
    grid.png        rows: pairs; columns: content, style, then the methods

and returns the rows. Resumable: a (method, content, style) row already in compare.csv, done or
skipped, is not run again (so an interrupted run picks up where it stopped); the CSV is rewritten
atomically after every cell.

The methods, all offline once their weights are local:

    gatys      nstlib.stylize with the course preset, `steps` L-BFGS iterations from the content photo
    cnnmrf     nstlib.mrf.mrf_transfer (Li & Wand's patches, notebook 09) with its default weights and its
               coarse-to-fine pyramid (max_size / 4, / 2, max_size), `steps` L-BFGS iterations per scale from
               the content photo. Not Gatys' budget of `steps` at full size alone: that budget failed.
               Without the pyramid, fixed-step L-BFGS on the saw-tooth MRF energy climbed above its start on
               chelsea x la_muse and chelsea x woman_with_hat_matisse at 256 px and never came back in 100
               iterations, so the lowest-loss image was the photo itself; the pyramid's upsampled start
               descends on all twelve default pairs. `seconds` shows what the extra scales cost.
    adain      nstlib.adain.pretrained(): the shipped VGG-16 decoder, any style, alpha = 1
    stylebank  nstlib.stylebank.pretrained(): only the styles it has banks for (by registry name)
    johnson    nstlib.johnson.pretrained(): Engstrom's ml5 networks la_muse, scream (the_scream),
               wreck (shipwreck), only for pairs whose style is one of those paintings (by registry name)

A method without the pair's style gets a row with status 'skipped' and the reason in `note`, and an
empty cell in the grid. Content and style are loaded with their longer side `max_size`; a result of
another size (AdaIN's decoder rounds to multiples of 8) is resized to the content's for the metrics.
`seconds` is one call's wall time by nstlib.metrics.time_callable: feed-forward methods after one
warm-up call, Gatys without (its first call is the measurement), model loading excluded.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import metrics
from .files import atomic_write
from .datasets import HELD_OUT

METHODS = ("gatys", "cnnmrf", "adain", "stylebank", "johnson")
OPTIMISED = ("gatys", "cnnmrf")  # the methods that run `steps` iterations per image (the rest: one forward pass)
CSV_NAME, GRID_NAME, IMAGES_DIR = "compare.csv", "grid.png", "images"
COLUMNS = ["method", "content", "style", "max_size", "steps", "status", "note", "seconds", *metrics.METRICS]


@dataclass(frozen=True)
class Pair:
    content: str  # a registry name or an image file
    style: str

    @property
    def content_name(self) -> str:
        return _name(self.content)

    @property
    def style_name(self) -> str:
        return _name(self.style)

    @property
    def label(self) -> str:
        return f"{self.content_name} x {self.style_name}"


def _name(source: str) -> str:
    from . import data

    return source if source in data.registry() else Path(source).stem


def default_pairs() -> list[Pair]:
    """The held-out registry pairs (nstlib.datasets.HELD_OUT): 3 photos x 4 paintings. No shipped model
    saw the photos in training; the paintings were left out (by name) of the style images AdaIN's decoder
    was trained on, while StyleBank and the Johnson networks have a bank or a network only for paintings
    they were trained on."""
    return [Pair(c, s) for c in HELD_OUT["content"] for s in HELD_OUT["style"]]


def check_methods(methods: Sequence[str]) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


# ----------------------------------------------------------------------------- the methods

class Runner:
    """Loads each method's model once, on first use, and stylises a pair with it."""

    def __init__(self, max_size: int, steps: int, device: torch.device):
        self.max_size, self.steps, self.device = max_size, steps, device
        self._models: dict = {}

    def skip_reason(self, method: str, pair: Pair) -> str | None:
        """Why `method` cannot do this pair (it lacks the style), or None."""
        from . import data

        registry = pair.style in data.registry()
        if method == "stylebank":
            names = self._model("stylebank").style_names
            if not registry or pair.style not in names:
                return f"no StyleBank bank for {pair.style_name} (it has {', '.join(names)})"
        if method == "johnson" and (not registry or self._johnson_style(pair.style) is None):
            have = ", ".join(s.registry for s in _ml5_styles() if s.registry)
            return f"no Johnson network for {pair.style_name} (offline: {have})"
        return None

    @staticmethod
    def _johnson_style(style: str) -> str | None:
        return next((s.name for s in _ml5_styles() if s.registry == style), None)

    def _model(self, key: str):
        if key not in self._models:
            from . import adain, johnson, stylebank

            if key == "adain":
                model = adain.pretrained()
            elif key == "stylebank":
                model = stylebank.pretrained()
            else:  # ("johnson", ml5 style)
                model = johnson.pretrained(key[1])
            self._models[key] = model.to(self.device).eval()
        return self._models[key]

    def call(self, method: str, pair: Pair, content: torch.Tensor, style: torch.Tensor) -> Callable[[], torch.Tensor]:
        """A function that stylises content (1, 3, H, W) with style, both on the device."""
        if method == "gatys":
            from .features import load_vgg
            from .stylize import stylize

            vgg = load_vgg(device=self.device)
            return lambda: stylize(content, style, max_size=self.max_size, steps=self.steps, vgg=vgg, progress=False).image
        if method == "cnnmrf":
            from .features import load_vgg
            from .mrf import mrf_transfer

            vgg = load_vgg(device=self.device)
            return lambda: mrf_transfer(content, style, max_size=self.max_size, steps=self.steps, vgg=vgg,
                                        progress=False).image
        if method == "adain":
            model = self._model("adain")
            return _no_grad(lambda: model(content, style))
        if method == "stylebank":
            model = self._model("stylebank")
            i = model.style_id(pair.style)
            return _no_grad(lambda: model(content, i).clamp(0, 1))
        model = self._model(("johnson", self._johnson_style(pair.style)))
        return _no_grad(lambda: model(content))


def _ml5_styles():
    from .johnson import ML5_STYLES

    return ML5_STYLES.values()


def _no_grad(fn):
    def run():
        with torch.no_grad():
            return fn()
    return run


# ----------------------------------------------------------------------------- the CSV

def image_path(out_dir: Path, method: str, pair: Pair) -> Path:
    return Path(out_dir) / IMAGES_DIR / f"{method}__{pair.content_name}__{pair.style_name}.png"


def output_paths(out_dir: str | os.PathLike, methods: Sequence[str], pairs: Sequence[Pair]) -> list[Path]:
    """Every file a comparison may write: the CSV, the grid and each result image."""
    out_dir = Path(out_dir)
    return [out_dir / CSV_NAME, out_dir / GRID_NAME] + [image_path(out_dir, m, p) for m in methods for p in pairs]


def read_rows(path: Path) -> list[dict]:
    """The rows of an existing compare.csv ([] when there is none); a file that is not one is an error."""
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("method", "content", "style", "max_size", "steps", "status") if c not in (reader.fieldnames or [])]
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path} is not a comparison table ({e}); choose another output folder") from None
    if missing:
        raise ValueError(f"{path} is not a comparison table (no column {', '.join(missing)}); "
                         "choose another output folder")
    return rows


def write_rows(path: Path, rows: Sequence[dict]) -> None:
    """Write the CSV beside its place, then rename: an interruption leaves the previous table."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _key(row: dict) -> tuple[str, str, str]:
    return row["method"], row["content"], row["style"]


def _check_settings(rows: Sequence[dict], path: Path, max_size: int, steps: int) -> None:
    for row in rows:
        if str(row["max_size"]) != str(max_size):
            raise ValueError(f"{path} holds results at --max-size {row['max_size']}, not {max_size}; use the same size to "
                             "resume, or another output folder")
        if row["method"] in OPTIMISED and row["status"] == "done" and str(row["steps"]) != str(steps):
            raise ValueError(f"{path} holds {row['method']} results with --steps {row['steps']}, not {steps}; use the "
                             "same steps to resume, or another output folder")


# ----------------------------------------------------------------------------- the run

def run_comparison(pairs: Sequence[Pair], methods: Sequence[str], out_dir: str | os.PathLike, max_size: int = 256,
                   steps: int = 100, device: str | torch.device | None = None, progress: bool = True,
                   vgg=None) -> list[dict]:
    """Run `methods` on `pairs` at `max_size` (longer side), measure every result, write compare.csv,
    the images and grid.png into `out_dir` (see the module docstring); returns the rows of the CSV
    for these methods and pairs, in order. Cells already in the CSV are kept, not rerun."""
    from .features import load_vgg
    from .images import load_image, resize, save_image
    from .runtime import get_device

    methods = check_methods(methods)
    if not pairs:
        raise ValueError("give at least one content x style pair")
    device = get_device(device) if not isinstance(device, torch.device) else device
    out_dir = Path(out_dir)
    csv_path = out_dir / CSV_NAME
    rows = read_rows(csv_path)
    _check_settings(rows, csv_path, max_size, steps)
    done = {_key(r): r for r in rows}
    cells = [(m, p) for p in pairs for m in methods]
    todo = [(m, p) for m, p in cells if (m, p.content_name, p.style_name) not in done]

    runner = Runner(max_size, steps, device)
    vgg = vgg if vgg is not None else (load_vgg(device=device) if todo else None)
    loaded: dict[str, torch.Tensor] = {}

    def image(source: str) -> torch.Tensor:
        if source not in loaded:
            loaded[source] = load_image(source, max_size=max_size).to(device)
        return loaded[source]

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="compare", unit="result")
    try:
        for method, pair in todo:
            if bar is not None:
                bar.set_postfix_str(f"{method}: {pair.label}")
            row = {"method": method, "content": pair.content_name, "style": pair.style_name, "max_size": max_size,
                   "steps": steps if method in OPTIMISED else "", "status": "done", "note": "", "seconds": ""}
            reason = runner.skip_reason(method, pair)
            if reason is not None:
                row.update(status="skipped", note=reason)
            else:
                content, style = image(pair.content), image(pair.style)
                warmup = 0 if method in OPTIMISED else 1
                timed = metrics.time_callable(runner.call(method, pair, content, style), warmup=warmup, repeats=1,
                                              device=device)
                out = timed["result"].detach().float().clamp(0, 1)
                if out.shape[-2:] != content.shape[-2:]:
                    out = resize(out, size=tuple(content.shape[-2:]))
                save_image(out, image_path(out_dir, method, pair))
                values = metrics.evaluate(out, content, style, vgg=vgg)
                row.update(seconds=f"{timed['seconds']:.4g}", **{k: f"{v:.6g}" for k, v in values.items()})
            rows.append(row)
            done[_key(row)] = row
            write_rows(csv_path, rows)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    selected = [done[(m, p.content_name, p.style_name)] for m, p in cells]
    save_grid(out_dir, methods, pairs, image)
    return selected


def save_grid(out_dir: Path, methods: Sequence[str], pairs: Sequence[Pair], image: Callable[[str], torch.Tensor]) -> Path:
    """grid.png: one row per pair (content, style, then each method's result; empty where skipped)."""
    import matplotlib.pyplot as plt

    from .images import load_image
    from .plotting import image_grid

    rows = []
    for p in pairs:
        cells = [image(p.content).cpu(), image(p.style).cpu()]
        for m in methods:
            path = image_path(out_dir, m, p)
            cells.append(load_image(path) if path.is_file() else None)
        rows.append(cells)
    fig = image_grid(rows, row_labels=[f"{p.content_name}\nx {p.style_name}" for p in pairs], col_labels=["content", "style", *methods], inches=2.0)
    path = Path(out_dir) / GRID_NAME
    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path


# ----------------------------------------------------------------------------- the printed table

def summary_table(rows: Sequence[dict], methods: Sequence[str]) -> str:
    """Per-method means of every metric and of the seconds over the pairs it did, with how many it
    skipped; the directions below the table."""
    names = list(metrics.METRICS) + ["seconds"]
    header = f"{'method':<10} {'done':>4} {'skip':>4} " + " ".join(f"{n:>{_width(n)}}" for n in names)
    lines = [header, "-" * len(header)]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        ok = [r for r in mine if r["status"] == "done"]
        cells = []
        for n in names:
            values = [float(r[n]) for r in ok if r.get(n) not in (None, "")]
            cells.append(f"{_format(sum(values) / len(values)) if values else '-':>{_width(n)}}")
        lines.append(f"{method:<10} {len(ok):>4} {len(mine) - len(ok):>4} " + " ".join(cells))
    higher = [n for n, (_, _, b) in metrics.METRICS.items() if b == "higher"]
    lines.append(f"means over the pairs each method did; higher is better for {', '.join(higher)}, "
                 "lower for the others (nstlib.metrics)")
    skipped = [r for r in rows if r["status"] == "skipped"]
    for r in skipped:
        lines.append(f"skipped {r['method']} on {r['content']} x {r['style']}: {r['note']}")
    return "\n".join(lines)


def _width(name: str) -> int:
    return max(len(name), 9)


def _format(v: float) -> str:
    if v == 0 or (1e-3 <= abs(v) < 1e5):
        return f"{v:.4g}" if abs(v) >= 1 else f"{v:.4f}"
    return f"{v:.3e}" if math.isfinite(v) else str(v)
