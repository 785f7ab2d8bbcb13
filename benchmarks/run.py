"""Speed benchmarks: one command prints tables.

    python benchmarks/run.py [--device cuda] [--sizes 256 512] [--repeats 5] [--only iteration]
    python benchmarks/run.py --only stylize [--stylize-steps 300]     # whole stylisations
    python benchmarks/run.py --only adain                             # AdaIN inference and training
    python benchmarks/run.py --only stylebank                         # StyleBank inference and training
    python benchmarks/run.py --only cyclegan                          # CycleGAN / pix2pix
    python benchmarks/run.py --only johnson                           # Johnson / CIN inference and training
    python benchmarks/run.py --only engine --repeats 7                # nstlib vs textbook designs
    python benchmarks/run.py --only parity [--parity-steps 300 --out runs/parity]  # bf16 vs fp32 quality
    python benchmarks/run.py --only compile --sizes 512                # torch.compile against eager
    python benchmarks/run.py --only trainers [--trainer-steps 200 --out runs/trainers]  # bf16 vs fp32 training
    python benchmarks/run.py --only ddp [--ddp-crop 128 --ddp-steps 20]  # AdaIN training on 1 and 2 processes

What it measures, and why it matters for the course:
* One optimisation iteration of Gatys style transfer (content conv4_2, style conv1_1..conv5_1,
  L-BFGS): forward and backward through VGG up to conv5_1 plus the losses, for VGG-16 and VGG-19.
  Seconds per iteration and per loss evaluation, and the achieved GFLOP/s for the FLOP count it
  assumes: 2 * H * W * C_in * C_out * 9 per 3x3 conv forward (a multiply-add is 2 FLOPs), the same
  again backward (the weights are frozen: only the input gradient is computed), and 2 * N^2 * M per
  Gram matrix forward, twice that backward. Pooling, ReLU and elementwise work are not counted.
  The weights are random for this timing (they do not change the cost), so no download is needed.
* VGG-16 feature extraction up to each block's first ReLU: `extract` stops at the deepest layer
  asked for, so a content loss at relu2_1 should cost a fraction of one at relu5_1. Forward only
  (computing targets) and forward + backward to the image (one optimisation step).
* Loading a large photo (4000x3000 JPEG) at 512 px: JPEG draft mode decodes at a reduced scale
  instead of decoding every pixel and then shrinking.
* A whole stylisation with `nstlib.stylize` (tubingen x starry_night, the course's defaults, real
  weights): 512 px and `--stylize-steps` L-BFGS iterations, loading and the target features
  included; on CUDA also 1024 px coarse-to-fine (256 -> 512 -> 1024, the same steps per scale).
  Run once each (at 35 min on a 2-core CPU, a median is not affordable there).
* AdaIN (Huang & Belongie 2017) with the VGG-16 encoder: frames per second of one stylisation at
  256, 512 and 1024 px, with the style's encoding included (a new style every frame) and excluded
  (the style's features computed once), and decoder training steps per second (batch 8, 256 px
  crops). On CUDA the networks run channels-last under float16 autocast, as the course's
  feed-forward notebooks do. Random decoder weights: the cost does not depend on them.
* StyleBank (Chen et al. 2017): frames per second of one style (encoder, one bank, decoder) at 256,
  512 and 1024 px, and of a linear fusion of all banks (the filters are blended first, so it costs
  the same); training steps per second at the shipped model's setting (batch 2, 128 px crops,
  VGG-16 up to relu4_2 for the loss): a stylising step of the whole network, an auto-encoder step,
  and an incremental step that trains one new bank with the auto-encoder frozen; and the bytes one
  more style adds. Same CUDA treatment as AdaIN for inference; training in float32.
* CycleGAN (Zhu et al. 2017) at the paper's 256 px: ResNet generator (9 blocks, width 64)
  inference in frames per second, and training iterations per second at batch 1 (both
  generators, both discriminators, identity loss, image pools), beside pix2pix's (U-Net depth 8).
  Notebook 07's CPU setting (U-Net generators of depth 5 and width 32, 32 px crops, batch 4) is
  timed too. Channels-last and float16 autocast on CUDA for inference; training stays float32, as
  in the notebook.
* Johnson's transformation network (Johnson et al. 2016, lengstrom's layout, nstlib.johnson): frames
  per second at 256, 512 and 1024 px in fp32 and in bf16 (bfloat16 autocast, channels-last; the
  issue's target: >= 10 frames/s at 512 px in bf16 on the developers' CPU), and training steps at the
  paper's setting (batch 4, 256 px crops, VGG-16 up to relu4_3 for the perceptual loss, Adam), one
  style and a 4-style CIN network (one style per image), in fp32 and bf16: exactly the trainer's
  step (johnson_training.batch_losses). Random weights: the cost does not depend on them.
* The engine against two textbook designs, written here in our own words, in one process and
  alternating (A B C A B C ...) so that a busy moment hurts all three alike: one Gatys loss
  evaluation (forward + backward to the image) with the course's settings (VGG-16, Caffe weights,
  content relu4_2, style relu1_1..relu5_1) at 256 and 512 px:
  (a) nstlib: `optimize_image` with L-BFGS, no line search (one evaluation per iteration), timed
      as (time of n + 1 iterations - time of 1) / n, so the per-run set-up (target features)
      drops out while L-BFGS's own bookkeeping and the engine's loop stay in; in fp32 (the
      default) and with precision='bf16' (the VGG under bfloat16 autocast, channels-last);
  (b) the tutorial design (the official PyTorch tutorial's): loss modules inserted into a copy of
      the VGG's nn.Sequential after the named layers, the network cut after the last of them;
  (c) the reference implementations' design: the whole VGG to pool5, then the features picked.
  (b) and (c) are a bare forward + backward in fp32, with no optimizer step (a conservative
  comparison), and use their own textbook losses (`textbook_gram`: autograd's backward), never
  nstlib's, so that the engine's improvements do not speed up its baselines.
  Ratios are to (b); below 1 is faster than the tutorial.
* Quality parity of bf16 with fp32 (`--only parity`): notebook 03's six pairs at 256 px, each
  stylised with `stylize` (course defaults, L-BFGS, `--parity-steps` iterations) in fp32 and with
  precision='bf16' (the VGG under bfloat16 autocast, channels-last; the image, targets, Grams, loss
  sums and L-BFGS state in float32). Both results are then scored by the same float32 evaluation of
  Gatys' Eq. 7 (`stylize.loss_terms`), so a bf16 run is not judged by its own rounded loss; the
  table gives both totals, their ratio and the wall time of each run, and `--out` receives
  fp32 | bf16 | 8x their absolute difference per pair, to look at.
* torch.compile (`--only compile`, inductor): one Gatys evaluation (VGG-16 to relu5_1 with the
  course's terms, forward + backward to the image) and one AdaIN decoder training step (batch 4,
  128 px), in fp32 and bf16, eager against compiled, with the first call's time (the compilation).
  Measured on the developers' 2-core AMD EPYC (AVX-512-bf16), torch 2.13, median of 3:
      Gatys 512 px   fp32  eager 2.189 s, compiled 2.092 s (1.05x), compiling 38 s
      Gatys 512 px   bf16  eager 1.207 s, compiled 1.216 s (0.99x), compiling 20 s
      AdaIN step     fp32  eager 1.131 s, compiled 1.081 s (1.05x), compiling 35 s
      AdaIN step     bf16  eager 0.616 s, compiled 0.600 s (1.03x), compiling 37 s
  The time goes to the convolutions, which inductor hands to the same oneDNN kernels as eager; what
  it fuses (ReLU, casts, the Gram's elementwise work) is a few percent. Under bf16, the default on
  this CPU, it gains nothing for the engine and 3% for training, while compiling costs 20-40 s and
  again for every new image size: the library does not use it. Worth re-measuring on CUDA. (The
  compile times above are cold: inductor caches compiled graphs on disk, so a second run of this
  section on the same machine shows a much shorter first call.)
* The trainers in bf16 against fp32 (`--only trainers`): short real runs of `train_decoder` (AdaIN,
  BSDS500 photos x the registry's paintings), `train_stylebank` (the shipped model's recipe, 4 styles)
  and `train_translation` (CycleGAN with the paper's 9-block generators on horse2zebra, 128 px crops),
  each three times: fp32 seed 0, bf16 seed 0, fp32 seed 1. Steps per second from the run's own clock
  (after 5 warm-up steps); the mean loss in each quarter of the run (CycleGAN: its cycle term, the
  one that is not a game between networks); and the loss on a fixed batch of 4 BSDS500 test photos
  after training, computed in float32. bf16 is on the fp32 curve "within noise" when its distance
  to fp32 seed 0 is no larger than seed 1's, which changes only the seed (initial weights, data
  order): the last table gives both distances as a ratio (|ratio| <= 1: within noise).
* AdaIN decoder training under torchrun (nstlib.distributed), `python -m nstlib train-adain` with
  real weights on the registry's training images, `--ddp-crop` px crops, a global batch of 4: one process
  with every core, one process with one core, and two processes (gloo on the CPU, NCCL on CUDA,
  where it needs two GPUs) with a batch of 2 each and the cores shared out. Steps per second over
  `--ddp-steps` steps after 3 warm-up steps, from the run's own clock (history['seconds'] in its
  checkpoint), so process start-up and loading are left out. One run each.
Each other time is the median of `--repeats` runs after one warm-up run.
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
from nstlib import runtime, vgg as vgg_arch
from nstlib.features import VGGFeatures
from nstlib.images import load_image
from nstlib.optimize import ContentTerm, StyleTerm, optimize_image

DEPTHS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "pool5"]
STYLE_LAYERS = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
CONTENT_LAYERS = ["conv4_2"]


def iteration_flops(arch: str, h: int, w: int, deepest: str = "conv5_1") -> float:
    """FLOPs of one loss evaluation (see the module docstring for what is counted)."""
    names = vgg_arch.layer_names(arch)
    shapes = vgg_arch.conv_shapes(arch)
    flops = 0.0
    for index, name in enumerate(names[: names.index(deepest) + 1]):
        if name.startswith("pool"):
            h, w = h // 2, w // 2
        elif index in shapes:
            c_in, c_out = shapes[index]
            flops += 2 * (2 * h * w * c_in * c_out * 9)  # forward + input gradient
            if name in STYLE_LAYERS:
                flops += 3 * (2 * c_out**2 * h * w)  # Gram forward + backward
    return flops


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


def bench_iteration(sizes, repeats, device):
    rows = []
    for arch in ("vgg16", "vgg19"):
        net = VGGFeatures(arch, weights=None, up_to="conv5_1").to(device)  # random weights: same cost
        for size in sizes:
            gen = torch.Generator().manual_seed(0)
            content = torch.rand(1, 3, size, size, generator=gen).to(device)
            style = torch.rand(1, 3, size, size, generator=gen).to(device)
            terms = [ContentTerm(content, CONTENT_LAYERS), StyleTerm(style, STYLE_LAYERS, weight=1e3)]
            optimize_image(content, terms, steps=2, vgg=net, progress=False)  # warm-up
            runs = []
            for _ in range(repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                result = optimize_image(content, terms, steps=10, vgg=net, progress=False)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                runs.append((time.perf_counter() - start, result.iterations, result.evaluations))
            seconds, iterations, evaluations = sorted(runs)[len(runs) // 2]  # the median run
            flops = iteration_flops(arch, size, size)
            rows.append((arch, f"{size}x{size}", seconds / iterations, seconds / evaluations,
                         flops / 1e9, flops * evaluations / seconds / 1e9))
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


def bench_stylize(device, steps):
    from nstlib.features import load_vgg
    from nstlib.stylize import stylize

    vgg = load_vgg(device=device)
    stylize("tubingen", "starry_night", max_size=64, steps=2, vgg=vgg, progress=False)  # warm-up
    runs = [("512 px", dict(max_size=512, steps=steps))]
    if device.type == "cuda":
        runs.append(("1024 px, coarse-to-fine 256 -> 512 -> 1024", dict(max_size=1024, scales=(256, 512), steps=steps)))
    rows = []
    for label, kwargs in runs:
        if device.type == "cuda":
            torch.cuda.synchronize()
        result = stylize("tubingen", "starry_night", vgg=vgg, progress=False, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        iterations = sum(r.iterations for _, r in result.stages)
        evaluations = sum(r.evaluations for _, r in result.stages)
        rows.append((label, iterations, evaluations, result.seconds))
    return rows


def bench_adain(sizes, repeats, device):
    import contextlib

    from nstlib import adain

    model = adain.AdaIN(weights=None).to(device).eval()
    fast = device.type == "cuda"
    if fast:
        model = model.to(memory_format=torch.channels_last)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if fast else contextlib.nullcontext
    rows = []
    for size in sizes:
        gen = torch.Generator().manual_seed(0)
        c = torch.rand(1, 3, size, size, generator=gen).to(device)
        s = torch.rand(1, 3, size, size, generator=gen).to(device)
        with torch.no_grad(), autocast():
            fs = model.encoder(s)

            def with_style():
                model.decode(adain.adain(model.encoder(c), model.encoder(s)))

            def cached_style():
                model.decode(adain.adain(model.encoder(c), fs))

            for label, fn in (("style encoded every frame", with_style), ("style encoded once", cached_style)):
                ms = median_ms(fn, repeats, device)
                rows.append((f"AdaIN inference, {label}", f"{size}x{size}", ms, 1000 / ms))
    opt = torch.optim.Adam(model.decoder.parameters(), lr=1e-4)
    model.decoder.train()
    # the paper's batch, and the setting of the decoder shipped in data/models/ (data/models.tsv)
    for label, batch, size in (("the paper's setting", 8, 256), ("the shipped decoder's setting", 4, 128)):
        gen = torch.Generator().manual_seed(1)
        c = torch.rand(batch, 3, size, size, generator=gen).to(device)
        s = torch.rand(batch, 3, size, size, generator=gen).to(device)

        def train_step():
            with autocast():
                loss = adain.decoder_losses(model, c, s)["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        ms = median_ms(train_step, repeats, device)
        rows.append((f"AdaIN decoder training step, {label}", f"{batch}x{size}x{size}", ms, 1000 / ms))
    return rows


def bench_stylebank(sizes, repeats, device):
    import contextlib

    from nstlib.stylebank import CONTENT_LAYER, StyleBank, style_targets, stylising_losses
    from nstlib.stylebank_training import StyleBankSettings

    fast = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if fast else contextlib.nullcontext
    torch.manual_seed(0)
    model = StyleBank(4).to(device).eval()
    if fast:
        model = model.to(memory_format=torch.channels_last)
    rows = []
    for size in sizes:
        c = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad(), autocast():
            rows.append(("StyleBank inference, one style", f"{size}x{size}", median_ms(lambda: model(c, 0), repeats, device)))
            rows.append(("StyleBank inference, linear fusion of 4 styles", f"{size}x{size}",
                         median_ms(lambda: model.fuse_linear(c, [1, 1, 1, 1]), repeats, device)))
    model = StyleBank(4).to(device).train()
    vgg = VGGFeatures("vgg16", weights=None, up_to=CONTENT_LAYER).to(device)
    cfg = StyleBankSettings(batch_size=2, crop=128)  # the shipped model's setting (data/models.tsv)
    gen = torch.Generator().manual_seed(1)
    batch = torch.rand(cfg.batch_size, 3, cfg.crop, cfg.crop, generator=gen).to(device)
    targets = style_targets(vgg, [torch.rand(1, 3, 256, 256, generator=gen)], 256)[0]
    whole = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    bank_only = torch.optim.Adam(model.style_parameters(3), lr=cfg.lr)

    def stylising_step():
        whole.zero_grad(set_to_none=True)
        stylising_losses(vgg, model(batch, 0), batch, targets)["total"].backward()
        whole.step()

    def autoencoder_step():
        whole.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(batch, None), batch).backward()
        whole.step()

    def incremental_step():
        bank_only.zero_grad(set_to_none=True)
        stylising_losses(vgg, model(batch, 3), batch, targets)["total"].backward()
        bank_only.step()

    shape = f"{cfg.batch_size}x{cfg.crop}x{cfg.crop}"
    rows.append(("StyleBank training, stylising step (whole network)", shape, median_ms(stylising_step, repeats, device)))
    rows.append(("StyleBank training, auto-encoder step", shape, median_ms(autoencoder_step, repeats, device)))
    shared = [p for m in (model.encoder, model.decoder) for p in m.parameters()]
    for p in shared + [p for i in range(3) for p in model.style_parameters(i)]:
        p.requires_grad_(False)  # incremental learning: the auto-encoder and the old banks are frozen
    rows.append(("StyleBank training, incremental step (one new bank)", shape,
                 median_ms(incremental_step, repeats, device)))
    sizes_kb = (sum(p.numel() for p in model.style_parameters(0)) * 2 / 1024, sum(p.numel() for p in shared) * 2 / 1024)
    return [(what, shape, ms, 1000 / ms) for what, shape, ms in rows], sizes_kb


def bench_cyclegan(repeats, device):
    import contextlib

    from nstlib import cyclegan_training as ct
    from nstlib.cyclegan import CycleGAN, Pix2Pix

    fast = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if fast else contextlib.nullcontext
    rows = []
    # (setting, size, batch, CycleGAN, its generator, pix2pix, its generator): the papers' networks,
    # and notebook 07's CPU setting
    configs = [("paper", 256, 1, lambda: CycleGAN(9, 64), "ResNet-9, w64", lambda: Pix2Pix(8, 64), "U-Net-8, w64"),
               ("notebook 07", 32, 4, lambda: CycleGAN(width=32, generator="unet", depth=5), "U-Net-5, w32",
                lambda: Pix2Pix(5, 32), "U-Net-5, w32")]
    for setting, size, batch, make_cyclegan, cyclegan_net, make_pix2pix, pix2pix_net in configs:
        gen = torch.Generator().manual_seed(0)
        a = torch.rand(batch, 3, size, size, generator=gen).to(device)
        b = torch.rand(batch, 3, size, size, generator=gen).to(device)
        G = make_cyclegan().G.to(device).eval()
        if fast:
            G = G.to(memory_format=torch.channels_last)
        with torch.no_grad(), autocast():
            ms = median_ms(lambda: G(a[:1]), repeats, device)
        rows.append((f"{setting}: CycleGAN generator inference ({cyclegan_net})", f"1x{size}x{size}", ms, 1000 / ms))
        for name, make, net in (("CycleGAN", make_cyclegan, cyclegan_net), ("pix2pix", make_pix2pix, pix2pix_net)):
            model = make().to(device).train()
            cfg = ct.GANSettings()
            _, step, opt_g, opt_d, pools = ct.training_parts(model, cfg)  # as train_translation sets them up
            ms = median_ms(lambda: step(model, a, b, opt_g, opt_d, pools, cfg), repeats, device)
            rows.append((f"{setting}: {name} training iteration ({net})", f"{batch}x{size}x{size}", ms, 1000 / ms))
    return rows


def johnson_gflop(model, size: int) -> float:
    """GFLOPs of one forward pass of a TransformNet on a size x size frame: 2 * C_in * k^2 * C_out per
    output position of each convolution (per input position for the transposed ones, which compute
    their whole output before the crop). Normalisation, ReLU and tanh are not counted."""
    from nstlib.johnson import SameConvTranspose2d

    flops = []

    def count(module, inputs, output):
        c_out, c_in, k = module.weight.shape[0], module.weight.shape[1], module.kernel_size[0]
        if isinstance(module, SameConvTranspose2d):  # weight (C_in, C_out, k, k)
            flops.append(2 * c_in * c_out * k * k * inputs[0].shape[-2] * inputs[0].shape[-1])
        else:
            flops.append(2 * c_in * k * k * c_out * output.shape[-2] * output.shape[-1])

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)
             or isinstance(m, torch.nn.ConvTranspose2d)]
    with torch.no_grad():
        model(torch.rand(1, 3, size, size, device=next(model.parameters()).device))
    for h in hooks:
        h.remove()
    return sum(flops) / 1e9


def bench_johnson(repeats, device):
    from nstlib import johnson
    from nstlib.johnson_training import (JohnsonSettings, MixedPrecisionVGG, batch_losses, draw_styles,
                                         layer_style_weights)
    from nstlib.runtime import autocast
    from nstlib.training import Precision

    rows = []
    torch.manual_seed(0)
    for precision in ("fp32", "bf16"):
        layout = torch.channels_last if precision == "bf16" else torch.contiguous_format
        model = johnson.TransformNet().to(device, memory_format=layout).eval()
        for size in (256, 512, 1024):
            x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device, memory_format=layout)
            with torch.no_grad(), autocast(device, precision):
                ms = median_ms(lambda: model(x), repeats, device)
            gflop = johnson_gflop(model, size)
            rows.append((f"Johnson inference, {precision} ({gflop:.0f} GFLOP/frame, {gflop / ms * 1000:.0f} GFLOP/s)",
                         f"1x{size}x{size}", ms, 1000 / ms))
    cfg = JohnsonSettings()
    vgg = VGGFeatures("vgg16", weights=None, up_to="relu4_3").to(device)
    gen = torch.Generator().manual_seed(1)
    batch = torch.rand(cfg.batch_size, 3, cfg.crop, cfg.crop, generator=gen).to(device)
    targets = [johnson.style_targets(vgg, torch.rand(1, 3, 256, 256, generator=gen).to(device)) for _ in range(4)]
    weights = layer_style_weights(cfg.style_weight, targets[0])
    for n_styles in (None, 4):
        for name in ("fp32", "bf16"):
            precision = Precision(name, device)
            model = johnson.TransformNet(n_styles=n_styles).to(device).train()
            precision.prepare(model, vgg)
            loss_vgg, x = MixedPrecisionVGG(vgg, precision), precision.batch(batch)
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

            def train_step():
                ids = draw_styles(4, cfg.batch_size, gen) if n_styles else None
                loss = batch_losses(model, loss_vgg, x, targets, ids, cfg, weights, precision)["total"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            what = "one style" if n_styles is None else f"CIN, {n_styles} styles"
            ms = median_ms(train_step, repeats, device)
            rows.append((f"Johnson training step, {what}, {name}", f"{cfg.batch_size}x{cfg.crop}x{cfg.crop}", ms,
                         1000 / ms))
    vgg.to(memory_format=torch.contiguous_format)
    return rows


ENGINE_CONTENT = ("relu4_2",)  # the course's layers (nstlib.stylize.PRESETS["course"])
ENGINE_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class _Normalize(torch.nn.Module):
    """The first module of the tutorial's Sequential: RGB [0, 1] -> the weights' convention."""

    def __init__(self, vgg):
        super().__init__()
        self.vgg = [vgg]  # a list: not a submodule, only its normalize() is used

    def forward(self, x):
        return self.vgg[0].normalize(x)


def textbook_gram(f):
    """The baselines' own Gram matrix, as textbooks write it (autograd differentiates both
    factors); normalised like nstlib's, G = F F^T / M, so that all designs compute one loss."""
    b, n, h, w = f.shape
    f = f.reshape(b * n, h * w)
    return (f @ f.t() / (h * w))[None]


