"""nstlib.weights: the registry's entries, the HDF5 converter on the real file, the local override."""
import pytest
import torch

from nstlib import vgg, weights
from nstlib.download import HashMismatchError
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
    assert not (tmp_path / "weights").exists()  # a look-up creates no cache
    state = weights.load_state_dict("vgg16", "caffe")
    weights.check_state_dict(state, "vgg16", "test")
    # nothing downloaded or converted; only the stamp that says the override passed its hash check
    assert [p.name for p in (tmp_path / "weights").iterdir()] == [weights.STAMPS]


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


# ----------------------------------------------------------------------------- hash checks of local files (issue 24, 1)

def _copy_with(path, tmp_path, name, flip_at=None, keep=None):
    """A copy of `path` in a fresh folder, as `name`, with one byte flipped or cut to `keep` bytes."""
    blob = bytearray(path.read_bytes())
    if flip_at is not None:
        blob[flip_at] ^= 0x80  # the top bit: a float's sign, or its exponent's
    if keep is not None:
        blob = blob[:keep]
    folder = tmp_path / "override"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(bytes(blob))
    return folder / name


@pytest.mark.parametrize("damage", [dict(flip_at=-1000), dict(flip_at=40_000_000), dict(keep=29_000_000)])
def test_a_damaged_local_pth_is_refused_naming_it(monkeypatch, tmp_path, damage):
    pth = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16-caffe-features.pth")
    bad = _copy_with(pth, tmp_path, "vgg16-caffe-features.pth", **damage)
    monkeypatch.setenv("NSTLIB_WEIGHTS_DIR", str(bad.parent))
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(HashMismatchError, match=f"{bad}: sha256 is .*, expected a753c0bb"):
        weights.load_state_dict("vgg16", "caffe")


def test_a_verified_pth_is_not_hashed_again_until_it_changes(monkeypatch, tmp_path):
    pth = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16-caffe-features.pth")
    good = _copy_with(pth, tmp_path, "vgg16-caffe-features.pth")
    monkeypatch.setenv("NSTLIB_WEIGHTS_DIR", str(good.parent))
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    weights.load_state_dict("vgg16", "caffe")  # hashed once, stamped
    calls = []
    real = weights.file_hash
    monkeypatch.setattr(weights, "file_hash", lambda *a, **k: calls.append(a) or real(*a, **k))
    weights.load_state_dict("vgg16", "caffe")
    assert calls == []  # the stamp (size, mtime) vouches for it
    blob = bytearray(good.read_bytes())
    blob[-1000] ^= 0x80
    good.write_bytes(bytes(blob))  # same size, new mtime
    with pytest.raises(HashMismatchError, match="expected a753c0bb"):
        weights.load_state_dict("vgg16", "caffe")
    assert len(calls) == 1


def test_a_local_h5_is_cached_only_if_its_conversion_is_the_pinned_file(monkeypatch, tmp_path):
    """The shared .h5 is not the public file byte for byte, but converts to exactly the pinned .pth:
    accepted. One flipped byte in its weights: refused, naming the file, and nothing is cached, so
    the poisoned conversion of issue 24 cannot outlive NSTLIB_WEIGHTS_DIR."""
    h5 = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16_notop_keras_layout.h5")
    e = weights.entry("vgg16", "caffe")
    bad = _copy_with(h5, tmp_path, e.original, flip_at=40_000_000)
    monkeypatch.setenv("NSTLIB_WEIGHTS_DIR", str(bad.parent))
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(HashMismatchError, match=f"{bad}: its converted weights have sha256"):
        weights.load_state_dict("vgg16", "caffe")
    cache = tmp_path / "cache" / "weights"
    assert not (cache / e.filename).exists() and not list(cache.glob(".*part*"))
    monkeypatch.delenv("NSTLIB_WEIGHTS_DIR")
    assert weights.find_local("vgg16", "caffe") is None


def test_a_poisoned_cache_is_refused(monkeypatch, tmp_path):
    """A converted file in the cache that nstlib did not verify (no stamp) and that is not the pinned
    file, e.g. left by an older version from a corrupt .h5."""
    pth = shared_file("NSTLIB_WEIGHTS_DIR", "vgg16-caffe-features.pth")
    state = torch.load(pth, weights_only=True)
    state["features.0.bias"][0] *= -1
    cache = tmp_path / "cache" / "weights"
    cache.mkdir(parents=True)
    torch.save(state, cache / "vgg16-caffe-features.pth")
    monkeypatch.delenv("NSTLIB_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(HashMismatchError, match="delete it and it is made again"):
        weights.load_state_dict("vgg16", "caffe")


def test_registry_pins_the_converted_vgg16_file():
    assert weights.entry("vgg16", "caffe").converted_sha256 == (
        "a753c0bbed8d88e916d12ac57948374f760688eca6cacee2cbcd5100a1b73804")


def test_save_atomic_leaves_no_part_file_on_failure(tmp_path, monkeypatch):
    """Issue 24, 14: a failed torch.save left `<name>.part` behind."""
    target = tmp_path / "vgg16-caffe-features.pth"
    target.write_bytes(b"previous")

    def disk_full(obj, f, *a, **k):
        with open(f, "wb") as out:
            out.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        weights._save_atomic({"x": torch.zeros(1)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert target.read_bytes() == b"previous"


def test_save_atomic_fsyncs_before_the_rename(tmp_path, monkeypatch):
    import os

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b))
    weights._save_atomic({"x": torch.zeros(1)}, tmp_path / "w.pth")
    assert calls[:2] == ["fsync", "replace"] and "fsync" in calls[2:]  # the file, then its folder
