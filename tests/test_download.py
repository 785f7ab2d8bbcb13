"""Downloads, hash checks, the weights and data registries' download paths, against a local server.

Every test serves its files from an HTTP server on 127.0.0.1 that it starts itself
(tests/http_server.py); nothing here contacts the internet.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from nstlib import data, download, vgg, weights
from nstlib.download import DownloadError, HashMismatchError, cache_dir, check_hash, fetch

from tests.http_server import dead_url

PAYLOAD = bytes(range(256)) * 40  # 10 KiB, every byte value
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def leftovers(directory: Path) -> list[str]:
    """Every file under `directory` (relative names), to check nothing half-written remains."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test may touch the real cache or a user's local copies."""
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NSTLIB_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("NSTLIB_DATA_DIR", raising=False)
    return tmp_path / "cache"


# ----------------------------------------------------------------------------- fetch: success

def test_fetch_downloads_and_checks_sha256_and_md5(http_server, tmp_path, capsys):
    url = http_server.add("/files/progress-check.bin", PAYLOAD)
    dest = tmp_path / "out" / "progress-check.bin"  # parent does not exist yet
    got = fetch([url], dest, sha256=SHA256, md5=MD5, size=len(PAYLOAD))
    assert got == dest
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "out") == ["progress-check.bin"]  # no .part
    assert http_server.requests == ["/files/progress-check.bin"]
    assert http_server.headers[0].get("User-Agent") == "nstlib"
    err = capsys.readouterr().err
    assert "progress-check.bin:" in err  # tqdm's bar, labelled with the file name
    assert re.search(r"\d+%\|", err), err  # ... with a percentage: the size was known


@pytest.mark.parametrize("prefix_len", [8, 12, 64])
def test_fetch_accepts_a_sha256_prefix(http_server, tmp_path, prefix_len):
    url = http_server.add("/vgg16-397923af.pth", PAYLOAD)
    dest = fetch([url], tmp_path / "vgg16.pth", sha256=SHA256[:prefix_len].upper())
    assert dest.read_bytes() == PAYLOAD


def test_fetch_without_hash_still_writes_atomically(http_server, tmp_path):
    url = http_server.add("/plain", PAYLOAD)
    dest = fetch([url], tmp_path / "plain")
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["plain"]


def test_fetch_returns_existing_dest_without_a_request(http_server, tmp_path):
    url = http_server.add("/file", PAYLOAD)
    dest = tmp_path / "file"
    dest.write_bytes(b"already here")
    assert fetch([url], dest, sha256=SHA256) == dest
    assert http_server.requests == []
    assert dest.read_bytes() == b"already here"  # existing files are not re-checked by fetch