def textbook_content(f, target):
    return 0.5 * (f - target).pow(2).sum()


def textbook_style(f, target_gram):
    return (textbook_gram(f) - target_gram).pow(2).sum() / (4 * f.shape[1] ** 2)


class _LossProbe(torch.nn.Module):
    """A transparent module of the tutorial design: records its loss on what passes through."""

    def __init__(self, target: torch.Tensor, style: bool, weight: float):
        super().__init__()
        self.target, self.style, self.weight = target, style, weight
        self.loss = None

    def forward(self, x):
        self.loss = self.weight * (textbook_style(x, self.target) if self.style
                                   else textbook_content(x, self.target))
        return x


def tutorial_design(vgg, content, style, content_weight, style_weight):
    """Baseline (b): a new nn.Sequential holding the VGG's own layers (same weights), with a loss
    module after each named layer, built up to the last one. Returns (model, probes)."""
    model, probes = torch.nn.Sequential(_Normalize(vgg)), []
    wanted = set(ENGINE_CONTENT) | set(ENGINE_STYLE)
    for name, layer in zip(vgg.layer_names, vgg.features):
        model.append(layer)
        if name in wanted:
            with torch.no_grad():
                if name in ENGINE_CONTENT:
                    probe = _LossProbe(model(content), False, content_weight)
                else:
                    probe = _LossProbe(textbook_gram(model(style)), True, style_weight / len(ENGINE_STYLE))
            model.append(probe)
            probes.append(probe)
            wanted.discard(name)
            if not wanted:
                break  # trimmed: nothing after the last loss runs
    return model, probes


