"""Training images for the feed-forward methods (AdaIN, StyleBank, CycleGAN): folders of photos
and paintings, random crops, and unpaired batches.

Huang & Belongie (2017, Sec. 6.2) resize each image so its shorter side is 512 px and take a
random 256 x 256 crop; content and style images are drawn independently (unpaired). Here:

    photos = ImageSet(["data/coco/val2017"])                 # folders, files or registry names
    paintings = ImageSet(nstlib.data.list_images("style"))
    batches = UnpairedBatches(photos, paintings, batch_size=8, crop=256, generator=g)
    content, style = next(batches)                           # two (8, 3, 256, 256) tensors

All randomness comes from the one `torch.Generator` passed in, so a checkpoint that saves its
state resumes the exact sequence of batches (nstlib.training). Under torchrun every process draws
the same global batch from that generator and keeps its own slice (`shard`, `random_crops(keep=)`,
nstlib.distributed), so N processes together train on what one process with N times the batch
would draw.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from . import data
from .files import is_image_file
from .images import ImageError, load_image


# Registry images that the shipped models (AdaIN's decoder, the StyleBank) never saw: notebooks 05
# and 06 show their results on these, so they test generalisation, not memory. Every other registry
# photo and painting is training data.
HELD_OUT = {"content": ("tubingen", "golden_gate", "chelsea"),
            "style": ("starry_night", "the_scream", "la_muse", "woman_with_hat_matisse")}


def training_images(kind: str) -> list[str]:
    """The registry's images of `kind` ('content' or 'style') minus those HELD_OUT for evaluation."""
    if kind not in HELD_OUT:
        raise ValueError(f"kind must be one of {sorted(HELD_OUT)}, got {kind!r}")
    return [name for name in data.list_images(kind) if name not in HELD_OUT[kind]]


class ImageSet:
    """Images from training sets by name ('bsds500', 'wikiart/cubism': nstlib.training_sets, verified,
    held-out folders left out), folders (searched recursively), files, or data-registry names, each loaded
    with its shorter side resized to `load_size` px. Decoded images are kept in memory when
    `cache` is True (right for the few dozen offline images; turn it off for large datasets).
    Unreadable files are reported once and skipped, not fatal, in a folder of thousands."""

    def __init__(self, sources: Iterable[str | Path], load_size: int = 512, cache: bool = True):
        sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
        self.items: list[str | Path] = []
        for source in sources:
            self.items += _expand(source)
        if not self.items:
            raise ValueError(f"no images found in {[str(s) for s in sources]}")
        self.load_size, self.cache = load_size, cache
        self._memory: dict[int, torch.Tensor] = {}
        self._sizes: dict[int, tuple[int, int]] = {}  # (H, W) of each image loaded once: see random_crop(load=)
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        """Image i as a (3, H, W) tensor, shorter side `load_size`."""
        if i in self._memory:
            return self._memory[i]
        x = load_image(self.items[i], size=self.load_size)[0]
        self._sizes[i] = tuple(x.shape[-2:])
        if self.cache:
            self._memory[i] = x
        return x

    def preload(self, device: torch.device | str = "cpu", workers: int = 8) -> "ImageSet":
        """Decode every image now (`workers` threads; PIL releases the GIL while decoding) and keep
        it on `device`, so that crops are cut there: on a GPU no batch crosses the bus. Images that
        fail to load are listed in `self.skipped` and left out. Returns self."""
        from concurrent.futures import ThreadPoolExecutor

        def load(i: int):
            try:
                return i, load_image(self.items[i], size=self.load_size)[0]
            except (ImageError, OSError) as e:
                self.skipped.append(f"{self.items[i]}: {e}")
                return i, None

        with ThreadPoolExecutor(max(1, workers)) as pool:
            loaded = [(i, x) for i, x in pool.map(load, range(len(self.items))) if x is not None]
        if not loaded:
            raise ImageError("none of the images could be loaded:\n" + "\n".join(self.skipped[-5:]))
        self.items = [self.items[i] for i, _ in loaded]
        self._memory = {j: x.to(device) for j, (_, x) in enumerate(loaded)}
        self._sizes = {j: tuple(x.shape[-2:]) for j, x in self._memory.items()}
        self.cache = True
        return self

    def random_crop(self, crop: int, generator: torch.Generator,
                    columns: tuple[float, float] = (0.0, 1.0), load: bool = True) -> torch.Tensor | None:
        """A random image's random crop, (3, crop, crop), lying within `columns` (fractions of the
        width: (0, 0.5) is the left half); images that fail to load are skipped (and listed in
        `self.skipped`). With load=False the crop is drawn for its random numbers only (another
        rank's slice of the global batch): the same numbers are drawn and None is returned, without
        decoding the image when its size is known from an earlier load."""
        if crop > self.load_size:
            raise ValueError(f"crop {crop} is larger than the load size {self.load_size}")
        if not 0 <= columns[0] < columns[1] <= 1:
            raise ValueError(f"columns must be fractions 0 <= start < end <= 1, got {columns}")
        for _ in range(len(self.items)):
            i = int(torch.randint(len(self.items), (1,), generator=generator))
            x = None
            if load or i not in self._sizes:  # the crop's position depends on the image's size
                try:
                    x = self[i]
                except (ImageError, OSError) as e:
                    self.skipped.append(f"{self.items[i]}: {e}")
                    continue
            h, w = self._sizes[i] if x is None else x.shape[-2:]
            start, end = round(columns[0] * w), round(columns[1] * w)
            if end - start < crop:
                raise ValueError(f"{self.items[i]}: columns {columns} are {end - start} px wide, less than the crop {crop}")
            top = int(torch.randint(h - crop + 1, (1,), generator=generator))
            left = start + int(torch.randint(end - start - crop + 1, (1,), generator=generator))
            return x[:, top: top + crop, left: left + crop] if load else None
        raise ImageError("none of the images could be loaded:\n" + "\n".join(self.skipped[-5:]))


