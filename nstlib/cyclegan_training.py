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

Under torchrun (nstlib.distributed) every process draws the global batch of batch_size x N pairs
from the task (whose generator every rank shares) and trains on its slice; the gradients of both
optimizers are averaged before each step. Each process keeps its own two image pools of
`pool_size`, seeded per rank (distributed.rank_seed): the discriminators' gradient on rank r comes
from rank r's fakes through rank r's pools, so no images cross processes, and the checkpoint holds
every rank's pools. With the pools off (pool_size=0) N processes equal one process with
batch_size x N; with them on, N pools of 50 hold N times the history of one, which is not the same
run (the paper's pool exists to show the discriminator older fakes; N pools still do). The task's
images are drawn for the whole global batch on every rank: a FolderTask, which keeps none in
memory, decodes N times the images of one process's batch per step.
"""
from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .cyclegan import (CYCLE_WEIGHT, IDENTITY_WEIGHT, L1_WEIGHT, CycleGAN, ImagePool, Pix2Pix, bce_gan_loss,
                       cycle_loss, lsgan_loss)
from . import distributed
from .images import save_image
from .training import Precision, TrainRun, check_run_dir, data_identity, lr_factor, run_training


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
    keep_every: int = 0  # also keep the checkpoints written at multiples of this in run_dir/kept/ (0: off)
    eval_every: int = 250
    sample_every: int = 500  # a sample grid in run_dir/samples/ every this many steps
    seed: int = 0


GAN_CURVES = ("gan_G", "gan_F", "cycle", "identity", "D_A", "D_B")  # cyclegan_step's losses, kept with a model


def cyclegan_step(model: CycleGAN, a, b, opt_g, opt_d, pools, cfg, autocast=contextlib.nullcontext) -> dict[str, float]:
    """One CycleGAN step on batches a (domain A) and b (domain B), (B, 3, H, W). First G and F,
    with the discriminators frozen, on (Zhu et al. 2017, Eq. 3 with LSGAN and Sec. 5.2's identity)

        L_G,F = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + lambda_id lambda L_identity
              = mean (D_B(G(a)) - 1)^2 + mean (D_A(F(b)) - 1)^2
                + lambda (|F(G(a)) - a|_1 + |G(F(b)) - b|_1) + lambda_id lambda (|G(b) - b|_1 + |F(a) - a|_1)

    (lambda = cfg.cycle_weight, lambda_id = cfg.identity_weight; |.|_1 averaged over pixels; no
    identity term when it is 0), then D_A and D_B on fakes drawn through the image pools:

        L_D_B = 0.5 (mean (D_B(b) - 1)^2 + mean D_B(pool_B(G(a)))^2),   L_D_A likewise with a, F(b)

    Returns every term as a float: 'gan_G', 'gan_F', 'cycle', 'identity', 'D_A', 'D_B'.
    `autocast` is the context the forward passes run in (Precision.autocast for bf16); the backward
    passes and the optimizers stay outside it."""
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
    with autocast():  # fakes detached: the discriminators' loss must not reach G and F (nor, with
        # pool_size=0, where the pool hands the fakes back as they are, their freed graph)
        losses["D_B"] = 0.5 * (lsgan_loss(model.D_B(b), True)
                               + lsgan_loss(model.D_B(pools[1].query(fake_b.detach())), False))
        losses["D_A"] = 0.5 * (lsgan_loss(model.D_A(a), True)
                               + lsgan_loss(model.D_A(pools[0].query(fake_a.detach())), False))
    opt_d.zero_grad(set_to_none=True)
    (losses["D_A"] + losses["D_B"]).backward()
    opt_d.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def pix2pix_step(model: Pix2Pix, a, b, opt_g, opt_d, pools, cfg, autocast=contextlib.nullcontext) -> dict[str, float]:
    """One pix2pix step on paired batches a and b = the answer for a, (B, 3, H, W). First G, with D
    frozen, on (Isola et al. 2017, Eq. 4; the GAN term in its non-saturating form -log D(a, G(a)))

        L_G = BCE(D(a, G(a)), real) + lambda |G(a) - b|_1       (lambda = cfg.l1_weight, 100)

    then D on the real pair and the fake one (`pools` is unused: pix2pix has no image pool):

        L_D = 0.5 (BCE(D(a, b), real) + BCE(D(a, G(a)), fake))

    BCE = bce_gan_loss, |.|_1 averaged over pixels. Returns 'gan_G', 'l1' and 'D' as floats;
    `autocast` as in `cyclegan_step`."""
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
    discriminator optimizer, the two image pools). Adam with the paper's betas (beta1, 0.999). The
    pools' generators are seeded with cfg.seed + i on rank 0 (and in one process), each other
    rank's from its own seed (distributed.rank_seed)."""
    if isinstance(model, Pix2Pix):
        generators, discriminators, step_fn = [model.G], [model.D], pix2pix_step
    else:
        generators, discriminators, step_fn = [model.G, model.F], [model.D_A, model.D_B], cyclegan_step
    params = lambda nets: itertools.chain.from_iterable(n.parameters() for n in nets)  # noqa: E731
    opt_g = torch.optim.Adam(params(generators), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(params(discriminators), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    pools = [ImagePool(cfg.pool_size, torch.Generator().manual_seed(distributed.rank_seed(cfg.seed + i)))
             for i in range(2)]
    return generators, step_fn, opt_g, opt_d, pools


def train_translation(model: CycleGAN | Pix2Pix, task, run_dir: str | Path, progress: bool = True,
                      callback: Callable[[int, dict[str, float], nn.Module], None] | None = None,
                      precision: str | None = None, **settings) -> TrainRun:
    """Train a CycleGAN on task.unpaired_batch or a Pix2Pix on task.paired_batch until `steps`
    steps are done in total, evaluating task.evaluate(G) every `eval_every` steps; resumes from
    run_dir's checkpoint. `precision` ('fp32' or 'bf16'; default $NSTLIB_PRECISION, else fp32 even
    where bf16 is native: see runtime.BF16_MEASURED): with bf16 the forward passes run in bfloat16
    autocast and channels-last, backward and Adam in float32.
    `callback(step, values, model)` runs after each step. History: the step's losses per step
    (see `cyclegan_step`, `pix2pix_step`) and 'seconds'; per evaluation 'eval_step' and the task's
    scores ('psnr', 'ssim' when it knows the answer)."""
    cfg = GANSettings(**settings)
    if cfg.steps < 0 or min(cfg.batch_size, cfg.checkpoint_every, cfg.eval_every, cfg.sample_every) < 1:
        raise ValueError("steps must be >= 0; batch_size, checkpoint_every, eval_every and sample_every >= 1")
    run_dir = check_run_dir(run_dir)
    precision = Precision(precision, next(model.parameters()).device)
    paired = isinstance(model, Pix2Pix)
    generators, step_fn, opt_g, opt_d, pools = training_parts(model, cfg)
    batches = task.paired_batch if paired else task.unpaired_batch
    history: dict[str, list[float]] = {"seconds": [], "eval_step": []}

    def state() -> dict:
        # the task's sampling generator is in its state: no generator for run_training to keep
        return {"model": model.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "task": task.state_dict()}

    def restore(state: dict) -> None:
        model.load_state_dict(state["model"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        task.load_state_dict(state["task"])

    def rank_state() -> dict:  # each process's own (in one process: beside the rest, as before)
        return {"pools": [p.state_dict() for p in pools]}

    def restore_rank(state: dict) -> None:
        for pool, s in zip(pools, state["pools"]):
            pool.load_state_dict(s)

    def evaluate(step: int) -> None:
        for g in generators:
            g.eval()
        scores = task.evaluate(model.G)  # {} for a task without a known answer
        for g in generators:
            g.train()
        history["eval_step"].append(step)
        for k, v in scores.items():
            history.setdefault(k, []).append(v)

    samples_dir = run_dir / "samples"

    def start(step: int) -> None:
        if not history["eval_step"]:
            evaluate(0)  # the untrained generator
            write_samples(model.G, task, samples_dir / f"step_{0:07d}.jpg")

    def one_step(step: int) -> dict[str, float]:
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg.steps)
        n, mine = distributed.global_batch(cfg.batch_size)  # one process: n = batch_size, all of them
        a, b = (precision.batch(x[mine]) for x in batches(n))
        values = step_fn(model, a, b, opt_g, opt_d, pools, cfg, precision.autocast)
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"a loss became non-finite at step {step}: {values}")
        for k, v in values.items():
            history.setdefault(k, []).append(v)
        return values

    def after_step(step: int, values: dict[str, float]) -> dict:
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate(step)
        if step % cfg.sample_every == 0 or step == cfg.steps:
            write_samples(model.G, task, samples_dir / f"step_{step:07d}.jpg")
        return {"psnr": f"{history['psnr'][-1]:.2f}"} if "psnr" in history else {}

    # the two domains' images, by name and hash, when the task keeps them as ImageSets (both tasks do)
    identity = {role: data_identity(getattr(task, attr)) for role, attr in (("A", "a"), ("B", "b"))
                if hasattr(getattr(task, attr, None), "items")}
    return run_training(model, run_dir, cfg, history, one_step, state=state, restore=restore, data=identity,
                        precision=precision, same={"paired": paired}, start=start, after_step=after_step,
                        callback=callback, optimizers=(opt_g, opt_d), rank_state=rank_state, restore_rank=restore_rank, desc="training pix2pix" if paired else "training CycleGAN",
                        progress=progress)


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