def full_forward(vgg, x, layers):
    """Baseline (c): every layer to pool5, keeping the requested ones on the way."""
    out, h = {}, vgg.normalize(x)
    for name, layer in zip(vgg.layer_names, vgg.features):
        h = layer(h)
        if name in layers:
            out[name] = h
    return out


def bench_engine(sizes, repeats, device):
    """Seconds per evaluation for (a) nstlib, (b) the tutorial design, (c) the full forward; see
    the module docstring. Returns rows (design, size, median seconds, ratio to (b))."""
    vgg = VGGFeatures("vgg16", "caffe").to(device)  # all the way to pool5, for (c)
    rows = []
    for size in sizes:
        gen = torch.Generator().manual_seed(0)
        content = torch.rand(1, 3, size, size, generator=gen).to(device)
        style = torch.rand(1, 3, size, size, generator=gen).to(device)
        content_weight, style_weight = 512 * 512 / (size * size), 1e3  # stylize's, for this size
        terms = [ContentTerm(content, ENGINE_CONTENT, weight=content_weight),
                 StyleTerm(style, ENGINE_STYLE, weight=style_weight)]

        def sync():
            if device.type == "cuda":
                torch.cuda.synchronize()

        def run_nstlib(n, precision):
            sync()
            start = time.perf_counter()
            optimize_image(content, terms, steps=n, vgg=vgg, line_search=None, progress=False,
                           precision=precision)
            sync()
            return time.perf_counter() - start

        def nstlib_eval(precision, n=2):
            return (run_nstlib(1 + n, precision) - run_nstlib(1, precision)) / n

        model, probes = tutorial_design(vgg, content, style, content_weight, style_weight)
        targets = {l: f for l, f in vgg.extract(content, ENGINE_CONTENT).items()}
        targets |= {l: textbook_gram(f) for l, f in vgg.extract(style, ENGINE_STYLE).items()}

        def timed(loss_fn):
            x = content.clone().requires_grad_(True)
            sync()
            start = time.perf_counter()
            loss_fn(x).backward()
            sync()
            return time.perf_counter() - start

        def tutorial_loss(x):
            model(x)
            return sum(p.loss for p in probes)

        def full_loss(x):
            f = full_forward(vgg, x, set(ENGINE_CONTENT) | set(ENGINE_STYLE))
            return (content_weight * sum(textbook_content(f[l], targets[l]) for l in ENGINE_CONTENT)
                    + style_weight * sum(textbook_style(f[l], targets[l]) for l in ENGINE_STYLE)
                    / len(ENGINE_STYLE))

        designs = {"(a) nstlib optimize_image, fp32": lambda: nstlib_eval("fp32"),
                   "(a) nstlib optimize_image, bf16": lambda: nstlib_eval("bf16"),
                   "(b) tutorial: loss modules in a Sequential": lambda: timed(tutorial_loss),
                   "(c) reference: VGG to pool5, pick features": lambda: timed(full_loss)}
        times = {name: [] for name in designs}
        for fn in designs.values():
            fn()  # warm-up
        for _ in range(repeats):  # alternating: A B C A B C ...
            for name, fn in designs.items():
                times[name].append(fn())
        base = statistics.median(times["(b) tutorial: loss modules in a Sequential"])
        for name in designs:
            median = statistics.median(times[name])
            rows.append((name, f"{size}x{size}", median, median / base))
    return rows


