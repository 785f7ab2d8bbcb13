"""nstlib.widgets: the image picker (registry or upload) and the log slider."""
import datetime
import io

import pytest
import torch
from PIL import Image

from nstlib.images import ImageError
from nstlib.widgets import UPLOAD, ImagePicker, log_slider


def _upload(picker, name, payload):
    picker.upload.value = ({"name": name, "type": "image/png", "size": len(payload),
                            "content": memoryview(payload), "last_modified": datetime.datetime(2026, 1, 1)},)


def test_picker_loads_the_chosen_registry_image():
    picker = ImagePicker("style", value="starry_night")
    assert "the_scream" in picker.dropdown.options and UPLOAD in picker.dropdown.options
    x = picker.image(max_size=64)
    assert x.shape[0] == 1 and max(x.shape[-2:]) == 64
    assert picker.label == "starry_night"


def test_an_upload_is_selected_and_loaded():
    picker = ImagePicker("content")
    buf = io.BytesIO()
    Image.new("RGB", (50, 40), (255, 0, 0)).save(buf, format="PNG")
    _upload(picker, "red.png", buf.getvalue())
    assert picker.dropdown.value == UPLOAD and picker.label == "red.png"
    x = picker.image()
    assert x.shape == (1, 3, 40, 50)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    picker.dropdown.value = "tubingen"  # back to the registry
    assert picker.image(max_size=48).shape[-1] == 48


def test_bad_uploads_and_names_get_clear_errors():
    picker = ImagePicker("content")
    picker.dropdown.value = UPLOAD
    with pytest.raises(ImageError, match="no file uploaded"):
        picker.image()
    _upload(picker, "notes.png", b"not pixels")
    with pytest.raises(ImageError, match="notes.png: not an image"):
        picker.image()
    with pytest.raises(ValueError, match="not a registry image"):
        ImagePicker("content", value="starry_night")
    with pytest.raises(ValueError, match="kind must be one of"):
        ImagePicker("sculpture")


def test_log_slider_spans_powers_of_ten():
    s = log_slider(1e3, 1e1, 1e5, "style")
    assert (s.min, s.max, s.value, s.continuous_update) == (1.0, 5.0, 1e3, False)
