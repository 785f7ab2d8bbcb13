"""nstlib: the tested helper library of a hands-on course on neural style transfer.

One module per concept, each citing its paper:

    images    load_image / save_image / show_images: (B, 3, H, W) RGB float tensors in [0, 1]
    vgg       the VGG-16/19 stacks with the papers' layer names (conv4_2, relu1_1, pool3)
    features  VGGFeatures.extract(x, layers): the frozen feature extractor
    weights   pretrained weights registry: download, hash check, HDF5 conversion, cache
    data      data registry: photos, paintings and masks by name, with credits
    download  hash-checked, atomic HTTPS downloads with a progress bar
    runtime   device choice, seeding, quick mode, describe()

`python -m nstlib info` says what this machine has.
"""
__version__ = "0.1.0"

from .images import load_image, save_image, show, show_images, to_pil  # noqa: E402
from .runtime import config, describe, get_device, is_quick, seed_everything  # noqa: E402

__all__ = [
    "load_image", "save_image", "show", "show_images", "to_pil",
    "config", "describe", "get_device", "is_quick", "seed_everything",
]