PARITY_PAIRS = (("tubingen", "starry_night"), ("golden_gate", "the_scream"), ("chicago", "woman_with_hat_matisse"),
                ("sailboat", "shipwreck"), ("chelsea", "la_muse"), ("cornell", "brushstrokes"))  # notebook 03's


def fp32_total(vgg, terms, image) -> float:
    """Gatys' Eq. 7 for `image`, in float32: the terms' weighted sum on the VGG's features."""
    for t in terms:
        t.prepare(vgg)
    layers = tuple(dict.fromkeys(layer for t in terms for layer in t.layers))
    with torch.no_grad():
        feats = vgg.extract(image, layers)
        return float(sum(t.weight * t.value(feats, image) for t in terms))


def bench_parity(device, steps: int, size: int, out: str | None):
    from nstlib.features import load_vgg
    from nstlib.images import load_image, save_image
    from nstlib.stylize import loss_terms, resolve_settings, stylize

    vgg = load_vgg(device=device)
    settings = resolve_settings()
    for k, (c, s) in enumerate(PARITY_PAIRS):
        results = {}
        for precision in (("fp32", "bf16") if k % 2 == 0 else ("bf16", "fp32")):  # alternate the order
            results[precision] = stylize(c, s, max_size=size, steps=steps, vgg=vgg, progress=False, precision=precision)
        content = load_image(c, max_size=size).to(device)
        style = load_image(s, max_size=size).to(device)
        terms = loss_terms(content, [style], settings, blend=[1.0])
        totals = {p: fp32_total(vgg, terms, r.image.to(device)) for p, r in results.items()}
        row = (f"{c} x {s}", results["fp32"].history["total"][-1], results["bf16"].history["total"][-1],
               totals["fp32"], totals["bf16"], results["fp32"].seconds, results["bf16"].seconds)
        if out:
            a, b = results["fp32"].image.cpu(), results["bf16"].image.cpu()
            Path(out).mkdir(parents=True, exist_ok=True)
            save_image(torch.cat([a, b, ((a - b).abs() * 8).clamp(0, 1)], dim=-1), Path(out) / f"{c}_x_{s}.png")
        yield row  # as each pair ends: the whole run takes most of an hour on a 2-core CPU