def _expand(source: str | Path) -> list[str | Path]:
    """A registry name, a training set ('bsds500', 'bsds500/train', 'wikiart/cubism', optionally
    'datasets:'-prefixed: its verified files minus its held-out folders), a folder or a file."""
    if isinstance(source, str) and source in data.registry():
        return [source]
    if isinstance(source, str):
        from . import training_sets

        spec = training_sets.parse_spec(source)
        if spec is not None and (source.startswith("datasets:") or not Path(source).expanduser().exists()):
            return list(training_sets.dataset_files(*spec, training=True))
    path = Path(source).expanduser()
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if is_image_file(p) and p.is_file())
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"{source}: neither a folder, an image file, a registry name nor a training set")


def random_crops(images: ImageSet, n: int, crop: int, generator: torch.Generator, keep: slice | None = None,
                 columns: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """n random crops of `images` drawn one after another from `generator`, stacked, (k, 3, crop,
    crop): all n, or those in `keep` (this rank's slice of a global batch: nstlib.distributed.
    global_batch). The others draw the same random numbers but are not cut or kept, so the
    generator ends where it would after all n, on every rank."""
    kept = range(n)[keep] if keep is not None else range(n)
    crops = [images.random_crop(crop, generator, columns, load=j in kept) for j in range(n)]
    return torch.stack([c for c in crops if c is not None])


def shuffle_channels(images: torch.Tensor, generator: torch.Generator, first: int = 0, total: int | None = None) -> torch.Tensor:
    """Each image of a (B, 3, H, W) batch with its RGB channels in one of the 6 orders, drawn from
    `generator`: colour augmentation that keeps every image's structure and contrast. With a dozen
    training images it turns each one into six palettes, so a network cannot learn "the" colours
    of its training set (a sky in a shuffled crop may be green, red or blue). For a rank's slice of
    a global batch of `total` images, starting at image `first`, the orders of all `total` are
    drawn and the slice's are used."""
    total = len(images) if total is None else total
    orders = [torch.randperm(3, generator=generator) for _ in range(total)][first: first + len(images)]
    return torch.stack([x[order] for x, order in zip(images, orders)])


class UnpairedBatches:
    """An endless iterator of (content, style) batches, (B, 3, crop, crop) each, drawn
    independently from two ImageSets with one generator. With `shuffle_style_channels` each
    style crop's channels are shuffled (shuffle_channels), from the same generator. With
    `shard=(rank, world)` (torchrun: nstlib.distributed) every rank draws the global batch of
    batch_size x world crops of each kind and returns its slice of batch_size, so the ranks' batches
    together are the one-process batch of batch_size x world."""

    def __init__(self, content: ImageSet, style: ImageSet, batch_size: int = 8, crop: int = 256,
                 generator: torch.Generator | None = None, shuffle_style_channels: bool = False,
                 shard: tuple[int, int] = (0, 1)):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard must be (rank, world) with 0 <= rank < world, got {shard}")
        self.content, self.style, self.batch_size, self.crop = content, style, batch_size, crop
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.shuffle_style_channels = shuffle_style_channels
        self.shard = shard

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        rank, world = self.shard
        n, keep = self.batch_size * world, slice(rank * self.batch_size, (rank + 1) * self.batch_size)
        c = random_crops(self.content, n, self.crop, self.generator, keep)
        s = random_crops(self.style, n, self.crop, self.generator, keep)
        if self.shuffle_style_channels:
            s = shuffle_channels(s, self.generator, keep.start, n)
        return c, s
