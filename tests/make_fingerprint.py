"""Regenerate tests/assets/fingerprint_64.png and the VGG-16 feature fingerprint stored beside it.

The image is drawn here (no third-party content): colour gradients, a disc, stripes and a checker
patch, so that every VGG block sees edges, textures and flat regions. The fingerprint is the mean
of relu1_1 ... relu5_1 with the Caffe VGG-16 weights. Run once, by hand, only when the extractor's
definition intentionally changes:

    NSTLIB_WEIGHTS_DIR=../shared/weights python tests/make_fingerprint.py
"""
import json
from pathlib import Path

import numpy as np
from PIL import Image

from nstlib.features import VGGFeatures
from nstlib.images import load_image

ASSETS = Path(__file__).parent / "assets"
IMAGE = ASSETS / "fingerprint_64.png"
VALUES = ASSETS / "vgg16_caffe_fingerprint.json"
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def draw() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64] / 63.0
    img = np.stack([x, y, 1 - 0.5 * (x + y)], axis=-1)  # (64, 64, 3) smooth gradients
    disc = (x - 0.3) ** 2 + (y - 0.35) ** 2 < 0.04
    img[disc] = [0.9, 0.2, 0.1]
    stripes = (np.sin(40 * (x + 0.5 * y)) > 0) & (y > 0.6)
    img[stripes] = [0.1, 0.1, 0.4]
    checker = ((np.floor(x * 16) + np.floor(y * 16)) % 2 == 0) & (x > 0.65) & (y < 0.4)
    img[checker] = [1.0, 1.0, 0.8]
    return (img * 255).round().astype(np.uint8)


if __name__ == "__main__":
    ASSETS.mkdir(exist_ok=True)
    Image.fromarray(draw(), "RGB").save(IMAGE)
    feats = VGGFeatures("vgg16", "caffe").extract(load_image(IMAGE), LAYERS)
    means = {name: float(f.double().mean()) for name, f in feats.items()}
    VALUES.write_text(json.dumps(means, indent=2) + "\n")
    print(json.dumps(means, indent=2))