def bench_compile(sizes, repeats, device):
    """torch.compile against eager (see the module docstring): rows (what, size, precision, first-call
    seconds of the compiled function, eager median s, compiled median s)."""
    from nstlib import adain
    from nstlib.training import Precision

    vgg = VGGFeatures("vgg16", "caffe", up_to="relu5_1").to(device)
    layers = tuple(dict.fromkeys(ENGINE_CONTENT + ENGINE_STYLE))
    model = adain.AdaIN(weights=None).to(device)
    gen = torch.Generator().manual_seed(1)
    c, s = (torch.rand(4, 3, 128, 128, generator=gen).to(device) for _ in range(2))  # the shipped decoder's setting

    def eager_vs_compiled(loss, inputs, precision, zero_grad):
        """(first call of the compiled loss, eager median s, compiled median s) of loss(*inputs) + backward,
        both run the library's way for `precision` (training.Precision: autocast, memory format)."""
        def step(fn):
            def go():
                zero_grad()
                with precision.autocast():
                    value = fn(*inputs)
                value.backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()
            return go

        torch._dynamo.reset()
        eager_s = median_ms(step(loss), repeats, device) / 1000
        compiled = step(torch.compile(loss))
        start = time.perf_counter()
        compiled()
        first = time.perf_counter() - start
        return first, eager_s, median_ms(compiled, repeats, device) / 1000

    rows = []
    for size in sizes:
        gen = torch.Generator().manual_seed(0)
        content = torch.rand(1, 3, size, size, generator=gen).to(device)
        style = torch.rand(1, 3, size, size, generator=gen).to(device)
        terms = [ContentTerm(content, ENGINE_CONTENT, weight=1.0), StyleTerm(style, ENGINE_STYLE, weight=1e3)]
        for t in terms:
            t.prepare(vgg)

        def gatys_loss(x):
            feats = vgg.extract(x, layers)
            return sum(t.weight * t.value(feats, x) for t in terms)

        for name in ("fp32", "bf16"):
            precision = Precision(name, device)
            precision.prepare(vgg)
            x = precision.batch(content).requires_grad_(True)
            rows.append(("Gatys evaluation (VGG-16 to relu5_1, fwd + bwd)", f"{size}x{size}", name,
                         *eager_vs_compiled(gatys_loss, (x,), precision, lambda: setattr(x, "grad", None))))
    for name in ("fp32", "bf16"):  # a trainer's step: AdaIN's decoder losses, forward + backward
        precision = Precision(name, device)
        precision.prepare(model)
        rows.append(("AdaIN decoder training step (fwd + bwd)", "4x128x128", name,
                     *eager_vs_compiled(lambda a, b: adain.decoder_losses(model, a, b)["total"],
                                        (precision.batch(c), precision.batch(s)), precision,
                                        lambda: model.decoder.zero_grad(set_to_none=True))))
    return rows