def test_fetch_chunked_response_without_content_length(http_server, tmp_path):
    url = http_server.add("/chunked", PAYLOAD, chunked=True)
    dest = fetch([url], tmp_path / "chunked", sha256=SHA256, size=len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


# ----------------------------------------------------------------------------- fetch: failures

def test_fetch_hash_mismatch_deletes_and_says_so(http_server, tmp_path):
    url = http_server.add("/file", PAYLOAD)
    dest = tmp_path / "file"
    with pytest.raises(HashMismatchError) as info:
        fetch([url], dest, sha256="0" * 64)
    message = str(info.value)
    assert "deleted" in message
    assert SHA256 in message  # the hash that arrived
    assert url in message
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_fetch_md5_mismatch(http_server, tmp_path):
    url = http_server.add("/file", PAYLOAD)
    with pytest.raises(HashMismatchError, match="md5"):
        fetch([url], tmp_path / "file", sha256=SHA256, md5="f" * 32)
    assert leftovers(tmp_path) == []


def test_fetch_interrupted_transfer(http_server, tmp_path):
    url = http_server.add("/big", PAYLOAD, interrupt_after=1000)
    dest = tmp_path / "big"
    with pytest.raises(DownloadError) as info:
        fetch([url], dest, sha256=SHA256)
    assert not isinstance(info.value, HashMismatchError)  # caught before the hash check
    message = str(info.value)
    assert "interrupted" in message
    assert f"1000 of {len(PAYLOAD)} bytes" in message
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_fetch_interrupted_chunked_transfer(http_server, tmp_path):
    """No Content-Length: http.client raises IncompleteRead; it must become a DownloadError."""
    url = http_server.add("/chunked", PAYLOAD, chunked=True, interrupt_after=1000)
    dest = tmp_path / "chunked"
    with pytest.raises(DownloadError, match="interrupted"):
        fetch([url], dest, sha256=SHA256)
    assert leftovers(tmp_path) == []


def test_fetch_404(http_server, tmp_path):
    url = http_server.url("/missing.bin")
    dest = tmp_path / "missing.bin"
    with pytest.raises(DownloadError) as info:
        fetch([url], dest, sha256=SHA256)
    assert not isinstance(info.value, HashMismatchError)
    message = str(info.value)
    (line,) = [line for line in message.splitlines() if url in line]  # the URL's failure line
    assert "404" in line.replace(url, "")  # the status code, not a digit run of the port
    assert http_server.requests == ["/missing.bin"]
    assert leftovers(tmp_path) == []


def test_fetch_server_down_gives_the_offline_message(tmp_path):
    url = dead_url("/vgg16_notop.h5")
    dest = tmp_path / "weights" / "vgg16_notop.h5"
    hint = "Or set NSTLIB_WEIGHTS_DIR to a directory that holds it."
    with pytest.raises(DownloadError) as info:
        fetch([url], dest, md5=MD5, size=3 * 2**20, hint=hint)
    message = str(info.value)
    assert "Could not download vgg16_notop.h5 (3.0 MiB)" in message
    assert url in message
    assert "offline" in message
    assert "download it from one of the URLs above" in message
    assert f"save it as {dest}" in message
    assert message.endswith(hint)
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_fetch_tries_mirrors_in_order(http_server, tmp_path):
    first = http_server.url("/primary/file")  # 404
    second = http_server.add("/mirror/file", PAYLOAD)
    dest = fetch([first, second], tmp_path / "file", sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.requests == ["/primary/file", "/mirror/file"]
    assert leftovers(tmp_path) == ["file"]


def test_fetch_mirror_after_interrupted_and_wrong_file(http_server, tmp_path):
    cut = http_server.add("/a", PAYLOAD, interrupt_after=10)
    wrong = http_server.add("/b", PAYLOAD[::-1])
    good = http_server.add("/c", PAYLOAD)
    dest = fetch([cut, wrong, good], tmp_path / "file", sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.requests == ["/a", "/b", "/c"]


def test_fetch_all_mirrors_fail_lists_every_url(http_server, tmp_path):
    urls = [http_server.url("/one"), dead_url("/two")]
    with pytest.raises(DownloadError) as info:
        fetch(urls, tmp_path / "file", sha256=SHA256)
    message = str(info.value)
    assert all(u in message for u in urls)
    assert message.index(urls[0]) < message.index(urls[1])


@pytest.mark.parametrize(
    "bad", ["http://example.com/x", "ftp://127.0.0.1/x", "file:///etc/passwd", "example.com/x"]
)
def test_fetch_refuses_non_https_before_any_request(http_server, tmp_path, bad):
    good = http_server.add("/file", PAYLOAD)
    with pytest.raises(ValueError, match="only https"):
        fetch([good, bad], tmp_path / "file", sha256=SHA256)  # checked before the first download
    assert http_server.requests == []
    assert leftovers(tmp_path) == []


def test_scheme_check_allows_https_and_local_http():
    download._check_scheme("https://example.com/x")  # no request is made by the check itself
    download._check_scheme("http://localhost:8000/x")
    download._check_scheme("http://127.0.0.1/x")
    with pytest.raises(ValueError):
        download._check_scheme("http://localhost.example.com/x")


def test_fetch_needs_a_url(tmp_path):
    with pytest.raises(ValueError, match="at least one URL"):
        fetch([], tmp_path / "file")


# ----------------------------------------------------------------------------- check_hash, cache_dir

def test_check_hash(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD)
    check_hash(path, sha256=SHA256, md5=MD5)
    check_hash(path, sha256=SHA256[:8])
    for short in ("abc", SHA256[:7]):
        with pytest.raises(ValueError, match="too short"):
            check_hash(path, sha256=short)
    for nothing in ({}, {"sha256": "", "md5": None}):
        with pytest.raises(ValueError, match="sha256 or an md5"):
            check_hash(path, **nothing)
    with pytest.raises(ValueError, match="too short"):
        check_hash(path, md5="1234")
    assert path.exists()


def test_check_hash_delete_false_keeps_the_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD)
    with pytest.raises(HashMismatchError) as info:
        check_hash(path, sha256="0" * 64, delete=False)
    assert "deleted" not in str(info.value)
    assert path.read_bytes() == PAYLOAD
    with pytest.raises(HashMismatchError, match="deleted"):
        check_hash(path, md5="0" * 32)
    assert not path.exists()


def test_cache_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    assert cache_dir("weights") == tmp_path / "elsewhere" / "weights"
    assert (tmp_path / "elsewhere" / "weights").is_dir()  # created on demand


# ----------------------------------------------------------------------------- weights end to end

def write_keras_notop(path: Path, arch: str = "vgg16", seed: int = 0, convs: int | None = None,
                      kernel_shape: dict | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A Keras 'notop' HDF5 file (legacy layout) with small random weights; returns them by group.

    `convs` keeps only the first convs (a truncated file); `kernel_shape` overrides the shape of a
    group's kernel (a wrong file).
    """
    rng = np.random.default_rng(seed)
    shapes = vgg.conv_shapes(arch)
    names = vgg.layer_names(arch)
    written, layer_names = {}, []
    with h5py.File(path, "w") as f:
        for n, (index, (in_ch, out_ch)) in enumerate(shapes.items()):
            if convs is not None and n >= convs:
                break
            block, i = names[index][4:].split("_")
            group_name = f"block{block}_conv{i}"
            shape = (kernel_shape or {}).get(group_name, (3, 3, in_ch, out_ch))
            kernel = (rng.standard_normal(shape, dtype=np.float32) * 0.01)
            bias = rng.standard_normal(out_ch, dtype=np.float32) * 0.01
            group = f.create_group(group_name)
            w_name, b_name = f"{group_name}_W_1:0", f"{group_name}_b_1:0"
            group.attrs["weight_names"] = np.array([w_name.encode(), b_name.encode()])
            group.create_dataset(w_name, data=kernel)
            group.create_dataset(b_name, data=bias)
            layer_names.append(group_name)
            written[group_name] = (kernel, bias)
            if i == str(vgg.BLOCKS[arch][int(block) - 1]):  # the block's pooling layer
                pool = f.create_group(f"block{block}_pool")
                pool.attrs["weight_names"] = np.array([], dtype="S1")
                layer_names.append(f"block{block}_pool")
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
    return written


@pytest.fixture(scope="module")
def keras_vgg16(tmp_path_factory):
    """(file bytes, weights by group) of a full-size VGG-16 'notop' file (59 MB, made once)."""
    path = tmp_path_factory.mktemp("keras") / "vgg16_notop.h5"
    written = write_keras_notop(path)
    return path.read_bytes(), written


def use_local_weights(monkeypatch, urls, blob: bytes, md5: str | None = None):
    e = dataclasses.replace(
        weights.REGISTRY["vgg16-caffe"], urls=tuple(urls), bytes=len(blob),
        md5=md5 or hashlib.md5(blob).hexdigest(), sha256=None,
    )
    monkeypatch.setitem(weights.REGISTRY, "vgg16-caffe", e)
    return e


def test_weights_download_convert_and_cache(http_server, monkeypatch, keras_vgg16, isolated_cache):
    blob, written = keras_vgg16
    url = http_server.add(f"/{weights.REGISTRY['vgg16-caffe'].original}", blob)
    e = use_local_weights(monkeypatch, [url], blob)
    assert weights.find_local("vgg16", "caffe") is None

    state = weights.load_state_dict("vgg16", "caffe")
    shapes = vgg.conv_shapes("vgg16")
    names = vgg.layer_names("vgg16")
    assert set(state) == {f"features.{i}.{p}" for i in shapes for p in ("weight", "bias")}
    for index in shapes:
        block, i = names[index][4:].split("_")
        kernel, bias = written[f"block{block}_conv{i}"]
        w, b = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
        assert w.dtype == torch.float32 and w.is_contiguous()
        assert torch.equal(w, torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        assert torch.equal(b, torch.from_numpy(bias))
    # spot check the layout by hand: out, in, row, column
    k1 = written["block1_conv1"][0]
    assert state["features.0.weight"][5, 2, 0, 1].item() == k1[0, 1, 2, 5]

    directory = isolated_cache / "weights"
    assert leftovers(directory) == ["verified.json", "vgg16-caffe-features.pth"]  # the .h5 was removed
    assert weights.find_local("vgg16", "caffe") == directory / e.filename
    assert http_server.requests == [f"/{e.original}"]

    again = weights.load_state_dict("vgg16", "caffe")  # from the converted cache file
    assert http_server.requests == [f"/{e.original}"]  # no new request
    assert set(again) == set(state)
    assert all(torch.equal(again[k], state[k]) for k in state)


def test_weights_wrong_md5_caches_nothing(http_server, monkeypatch, isolated_cache, tmp_path):
    blob = b"not the weights you are looking for" * 100
    url = http_server.add("/vgg16.h5", blob)
    use_local_weights(monkeypatch, [url], blob, md5="0123456789abcdef0123456789abcdef")
    with pytest.raises(HashMismatchError, match="deleted"):
        weights.load_state_dict("vgg16", "caffe")
    assert leftovers(isolated_cache) == []
    assert weights.find_local("vgg16", "caffe") is None


def test_weights_server_down_names_the_env_var_and_file(monkeypatch, keras_vgg16, isolated_cache):
    blob, _ = keras_vgg16
    url = dead_url("/vgg16.h5")
    use_local_weights(monkeypatch, [url], blob)
    with pytest.raises(DownloadError) as info:
        weights.load_state_dict("vgg16", "caffe")
    message = str(info.value)
    assert not isinstance(info.value, HashMismatchError)
    assert url in message
    assert "NSTLIB_WEIGHTS_DIR" in message
    assert "vgg16-caffe-features.pth" in message
    assert weights.REGISTRY["vgg16-caffe"].original in message
    assert leftovers(isolated_cache) == []


def test_weights_dir_override_needs_no_download(http_server, monkeypatch, keras_vgg16, tmp_path,
                                                isolated_cache):
    blob, written = keras_vgg16
    use_local_weights(monkeypatch, [http_server.url("/never")], blob)
    local = tmp_path / "mine"
    local.mkdir()
    e = weights.entry("vgg16", "caffe")
    (local / e.original).write_bytes(blob)
    monkeypatch.setenv("NSTLIB_WEIGHTS_DIR", str(local))
    state = weights.load_state_dict("vgg16", "caffe")
    assert http_server.requests == []
    assert torch.equal(state["features.0.bias"], torch.from_numpy(written["block1_conv1"][1]))
    assert (local / e.original).is_file()  # the user's original is kept
    assert (isolated_cache / "weights" / e.filename).is_file()  # the conversion is cached


# ----------------------------------------------------------------------------- malformed Keras files

def test_convert_keras_h5_missing_layer(tmp_path):
    path = tmp_path / "truncated.h5"
    write_keras_notop(path, convs=1)
    with pytest.raises(ValueError, match=r"no layer block1_conv2.*not a Keras vgg16"):
        weights.convert_keras_h5(path, "vgg16")


def test_convert_keras_h5_wrong_kernel_shape(tmp_path):
    path = tmp_path / "wrong.h5"
    write_keras_notop(path, convs=1, kernel_shape={"block1_conv1": (3, 3, 3, 32)})
    with pytest.raises(ValueError) as info:
        weights.convert_keras_h5(path, "vgg16")
    message = str(info.value)
    assert "block1_conv1" in message
    assert "(3, 3, 3, 32)" in message and "expected (3, 3, 3, 64)" in message


def test_convert_keras_h5_not_hdf5(tmp_path):
    path = tmp_path / "page.h5"
    path.write_text("<html>a captive portal's login page</html>")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        weights.convert_keras_h5(path, "vgg16")


def test_convert_keras_h5_vgg16_file_is_not_vgg19(keras_vgg16, tmp_path):
    path = tmp_path / "vgg16.h5"
    path.write_bytes(keras_vgg16[0])
    with pytest.raises(ValueError, match="no layer block3_conv4"):
        weights.convert_keras_h5(path, "vgg19")


# ----------------------------------------------------------------------------- data registry

def png_bytes(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def one_asset(http_server, monkeypatch):
    """The data registry replaced by one style image served locally; returns (asset, bytes)."""
    blob = png_bytes()
    url = http_server.add("/images/test.png", blob)
    a = data.Asset(
        name="test_style", kind="style", file="style/test.png", url=url,
        sha256=hashlib.sha256(blob).hexdigest(), bytes=len(blob), credit="made by the test",
        licence="CC0",
    )
    monkeypatch.setattr(data, "registry", lambda: {a.name: a})
    return a, blob


def test_data_get_downloads_into_the_cache(http_server, one_asset, isolated_cache):
    a, blob = one_asset
    assert data.list_images("style") == ["test_style"]
    assert data.find_local("test_style") is None
    path = data.get("test_style")
    assert path == isolated_cache / "images" / "style" / "test.png"
    assert path.read_bytes() == blob
    assert Image.open(path).size == (8, 8)
    assert leftovers(isolated_cache) == ["images/style/test.png"]
    assert http_server.requests == ["/images/test.png"]

    assert data.get("test_style") == path
    assert http_server.count("/images/test.png") == 1  # cached: no second request


def test_data_corrupt_cache_is_downloaded_again(http_server, one_asset, isolated_cache):
    a, blob = one_asset
    path = data.get("test_style")
    path.write_bytes(blob[:-10] + b"corrupted!")
    assert data.find_local("test_style") is None  # the corrupt copy fails the hash ...
    assert not path.exists()  # ... and is deleted
    assert data.get("test_style") == path
    assert path.read_bytes() == blob
    assert http_server.count("/images/test.png") == 2


def test_data_dir_override_with_wrong_file_is_kept(http_server, one_asset, tmp_path, monkeypatch):
    a, blob = one_asset
    mine = tmp_path / "mydata"
    (mine / "style").mkdir(parents=True)
    theirs = mine / "style" / "test.png"
    theirs.write_bytes(png_bytes(seed=1))  # right name, other bytes
    monkeypatch.setenv("NSTLIB_DATA_DIR", str(mine))
    with pytest.raises(HashMismatchError) as info:
        data.get("test_style")
    message = str(info.value)
    assert "NSTLIB_DATA_DIR" in message
    assert str(theirs) in message
    assert "deleted" not in message
    assert theirs.read_bytes() == png_bytes(seed=1)  # the user's file is not deleted
    assert http_server.requests == []


@pytest.mark.parametrize("layout", ["style/test.png", "test.png"])
def test_data_dir_override_with_right_file(http_server, one_asset, tmp_path, monkeypatch, layout):
    a, blob = one_asset
    theirs = tmp_path / "mydata" / layout
    theirs.parent.mkdir(parents=True, exist_ok=True)
    theirs.write_bytes(blob)
    monkeypatch.setenv("NSTLIB_DATA_DIR", str(tmp_path / "mydata"))
    assert data.get("test_style") == theirs
    assert http_server.requests == []


def test_data_get_server_down_mentions_data_dir(one_asset, monkeypatch, isolated_cache):
    a, blob = one_asset
    url = dead_url("/images/test.png")
    monkeypatch.setattr(data, "registry", lambda: {a.name: dataclasses.replace(a, url=url)})
    with pytest.raises(DownloadError) as info:
        data.get("test_style")
    message = str(info.value)
    assert url in message and "NSTLIB_DATA_DIR" in message
    assert str(isolated_cache / "images" / "style" / "test.png") in message
    assert leftovers(isolated_cache) == []


def test_a_cache_that_is_a_file_is_an_error_naming_the_variable(tmp_path, monkeypatch):
    """Issue 24, 9."""
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "file"))
    for create in (True, False):
        with pytest.raises(ValueError, match=f"NSTLIB_CACHE_DIR={tmp_path / 'file'}: .* is a file, not a folder"):
            cache_dir("weights", create=create)
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "file" / "below"))
    with pytest.raises(ValueError, match="NSTLIB_CACHE_DIR"):
        cache_dir("images")


def test_look_ups_do_not_create_the_cache(tmp_path, monkeypatch):
    """Issue 24, 9: find_local created the cache even when nothing was needed from it."""
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    assert weights.find_local("vgg16", "caffe") is None
    assert data.find_local("starry_night") is None
    assert data.find_local("astronaut") is not None  # bundled with scikit-image
    assert not (tmp_path / "cache").exists()


# ----------------------------------------------------------------------------- redirects and size caps (issue 24, 4)

def test_a_redirect_to_plain_http_is_refused(http_server, tmp_path):
    """fetch refused http:// given directly but followed a 302 from https to http."""
    url = http_server.redirect("/moved", "http://example.com/vgg16.h5")
    with pytest.raises(DownloadError, match="refusing the redirect to http://example.com/vgg16.h5"):
        fetch([url], tmp_path / "w.h5")
    assert http_server.requests == ["/moved"]
    assert leftovers(tmp_path) == []


def test_a_redirect_to_an_allowed_url_is_followed(http_server, tmp_path):
    blob = b"weights" * 100
    target = http_server.add("/real.bin", blob)
    url = http_server.redirect("/moved", target, code=301)
    assert fetch([url], tmp_path / "w.bin", sha256=hashlib.sha256(blob).hexdigest()).read_bytes() == blob
    assert http_server.requests == ["/moved", "/real.bin"]


def test_a_server_announcing_a_terabyte_is_refused_before_reading(http_server, tmp_path):
    url = http_server.add("/huge.bin", b"x" * 1000, announce=10**12)
    with pytest.raises(DownloadError, match="announces 1,000,000,000,000 bytes; the registry's file has 1,000"):
        fetch([url], tmp_path / "huge.bin", size=1000)
    assert leftovers(tmp_path) == []


def test_a_stream_longer_than_the_registry_size_is_cut_off(http_server, tmp_path):
    url = http_server.add("/long.bin", b"x" * 300_000, chunked=True)  # no Content-Length to refuse early
    with pytest.raises(DownloadError, match="more than .* bytes arrived; the registry's file has 1,000"):
        fetch([url], tmp_path / "long.bin", size=1000)
    assert leftovers(tmp_path) == []
    assert download.max_download_bytes(1000) == 1050 + 65536
