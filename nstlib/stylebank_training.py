"""Training StyleBank with the (T+1)-step alternation of Chen et al. 2017 (Sec. 3.2), resumable.

Each round is T steps of the **stylising branch**, then one step of the **auto-encoder branch**:

* stylising step: one style id i for the whole batch (batches are grouped by style), output
  O_i = D(K_i (x) E(I)), loss L_K (stylebank.stylising_losses: content, per-sample Gram style and
  TV terms on VGG-16). The step updates E, D and K_i.
* auto-encoder step: O = D(E(I)), L_I = ||O - I||^2 (mean). Its gradient on E and D is rescaled
  to lambda ||Delta_K|| / ||Delta_I|| times itself, Delta_K the gradient of E and D in the last
  stylising step, so that reconstruction never overpowers stylisation (Sec. 3.2). Banks untouched.

Under torchrun (nstlib.distributed) every process draws the same style id and the same branch at
every step (they come from the generator that every rank shares) and trains on its slice of the
global batch of batch_size x N photos, so the bank of the step's style gets its gradient on every
rank, and the banks of the other styles on none (their gradient stays None and Adam leaves them
alone, as in one process). The gradients are averaged *before* the norms of the rescaling are
taken: Delta_K and Delta_I are the global batch's gradients, and the scale is the one process's.

Incremental learning (Sec. 4.2): `train_stylebank(..., only_styles=[new_id])` trains only those
banks (with their decoder scales and shifts, see nstlib.stylebank), encoder and decoder frozen, and
skips the auto-encoder steps.

Each style's own parameters learn at `style_lr_scale` times the shared network's rate: a style is
trained in one stylising step in n_styles, and at the shared rate its bank and scales barely moved
in the measured runs (see StyleBankSettings).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F

from . import distributed
from .datasets import ImageSet, random_crops
from .features import VGGFeatures
from .images import load_image
from .stylebank import (CONTENT_LAYER, CONTENT_WEIGHT, STYLE_LAYERS, STYLE_WEIGHT, TV_WEIGHT, StyleBank,
                        check_content_layer, style_targets, stylising_losses)
from .training import Precision, TrainRun, check_run_dir, data_identity, lr_factor, run_training


@dataclass
class StyleBankSettings:
    steps: int = 40_000  # stylising + auto-encoder steps, counted together
    T: int = 2  # stylising steps per auto-encoder step
    batch_size: int = 4
    crop: int = 256
    load_size: int = 512
    style_size: int = 512  # longer side of each style image for its Gram targets
    lr: float = 1e-3  # long CPU runs at batch 2 diverged: after ~2000 steps at 1e-3, ~4300 at 5e-4 (notebook 06)
    content_weight: float = CONTENT_WEIGHT  # alpha, beta, gamma of L_K (see nstlib.stylebank)
    style_weight: float = STYLE_WEIGHT
    tv_weight: float = TV_WEIGHT
    ae_lambda: float = 1.0  # lambda of the auto-encoder gradient rescaling
    # the learning rate of each style's own parameters (bank, decoder scales and shifts) is lr times this:
    # they learn only in the steps of their style, 1 in n_styles stylising steps. Measured (issue 20,
    # 800 steps, 4 styles, 128 px): at 1x every style's outputs kept one mean colour (spread 0.05);
    # at 10x each moved towards its painting's (Starry Night blue-highest, The Scream red-highest)
    style_lr_scale: float = 10.0
    # clip the global norm of each step's gradient (after the auto-encoder rescaling) to this; None: no
    # clipping. Every step's norm before clipping is in the history ('grad_norm'), to choose it from.
    # Measured (issue 20): an unclipped run (bf16, 128 px, batch 4, lr 1e-3) blew up at step ~4,130,
    # every loss up 1e3-1e5 within 20 steps, after loss spikes at ~3,000 and ~3,500; earlier CPU runs
    # at batch 2 after 2,000-4,300 steps
    clip_grad_norm: float | None = None
    # CycleGAN's schedule (training.lr_factor): every learning rate constant for the first half of the
    # steps, then linearly to 0 at the end. Measured (issue 20): at a constant rate a clipped run's held-out
    # measures peaked at ~2,500 steps and then drifted (every style's colours towards one dark green)
    lr_decay: bool = False
    # the VGG-16 layer of L_content; the paper's is relu4_2. A shallower one keeps more of the photo's
    # structure (Johnson et al. use relu2_2): issue 20's luminance-SSIM bar is what it is for
    content_layer: str = CONTENT_LAYER
    checkpoint_every: int = 500
    keep_every: int = 0  # also keep the checkpoints written at multiples of this in run_dir/kept/ (0: off)
    seed: int = 0
    # the values a text setting may take (the command line offers them as choices)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"content_layer": STYLE_LAYERS}


def first_step_below(history: dict[str, list[float]], target: float, window: int = 20,
                     branch: int | None = None) -> tuple[int, float] | None:
    """When a run's style loss first reached `target`: (steps, seconds) at the end of the first
    `window` consecutive stylising steps (of `branch`, if given) whose mean style loss is <= target,
    or None if it never did. Steps count every step of the run, auto-encoder steps included, so a
    whole-network run pays for its auto-encoder steps as it does in time. Used to compare
    incremental learning of a new bank with training the whole network (Sec. 4.2)."""
    picked = [i for i, b in enumerate(history["branch"]) if b >= 0 and (branch is None or b == branch)]
    for j in range(window - 1, len(picked)):
        if sum(history["style"][i] for i in picked[j - window + 1:j + 1]) / window <= target:
            i = picked[j]
            return i + 1, history["seconds"][i]
    return None


def _grad_norm(params) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return torch.sqrt(sum(g.pow(2).sum() for g in grads)) if grads else torch.tensor(0.0)


def train_stylebank(model: StyleBank, content: ImageSet | Sequence, styles: Sequence, vgg: VGGFeatures,
                    run_dir: str | Path, only_styles: Sequence[int] | None = None, progress: bool = True,
                    callback: Callable[[int, dict[str, float], StyleBank], None] | None = None,
                    precision: str | None = None, **settings) -> TrainRun:
    """Train `model` on crops of `content` for the style images `styles` (one per bank, same
    order) with the (T+1)-step alternation; resumes from run_dir. only_styles: incremental
    learning of those banks alone (encoder, decoder and the other banks frozen). `precision`
    ('fp32' or 'bf16'; default $NSTLIB_PRECISION, else bf16 where the device runs it natively:
    runtime.BF16_MEASURED): with bf16 StyleBank and VGG run in bfloat16 autocast and channels-last,
    the losses and Adam in float32. `callback(step, values, model)`
    runs after each step. History per step: 'branch' (the style id, or -1 for the auto-encoder),
    'content', 'style', 'tv', 'total', 'reconstruction' (NaN where the step did not compute it),
    'grad_norm' (of the trainable parameters' gradient before clipping), 'seconds'."""
    cfg = StyleBankSettings(**settings)
    if len(styles) != model.n_styles:
        raise ValueError(f"{len(styles)} style images for a model with {model.n_styles} banks")
    if cfg.T < 1 or cfg.steps < 0 or cfg.crop % 4:
        raise ValueError("T must be >= 1, steps >= 0 and crop a multiple of 4")
    check_content_layer(cfg.content_layer)  # before any work
    ids = list(range(model.n_styles)) if only_styles is None else list(only_styles)
    for i in ids:
        model.check_style_id(i)
    run_dir = check_run_dir(run_dir)
    precision = Precision(precision, vgg.mean.device, "stylebank training")
    content = content if isinstance(content, ImageSet) else ImageSet(content, cfg.load_size)
    paintings = [s if torch.is_tensor(s) else load_image(s, max_size=cfg.style_size) for s in styles]  # may refuse
    precision.prepare(vgg)  # before the targets, so that every run computes them with the same layout
    targets = style_targets(vgg, paintings, cfg.style_size)
    if only_styles is None:
        trainable = list(model.parameters())
    else:  # incremental: only the new styles' banks (and decoder scales and shifts) learn
        trainable = [p for i in ids for p in model.style_parameters(i)]
    shared = list(model.encoder.parameters()) + list(model.decoder.parameters())
    own = {id(p) for i in range(model.n_styles) for p in model.style_parameters(i)}
    groups = [{"params": [p for p in trainable if id(p) not in own], "lr": cfg.lr},
              {"params": [p for p in trainable if id(p) in own], "lr": cfg.lr * cfg.style_lr_scale}]
    optimizer = torch.optim.Adam([g for g in groups if g["params"]], lr=cfg.lr)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    generator = torch.Generator().manual_seed(cfg.seed)
    history: dict[str, list[float]] = {k: [] for k in ("branch", "content", "style", "tv", "total",
                                                        "reconstruction", "grad_norm", "seconds")}
    last_style_grad = None

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "last_style_grad": last_style_grad}

    def restore(state: dict) -> None:
        nonlocal last_style_grad
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        last_style_grad = state["last_style_grad"]

    def one_step(step: int) -> dict[str, float]:
        nonlocal last_style_grad
        n, mine = distributed.global_batch(cfg.batch_size)  # one process: n = batch_size, all of them
        batch = precision.batch(random_crops(content, n, cfg.crop, generator, mine))
        autoencoder_step = only_styles is None and step % (cfg.T + 1) == cfg.T
        optimizer.zero_grad(set_to_none=True)
        if cfg.lr_decay:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr * lr_factor(step, cfg.steps)
        if autoencoder_step:
            with precision.autocast():
                reconstructed = model(batch, None)
            loss = F.mse_loss(reconstructed.float(), batch)  # L_I, in float32
            loss.backward()
            distributed.average_gradients(optimizer)  # the norms below are the global batch's
            norm_i = _grad_norm(shared)
            if last_style_grad is not None and norm_i > 0:  # Delta_I <- lambda |Delta_K| / |Delta_I| Delta_I
                scale = cfg.ae_lambda * last_style_grad / float(norm_i)
                for p in shared:
                    if p.grad is not None:
                        p.grad.mul_(scale)
            values = {"branch": -1.0, "reconstruction": float(loss.detach())}
        else:
            i = ids[int(torch.randint(len(ids), (1,), generator=generator))]  # one style per batch
            with precision.autocast():
                parts = stylising_losses(vgg, model(batch, i), batch, targets[i], cfg.content_weight,
                                         cfg.style_weight, cfg.tv_weight, cfg.content_layer)
            parts["total"].backward()
            distributed.average_gradients(optimizer)
            if only_styles is None:
                last_style_grad = float(_grad_norm(shared))
            values = {"branch": float(i), **{k: float(v.detach()) for k, v in parts.items()}}
        # the step's gradient norm, before clipping (a spike here is what precedes a blow-up); an
        # infinite limit measures it without clipping
        limit = math.inf if cfg.clip_grad_norm is None else cfg.clip_grad_norm
        values["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(trainable, limit))
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"a loss became non-finite at step {step}: {values}")
        optimizer.step()
        for k in history:
            if k != "seconds":
                history[k].append(values.get(k, math.nan))
        return values

    frozen = [p for p in model.parameters() if all(p is not q for q in trainable)]
    for p in frozen:
        p.requires_grad_(False)
    try:
        return run_training(model, run_dir, cfg, history, one_step, state=state, restore=restore,
                            data={"content": data_identity(content), "style banks": data_identity(styles)},
                            precision=precision, generators=(generator,), same={"ids": ids}, optimizers=(optimizer,),
                            callback=callback, desc="training StyleBank", progress=progress)
    finally:
        for p in frozen:
            p.requires_grad_(True)
