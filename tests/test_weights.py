"""nstlib.weights: the registry's entries, the HDF5 converter on the real file, the local override."""
import pytest
import torch

from nstlib import vgg, weights
from nstlib.features import VGGFeatures
from tests.conftest import shared_file


def test_registry_lists_vgg16_and_vgg19_from_both_sources():
    assert set(weights.REGISTRY) == {"vgg16-caffe", "vgg19-caffe", "vgg16-torchvision", "vgg19-torchvision"}
    e = weights.entry("vgg16", "caffe")
    assert e.md5 == "6d6bbae143d832006294945121d1f1fc" and e.bytes == 58_889_256
    assert e.urls[0].startswith("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/")
    assert e.urls[1].startswith("https://github.com/fchollet/deep-learning-models/releases/download/v0.1/")
    assert weights.entry("vgg19", "caffe").md5 == "253f8cb515780f3b799900260a226db6"
    tv = weights.entry("vgg19", "torchvision")
    assert tv.urls == ("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",)
    assert tv.sha256 == "dcbb9e9d"  # torchvision's file names carry the sha256 prefix
    for entry in weights.REGISTRY.values():
        assert all(u.startswith("https://") for u in entry.urls)
        assert entry.licence and entry.credit and entry.bytes > 0
        assert entry.convention is weights.CONVENTIONS[entry.source]


def test_conventions():
    caffe = weights.CONVENTIONS["caffe"]
    assert caffe.bgr and caffe.scale == 255.0 and caffe.mean == (103.939, 116.779, 123.68)
    tv = weights.CONVENTIONS["torchvision"]
    assert not tv.bgr and tv.scale == 1.0 and tv.std == (0.229, 0.224, 0.225)


def test_entry_errors():
    with pytest.raises(ValueError, match="vgg16"):
        weights.entry("resnet50", "caffe")
    with pytest.raises(ValueError, match="caffe"):
        weights.entry("vgg16", "keras")


def test_converting_the_keras_file_reproduces_the_pytorch_weights_exactly():
    h5 = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16_notop_keras_layout.h5")
    pth = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16-caffe-features.pth")
    converted = weights.convert_keras_h5(h5, "vgg16")
    reference = torch.load(pth, weights_only=True)
    assert converted.keys() == reference.keys()
    for key in reference:
        assert converted[key].dtype == torch.float32
        assert torch.equal(converted[key], reference[key]), key


def test_override_directory_is_used_without_download(monkeypatch, tmp_path):
    pth = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16-caffe-features.pth")
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path))  # an empty cache
    assert weights.find_local("vgg16", "caffe") == pth
    state = weights.load_state_dict("vgg16", "caffe")
    weights.check_state_dict(state, "vgg16", "test")
    assert not list((tmp_path / "weights").iterdir())  # nothing downloaded or converted


def test_an_original_keras_file_in_the_override_is_converted_into_the_cache(monkeypatch, tmp_path):
    h5 = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16_notop_keras_layout.h5")
    only_h5 = tmp_path / "override"
    only_h5.mkdir()
    (only_h5 / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").symlink_to(h5.resolve())
    monkeypatch.setenv("NSTLIB_WEIGHTS_DIR", str(only_h5))
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    state = weights.load_state_dict("vgg16", "caffe")
    cached = tmp_path / "cache" / "weights" / "vgg16-caffe-features.pth"
    assert cached.is_file()
    assert torch.equal(torch.load(cached, weights_only=True)["features.28.bias"], state["features.28.bias"])
    assert (only_h5 / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").exists()  # user's file kept


def test_check_state_dict_names_the_problem():
    state = VGGFeatures("vgg16", weights=None).features.state_dict()
    state = {f"features.{k}": v for k, v in state.items()}
    weights.check_state_dict(state, "vgg16", "ok")
    with pytest.raises(ValueError, match="not a vgg19 features state_dict"):
        weights.check_state_dict(state, "vgg19", "x")
    state["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(ValueError, match=r"features.0.weight has shape \(64, 3, 5, 5\)"):
        weights.check_state_dict(state, "vgg16", "x")


def test_conv_shapes():
    shapes = vgg.conv_shapes("vgg19")
    assert len(shapes) == 16 and shapes[0] == (3, 64) and shapes[34] == (512, 512)
