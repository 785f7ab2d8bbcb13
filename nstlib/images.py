"""Images in and out: load anything a learner might have into the course's tensor convention.

The convention (COURSE.md): every public function takes and returns float32 tensors of shape
(B, 3, H, W), RGB, values in [0, 1]. Only the feature extractor converts to the convention its
weights were trained with (nstlib.features).

`load_image` accepts a path, a data-registry name ('starry_night', see nstlib.data), a PIL image, a
NumPy array (H, W) / (H, W, C) or a tensor (3, H, W) / (1, 3, H, W), and converts what photos and
paintings come as:

* EXIF orientation is applied (phone photos are stored sideways with a rotation tag);
* grayscale ('1', 'L'), palette ('P'), CMYK, YCbCr and LAB become RGB;
* transparency (RGBA, LA, PA, palette with a transparent colour) is composited over white;
* 16-bit grayscale is scaled by 1/65535 (Pillow reads 16-bit RGB PNGs as 8-bit RGB already); a
  32-bit integer image (TIFF) with values beyond 0..65535 is refused: it has no standard white level;
* large photos are decoded at a reduced scale where the format allows it (JPEG draft mode), and
  any large image is shrunk by an integer factor in its 8-bit form before the float32 conversion,
  then resized with an antialiased bicubic filter. Decompression bombs (Pillow's limit, about 179
  megapixels) are refused.

Errors name the file and the problem: `FileNotFoundError` for a missing file, `ImageError` (a
ValueError) for everything else.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import atomic_write

MIN_SIDE = 32  # VGG halves the image five times; below this the deepest layers are 1x1 or empty
Size = Union[int, Sequence[int], None]


class ImageError(ValueError):
    """An image that cannot be used, with a message that names it and says why."""


# ----------------------------------------------------------------------------- loading

def load_image(source, max_size: int | None = None, size: Size = None) -> torch.Tensor:
    """Load `source` as a (1, 3, H, W) float32 RGB tensor in [0, 1].

    max_size: resize so that the longer side is `max_size` px (aspect ratio kept).
    size:     an int resizes the shorter side to `size` px (aspect ratio kept);
              a pair (H, W) resizes to exactly that.
    Images are upscaled as well as downscaled to reach the requested size.
    """
    _check_sizes(max_size, size)  # before decoding: draft() would divide by a zero size
    if isinstance(source, (str, os.PathLike)):
        image, label = _open_file(source, max_size, size)
        x = _pil_to_tensor(image, label)
    elif isinstance(source, Image.Image):
        label = "PIL image"
        x = _pil_to_tensor(ImageOps.exif_transpose(source), label)
    elif isinstance(source, np.ndarray):
        label = f"array of shape {source.shape}"
        x = _array_to_tensor(source, label)
    elif torch.is_tensor(source):
        label = f"tensor of shape {tuple(source.shape)}"
        x = _tensor_to_image(source, label)
    else:
        raise TypeError(
            f"cannot load an image from {type(source).__name__}: give a path, a registry name, "
            "a PIL image, a NumPy array or a tensor"
        )
    if not isinstance(source, (str, os.PathLike)):  # files: checked before draft mode shrank them
        _check_min_side(x, label, "is")
    if max_size is not None or size is not None:
        x = resize(x, max_size=max_size, size=size)
        _check_min_side(x, label, "would be resized to")
    return x


def load_mask(source, size: Size = None) -> torch.Tensor:
    """Load a region mask as a (1, 1, H, W) float tensor in [0, 1] (white = 1): the mean of the
    RGB channels of `load_image(source)`, resized to `size` (shorter side, or exact (H, W)) with
    area averaging, so edges become fractional rather than ringing. Masks guide the style of
    regions (Gatys et al. 2017, Sec. 4; nstlib.optimize.StyleTerm)."""
    x = load_image(source)
    mask = x.mean(dim=1, keepdim=True)  # (1, 1, H, W)
    if size is not None:
        _check_sizes(None, size)
        h, w = mask.shape[-2:]
        if isinstance(size, (int, np.integer)):
            scale = size / min(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
        mask = F.interpolate(mask, size=(int(size[0]), int(size[1])), mode="area")
    return mask.clamp_(0.0, 1.0)


def as_mask(mask, *, like: torch.Tensor | None = None, name: str = "mask", batch: bool = False,
            allow_empty: bool = False) -> torch.Tensor:
    """A region mask, checked, in the form every masked method takes: a (1, 1, H, W) tensor in [0, 1]
    (white = 1), float32 (float64 stays float64), on the device it came on.

    mask: a tensor (H, W), (1, H, W) or (1, 1, H, W); with `batch`, also (B, 1, H, W), one mask per
        image of a batch. A file, registry name or array goes through `load_mask` first.
    like: the image the mask belongs to, (B, 3, H, W): the mask must have its height and width
        (and, with `batch`, a batch of 1 or of B).
    name: how errors call it ('mask 2', 'style_mask').
    allow_empty: accept a mask that is 0 everywhere. Off by default, since an empty region is
        usually a mistake (the inverted mask of a full one); on where a method takes one mask per
        style and an empty one means "not this style" (StyleBank.fuse_regions, AdaIN's regions).
    Raises TypeError for a non-tensor and ValueError, naming the mask, for a wrong shape, a value
    outside [0, 1] (NaN included), an empty mask and a size that is not its image's.
    """
    if not torch.is_tensor(mask):
        raise TypeError(f"{name} must be a tensor, got {type(mask).__name__}; load a file or an array "
                        "with nstlib.images.load_mask")
    shapes = "(H, W), (1, H, W), (1, 1, H, W) or (B, 1, H, W)" if batch else "(H, W), (1, H, W) or (1, 1, H, W)"
    m = mask.detach()
    m = m if m.dtype == torch.float64 else m.float()  # bool and 0/1 integer tensors become float32
    if m.dim() in (2, 3):
        m = m.reshape(1, 1, *m.shape[-2:]) if m.dim() == 2 or m.shape[0] == 1 else m
    if m.dim() != 4 or m.shape[1] != 1 or (m.shape[0] != 1 and not batch):
        raise ValueError(f"{name} must be {shapes}, got shape {tuple(mask.shape)}")
    if m.numel() == 0:
        raise ValueError(f"{name} has no pixels (shape {tuple(mask.shape)})")
    if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise ValueError(f"{name} values must lie in [0, 1] (white = 1), found [{float(m.min()):.3g}, "
                         f"{float(m.max()):.3g}]" + ("" if torch.isfinite(m).all() else " and NaN or inf"))
    if not allow_empty and m.max() == 0:
        raise ValueError(f"{name} is zero everywhere: that region is empty")
    if like is not None:
        if m.shape[-2:] != like.shape[-2:]:
            raise ValueError(f"{name} is {tuple(m.shape[-2:])} but its image is {tuple(like.shape[-2:])}: a mask must "
                             "have its image's size (e.g. nstlib.images.load_mask(source, size=(H, W)))")
        if m.shape[0] not in (1, like.shape[0]):
            raise ValueError(f"{name} is a batch of {m.shape[0]} masks for a batch of {like.shape[0]} images")
    return m


def _check_min_side(x: torch.Tensor, label: str, verb: str) -> None:
    h, w = x.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise ImageError(
            f"{label}: {verb} {w}x{h} px; the course needs at least {MIN_SIDE} px on each side"
        )


def _open_file(source, max_size: int | None, size: Size) -> tuple[Image.Image, str]:
    path = _resolve(source)
    label = str(path)
    if path.is_dir():
        raise ImageError(f"{label}: is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 MP and refuses above ~179 MP; we accept the first (large
            # photos are downscaled) and turn the second into our own message below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            w, h = image.size
            _reduce_while_decoding(image, max_size, size)
            image.load()
    except Image.DecompressionBombError as e:
        raise ImageError(
            f"{label}: refused as a possible decompression bomb ({e}). Shrink it with an image "
            "editor if it really is a photo."
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image file that Pillow can read") from None
    except PermissionError as e:
        raise ImageError(f"{label}: cannot be read ({e.strerror})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{label}: the image data is truncated or corrupt ({e})") from None
    if min(w, h) < MIN_SIDE:  # checked on the stored size, before any draft-mode reduction
        raise ImageError(
            f"{label}: is {w}x{h} px; the course needs at least {MIN_SIDE} px on each side"
        )
    return _reduce_decoded(ImageOps.exif_transpose(image), max_size, size), label


def _resolve(source) -> Path:
    """A path that exists, or a data-registry name turned into a local path."""
    path = Path(source).expanduser()
    if path.is_file() or path.is_dir():
        return path
    text = str(source)
    looks_like_name = os.sep not in text and "/" not in text and not path.suffix
    if looks_like_name:
        from . import data  # imported here: data imports this module's loader indirectly

        return data.get(text)
    raise FileNotFoundError(f"{path}: no such image file")


def _target_scale(w: int, h: int, max_size: int | None, size: Size) -> float:
    """The factor by which a w x h image will be resized (1.0 when no resize is asked for)."""
    if max_size is not None:
        return max_size / max(w, h)
    if isinstance(size, (int, np.integer)):
        return size / min(w, h)
    if size is not None:
        return max(size[0] / h, size[1] / w)
    return 1.0


def _reduce_while_decoding(image: Image.Image, max_size: int | None, size: Size) -> None:
    """Let JPEG decode a big photo at 1/2, 1/4 or 1/8 scale when the target is much smaller.

    draft() keeps every side at least as large as asked; we ask for twice the target so the final
    antialiased resize still has detail to work with.
    """
    scale = _target_scale(*image.size, max_size, size)
    if image.format == "JPEG" and scale < 0.5:
        w, h = image.size
        image.draft("RGB", (math.ceil(2 * scale * w), math.ceil(2 * scale * h)))


# modes whose pixels can be box-averaged (a palette's indices cannot: 'P' is converted first)
# (16-bit 'I;16*' cannot be reduced by Pillow; those images are rare and left whole)
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "RGBa", "La", "CMYK", "YCbCr", "I", "F")


def _reduce_decoded(image: Image.Image, max_size: int | None, size: Size) -> Image.Image:
    """Shrink a decoded image by an integer factor (box average, in its 8- or 16-bit mode) while it
    is still at least twice the target, before it is converted to float32: a 12000 x 12000 PNG asked
    for at max_size=128 then costs its 8-bit pixels once (PNG cannot decode at a reduced scale
    like JPEG's draft mode), not 1.7 GB of float32 and its copies."""
    factor = math.floor(1 / (2 * _target_scale(*image.size, max_size, size)))
    if factor < 2 or image.mode.startswith("I;16"):
        return image
    if image.mode == "P" or (image.mode not in _REDUCIBLE and image.mode != "1"):
        image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    return image.reduce(factor)


def _pil_to_tensor(image: Image.Image, label: str) -> torch.Tensor:
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grayscale: Pillow stores it as integers 0..65535. Mode 'I' is also what 32-bit integer
        # files (TIFF) decode to; they have no standard white level, so values beyond 16 bits are
        # refused rather than divided by 65535 (which made them white).
        ints = np.asarray(image)
        lo, hi = int(ints.min()), int(ints.max())
        if lo < 0 or hi > 65535:
            raise ImageError(
                f"{label}: a 32-bit integer image with values in [{lo}, {hi}]; nstlib reads 8- and 16-bit "
                "images (0..65535) and float images in [0, 1]: convert it to one of those first"
            )
        gray = ints.astype(np.float32) / 65535.0
        arr = np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2)
    elif mode == "F":
        gray = np.asarray(image, dtype=np.float32)
        arr = np.repeat(_check_float_range(gray, label)[..., None], 3, axis=2)
    else:
        has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
        if has_alpha:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].contiguous()


