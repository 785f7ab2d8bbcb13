"""Widgets the notebooks share: an image picker (a registry image or an upload) and the log-scale
weight slider. The explorers themselves live in the notebooks, over tested library functions
(nstlib.stylize first, notebook 03)."""
from __future__ import annotations

import io

import ipywidgets as widgets
import torch
from PIL import Image

from . import data
from .images import ImageError, load_image

UPLOAD = "(my upload)"
FROM_PATH = "(path or URL)"
UPLOAD_NOTE = "uploads over ~1 MB can fail on Colab: give a path or URL instead"


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """A FileUpload's value as [(file name, bytes)], from either format: ipywidgets 8 gives a tuple
    of dicts with 'name' and 'content' (a memoryview); ipywidgets 7 (what Colab ships) a dict
    {name: {'metadata': {...}, 'content': bytes}}."""
    if not value:
        return []
    if isinstance(value, dict):  # ipywidgets 7
        return [(entry.get("metadata", {}).get("name", name), bytes(entry["content"])) for name, entry in value.items()]
    return [(entry["name"], bytes(entry["content"])) for entry in value]  # ipywidgets 8


def _decode(payload: bytes, name: str) -> Image.Image:
    try:
        pil = Image.open(io.BytesIO(payload))
        pil.load()
    except Exception:  # noqa: BLE001 - any decoding failure means the same to the learner
        raise ImageError(f"{name}: not an image file that Pillow can read") from None
    return pil


class ImagePicker:
    """A drop-down of the registry's images of one kind, an upload button, and a path/URL field.

        picker = ImagePicker("content", value="tubingen")
        display(picker.widget)
        x = picker.image(max_size=256)   # (1, 3, H, W): the upload or the path/URL if one was chosen

    Uploading a file selects it, entering a path or an https URL selects that; choosing a name in
    the list goes back to the registry. Works with ipywidgets 7.7 (Colab) and 8.
    """

    def __init__(self, kind: str, value: str | None = None, description: str | None = None):
        names = data.list_images(kind)  # ValueError for an unknown kind
        if value is not None and value not in names:
            raise ValueError(f"{value!r} is not a registry image of kind {kind!r}; choose from {names}")
        self.dropdown = widgets.Dropdown(options=names + [UPLOAD, FROM_PATH], value=value or names[0],
                                         description=description or kind)
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
        self.upload.observe(self._on_upload, names="value")
        self.path = widgets.Text(placeholder="or a file path / https URL", continuous_update=False)
        self.path.observe(self._on_path, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.dropdown, self.upload, self.path]),
                                    widgets.Label(UPLOAD_NOTE)])

    def _on_upload(self, change) -> None:
        if change["new"]:
            self.dropdown.value = UPLOAD

    def _on_path(self, change) -> None:
        if change["new"].strip():
            self.dropdown.value = FROM_PATH

    @property
    def label(self) -> str:
        files = uploaded_files(self.upload.value)
        if self.dropdown.value == UPLOAD and files:
            return files[0][0]
        if self.dropdown.value == FROM_PATH and self.path.value.strip():
            return self.path.value.strip().rstrip("/").rsplit("/", 1)[-1]
        return self.dropdown.value

    def image(self, *, max_size: int | None = None) -> torch.Tensor:
        """The chosen image as (1, 3, H, W) in [0, 1], its longer side `max_size` if given;
        ImageError if the upload, file or URL is not an image (or cannot be read)."""
        if self.dropdown.value == UPLOAD:
            files = uploaded_files(self.upload.value)
            if not files:
                raise ImageError("no file uploaded yet: click 'upload' or pick a name from the list")
            name, payload = files[0]
            return load_image(_decode(payload, name), max_size=max_size)
        if self.dropdown.value == FROM_PATH:
            source = self.path.value.strip()
            if not source:
                raise ImageError("no path or URL given: type one in the field or pick a name from the list")
            if "://" in source:
                from .download import DownloadError, read_url

                try:
                    payload = read_url(source)
                except (DownloadError, ValueError) as e:
                    raise ImageError(str(e)) from None
                return load_image(_decode(payload, source), max_size=max_size)
            return load_image(source, max_size=max_size)  # a path: load_image's own clear errors
        return load_image(self.dropdown.value, max_size=max_size)


def log_slider(value: float, low: float, high: float, description: str, step: float = 0.25):
    """A FloatLogSlider from `low` to `high` (powers of ten) that updates on release only."""
    import math

    return widgets.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high), step=step,
                                  continuous_update=False, description=description, readout_format=".2g")
