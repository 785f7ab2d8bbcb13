"""Training CycleGAN (Zhu et al. 2017, Sec. 4 and Appendix 7.1) and pix2pix (Isola et al. 2017),
resumable, on a `TranslationTask` (or any object with the same batch methods).

CycleGAN, per step: update G and F together on
    L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + 0.5 lambda L_identity,
then D_A and D_B on half the LSGAN loss of real images and of generated ones drawn through an
image pool of 50. Adam, lr 2e-4, beta1 0.5; the lr stays constant for the first half of the
steps and decays linearly to 0 over the second half (the paper's 100 + 100 epochs).

pix2pix, per step: G on the conditional GAN loss (cross-entropy, as in the paper) plus
100 * ||G(a) - b||_1, then D on real (a, b) and fake (a, G(a)) pairs, halved.

`run_dir/checkpoint.pt` holds the networks, optimizers, step, histories, the image pools, the
task's sampling generator and every RNG: resuming gives the same weights as not stopping. On
Colab, point run_dir at Google Drive (`/content/drive/MyDrive/...`) to survive a disconnect.
`run_dir/samples/step_NNNNNNN.jpg` shows the task's fixed samples a | G(a) | (true answer) every
`sample_every` steps.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import runtime
from .training import (check_same_data, check_same_settings, data_identity, load_checkpoint, rng_state, run_steps,
                         save_checkpoint, set_rng_state)
from .cyclegan import (CYCLE_WEIGHT, IDENTITY_WEIGHT, L1_WEIGHT, ImagePool, PatchDiscriminator, ResnetGenerator,
                       UNetGenerator, cycle_loss, lsgan_loss)
from .images import save_image

CHECKPOINT = "checkpoint.pt"


@dataclass
class GANSettings:
    steps: int = 20_000
    batch_size: int = 1  # the paper's
    lr: float = 2e-4
    beta1: float = 0.5
    cycle_weight: float = CYCLE_WEIGHT
    identity_weight: float = IDENTITY_WEIGHT  # times cycle_weight; 0 switches the identity loss off
    l1_weight: float = L1_WEIGHT  # pix2pix
    pool_size: int = 50
    checkpoint_every: int = 500
    eval_every: int = 250
    sample_every: int = 500  # a sample grid in run_dir/samples/ every this many steps
    seed: int = 0


@dataclass
class GANRun:
    history: dict[str, list[float]]  # per step losses, plus 'eval_step', 'psnr', 'ssim' per evaluation
    step: int
    stopped: str
    settings: dict = field(default_factory=dict)
    checkpoint: Path | None = None


def lr_factor(step: int, steps: int) -> float:
    """1 for the first half of the run, then linearly down to 0 at the end."""
    half = steps // 2
    return 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(1, steps - half))


class CycleGAN(nn.Module):
    """G: A -> B, F: B -> A, D_A and D_B (PatchGANs). The generators are the paper's ResNet
    generators (`blocks`, `width`, `norm`), or with generator='unet' pix2pix's U-Net of `depth`
    levels, an option the authors' code offers too (--netG unet_128 / unet_256)."""

    def __init__(self, blocks: int = 6, width: int = 64, norm: str = "instance", generator: str = "resnet",
                 depth: int = 7):
        super().__init__()
        if generator not in ("resnet", "unet"):
            raise ValueError(f"generator must be 'resnet' or 'unet', got {generator!r}")
        make = (lambda: ResnetGenerator(blocks, width, norm)) if generator == "resnet" else \
            (lambda: UNetGenerator(depth, width))
        self.G, self.F = make(), make()
        self.D_A, self.D_B = PatchDiscriminator(width=width), PatchDiscriminator(width=width)


class Pix2Pix(nn.Module):
    """G: A -> B (U-Net) and a conditional PatchGAN D on (a, b) concatenated."""

    def __init__(self, depth: int = 7, width: int = 64):
        super().__init__()
        self.G = UNetGenerator(depth, width)
        self.D = PatchDiscriminator(in_channels=6, width=width)


def bce_gan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """The original GAN loss on logits: cross-entropy against all-ones (real) or all-zeros."""
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return F.binary_cross_entropy_with_logits(scores, target)