def _check_float_range(arr: np.ndarray, label: str) -> np.ndarray:
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if not np.isfinite(arr).all():
        raise ImageError(f"{label}: contains NaN or infinite values")
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ImageError(
            f"{label}: float values must lie in [0, 1], found [{lo:.3g}, {hi:.3g}] "
            "(divide 0..255 data by 255)"
        )
    return np.clip(arr, 0, 1)


def _array_to_tensor(arr: np.ndarray, label: str) -> torch.Tensor:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, uint8 / uint16 / bool / float in [0, 1]."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"{label}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        x = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_:
        x = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        x = _check_float_range(arr.astype(np.float32), label)
    else:
        raise ImageError(f"{label}: unsupported dtype {arr.dtype}; use uint8, uint16 or float")
    if x.shape[2] == 4:  # composite over white: out = a * rgb + (1 - a) * 1
        alpha = x[..., 3:]
        x = alpha * x[..., :3] + (1.0 - alpha)
    elif x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].contiguous()


def _tensor_to_image(t: torch.Tensor, label: str) -> torch.Tensor:
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        raise ImageError(f"{label}: expected (3, H, W) or (1, 3, H, W)")
    if not t.is_floating_point():
        raise ImageError(f"{label}: expected a float tensor in [0, 1], got {t.dtype}")
    t = t.detach().to("cpu", torch.float32)
    return torch.from_numpy(_check_float_range(t.numpy(), label)).contiguous()