TRAINER_RUNS = (("fp32", 0), ("bf16", 0), ("fp32", 1))  # precision, seed: the seed-1 run measures the noise


def bench_trainers(device, steps: int, out: str | None):
    """Short real runs of the AdaIN, StyleBank and CycleGAN trainers in fp32 and bf16 (see the module
    docstring). Yields rows (method, precision, seed, steps/s, windowed mean losses, fixed-batch loss) as
    each run ends, then writes the curves to `out`."""
    from nstlib import adain, adain_training, cyclegan, cyclegan_training, stylebank, stylebank_training
    from nstlib.datasets import ImageSet, training_images
    from nstlib.training_sets import dataset_files
    from nstlib.translation_task import FolderTask, centre_crop

    windows = [(i * steps // 4, (i + 1) * steps // 4) for i in range(4)]
    warm_up = min(5, steps // 4)
    photos = ImageSet("bsds500", 256)
    held_out = ImageSet(dataset_files("bsds500", "test")[:4], 256)  # the fixed batch: never trained on
    fixed = torch.stack([centre_crop(held_out[i], 128) for i in range(4)]).to(device)
    paintings = ["starry_night", "the_scream", "la_muse", "shipwreck"]

    def adain_run(seed, precision, run_dir):
        runtime.seed_everything(seed)
        model = adain.AdaIN().to(device)
        style = ImageSet(training_images("style"), 256)  # the registry's paintings not held out, as train-adain
        run = adain_training.train_decoder(model, photos, style, run_dir, progress=False, precision=precision,
                                           steps=steps, batch_size=4, crop=128, load_size=256, seed=seed,
                                           checkpoint_every=steps, sample_every=10 * steps)
        g = torch.Generator().manual_seed(99)
        styles = torch.stack([style.random_crop(128, g) for _ in range(4)]).to(device)
        with torch.no_grad():
            return run, float(adain.decoder_losses(model, fixed, styles)["total"])

    def stylebank_run(seed, precision, run_dir):
        vgg = VGGFeatures("vgg16", "caffe", up_to=stylebank.CONTENT_LAYER).to(device)
        runtime.seed_everything(seed)
        model = stylebank.StyleBank(4, paintings).to(device)
        run = stylebank_training.train_stylebank(  # the shipped model's recipe (data/models.tsv), shorter
            model, photos, paintings, vgg, run_dir, progress=False, precision=precision, steps=steps, batch_size=4,
            crop=128, load_size=256, style_size=256, lr=1e-3, style_weight=2.5e-4, style_lr_scale=10,
            clip_grad_norm=3e7, seed=seed, checkpoint_every=steps)
        targets = stylebank.style_targets(vgg, paintings, 256)
        with torch.no_grad():
            totals = [float(stylebank.stylising_losses(vgg, model(fixed, i), fixed, targets[i], style_weight=2.5e-4)["total"])
                      for i in range(4)]
        return run, statistics.mean(totals)

    def cyclegan_run(seed, precision, run_dir):
        runtime.seed_everything(seed)
        model = cyclegan.CycleGAN(blocks=9).to(device)  # the paper's 256 px generators, on 128 px crops
        task = FolderTask.from_dataset("horse2zebra", crop=128, load_size=143, seed=seed)
        run = cyclegan_training.train_translation(model, task, run_dir, progress=False, precision=precision,
                                                  steps=steps, seed=seed, checkpoint_every=steps,
                                                  eval_every=10 * steps, sample_every=10 * steps)
        with torch.no_grad():  # the cycle term on held-out horses: a measure that is not adversarial
            return run, float(cyclegan.cycle_loss(model.F(model.G(fixed)), fixed))

    methods = (("AdaIN decoder, batch 4 x 128 px", adain_run, "total"),
               ("StyleBank 4 styles, batch 4 x 128 px", stylebank_run, "total"),
               ("CycleGAN (9-block ResNet), batch 1 x 128 px", cyclegan_run, "cycle"))
    curves = {}
    for method, run_fn, key in methods:
        for precision, seed in TRAINER_RUNS:
            with tempfile.TemporaryDirectory() as run_dir:
                run, fixed_loss = run_fn(seed, precision, run_dir)
            seconds, values = run.history["seconds"], np.array(run.history[key], dtype=float)
            rate = (steps - warm_up) / (seconds[-1] - seconds[warm_up - 1])
            means = [float(np.nanmean(values[a:b])) for a, b in windows]
            curves[(method, precision, seed)] = values
            yield method, precision, seed, rate, means, fixed_loss
    if out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 3.6))
        for ax, (method, _, key) in zip(axes, methods):
            for precision, seed in TRAINER_RUNS:
                v = curves[(method, precision, seed)]
                ok = ~np.isnan(v)
                k = max(1, steps // 20)  # a moving mean: single steps are noisier than the differences asked about
                smooth = np.convolve(np.nan_to_num(v), np.ones(k), "valid") / np.maximum(np.convolve(ok, np.ones(k), "valid"), 1)
                ax.plot(np.arange(len(smooth)) + k, smooth, label=f"{precision}, seed {seed}")
            ax.set(title=method, xlabel="step", ylabel=f"{key} loss (moving mean of {k})", yscale="log")
            ax.legend()
        fig.tight_layout()
        Path(out).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(out) / "trainer_curves.png", dpi=100)


def bench_ddp(device, steps: int, crop: int):
    """Steps per second of `train-adain` on 1 and 2 processes (see the module docstring)."""
    import os
    import subprocess
    import sys

    cores = os.cpu_count() or 1
    if device.type == "cuda":
        setups = [(1, cores)] + ([(2, max(1, cores // 2))] if torch.cuda.device_count() >= 2 else [])
    else:
        setups = [(1, cores), (1, 1), (2, max(1, cores // 2))]
    warm_up, rows = 3, []
    for processes, threads in setups:
        with tempfile.TemporaryDirectory() as run_dir:
            batch = 4 // processes  # the global batch stays 4: the same run on any number of processes
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                       str(processes), "-m", "nstlib", "train-adain", "--run-dir", run_dir, "--steps",
                       str(steps + warm_up), "--batch-size", str(batch), "--crop", str(crop), "--load-size", str(2 * crop),
                       "--checkpoint-every", str(10 * steps), "--sample-every", str(10 * steps), "--device", device.type]
            done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
            seconds = torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["history"]["seconds"]
        rate = steps / (seconds[-1] - seconds[warm_up - 1])
        what = f"{processes} process{'es' if processes > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}"
        rows.append((what, f"{processes}x{batch}x{crop}x{crop}", 1000 / rate, rate))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["features", "iteration", "loading", "stylize", "adain", "stylebank",
                                                         "cyclegan", "engine", "johnson", "ddp", "parity", "trainers", "compile"], default=None)
    parser.add_argument("--stylize-steps", type=int, default=300, help="L-BFGS iterations per scale (300)")
    parser.add_argument("--ddp-steps", type=int, default=20, help="timed training steps per run of --only ddp (20)")
    parser.add_argument("--ddp-crop", type=int, default=128, help="crop size of --only ddp's training runs (128)")
    parser.add_argument("--parity-steps", type=int, default=300, help="L-BFGS iterations per run of --only parity (300)")
    parser.add_argument("--parity-size", type=int, default=256, help="longer side for --only parity, px (256)")
    parser.add_argument("--trainer-steps", type=int, default=200, help="steps per run of --only trainers (200)")
    parser.add_argument("--out", default=None, help="--only parity: a folder for the fp32 | bf16 | difference images; "
                                                   "--only trainers: for the loss curves (trainer_curves.png)")
    args = parser.parse_args()
    device = nstlib.get_device(args.device)
    print(nstlib.describe(device))

    if args.only in (None, "iteration"):
        print("\nOne optimisation iteration (content conv4_2 + style conv1_1..conv5_1, L-BFGS with"
              " strong-Wolfe line search; median of 10-iteration runs)")
        print(f"| {'network':<7} | {'input':>9} | {'s / iteration':>13} | {'s / evaluation':>14} "
              f"| {'GFLOP / eval':>12} | {'GFLOP/s':>8} |")
        print(f"|{'-' * 9}|{'-' * 11}|{'-' * 15}|{'-' * 16}|{'-' * 14}|{'-' * 10}|")
        for arch, size, per_it, per_eval, gflop, rate in bench_iteration(args.sizes, args.repeats, device):
            print(f"| {arch:<7} | {size:>9} | {per_it:13.3f} | {per_eval:14.3f} | {gflop:12.1f} | {rate:8.1f} |")

    if args.only in (None, "engine"):
        print(f"\nOne Gatys loss evaluation (forward + backward), course settings, real VGG-16 weights: "
              f"nstlib vs textbook designs (median of {args.repeats}, alternating)")
        print(f"| {'design':<44} | {'input':>9} | {'s / evaluation':>14} | {'vs (b)':>6} |")
        print(f"|{'-' * 46}|{'-' * 11}|{'-' * 16}|{'-' * 8}|")
        for name, size, seconds, ratio in bench_engine(args.sizes, args.repeats, device):
            print(f"| {name:<44} | {size:>9} | {seconds:14.3f} | {ratio:6.2f} |")

    if args.only == "parity":  # 37 min on the developers' 2-core CPU: only when asked for
        print(f"\nbf16 against fp32: notebook 03's six pairs at {args.parity_size} px, {args.parity_steps} L-BFGS "
              "iterations each; totals of Gatys' Eq. 7, the run's own last value and a float32 evaluation of its result")
        print(f"| {'pair':<32} | {'own fp32':>10} | {'own bf16':>10} | {'fp32 eval: fp32':>15} | {'bf16':>10} "
              f"| {'bf16 / fp32':>11} | {'s fp32':>7} | {'s bf16':>7} |")
        print(f"|{'-' * 34}|{'-' * 12}|{'-' * 12}|{'-' * 17}|{'-' * 12}|{'-' * 13}|{'-' * 9}|{'-' * 9}|")
        for pair, own32, own16, eval32, eval16, s32, s16 in bench_parity(device, args.parity_steps, args.parity_size,
                                                                          args.out):
            print(f"| {pair:<32} | {own32:10.4g} | {own16:10.4g} | {eval32:15.4g} | {eval16:10.4g} "
                  f"| {eval16 / eval32:11.4f} | {s32:7.1f} | {s16:7.1f} |", flush=True)

    if args.only == "trainers":  # 9 short training runs: only when asked for
        print(f"\nTrainers in fp32 and bf16 (bfloat16 autocast, channels-last), {args.trainer_steps} steps each, real data; "
              "mean loss per quarter of the run, and the loss on a fixed batch of BSDS500 test photos after it "
              "(float32). The seed-1 run differs from seed 0 in initial weights and data order: its distance to "
              "fp32 seed 0 is the noise that bf16's distance is judged against")
        print(f"| {'trainer':<44} | {'run':<10} | {'steps / s':>9} | {'loss by quarter of the run':<43} | {'fixed batch':>11} |")
        print(f"|{'-' * 46}|{'-' * 12}|{'-' * 11}|{'-' * 45}|{'-' * 13}|")
        rows = []
        for row in bench_trainers(device, args.trainer_steps, args.out):
            rows.append(row)
            method, precision, seed, rate, means, fixed_loss = row
            quarters = " ".join(f"{m:10.4g}" for m in means)
            print(f"| {method:<44} | {precision + ', s' + str(seed):<10} | {rate:9.3f} | {quarters:<43} | {fixed_loss:11.4g} |",
                  flush=True)
        print("\n| trainer | bf16 / fp32 steps per second | bf16 - fp32, last quarter / noise | fixed batch: bf16 - fp32 / noise |")
        print("|---|---|---|---|")
        for i in range(0, len(rows), len(TRAINER_RUNS)):
            base, half, other = rows[i:i + 3]
            noise_q, noise_f = abs(other[4][-1] - base[4][-1]), abs(other[5] - base[5])
            print(f"| {base[0]} | {half[3] / base[3]:.2f} | {(half[4][-1] - base[4][-1]) / noise_q:+.2f} "
                  f"| {(half[5] - base[5]) / noise_f:+.2f} |")

    if args.only == "compile":  # compiling takes minutes on a 2-core CPU: only when asked for
        print(f"\ntorch.compile (inductor) against eager, median of {args.repeats} after the first call; "
              "'first call' includes the compilation")
        print(f"| {'what':<48} | {'input':>9} | {'precision':>9} | {'first call s':>12} | {'eager s':>8} "
              f"| {'compiled s':>10} | {'speed-up':>8} |")
        print(f"|{'-' * 50}|{'-' * 11}|{'-' * 11}|{'-' * 14}|{'-' * 10}|{'-' * 12}|{'-' * 10}|")
        for what, size, precision, first, eager_s, compiled_s in bench_compile(args.sizes, args.repeats, device):
            print(f"| {what:<48} | {size:>9} | {precision:>9} | {first:12.1f} | {eager_s:8.3f} | {compiled_s:10.3f} "
                  f"| {eager_s / compiled_s:8.2f} |")

    if args.only in (None, "stylize"):
        print(f"\nWhole stylisation, tubingen x starry_night, course defaults, {args.stylize_steps} L-BFGS "
              "iterations per scale (one run each)")
        print(f"| {'what':<44} | {'iterations':>10} | {'evaluations':>11} | {'seconds':>8} | {'s / iteration':>13} |")
        print(f"|{'-' * 46}|{'-' * 12}|{'-' * 13}|{'-' * 10}|{'-' * 15}|")
        for what, iterations, evaluations, seconds in bench_stylize(device, args.stylize_steps):
            print(f"| {what:<44} | {iterations:10d} | {evaluations:11d} | {seconds:8.1f} | {seconds / iterations:13.3f} |")

    if args.only in (None, "adain"):
        print("\nAdaIN, VGG-16 encoder" + (" (channels-last, float16 autocast)" if device.type == "cuda" else ""))
        print(f"| {'what':<60} | {'input':>9} | {'ms':>9} | {'per second':>10} |")
        print(f"|{'-' * 62}|{'-' * 11}|{'-' * 11}|{'-' * 12}|")
        for what, size, ms, rate in bench_adain(sorted(set(args.sizes) | {1024}), args.repeats, device):
            print(f"| {what:<60} | {size:>9} | {ms:9.1f} | {rate:10.2f} |")

    if args.only in (None, "stylebank"):
        print("\nStyleBank" + (" (inference channels-last, float16 autocast)" if device.type == "cuda" else ""))
        print(f"| {'what':<60} | {'input':>9} | {'ms':>9} | {'per second':>10} |")
        print(f"|{'-' * 62}|{'-' * 11}|{'-' * 11}|{'-' * 12}|")
        rows, (bank_kb, shared_kb) = bench_stylebank(sorted(set(args.sizes) | {1024}), args.repeats, device)
        for what, size, ms, rate in rows:
            print(f"| {what:<60} | {size:>9} | {ms:9.1f} | {rate:10.2f} |")
        print(f"One more style adds {bank_kb:.0f} KiB in fp16; the shared encoder and decoder take {shared_kb:.0f} KiB.")

    if args.only in (None, "cyclegan"):
        print("\nCycleGAN and pix2pix (input: batch x size)"
              + (" (inference channels-last, float16 autocast)" if device.type == "cuda" else ""))
        print(f"| {'what':<60} | {'input':>9} | {'ms':>9} | {'per second':>10} |")
        print(f"|{'-' * 62}|{'-' * 11}|{'-' * 11}|{'-' * 12}|")
        for what, size, ms, rate in bench_cyclegan(args.repeats, device):
            print(f"| {what:<60} | {size:>9} | {ms:9.1f} | {rate:10.2f} |")

    if args.only in (None, "johnson"):
        where = runtime.cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        print(f"\nJohnson's transformation network on {where} (bf16: bfloat16 autocast, channels-last)")
        print(f"| {'what':<60} | {'input':>11} | {'ms':>9} | {'per second':>10} |")
        print(f"|{'-' * 62}|{'-' * 13}|{'-' * 11}|{'-' * 12}|")
        for what, size, ms, rate in bench_johnson(args.repeats, device):
            print(f"| {what:<60} | {size:>11} | {ms:9.1f} | {rate:10.2f} |")

    if args.only in (None, "ddp"):
        print("\nAdaIN decoder training on several processes (torchrun; global batch 4 = processes x batch)")
        print(f"| {'what':<60} | {'input':>13} | {'ms':>9} | {'steps / s':>10} |")
        print(f"|{'-' * 62}|{'-' * 15}|{'-' * 11}|{'-' * 12}|")
        for what, size, ms, rate in bench_ddp(device, args.ddp_steps, args.ddp_crop):
            print(f"| {what:<60} | {size:>13} | {ms:9.1f} | {rate:10.3f} |")

    rows = []
    if args.only in (None, "features"):
        rows += bench_vgg(args.sizes, args.repeats, device)
    if args.only in (None, "loading"):
        rows += bench_loading(args.repeats)
    if rows:
        print(f"\n| {'what':<46} | {'input':>9} | {'forward ms':>10} | {'fwd+bwd ms':>10} |")
        print(f"|{'-' * 48}|{'-' * 11}|{'-' * 12}|{'-' * 12}|")
        for what, size, fwd, step in rows:
            step_text = f"{step:10.1f}" if step is not None else f"{'':>10}"
            print(f"| {what:<46} | {size:>9} | {fwd:10.1f} | {step_text} |")


if __name__ == "__main__":
    main()
