"""Speed benchmarks: one command prints a table.

    python benchmarks/run.py [--device cuda] [--sizes 256 512] [--repeats 5]

What it measures, and why it matters for the course:
* VGG-16 feature extraction up to each block's first ReLU: `extract` stops at the deepest layer
  asked for, so a content loss at relu2_1 should cost a fraction of one at relu5_1. Forward only
  (computing targets) and forward + backward to the image (one optimisation step).
* Loading a large photo (4000x3000 JPEG) at 512 px: JPEG draft mode decodes at a reduced scale
  instead of decoding every pixel and then shrinking.
Each time is the median of `--repeats` runs after one warm-up run.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import nstlib
from nstlib.features import VGGFeatures
from nstlib.images import load_image

DEPTHS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "pool5"]


def median_ms(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up: allocator, kernels, caches
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_vgg(sizes, repeats, device):
    vgg = VGGFeatures("vgg16", "caffe").to(device)
    rows = []
    for size in sizes:
        x = torch.rand(1, 3, size, size, device=device)
        for layer in DEPTHS:
            def forward():
                with torch.no_grad():
                    vgg.extract(x, layer)

            def step():
                img = x.clone().requires_grad_(True)
                vgg.extract(img, layer)[layer].square().mean().backward()

            rows.append((f"vgg16 extract to {layer}", f"{size}x{size}",
                         median_ms(forward, repeats, device), median_ms(step, repeats, device)))
    return rows


def bench_loading(repeats):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)  # smooth-ish large photo
        Image.fromarray(small).resize((4000, 3000), Image.BILINEAR).save(path, quality=90)
        cpu = torch.device("cpu")
        draft = median_ms(lambda: load_image(path, max_size=512), repeats, cpu)
        full = median_ms(lambda: load_image(Image.open(path), max_size=512), repeats, cpu)
    return [("load 4000x3000 JPEG to 512 px (draft decode)", "4000x3000", draft, None),
            ("load 4000x3000 JPEG to 512 px (full decode)", "4000x3000", full, None)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = nstlib.get_device(args.device)
    print(nstlib.describe(device))
    rows = bench_vgg(args.sizes, args.repeats, device) + bench_loading(args.repeats)
    print(f"\n| {'what':<46} | {'input':>9} | {'forward ms':>10} | {'fwd+bwd ms':>10} |")
    print(f"|{'-' * 48}|{'-' * 11}|{'-' * 12}|{'-' * 12}|")
    for what, size, fwd, step in rows:
        step_text = f"{step:10.1f}" if step is not None else f"{'':>10}"
        print(f"| {what:<46} | {size:>9} | {fwd:10.1f} | {step_text} |")


if __name__ == "__main__":
    main()