def check_image(x: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Raise a clear error unless `x` follows the convention: float (B, 3, H, W)."""
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__} (use load_image)")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got {x.dtype}")
    return x


# ----------------------------------------------------------------------------- resizing

def resize(x: torch.Tensor, max_size: int | None = None, size: Size = None) -> torch.Tensor:
    """Resize a (B, 3, H, W) image batch with an antialiased bicubic filter, keeping [0, 1].

    max_size: longer side; size: shorter side (int) or exact (H, W). Same meaning as load_image.
    """
    check_image(x)
    _check_sizes(max_size, size)
    h, w = x.shape[-2:]
    if max_size is None and size is None:
        return x
    if max_size is not None:
        scale = max_size / max(h, w)
        new = (max(1, round(h * scale)), max(1, round(w * scale)))
    elif isinstance(size, (int, np.integer)):
        scale = size / min(h, w)
        new = (max(1, round(h * scale)), max(1, round(w * scale)))
    else:
        new = (int(size[0]), int(size[1]))
    if new == (h, w):
        return x
    # antialias=True low-passes before downsampling (no moire on paintings' fine strokes)
    y = F.interpolate(x, size=new, mode="bicubic", align_corners=False, antialias=True)
    return y.clamp_(0.0, 1.0)  # bicubic overshoots slightly at sharp edges


def _check_sizes(max_size, size: Size) -> None:
    """Raise ValueError unless max_size / size are what load_image and resize document."""
    if max_size is not None and size is not None:
        raise ValueError("give max_size or size, not both")
    if max_size is not None:
        _check_positive(max_size, "max_size")
    elif isinstance(size, (int, np.integer)):
        _check_positive(size, "size")
    elif size is not None:
        if np.ndim(size) != 1 or len(size) != 2:
            raise ValueError(f"size must be an int or a pair (H, W), got {size!r}")
        for s in size:
            _check_positive(s, "size")


def _check_positive(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer number of pixels, got {value!r}")


# ----------------------------------------------------------------------------- saving

def to_pil(x: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) or (3, H, W) tensor in [0, 1] as an 8-bit RGB PIL image (values clamped)."""
    if torch.is_tensor(x) and x.dim() == 3:
        x = x[None]
    check_image(x)
    if x.shape[0] != 1:
        raise ValueError(f"to_pil takes one image, got a batch of {x.shape[0]}; index it first")
    arr = (x[0].detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), "RGB")


