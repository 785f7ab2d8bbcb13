"""nstlib.images: loading every kind of file and array a learner may have, the errors for bad
input, resizing, saving and showing. Every test file is made here in tmp_path with PIL / NumPy;
registry names resolve through NSTLIB_DATA_DIR (or scikit-image's bundled photos)."""
import errno
import struct
import zlib

import matplotlib

matplotlib.use("Agg")  # before pyplot: tests never open windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from nstlib.images import (  # noqa: E402
    MIN_SIDE,
    ImageError,
    as_mask,
    load_image,
    load_mask,
    resize,
    save_image,
    show,
    show_images,
    to_pil,
)

ONE_LEVEL = 1 / 255  # one step of 8-bit data
RED, GREEN, BLUE, WHITE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0)


# ----------------------------------------------------------------------------- helpers

def _two_halves(w, h, left, right, mode="RGB"):
    """A w x h PIL image whose left half is `left` and right half `right` (pixel values)."""
    im = Image.new(mode, (w, h), right)
    im.paste(left, (0, 0, w // 2, h))
    return im


def _save(im, path, **kwargs):
    """Save a PIL image and return the path."""
    im.save(path, **kwargs)
    return path


def _pixel(x, row, col):
    """The RGB values of pixel (row, col) of a (1, 3, H, W) tensor, as a tuple of floats."""
    return tuple(x[0, :, row, col].tolist())


def _assert_colour(x, row, col, expected, atol=ONE_LEVEL):
    got = torch.tensor(_pixel(x, row, col))
    assert torch.allclose(got, torch.tensor(expected), atol=atol), f"pixel {row},{col}: {got}"


def _assert_convention(x, shape=None):
    """The course convention: float32 (1, 3, H, W) in [0, 1]."""
    assert x.dtype == torch.float32
    assert x.dim() == 4 and x.shape[:2] == (1, 3)
    assert x.min() >= 0 and x.max() <= 1
    if shape is not None:
        assert tuple(x.shape) == shape


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width, height):
    """PNG bytes whose IHDR claims width x height RGB pixels, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit, RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _checkerboard(h, w, cell=4):
    """A (1, 3, h, w) black-and-white checkerboard: sharp edges make bicubic overshoot."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    board = (((yy // cell) + (xx // cell)) % 2).float()
    return board.expand(1, 3, h, w).clone()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


# ----------------------------------------------------------------------------- bad files

def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "no_such_photo.jpg"
    with pytest.raises(FileNotFoundError, match="no_such_photo.jpg") as e:
        load_image(path)
    assert str(path) in str(e.value)


def test_missing_relative_file_with_suffix_is_not_a_registry_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="holiday.png"):
        load_image("holiday.png")