def cyclegan_step(model: CycleGAN, a, b, opt_g, opt_d, pools, cfg, autocast=contextlib.nullcontext) -> dict[str, float]:
    """One step; `autocast` is the context the forward passes run in (runtime.autocast for bf16),
    the backward passes and the optimizers stay outside it."""
    for d in (model.D_A, model.D_B):
        d.requires_grad_(False)  # the generator step must not train the discriminators
    with autocast():
        fake_b, fake_a = model.G(a), model.F(b)
        losses = {"gan_G": lsgan_loss(model.D_B(fake_b), True), "gan_F": lsgan_loss(model.D_A(fake_a), True),
                  "cycle": cycle_loss(model.F(fake_b), a) + cycle_loss(model.G(fake_a), b)}
        total = losses["gan_G"] + losses["gan_F"] + cfg.cycle_weight * losses["cycle"]
        if cfg.identity_weight > 0:
            losses["identity"] = cycle_loss(model.G(b), b) + cycle_loss(model.F(a), a)
            total = total + cfg.identity_weight * cfg.cycle_weight * losses["identity"]
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()
    for d in (model.D_A, model.D_B):
        d.requires_grad_(True)
    with autocast():
        losses["D_B"] = 0.5 * (lsgan_loss(model.D_B(b), True) + lsgan_loss(model.D_B(pools[1].query(fake_b)), False))
        losses["D_A"] = 0.5 * (lsgan_loss(model.D_A(a), True) + lsgan_loss(model.D_A(pools[0].query(fake_a)), False))
    opt_d.zero_grad(set_to_none=True)
    (losses["D_A"] + losses["D_B"]).backward()
    opt_d.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def pix2pix_step(model: Pix2Pix, a, b, opt_g, opt_d, pools, cfg, autocast=contextlib.nullcontext) -> dict[str, float]:
    model.D.requires_grad_(False)
    with autocast():
        fake = model.G(a)
        losses = {"gan_G": bce_gan_loss(model.D(torch.cat([a, fake], 1)), True), "l1": (fake - b).abs().mean()}
    opt_g.zero_grad(set_to_none=True)
    (losses["gan_G"] + cfg.l1_weight * losses["l1"]).backward()
    opt_g.step()
    model.D.requires_grad_(True)
    with autocast():
        losses["D"] = 0.5 * (bce_gan_loss(model.D(torch.cat([a, b], 1)), True)
                             + bce_gan_loss(model.D(torch.cat([a, fake.detach()], 1)), False))
    opt_d.zero_grad(set_to_none=True)
    losses["D"].backward()
    opt_d.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def training_parts(model: CycleGAN | Pix2Pix, cfg: GANSettings):
    """What one training step needs: (generators, step function, generator optimizer,
    discriminator optimizer, the two image pools). Adam with the paper's betas (beta1, 0.999)."""
    if isinstance(model, Pix2Pix):
        generators, discriminators, step_fn = [model.G], [model.D], pix2pix_step
    else:
        generators, discriminators, step_fn = [model.G, model.F], [model.D_A, model.D_B], cyclegan_step
    params = lambda nets: itertools.chain.from_iterable(n.parameters() for n in nets)  # noqa: E731
    opt_g = torch.optim.Adam(params(generators), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(params(discriminators), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    pools = [ImagePool(cfg.pool_size, torch.Generator().manual_seed(cfg.seed + i)) for i in range(2)]
    return generators, step_fn, opt_g, opt_d, pools


def train_translation(model: CycleGAN | Pix2Pix, task, run_dir: str | Path, progress: bool = True,
                      callback: Callable[[int, dict[str, float], nn.Module], None] | None = None,
                      precision: str | None = None, **settings) -> GANRun:
    """Train a CycleGAN on task.unpaired_batch or a Pix2Pix on task.paired_batch until `steps`
    steps are done in total, evaluating task.evaluate(G) every `eval_every` steps; resumes from
    run_dir's checkpoint. `precision` ('fp32' or 'bf16', default runtime.precision()): with bf16
    the forward passes run in bfloat16 autocast and channels-last, backward and Adam in float32."""
    cfg = GANSettings(**settings)
    precision = runtime.precision(precision)
    if cfg.steps < 0 or min(cfg.batch_size, cfg.checkpoint_every, cfg.eval_every, cfg.sample_every) < 1:
        raise ValueError("steps must be >= 0; batch_size, checkpoint_every, eval_every and sample_every >= 1")
    paired = isinstance(model, Pix2Pix)
    device = next(model.parameters()).device
    generators, step_fn, opt_g, opt_d, pools = training_parts(model, cfg)
    batches = task.paired_batch if paired else task.unpaired_batch
    history: dict[str, list[float]] = {"seconds": [], "eval_step": []}
    step = 0
    path = Path(run_dir) / CHECKPOINT
    # the two domains' images, by name and hash, when the task keeps them as ImageSets (both tasks do)
    identity = {role: data_identity(getattr(task, attr)) for role, attr in (("A", "a"), ("B", "b"))
                if hasattr(getattr(task, attr, None), "items")}
    if path.is_file():
        state = load_checkpoint(path, map_location=device)
        check_same_settings(state["settings"] | {"paired": state["paired"]}, asdict(cfg) | {"paired": paired}, path)
        check_same_data(state.get("data"), identity, path)
        model.load_state_dict(state["model"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        for pool, s in zip(pools, state["pools"]):
            pool.load_state_dict(s)
        task.load_state_dict(state["task"])
        history, step = state["history"], state["step"]
        set_rng_state(state["rng"])

    def checkpoint(step: int) -> Path:
        return save_checkpoint(path, {"model": model.state_dict(), "opt_g": opt_g.state_dict(),
                                      "opt_d": opt_d.state_dict(), "pools": [p.state_dict() for p in pools],
                                      "task": task.state_dict(), "step": step, "history": history,
                                      "settings": asdict(cfg), "paired": paired, "data": identity,
                                      "rng": rng_state()})

    def evaluate(step: int) -> None:
        for g in generators:
            g.eval()
        scores = task.evaluate(model.G)  # {} for a task without a known answer
        for g in generators:
            g.train()
        history["eval_step"].append(step)
        for k, v in scores.items():
            history.setdefault(k, []).append(v)

    samples_dir = Path(run_dir) / "samples"
    if not history["eval_step"]:
        evaluate(0)  # the untrained generator
        write_samples(model.G, task, samples_dir / f"step_{0:07d}.jpg")
    start = time.perf_counter() - (history["seconds"][-1] if history["seconds"] else 0.0)

    def one_step(step: int) -> dict[str, float]:
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg.steps)
        a, b = (x.to(device, memory_format=memory_format) for x in batches(cfg.batch_size))
        values = step_fn(model, a, b, opt_g, opt_d, pools, cfg, lambda: runtime.autocast(device, precision))
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"a loss became non-finite at step {step}: {values}")
        for k, v in values.items():
            history.setdefault(k, []).append(v)
        history["seconds"].append(time.perf_counter() - start)
        return values

    def after_step(step: int, values: dict[str, float]) -> dict:
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate(step)
        if step % cfg.sample_every == 0 or step == cfg.steps:
            write_samples(model.G, task, samples_dir / f"step_{step:07d}.jpg")
        if callback is not None:
            callback(step, values, model)
        return {"psnr": f"{history['psnr'][-1]:.2f}"} if "psnr" in history else {}

    memory_format = torch.channels_last if precision == "bf16" else torch.contiguous_format
    model.to(memory_format=memory_format)
    model.train()
    step, stopped, saved = run_steps(step, cfg.steps, one_step, checkpoint, cfg.checkpoint_every,
                                     "training pix2pix" if paired else "training CycleGAN", progress, after_step)
    model.eval()
    return GANRun(history=history, step=step, stopped=stopped, settings={**asdict(cfg), "precision": precision},
                  checkpoint=saved)


@torch.no_grad()
def write_samples(G: nn.Module, task, path: Path) -> Path:
    """One row per fixed sample of domain A: a | G(a) | the true answer (when the task knows it)."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    a = task.samples.to(device)
    columns = [a, G(a).float().clamp(0, 1)]
    if getattr(task, "sample_truth", None) is not None:
        columns.append(task.sample_truth.to(device))
    G.train(was_training)
    rows = torch.cat(columns, dim=3)  # (S, 3, H, kW)
    return save_image(torch.cat(list(rows), dim=1)[None], path)  # (1, 3, S*H, kW)
