"""nstlib.widgets: the image picker (registry or upload) and the log slider."""
import datetime
import io

import pytest
import torch
from PIL import Image

from nstlib.images import ImageError
from nstlib.widgets import FROM_PATH, UPLOAD, ImagePicker, log_slider, uploaded_files


def _upload(picker, name, payload):
    """What the browser does: set the FileUpload's value, in the installed ipywidgets' format (8: a
    tuple of dicts; 7.7.1, Colab's and CI's second environment: a dict by file name)."""
    import ipywidgets

    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        picker.upload.value = ({"name": name, "type": "image/png", "size": len(payload),
                                "content": memoryview(payload), "last_modified": datetime.datetime(2026, 1, 1)},)
    else:
        # read-only in 7.x (the front end fills it through private traits): set it as they do
        picker.upload.set_trait("value", {name: {"metadata": {"name": name, "type": "image/png",
                                                              "size": len(payload), "lastModified": 0},
                                                 "content": payload}})


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
    with pytest.raises(TypeError):
        picker.image(48)  # keyword-only: max_size (the longer side), not size (the shorter side)


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


def _png(colour=(0, 0, 255), size=(48, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_read_in_both_ipywidgets_formats():
    payload = _png()
    v8 = ({"name": "a.png", "type": "image/png", "size": len(payload), "content": memoryview(payload)},)
    v7 = {"a.png": {"metadata": {"name": "a.png", "type": "image/png", "size": len(payload)}, "content": payload}}
    assert uploaded_files(v8) == uploaded_files(v7) == [("a.png", payload)]
    assert uploaded_files(()) == uploaded_files({}) == []


def test_a_path_or_url_is_selected_and_loaded(tmp_path, http_server):  # noqa: F811
    picker = ImagePicker("content")
    (tmp_path / "blue.png").write_bytes(_png())
    picker.path.value = str(tmp_path / "blue.png")
    assert picker.dropdown.value == FROM_PATH and picker.label == "blue.png"
    assert torch.allclose(picker.image()[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    url = http_server.add("/photos/green.png", _png((0, 255, 0)))
    picker.path.value = url
    assert picker.label == "green.png" and picker.image().shape == (1, 3, 40, 48)
    picker.path.value = http_server.add("/notes.txt", b"not pixels")
    with pytest.raises(ImageError, match="not an image"):
        picker.image()
    picker.path.value = "http://example.com/photo.jpg"  # plain http off this machine: refused
    with pytest.raises(ImageError, match="only https"):
        picker.image()
    picker.path.value = ""
    picker.dropdown.value = FROM_PATH
    with pytest.raises(ImageError, match="no path or URL"):
        picker.image()