def test_directory_is_refused(tmp_path):
    with pytest.raises(ImageError, match="directory") as e:
        load_image(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_text_file_named_jpg_is_refused(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a JPEG\n" * 20)
    with pytest.raises(ImageError, match="not an image file") as e:
        load_image(path)
    assert str(path) in str(e.value)


def test_truncated_jpeg_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)  # noise: JPEG data stays large
    full = _save(Image.fromarray(noise), tmp_path / "full.jpg")
    data = full.read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert load_image(full).shape == (1, 3, 128, 128)  # the complete file is fine
    with pytest.raises(ImageError, match="truncated") as e:
        load_image(path)
    assert str(path) in str(e.value)


# ----------------------------------------------------------------------------- colour modes

def test_grayscale_L_becomes_rgb_with_equal_channels(tmp_path):
    path = _save(_two_halves(40, 36, 50, 200, mode="L"), tmp_path / "gray.png")
    x = load_image(path)
    _assert_convention(x, (1, 3, 36, 40))
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    _assert_colour(x, 10, 5, (50 / 255,) * 3, atol=1e-6)
    _assert_colour(x, 10, 35, (200 / 255,) * 3, atol=1e-6)


def test_bilevel_1_becomes_black_and_white_rgb(tmp_path):
    path = _save(_two_halves(40, 40, 0, 1, mode="1"), tmp_path / "bilevel.png")
    assert Image.open(path).mode == "1"
    x = load_image(path)
    _assert_convention(x, (1, 3, 40, 40))
    _assert_colour(x, 20, 5, (0.0, 0.0, 0.0), atol=0)
    _assert_colour(x, 20, 35, WHITE, atol=0)


def test_palette_P_becomes_the_palette_colours(tmp_path):
    im = Image.new("P", (48, 40), 0)
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    im.paste(1, (16, 0, 32, 40))
    im.paste(2, (32, 0, 48, 40))
    path = _save(im, tmp_path / "palette.png")
    assert Image.open(path).mode == "P"
    x = load_image(path)
    _assert_convention(x, (1, 3, 40, 48))
    _assert_colour(x, 20, 8, RED, atol=0)
    _assert_colour(x, 20, 24, GREEN, atol=0)
    _assert_colour(x, 20, 40, BLUE, atol=0)


def test_palette_with_transparent_index_is_composited_over_white(tmp_path):
    im = _two_halves(40, 40, 1, 0, mode="P")  # left: index 1 (green), right: index 0 (red)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    path = _save(im, tmp_path / "palette_trns.png", transparency=0)
    assert Image.open(path).info.get("transparency") == 0
    x = load_image(path)
    _assert_colour(x, 20, 5, GREEN, atol=0)
    _assert_colour(x, 20, 35, WHITE, atol=0)  # the red index is transparent


def test_rgba_is_composited_over_white(tmp_path):
    im = Image.new("RGBA", (48, 40), (0, 0, 0, 0))  # fully transparent black
    im.paste((255, 0, 0, 255), (16, 0, 32, 40))  # opaque red
    im.paste((0, 0, 255, 128), (32, 0, 48, 40))  # half-transparent blue
    path = _save(im, tmp_path / "rgba.png")
    x = load_image(path)
    _assert_convention(x, (1, 3, 40, 48))
    _assert_colour(x, 20, 8, WHITE)  # not black: the colour under alpha 0 is ignored
    _assert_colour(x, 20, 24, RED)
    a = 128 / 255
    _assert_colour(x, 20, 40, (1 - a, 1 - a, 1.0))  # a * blue + (1 - a) * white


def test_la_is_composited_over_white(tmp_path):
    im = Image.new("LA", (48, 40), (0, 0))
    im.paste((0, 255), (16, 0, 32, 40))
    im.paste((0, 128), (32, 0, 48, 40))
    path = _save(im, tmp_path / "la.png")
    assert Image.open(path).mode == "LA"
    x = load_image(path)
    _assert_colour(x, 20, 8, WHITE)
    _assert_colour(x, 20, 24, (0.0, 0.0, 0.0))
    _assert_colour(x, 20, 40, (1 - 128 / 255,) * 3)


def test_rgba_pil_image_is_composited_over_white():
    im = _two_halves(40, 40, (255, 0, 0, 255), (0, 255, 0, 0), mode="RGBA")
    x = load_image(im)
    _assert_colour(x, 20, 5, RED)
    _assert_colour(x, 20, 35, WHITE)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    im = _two_halves(64, 48, (255, 0, 0, 0), (0, 255, 255, 0), mode="CMYK")  # cyan | red
    path = _save(im, tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    x = load_image(path)
    _assert_convention(x, (1, 3, 48, 64))
    _assert_colour(x, 24, 8, (0.0, 1.0, 1.0), atol=0.03)
    _assert_colour(x, 24, 56, RED, atol=0.03)


def test_16_bit_grayscale_png_keeps_its_precision(tmp_path):
    values = np.array([0, 256, 512, 32768, 65535], dtype=np.uint16)
    arr = np.zeros((40, 40), dtype=np.uint16)
    arr[0, : len(values)] = values
    path = _save(Image.fromarray(arr), tmp_path / "gray16.png")
    assert Image.open(path).mode in ("I;16", "I")  # really read as 16-bit
    x = load_image(path)
    _assert_convention(x, (1, 3, 40, 40))
    row = x[0, :, 0, : len(values)]
    assert torch.equal(row[0], row[1]) and torch.equal(row[1], row[2])
    expected = torch.tensor(values.astype(np.float32) / 65535)
    assert torch.allclose(row[0], expected, atol=1e-6)
    assert row[0, 4] == 1.0 and abs(row[0, 3] - 0.5) < 1e-4  # not saturated at 255 -> 1
    assert row[0, 1] < row[0, 2] < 0.01  # 256 and 512 distinct, not both truncated to 1 or 2


@pytest.mark.parametrize(
    "orientation, shape, red_at, blue_at",
    [
        (1, (1, 3, 40, 60), (20, 10), (20, 50)),  # no rotation: red on the left
        (3, (1, 3, 40, 60), (20, 50), (20, 10)),  # 180 degrees: red on the right
        (6, (1, 3, 60, 40), (10, 20), (50, 20)),  # 90 degrees clockwise: left goes to the top
        (8, (1, 3, 60, 40), (50, 20), (10, 20)),  # 90 degrees counter-clockwise: to the bottom
    ],
)
def test_exif_orientation_is_applied(tmp_path, orientation, shape, red_at, blue_at):
    exif = Image.Exif()
    exif[0x0112] = orientation
    im = _two_halves(60, 40, (255, 0, 0), (0, 0, 255))
    path = _save(im, tmp_path / "phone.jpg", exif=exif, quality=95)
    assert Image.open(path).getexif()[0x0112] == orientation
    x = load_image(path)
    _assert_convention(x, shape)
    _assert_colour(x, *red_at, RED, atol=0.03)
    _assert_colour(x, *blue_at, BLUE, atol=0.03)
    # the same for an opened PIL image
    assert torch.equal(load_image(Image.open(path)), x)


# ----------------------------------------------------------------------------- sizes

def test_image_below_min_side_is_refused_with_its_size(tmp_path):
    assert MIN_SIDE == 32
    path = _save(Image.new("RGB", (50, 31), (1, 2, 3)), tmp_path / "tiny.png")
    with pytest.raises(ImageError, match="50x31") as e:
        load_image(path)
    assert str(path) in str(e.value) and "32" in str(e.value)


def test_tiny_array_is_refused_with_its_size():
    with pytest.raises(ImageError, match="31x40"):
        load_image(np.zeros((40, 31, 3), dtype=np.uint8))


def test_image_of_exactly_min_side_is_accepted(tmp_path):
    path = _save(Image.new("RGB", (32, 32), (1, 2, 3)), tmp_path / "small.png")
    _assert_convention(load_image(path), (1, 3, 32, 32))


@pytest.mark.parametrize("kwargs, says", [({"size": 16}, "16x16"), ({"max_size": 100}, "100x20")])
def test_resize_below_min_side_is_refused(tmp_path, kwargs, says):
    w, h = (64, 64) if "size" in kwargs else (200, 40)
    path = _save(Image.new("RGB", (w, h), (9, 9, 9)), tmp_path / "photo.png")
    load_image(path)  # fine as it is
    with pytest.raises(ImageError, match=f"resized to {says}") as e:
        load_image(path, **kwargs)
    assert str(path) in str(e.value)


def test_too_thin_jpeg_message_gives_the_real_sizes(tmp_path):
    # the decoder reads this at half size (draft mode); the message must not report that size
    path = _save(Image.new("RGB", (4000, 40), (9, 9, 9)), tmp_path / "strip.jpg")
    with pytest.raises(ImageError, match="resized to 512x5 px") as e:
        load_image(path, max_size=512)
    assert "2000x20" not in str(e.value)


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(30000, 30000))
    assert path.stat().st_size < 1000
    with pytest.raises(ImageError, match="decompression bomb") as e:
        load_image(path)
    assert str(path) in str(e.value)


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory):
    """A 6000 x 4000 JPEG (24 MP, a phone photo), red left half, blue right half."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    return _save(_two_halves(6000, 4000, (255, 0, 0), (0, 0, 255)), path, quality=90)


def test_large_photo_loads_downscaled(big_photo):
    x = load_image(big_photo, max_size=512)
    _assert_convention(x)
    h, w = x.shape[-2:]
    assert w == 512 and h in (341, 342)
    _assert_colour(x, h // 2, 100, RED, atol=0.03)
    _assert_colour(x, h // 2, 400, BLUE, atol=0.03)


# ----------------------------------------------------------------------------- resizing

@pytest.fixture
def wide_png(tmp_path):
    """A 100 x 50 (W x H) PNG, green left half, white right half."""
    return _save(_two_halves(100, 50, (0, 255, 0), (255, 255, 255)), tmp_path / "wide.png")


def test_max_size_sets_the_longer_side(wide_png):
    _assert_convention(load_image(wide_png, max_size=64), (1, 3, 32, 64))
    tall = resize(torch.rand(1, 3, 100, 40), max_size=50)
    assert tall.shape == (1, 3, 50, 20)


def test_int_size_sets_the_shorter_side(wide_png):
    _assert_convention(load_image(wide_png, size=40), (1, 3, 40, 80))
    tall = resize(torch.rand(1, 3, 100, 40), size=60)
    assert tall.shape == (1, 3, 150, 60)


def test_pair_size_is_exact(wide_png):
    _assert_convention(load_image(wide_png, size=(45, 70)), (1, 3, 45, 70))
    _assert_convention(load_image(wide_png, size=[70, 45]), (1, 3, 70, 45))


def test_upscaling(wide_png):
    x = load_image(wide_png, size=200)
    _assert_convention(x, (1, 3, 200, 400))
    _assert_colour(x, 100, 50, GREEN, atol=1e-3)
    _assert_colour(x, 100, 350, WHITE, atol=1e-3)


def test_no_size_keeps_the_image(wide_png):
    assert load_image(wide_png).shape == (1, 3, 50, 100)
    x = torch.rand(2, 3, 40, 40)
    assert torch.equal(resize(x), x)


def test_resize_stays_in_range_and_float32():
    board = _checkerboard(64, 64)  # bicubic overshoots at these edges without clamping
    for kwargs in ({"size": 150}, {"max_size": 40}, {"size": (50, 90)}):
        y = resize(board, **kwargs)
        assert y.dtype == torch.float32
        assert y.min() >= 0 and y.max() <= 1
        assert y.min() < 0.05 and y.max() > 0.95  # still a checkerboard, not a grey blur


def test_resize_keeps_the_batch():
    assert resize(torch.rand(3, 3, 40, 60), max_size=30).shape == (3, 3, 20, 30)


def test_max_size_and_size_together_are_refused(wide_png):
    with pytest.raises(ValueError, match="not both"):
        load_image(wide_png, max_size=64, size=64)
    with pytest.raises(ValueError, match="not both"):
        resize(torch.rand(1, 3, 40, 40), max_size=64, size=64)


BAD_MAX_SIZES = [0, -64, 64.0, "64", True, (64, 64)]
BAD_SIZES = [0, -1, 64.5, "64", True, (64,), (64, 64, 3), (64, 0), (64, 64.0), (-1, 64)]


@pytest.mark.parametrize("bad", BAD_MAX_SIZES, ids=repr)
@pytest.mark.parametrize("suffix", [".png", ".jpg"])  # .jpg: the JPEG draft path divides by sizes
def test_bad_max_size_is_a_value_error(tmp_path, bad, suffix):
    path = _save(Image.new("RGB", (64, 48), (5, 6, 7)), tmp_path / f"photo{suffix}")
    with pytest.raises(ValueError, match="max_size"):
        load_image(path, max_size=bad)
    with pytest.raises(ValueError, match="max_size"):
        resize(torch.rand(1, 3, 40, 40), max_size=bad)


@pytest.mark.parametrize("bad", BAD_SIZES, ids=repr)
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_bad_size_is_a_value_error(tmp_path, bad, suffix):
    path = _save(Image.new("RGB", (64, 48), (5, 6, 7)), tmp_path / f"photo{suffix}")
    with pytest.raises(ValueError, match="size"):
        load_image(path, size=bad)
    with pytest.raises(ValueError, match="size"):
        resize(torch.rand(1, 3, 40, 40), size=bad)


def test_numpy_integer_sizes_are_accepted(wide_png):
    assert load_image(wide_png, size=np.int64(40)).shape == (1, 3, 40, 80)
    assert load_image(wide_png, max_size=np.int32(64)).shape == (1, 3, 32, 64)


# ----------------------------------------------------------------------------- arrays, tensors

def test_uint8_rgb_array():
    arr = np.zeros((40, 50, 3), dtype=np.uint8)
    arr[..., 0] = 255
    arr[:, 25:, 1] = 51
    x = load_image(arr)
    _assert_convention(x, (1, 3, 40, 50))
    _assert_colour(x, 5, 5, RED, atol=0)
    _assert_colour(x, 5, 45, (1.0, 0.2, 0.0), atol=1e-6)


@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 1)])
def test_grayscale_array(shape):
    arr = np.full(shape, 102, dtype=np.uint8)
    x = load_image(arr)
    _assert_convention(x, (1, 3, 40, 50))
    assert torch.allclose(x, torch.full_like(x, 0.4))


def test_rgba_array_is_composited_over_white():
    arr = np.zeros((40, 48, 4), dtype=np.uint8)  # left third: transparent black
    arr[:, 16:32] = (255, 0, 0, 255)
    arr[:, 32:] = (0, 0, 255, 128)
    x = load_image(arr)
    _assert_convention(x, (1, 3, 40, 48))
    _assert_colour(x, 20, 8, WHITE, atol=1e-6)
    _assert_colour(x, 20, 24, RED, atol=1e-6)
    a = 128 / 255
    _assert_colour(x, 20, 40, (1 - a, 1 - a, 1.0), atol=1e-6)


def test_uint16_array_is_scaled_by_65535():
    arr = np.zeros((40, 40, 3), dtype=np.uint16)
    arr[0, 0] = (65535, 32768, 256)
    x = load_image(arr)
    _assert_convention(x)
    _assert_colour(x, 0, 0, (1.0, 32768 / 65535, 256 / 65535), atol=1e-6)


def test_bool_array():
    arr = np.zeros((40, 40), dtype=bool)
    arr[:, 20:] = True
    x = load_image(arr)
    _assert_convention(x, (1, 3, 40, 40))
    _assert_colour(x, 0, 0, (0.0, 0.0, 0.0), atol=0)
    _assert_colour(x, 0, 39, WHITE, atol=0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_array_in_unit_range(dtype):
    arr = np.random.default_rng(1).random((40, 44, 3)).astype(dtype)
    x = load_image(arr)
    _assert_convention(x, (1, 3, 40, 44))
    expected = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1)[None]
    assert torch.allclose(x, expected, atol=1e-6)


@pytest.mark.parametrize("low, high", [(0.0, 255.0), (-0.5, 0.5), (0.0, 1.01)])
def test_float_array_outside_unit_range_is_refused(low, high):
    arr = np.linspace(low, high, 40 * 40 * 3).reshape(40, 40, 3)
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        load_image(arr)


def test_float_array_with_nan_is_refused():
    arr = np.full((40, 40, 3), 0.5)
    arr[3, 3, 1] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        load_image(arr)


@pytest.mark.parametrize(
    "shape", [(40, 40, 2), (3, 40, 40), (1, 40, 40, 3), (40,), (40, 40, 5)], ids=str
)
def test_array_of_wrong_shape_is_refused(shape):
    with pytest.raises(ImageError, match="expected"):
        load_image(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex64])
def test_array_of_unsupported_dtype_is_refused(dtype):
    with pytest.raises(ImageError, match="dtype"):
        load_image(np.zeros((40, 40, 3), dtype=dtype))


@pytest.mark.parametrize("shape", [(3, 40, 48), (1, 3, 40, 48)])
def test_tensor_is_accepted(shape):
    t = torch.rand(shape, dtype=torch.float64)
    x = load_image(t)
    _assert_convention(x, (1, 3, 40, 48))
    assert torch.allclose(x, t.float().reshape(1, 3, 40, 48))


def test_tensor_result_is_a_copy():
    t = torch.rand(1, 3, 40, 40)
    x = load_image(t)
    x.zero_()
    assert t.max() > 0  # the caller's tensor is untouched


def test_tensor_with_grad_is_accepted():
    t = torch.rand(1, 3, 40, 40, requires_grad=True)
    x = load_image(t)
    assert not x.requires_grad and torch.allclose(x, t.detach())


@pytest.mark.parametrize(
    "t",
    [
        torch.rand(2, 3, 40, 40),  # a batch
        torch.rand(1, 1, 40, 40),  # one channel
        torch.rand(40, 40),  # no channel dimension
        torch.rand(1, 40, 40, 3),  # channels last
        torch.zeros(1, 3, 40, 40, dtype=torch.uint8),  # not float
        torch.full((1, 3, 40, 40), 2.0),  # outside [0, 1]
    ],
    ids=["batch2", "gray", "2d", "channels_last", "uint8", "range"],
)
def test_bad_tensor_is_refused(t):
    with pytest.raises(ImageError):
        load_image(t)


@pytest.mark.parametrize("source", [[[0.5] * 40] * 40, 42, None, b"bytes"], ids=repr)
def test_unsupported_type_is_a_type_error(source):
    with pytest.raises(TypeError, match="cannot load an image"):
        load_image(source)


# ----------------------------------------------------------------------------- registry names

def test_registry_name_loads():
    from nstlib import data
    from nstlib.download import DownloadError

    try:  # offline without NSTLIB_DATA_DIR: fail saying so, not with a connection error's traceback
        data.get("tubingen")
    except DownloadError as e:
        pytest.fail(f"the registry photo 'tubingen' is neither local nor downloadable; set NSTLIB_DATA_DIR "
                    f"to a copy of ../shared/images (as .ci/run does). {e}", pytrace=False)
    x = load_image("tubingen", max_size=128)
    _assert_convention(x)
    assert max(x.shape[-2:]) == 128 and x.shape[-1] == 128  # a landscape photo
    assert x.std() > 0.05  # a photo, not a blank image


def test_bundled_registry_name_loads():
    x = load_image("astronaut", size=64)
    _assert_convention(x, (1, 3, 64, 64))


def test_misspelt_registry_name_suggests_the_right_one():
    with pytest.raises(ValueError, match="starry_night") as e:
        load_image("starry_nite")
    assert "starry_nite" in str(e.value)
    assert not isinstance(e.value, FileNotFoundError)


# ----------------------------------------------------------------------------- saving

def test_png_round_trip_is_within_half_a_level(tmp_path):
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    path = save_image(x, tmp_path / "out.png")
    assert path == tmp_path / "out.png" and path.is_file()
    y = load_image(path)
    _assert_convention(y, (1, 3, 40, 56))
    assert (y - x).abs().max() <= 0.5 / 255 + 1e-6


def test_save_accepts_a_3d_tensor_and_a_string_path(tmp_path):
    x = torch.rand(3, 40, 40)
    path = save_image(x, str(tmp_path / "out.png"))
    assert (load_image(path)[0] - x).abs().max() <= 0.5 / 255 + 1e-6


def test_jpeg_save_round_trip(tmp_path):
    x = torch.linspace(0, 1, 64).expand(1, 3, 48, 64).clone()  # smooth: JPEG keeps it well
    y = load_image(save_image(x, tmp_path / "out.JPG"))
    assert Image.open(tmp_path / "out.JPG").format == "JPEG"
    assert y.shape == x.shape and (y - x).abs().mean() < 0.02


def test_save_creates_missing_directories(tmp_path):
    path = tmp_path / "results" / "run1" / "out.png"
    save_image(torch.rand(1, 3, 40, 40), path)
    assert path.is_file()
    assert load_image(path).shape == (1, 3, 40, 40)


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.psd"])  # .psd: Pillow reads, never writes
def test_unknown_suffix_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="format"):
        save_image(torch.rand(1, 3, 40, 40), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_under_a_file_is_an_os_error(tmp_path):
    parent = tmp_path / "not_a_dir"
    parent.write_text("a file")
    with pytest.raises(OSError, match="cannot write"):
        save_image(torch.rand(1, 3, 40, 40), parent / "out.png")
    assert parent.read_text() == "a file"


def test_failed_write_leaves_the_existing_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    save_image(torch.zeros(1, 3, 40, 40), target)
    before = target.read_bytes()

    def disk_full(self, fp, *args, **kwargs):  # writes part of the file, then fails
        with open(fp, "wb") as f:
            f.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_image(torch.ones(1, 3, 40, 40), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_failed_encoding_leaves_the_existing_file(tmp_path):
    target = tmp_path / "out.xbm"  # XBM holds 1-bit images only: Pillow refuses RGB
    target.write_bytes(b"precious")
    with pytest.raises(OSError, match="cannot write"):
        save_image(torch.rand(1, 3, 40, 40), target)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xbm"]


def test_failed_rename_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.png"
    target.mkdir()
    (target / "keep").write_text("x")  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError, match="cannot write"):
        save_image(torch.rand(1, 3, 40, 40), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert (target / "keep").read_text() == "x"


def test_to_pil_gives_an_8_bit_rgb_image():
    x = torch.zeros(1, 3, 40, 50)
    x[0, 0] = 1.0
    x[0, 2, :, 25:] = 2.0  # out of range: clamped
    im = to_pil(x)
    assert im.mode == "RGB" and im.size == (50, 40)
    assert im.getpixel((5, 5)) == (255, 0, 0)
    assert im.getpixel((45, 5)) == (255, 0, 255)
    assert to_pil(x[0]).tobytes() == im.tobytes()


@pytest.mark.parametrize(
    "x, error",
    [
        (torch.rand(2, 3, 40, 40), ValueError),
        (torch.rand(1, 1, 40, 40), ValueError),
        (torch.rand(40, 40), ValueError),
        (torch.rand(1, 40, 40, 3), ValueError),
        (np.zeros((40, 40, 3)), TypeError),
    ],
    ids=["batch2", "gray", "2d", "channels_last", "array"],
)
def test_to_pil_refuses_what_is_not_one_image(x, error):
    with pytest.raises(error):
        to_pil(x)


# ----------------------------------------------------------------------------- showing

def test_show_draws_one_image_without_axes():
    x = torch.rand(1, 3, 40, 60)
    ax = show(x, title="content")
    assert len(ax.images) == 1
    assert ax.images[0].get_array().shape == (40, 60, 3)
    assert ax.get_title() == "content"
    assert not ax.axison


def test_show_on_given_axes():
    fig, ax = plt.subplots()
    assert show(Image.new("RGB", (40, 40)), ax=ax) is ax
    assert len(ax.images) == 1 and ax.get_title() == ""


def test_show_images_makes_a_captioned_grid():
    images = [torch.rand(1, 3, 40, 60), Image.new("RGB", (40, 40), "red"), np.zeros((40, 50, 3))]
    captions = ["tensor", "PIL", "array"]
    fig = show_images(images, captions)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == len(images)
    for ax, caption in zip(fig.axes, captions):
        assert len(ax.images) == 1
        assert ax.get_title() == caption
        assert not ax.axison
    assert fig.axes[1].images[0].get_array()[0, 0].tolist() == [255, 0, 0]


def test_show_images_fills_a_grid_with_ncols():
    fig = show_images([torch.rand(3, 40, 40)] * 3, ncols=2)
    assert len(fig.axes) == 4
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 0]
    assert all(not ax.axison for ax in fig.axes)
    assert all(ax.get_title() == "" for ax in fig.axes)


def test_show_images_refuses_mismatched_captions():
    with pytest.raises(ValueError, match="captions"):
        show_images([torch.rand(3, 40, 40)] * 2, captions=["only one"])


def test_show_images_refuses_an_empty_list():
    with pytest.raises(ValueError, match="at least one"):
        show_images([])


@pytest.mark.parametrize("name", ["out.psd", "out.fits", "out.xpm", "out.xbm", "out.txt", "out"])
def test_output_format_refuses_what_save_image_cannot_write(name):
    from nstlib.images import output_format

    with pytest.raises(ValueError, match="cannot write images of type"):
        output_format(name)


@pytest.mark.parametrize("name", ["a.png", "a.JPG", "a.jpeg", "a.webp", "a.tif", "a.bmp"])
def test_output_format_accepts_what_save_image_writes(tmp_path, name):
    from nstlib.images import output_format

    output_format(name)
    save_image(torch.rand(1, 3, 40, 40), tmp_path / name)


def test_registry_name_loads_says_why_it_fails_offline(monkeypatch, tmp_path):
    """Issue 24, 13: without NSTLIB_DATA_DIR and offline the test failed without saying why."""
    import subprocess
    import sys

    monkeypatch.delenv("NSTLIB_DATA_DIR", raising=False)
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # offline: nothing listens there
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{__file__}::test_registry_name_loads"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "set NSTLIB_DATA_DIR to a copy of ../shared/images" in proc.stdout, proc.stdout[-2000:]


def test_a_huge_png_is_reduced_before_the_float_conversion(tmp_path):
    """Issue 24, 7: a 12000 x 12000 PNG at max_size=128 took 3.7 GB (float32 at full size first).
    Here 4000 x 3000: the float32 copy alone would be 144 MB; reduced first, the numpy peak is small."""
    import tracemalloc

    from PIL import ImageDraw

    path = tmp_path / "huge.png"
    image = Image.new("RGB", (4000, 3000), (30, 90, 200))
    ImageDraw.Draw(image).rectangle((1000, 1000, 3000, 2000), fill=(250, 250, 10))
    image.save(path, compress_level=1)
    del image
    tracemalloc.start()
    try:
        x = load_image(path, max_size=128)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (1, 3, 96, 128)
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB"
    # the colours survive the box average
    assert torch.allclose(x[0, :, 48, 64], torch.tensor([250, 250, 10]) / 255, atol=0.02)
    assert torch.allclose(x[0, :, 5, 5], torch.tensor([30, 90, 200]) / 255, atol=0.02)


@pytest.mark.parametrize("mode", ["P", "1", "L", "RGBA", "I;16"])
def test_reduced_decoding_keeps_each_mode_right(tmp_path, mode):
    base = Image.new("RGB", (1200, 800), (255, 255, 255))
    base.paste((0, 0, 0), (0, 0, 600, 800))  # left half black
    image = base.convert("L").convert(mode) if mode != "P" else base.convert("P")
    if mode == "I;16":
        image = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
    path = tmp_path / "big.png"
    image.save(path)
    x = load_image(path, max_size=64)
    assert x.shape == (1, 3, 43, 64)
    assert x[0, :, 20, 5].max() < 0.05 and x[0, :, 20, 60].min() > 0.95


def test_a_32_bit_integer_tiff_is_refused_not_white(tmp_path):
    """Issue 24, 10: values up to 2**31 were divided by 65535 and the image came out white."""
    arr = (np.arange(64 * 64, dtype=np.int64).reshape(64, 64) * 500_000).astype(np.int32)
    path = tmp_path / "deep.tif"
    Image.fromarray(arr, mode="I").save(path)
    with pytest.raises(ImageError, match=r"deep.tif: a 32-bit integer image with values in \[0, 2047500000\]"):
        load_image(path)
    small = tmp_path / "sixteen_in_32.tif"  # 16-bit values stored in 32 bits: read as 16-bit
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.int32), mode="I").save(small)
    x = load_image(small)
    assert x.max() == pytest.approx(4095 * 16 / 65535) and x.min() == 0


# ----------------------------------------------------------------------------- masks

@pytest.mark.parametrize("shape", [(6, 8), (1, 6, 8), (1, 1, 6, 8)])
def test_as_mask_gives_one_shape(shape):
    m = as_mask(torch.rand(shape) * 0.5 + 0.25)
    assert m.shape == (1, 1, 6, 8) and m.dtype == torch.float32
    assert as_mask(torch.ones(6, 8, dtype=torch.bool)).dtype == torch.float32  # 0/1 types become float
    assert as_mask(torch.ones(6, 8, dtype=torch.float64)).dtype == torch.float64


def test_as_mask_takes_a_batch_only_when_asked():
    like = torch.rand(3, 3, 6, 8)
    assert as_mask(torch.ones(3, 1, 6, 8), like=like, batch=True).shape == (3, 1, 6, 8)
    assert as_mask(torch.ones(6, 8), like=like, batch=True).shape == (1, 1, 6, 8)
    with pytest.raises(ValueError, match=r"must be \(H, W\), \(1, H, W\) or \(1, 1, H, W\), got shape \(3, 1, 6, 8\)"):
        as_mask(torch.ones(3, 1, 6, 8))
    with pytest.raises(ValueError, match="a batch of 2 masks for a batch of 3 images"):
        as_mask(torch.ones(2, 1, 6, 8), like=like, batch=True)


@pytest.mark.parametrize("bad, message", [
    (torch.ones(3, 6, 8), r"got shape \(3, 6, 8\)"),
    (torch.ones(1, 3, 6, 8), r"got shape \(1, 3, 6, 8\)"),
    (torch.ones(8), r"got shape \(8,\)"),
    (torch.ones(0, 8), "has no pixels"),
    (torch.full((6, 8), 1.5), r"values must lie in \[0, 1\]"),
    (torch.full((6, 8), -0.1), r"values must lie in \[0, 1\]"),
    (torch.full((6, 8), 255, dtype=torch.uint8), r"values must lie in \[0, 1\]"),
    (torch.full((6, 8), float("nan")), "NaN or inf"),
    (torch.zeros(6, 8), "zero everywhere"),
])
def test_as_mask_refuses_with_the_masks_name(bad, message):
    with pytest.raises(ValueError, match=message) as e:
        as_mask(bad, name="region 2")
    assert "region 2" in str(e.value)


def test_as_mask_checks_the_images_size_and_type():
    with pytest.raises(ValueError, match=r"style_mask is \(6, 8\) but its image is \(6, 9\)"):
        as_mask(torch.ones(6, 8), like=torch.rand(1, 3, 6, 9), name="style_mask")
    with pytest.raises(TypeError, match="load_mask"):
        as_mask(np.ones((6, 8)))
    assert as_mask(torch.zeros(6, 8), allow_empty=True).max() == 0


def test_a_loaded_mask_passes_as_mask(tmp_path):
    path = tmp_path / "mask.png"
    Image.new("L", (40, 32), 255).save(path)
    m = load_mask(path, size=(8, 10))
    assert torch.equal(as_mask(m, like=torch.rand(1, 3, 8, 10)), m)