def output_format(path: str | os.PathLike, trial: bool = True) -> str:
    """The Pillow format `save_image` writes to `path` (from its suffix), or a ValueError saying
    which suffixes work. With `trial`, checked by writing a small RGB image in memory, so a format
    Pillow reads but cannot write (.psd, .fits, .xpm) or cannot write as 8-bit RGB (.xbm) is refused
    before any work (the command line calls this before optimising)."""
    path = Path(path).expanduser()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is not None and fmt.upper() in Image.SAVE:  # Pillow reads some formats it cannot write
        if not trial:
            return fmt
        try:
            Image.new("RGB", (MIN_SIDE, MIN_SIDE)).save(io.BytesIO(), format=fmt, **_save_options(fmt))
            return fmt
        except (OSError, ValueError, KeyError, TypeError):
            pass
    raise ValueError(f"{path}: cannot write images of type {path.suffix or '(no extension)'}; "
                     "use a format save_image writes: .png, .jpg, .webp or .tif")


def _save_options(fmt: str) -> dict:
    return {"quality": 95} if fmt == "JPEG" else {}


def save_image(x: torch.Tensor, path: str | os.PathLike) -> Path:
    """Save one image tensor to `path` (format from the suffix: .png, .jpg, ...); returns the path.

    The file is written atomically (files.atomic_write), so a failed save leaves any existing file
    intact. Missing parent directories are created.
    """
    path = Path(path).expanduser()
    fmt = output_format(path, trial=False)
    image = to_pil(x)
    try:
        with atomic_write(path) as tmp:
            image.save(tmp, format=fmt, **_save_options(fmt))
    except OSError as e:
        raise OSError(f"{path}: cannot write the image ({e.strerror or e})") from None
    return path


# ----------------------------------------------------------------------------- showing

def as_display_array(image) -> np.ndarray:
    """An image as an array for matplotlib's imshow: a PIL image as (H, W, 3) RGB, a (1, 3, H, W)
    tensor through to_pil, anything else through np.asarray."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if torch.is_tensor(image):
        return np.asarray(to_pil(image))
    return np.asarray(image)


def show(image, title: str | None = None, ax=None, inches: float = 5.0):
    """Show one image without axes, `inches` wide and high; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(inches, inches))
    ax.imshow(as_display_array(image))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def show_images(images, captions=None, ncols: int | None = None, inches: float = 3.0):
    """Show images in a grid with captions and no axes; returns the Figure.

    Each cell is `inches` high; widths follow the images' aspect ratios.
    """
    import matplotlib.pyplot as plt

    images = list(images)
    if not images:
        raise ValueError("show_images needs at least one image")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images")
    arrays = [as_display_array(im) for im in images]
    ncols = ncols or min(len(arrays), 5)
    nrows = math.ceil(len(arrays) / ncols)
    aspect = max(a.shape[1] / a.shape[0] for a in arrays)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(inches * aspect * ncols, inches * nrows + 0.3 * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(arrays):
            ax.imshow(arrays[i])
            if captions is not None:
                ax.set_title(captions[i], fontsize=10)
    fig.tight_layout()
    return fig
