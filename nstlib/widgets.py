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


class ImagePicker:
    """A drop-down of the registry's images of one kind, plus an upload button.

        picker = ImagePicker("content", value="tubingen")
        display(picker.widget)
        x = picker.image(max_size=256)   # (1, 3, H, W): the upload if one was chosen

    Uploading a file selects it; choosing a name in the list goes back to the registry.
    """

    def __init__(self, kind: str, value: str | None = None, description: str | None = None):
        names = data.list_images(kind)  # ValueError for an unknown kind
        if value is not None and value not in names:
            raise ValueError(f"{value!r} is not a registry image of kind {kind!r}; choose from {names}")
        self.dropdown = widgets.Dropdown(options=names + [UPLOAD], value=value or names[0],
                                         description=description or kind)
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
        self.upload.observe(self._on_upload, names="value")
        self.widget = widgets.HBox([self.dropdown, self.upload])

    def _on_upload(self, change) -> None:
        if change["new"]:
            self.dropdown.value = UPLOAD

    @property
    def label(self) -> str:
        if self.dropdown.value == UPLOAD and self.upload.value:
            return self.upload.value[0]["name"]
        return self.dropdown.value

    def image(self, max_size: int | None = None) -> torch.Tensor:
        """The chosen image as (1, 3, H, W) in [0, 1]; ImageError if the upload is not an image."""
        if self.dropdown.value != UPLOAD:
            return load_image(self.dropdown.value, max_size=max_size)
        if not self.upload.value:
            raise ImageError("no file uploaded yet: click 'upload' or pick a name from the list")
        upload = self.upload.value[0]  # ipywidgets 8: a tuple of dicts with name and content
        try:
            pil = Image.open(io.BytesIO(bytes(upload["content"])))
            pil.load()
        except Exception:  # noqa: BLE001 - any decoding failure means the same to the learner
            raise ImageError(f"{upload['name']}: not an image file that Pillow can read") from None
        return load_image(pil, max_size=max_size)


def log_slider(value: float, low: float, high: float, description: str, step: float = 0.25):
    """A FloatLogSlider from `low` to `high` (powers of ten) that updates on release only."""
    import math

    return widgets.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high), step=step,
                                  continuous_update=False, description=description, readout_format=".2g")
