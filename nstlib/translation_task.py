"""An unpaired translation task whose right answer is known, for CycleGAN offline and in CI.

Domain A is crops of photos. Domain B is crops passed through a fixed colour and tone transform T
(a colour grade: channel mixing towards warm highlights and teal shadows, a tone curve, and a lift
of the blacks; strong enough that doing nothing scores only about 13 dB). A and B never share a
pixel: A's crops come from the left half of each training photo, B's from the right half. (With a
dozen photos, taking A and B from *different* photos would give two domains whose colours differ
by their subjects, a cat against a night skyline, more than by T; a GAN matches distributions, so
it would learn that difference instead of T. Two halves of the same photos have the same kind of
colours.) The registry's paintings are split the same way, and each training crop's RGB channels
are put in a random order before T, drawn the same way for A and B: the held-out photos contain
colours (foliage greens above all) that nine training photos barely show, and a GAN only learns
the grade for colours it has seen. The permutations multiply the colours covered by six and leave
T the only systematic difference between A and B. (A colour augmentation for this task, not part
of CycleGAN; notebook 07 reports the quality with and without it.)

A model trained on unpaired A and B never sees a pair (a, T(a)), yet the correct translation of
every a is known: T(a). So translation quality is measurable, as PSNR and SSIM of G(a) against
T(a) on crops of held-out photos (nstlib.metrics.psnr and .ssim), and comparable with the identity baseline G(a) = a and with
pix2pix trained on the paired version (a, T(a)), the upper bound.

    task = TranslationTask.from_registry(crop=64)
    a, b = task.unpaired_batch(4)            # unpaired: b = T(crops of the photos' other halves)
    a, t = task.paired_batch(4)              # paired, for pix2pix: t = T(a)
    task.evaluate(generator)                 # {'psnr': ..., 'ssim': ...} on the fixed test crops
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import data
from .datasets import ImageSet, shuffle_channels
from .metrics import psnr, ssim

# a colour grade: rows are output R, G, B as mixtures of input R, G, B
MIX = torch.tensor([[1.10, 0.20, -0.20],
                    [0.00, 0.90, 0.10],
                    [-0.30, 0.30, 0.90]])
GAMMA = 0.55  # tone curve x^0.55: brightens the mid-tones
LIFT = 0.12  # blacks lifted to 0.12: the faded look


def tone_transform(x: torch.Tensor) -> torch.Tensor:
    """T(x) = LIFT + (1 - LIFT) * clamp(MIX x, 0, 1)^GAMMA per pixel; (B, 3, H, W) in [0, 1]."""
    mixed = torch.einsum("ij,bjhw->bihw", MIX.to(x), x).clamp(0, 1)
    return LIFT + (1 - LIFT) * mixed.pow(GAMMA)


class CropSampler:
    """Random training crops with random horizontal flips, all drawn from one generator whose state
    goes into the training checkpoint (so a resumed run draws the same crops)."""

    def __init__(self, crop: int, seed: int):
        self.crop = crop
        self.generator = torch.Generator().manual_seed(seed)

    def crops(self, images: ImageSet, n: int, flip: bool = True,
              columns: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        """n random crops of `images` within the width fractions `columns`, (n, 3, crop, crop)."""
        out = []
        for _ in range(n):
            x = images.random_crop(self.crop, self.generator, columns)
            if flip and float(torch.rand(1, generator=self.generator)) < 0.5:
                x = x.flip(-1)
            out.append(x)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class TranslationTask(CropSampler):
    """A -> B = T(A): domain A from `a_images` (within the width fractions `a_columns`), domain B
    from `b_images` (within `b_columns`) transformed by T, and the held-out `test_images` whose
    crops measure quality. With `shuffle_channels`, each training crop's RGB channels are put in a
    random order before T (colour augmentation; the test crops are never shuffled)."""

    def __init__(self, a_images: ImageSet, b_images: ImageSet, test_images: ImageSet, crop: int = 128,
                 test_crops: int = 16, seed: int = 0, a_columns: tuple[float, float] = (0.0, 1.0),
                 b_columns: tuple[float, float] = (0.0, 1.0), shuffle_channels: bool = False):
        super().__init__(crop, seed)
        self.shuffle_channels = shuffle_channels
        self.a, self.b = a_images, b_images
        self.a_columns, self.b_columns = a_columns, b_columns
        test_gen = torch.Generator().manual_seed(seed + 10_000)
        self.test_a = torch.stack([test_images.random_crop(crop, test_gen) for _ in range(test_crops)])
        self.test_b = tone_transform(self.test_a)
        self.samples, self.sample_truth = self.test_a[:4], self.test_b[:4]  # the training run's sample grid

    @classmethod
    def from_registry(cls, crop: int = 128, load_size: int = 256, shuffle_channels: bool = True,
                      **kwargs) -> "TranslationTask":
        """The registry's 13 photos: every third one held out for testing; the other nine and the
        registry's paintings split down the middle, left halves for domain A and right halves for
        domain B; training crops with their channels shuffled (see the module's docstring)."""
        train, test = training_sources()
        images = ImageSet(train, load_size)
        return cls(images, images, ImageSet(test, load_size), crop, a_columns=(0.0, 0.5), b_columns=(0.5, 1.0),
                   shuffle_channels=shuffle_channels, **kwargs)

    def _training_crops(self, images: ImageSet, n: int, flip: bool, columns) -> torch.Tensor:
        x = self.crops(images, n, flip, columns)
        if self.shuffle_channels:  # one of the 6 channel orders per crop, drawn from the checkpointed generator
            x = shuffle_channels(x, self.generator)
        return x

    def unpaired_batch(self, n: int, flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """n crops of domain A and n of domain B (the images' other halves, transformed)."""
        a = self._training_crops(self.a, n, flip, self.a_columns)
        b = self._training_crops(self.b, n, flip, self.b_columns)
        return a, tone_transform(b)

    def paired_batch(self, n: int, flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """n crops of domain A with their true translations T(a): pix2pix's training data."""
        a = self._training_crops(self.a, n, flip, self.a_columns)
        return a, tone_transform(a)

    @torch.no_grad()
    def evaluate(self, translate: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch: int = 8) -> dict[str, float]:
        """PSNR and SSIM of translate(a) against T(a) on the test crops; translate=None measures
        the identity baseline G(a) = a."""
        if translate is None:
            out = self.test_a
        else:
            first = next(translate.parameters(), None) if hasattr(translate, "parameters") else None
            device = first.device if first is not None else "cpu"
            out = torch.cat([translate(self.test_a[i: i + batch].to(device)).float().cpu().clamp(0, 1)
                             for i in range(0, len(self.test_a), batch)])
        return {"psnr": psnr(out, self.test_b), "ssim": ssim(out, self.test_b)}


class FolderTask(CropSampler):
    """Unpaired translation between two folders of images (horse2zebra's trainA and trainB), with
    CycleGAN's jitter: each image resized to `load_size` (286: shorter side), a random `crop` (256)
    and a random horizontal flip. There is no known answer, so `evaluate` returns {}; the sample
    grid shows `samples`, the first images of `sample_sources` (e.g. testA) centre-cropped.

        task = FolderTask.from_dataset("horse2zebra")   # the pinned 200 + 200 (nstlib.training_sets)
        folders = training_sets.fetch_training_set("horse2zebra")   # or the full archive, 1067 + 1334
        task = FolderTask([folders["trainA"]], [folders["trainB"]], sample_sources=[folders["testA"]])
    """

    sample_truth = None

    def __init__(self, a_sources, b_sources, crop: int = 256, load_size: int = 286, sample_sources=None,
                 n_samples: int = 4, seed: int = 0):
        if crop > load_size:
            raise ValueError(f"crop ({crop}) must not exceed load_size ({load_size})")
        super().__init__(crop, seed)
        # thousands of images: decode each when drawn instead of keeping them all in memory
        self.a, self.b = ImageSet(a_sources, load_size, cache=False), ImageSet(b_sources, load_size, cache=False)
        shown = ImageSet(sample_sources or a_sources, load_size)
        self.samples = torch.stack([centre_crop(shown[i], crop) for i in range(min(n_samples, len(shown)))])

    @classmethod
    def from_dataset(cls, name: str = "horse2zebra", a: str = "trainA", b: str = "trainB", samples: str = "testA",
                     **kwargs) -> "FolderTask":
        """The pinned training set `name` (nstlib.training_sets: verified, from $NSTLIB_DATASETS_DIR,
        the cache or a download): domain A from its folder `a`, B from `b`; the sample grid shows
        the held-out folder `samples`, which is only ever shown, never trained on. kwargs: crop,
        load_size (CycleGAN's 256 and 286 by default), n_samples, seed."""
        from . import training_sets

        a_files = training_sets.dataset_files(name, a, training=True)
        b_files = training_sets.dataset_files(name, b, training=True)
        shown = training_sets.dataset_files(name, samples) if samples else None
        return cls(a_files, b_files, sample_sources=shown, **kwargs)

    def unpaired_batch(self, n: int, flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """n jittered crops of folder A and n of folder B."""
        return self.crops(self.a, n, flip), self.crops(self.b, n, flip)

    def evaluate(self, translate=None, batch: int = 8) -> dict[str, float]:
        """No known answer, nothing to measure: judge the sample grid by eye."""
        return {}


def centre_crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    """The central crop x crop window of a (3, H, W) image."""
    top, left = (x.shape[-2] - crop) // 2, (x.shape[-1] - crop) // 2
    return x[..., top: top + crop, left: left + crop]


def split_photos() -> tuple[list[str], list[str]]:
    """The registry's content photos as (training photos, held-out test photos): every third
    photo, starting with the third, is held out."""
    photos = data.list_images("content")
    return [p for i, p in enumerate(photos) if i % 3 != 2], photos[2::3]


def training_sources() -> tuple[list[str], list[str]]:
    """(training images, held-out test photos) of the offline task: the training photos of
    `split_photos` plus every painting in the registry; only photos are tested."""
    train, test = split_photos()
    return train + data.list_images("style"), test


def disjoint(*sets: Sequence) -> bool:
    """True when no item appears in two of the sequences."""
    seen: set = set()
    for s in sets:
        if seen & set(map(str, s)):
            return False
        seen |= set(map(str, s))
    return True
