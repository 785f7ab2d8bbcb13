"""Training StyleBank with the (T+1)-step alternation of Chen et al. 2017 (Sec. 3.2), resumable.

Each round is T steps of the **stylising branch**, then one step of the **auto-encoder branch**:

* stylising step: one style id i for the whole batch (batches are grouped by style), output
  O_i = D(K_i (x) E(I)); perceptual loss on VGG-16 (course weights)
      L_K = alpha L_content(O_i, I) + beta L_style(O_i, S_i) + gamma L_tv(O_i)
  with content at relu4_2 and Gram style losses at relu1_2, relu2_2, relu3_2 and relu4_2 (our
  reading of the paper). Each output's Gram matrix is its own, (B, N, N), compared with the
  style's: computing one Gram over the whole batch, as some public code does, would average the
  batch's statistics together. The step updates E, D and K_i.
* auto-encoder step: O = D(E(I)), L_I = ||O - I||^2 (mean). Its gradient on E and D is rescaled
  to lambda ||Delta_K|| / ||Delta_I|| times itself, Delta_K the gradient of E and D in the last
  stylising step, so that reconstruction never overpowers stylisation (Sec. 3.2). Banks untouched.

Incremental learning (Sec. 4.2): `train_stylebank(..., only_styles=[new_id])` trains only those
banks, encoder and decoder frozen, and skips the auto-encoder steps.

Losses use averages, not the sums of notebook 03, so the weights do not depend on the crop size:
L_content is the mean squared feature difference, L_style the course's E_l (Gatys Eq. 4, size-
independent already) averaged over layers and over the batch, L_tv the mean squared difference of
neighbouring pixels.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .training import check_run_dir, check_same_data, check_same_settings, data_identity, load_checkpoint, rng_state, run_steps, save_checkpoint, set_rng_state
from .datasets import ImageSet
from .features import VGGFeatures
from .images import load_image
from .losses import gram, style_layer_loss
from .stylebank import StyleBank

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2")
CHECKPOINT = "checkpoint.pt"


@dataclass
class StyleBankSettings:
    steps: int = 40_000  # stylising + auto-encoder steps, counted together
    T: int = 2  # stylising steps per auto-encoder step
    batch_size: int = 4
    crop: int = 256
    load_size: int = 512
    style_size: int = 512  # longer side of each style image for its Gram targets
    lr: float = 1e-3  # long CPU runs at batch 2 diverged: after ~2000 steps at 1e-3, ~4300 at 5e-4 (notebook 06)
    # For the course's VGG-16 (Caffe weights, features in 0..255 units) with the averaged losses
    # below: an untrained output starts near L_content 1e5 and L_style 1e10, a trained one near
    # 7e4 and 4e8..2e9, so beta = 1e-3 makes style dominate at first and the two comparable later;
    # TV (about 1e-3 on a trained output) adds a few percent, enough against checkerboards.
    content_weight: float = 1.0
    style_weight: float = 1e-3
    tv_weight: float = 3e5
    ae_lambda: float = 1.0  # lambda of the auto-encoder gradient rescaling
    checkpoint_every: int = 500
    seed: int = 0


@dataclass
class StyleBankRun:
    history: dict[str, list[float]]  # per step: 'branch' (style id, or -1 for the auto-encoder), losses
    step: int
    stopped: str
    settings: dict = field(default_factory=dict)
    checkpoint: Path | None = None


def style_targets(vgg: VGGFeatures, styles: Sequence, size: int) -> list[dict[str, torch.Tensor]]:
    """Per style image, its (1, N, N) Gram matrices at STYLE_LAYERS."""
    out = []
    with torch.no_grad():
        for s in styles:
            x = s if torch.is_tensor(s) else load_image(s, max_size=size)
            feats = vgg.extract(x.to(vgg.mean.device), STYLE_LAYERS)
            out.append({l: gram(f) for l, f in feats.items()})
    return out


def perceptual_losses(vgg: VGGFeatures, output: torch.Tensor, content: torch.Tensor,
                      targets: dict[str, torch.Tensor], cfg: StyleBankSettings) -> dict[str, torch.Tensor]:
    """The stylising branch's loss for a batch of outputs (B, 3, H, W) of one style."""
    b = output.shape[0]
    feats = vgg.extract(output, tuple(dict.fromkeys((*STYLE_LAYERS, CONTENT_LAYER))))  # relu4_2 serves both
    with torch.no_grad():
        content_target = vgg.extract(content, CONTENT_LAYER)[CONTENT_LAYER]
    l_content = F.mse_loss(feats[CONTENT_LAYER], content_target)
    # gram(...) is (B, N, N): one Gram matrix per output, each compared with the style's (1, N, N)
    l_style = sum(style_layer_loss(gram(feats[l]), targets[l]) for l in STYLE_LAYERS) / (len(STYLE_LAYERS) * b)
    dx = output[..., :, 1:] - output[..., :, :-1]
    dy = output[..., 1:, :] - output[..., :-1, :]
    l_tv = dx.pow(2).mean() + dy.pow(2).mean()
    total = cfg.content_weight * l_content + cfg.style_weight * l_style + cfg.tv_weight * l_tv
    return {"content": l_content, "style": l_style, "tv": l_tv, "total": total}


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
                    callback: Callable[[int, dict[str, float]], None] | None = None, **settings) -> StyleBankRun:
    """Train `model` on crops of `content` for the style images `styles` (one per bank, same
    order) with the (T+1)-step alternation; resumes from run_dir. only_styles: incremental
    learning of those banks alone (encoder, decoder and the other banks frozen)."""
    cfg = StyleBankSettings(**settings)
    if len(styles) != model.n_styles:
        raise ValueError(f"{len(styles)} style images for a model with {model.n_styles} banks")
    if cfg.T < 1 or cfg.steps < 0 or cfg.crop % 4:
        raise ValueError("T must be >= 1, steps >= 0 and crop a multiple of 4")
    ids = list(range(model.n_styles)) if only_styles is None else list(only_styles)
    for i in ids:
        model._check_id(i)
    check_run_dir(run_dir, CHECKPOINT)
    device = vgg.mean.device
    content = content if isinstance(content, ImageSet) else ImageSet(content, cfg.load_size)
    targets = style_targets(vgg, styles, cfg.style_size)
    if only_styles is None:
        trainable = list(model.parameters())
    else:  # incremental: only the new banks learn
        trainable = [p for i in ids for p in model.banks[i].parameters()]
    shared = list(model.encoder.parameters()) + list(model.decoder.parameters())
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    history: dict[str, list[float]] = {k: [] for k in ("branch", "content", "style", "tv", "total",
                                                        "reconstruction", "seconds")}
    step, last_style_grad = 0, None
    path = Path(run_dir) / CHECKPOINT
    identity = {"content": data_identity(content), "style banks": data_identity(styles)}
    if path.is_file():
        state = load_checkpoint(path, map_location=device)
        check_same_settings(state["settings"] | {"ids": state["ids"]}, asdict(cfg) | {"ids": ids}, path)
        check_same_data(state.get("data"), identity, path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, step, last_style_grad = state["history"], state["step"], state["last_style_grad"]
        set_rng_state(state["rng"], generator)

    def checkpoint(step: int) -> Path:
        return save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                      "step": step, "history": history, "settings": asdict(cfg), "ids": ids,
                                      "data": identity,
                                      "last_style_grad": last_style_grad, "rng": rng_state(generator)})

    start = time.perf_counter() - (history["seconds"][-1] if history["seconds"] else 0.0)

    def one_step(step: int) -> dict[str, float]:
        nonlocal last_style_grad
        batch = torch.stack([content.random_crop(cfg.crop, generator) for _ in range(cfg.batch_size)]).to(device)
        autoencoder_step = only_styles is None and step % (cfg.T + 1) == cfg.T
        optimizer.zero_grad(set_to_none=True)
        if autoencoder_step:
            loss = F.mse_loss(model(batch, None), batch)
            loss.backward()
            norm_i = _grad_norm(shared)
            if last_style_grad is not None and norm_i > 0:  # Delta_I <- lambda |Delta_K| / |Delta_I| Delta_I
                scale = cfg.ae_lambda * last_style_grad / float(norm_i)
                for p in shared:
                    if p.grad is not None:
                        p.grad.mul_(scale)
            values = {"branch": -1.0, "reconstruction": float(loss.detach())}
        else:
            i = ids[int(torch.randint(len(ids), (1,), generator=generator))]  # one style per batch
            parts = perceptual_losses(vgg, model(batch, i), batch, targets[i], cfg)
            parts["total"].backward()
            if only_styles is None:
                last_style_grad = float(_grad_norm(shared))
            values = {"branch": float(i), **{k: float(v.detach()) for k, v in parts.items()}}
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"a loss became non-finite at step {step}: {values}")
        optimizer.step()
        for k in history:
            if k != "seconds":
                history[k].append(values.get(k, math.nan))
        history["seconds"].append(time.perf_counter() - start)
        return values

    frozen = [p for p in model.parameters() if all(p is not q for q in trainable)]
    for p in frozen:
        p.requires_grad_(False)
    model.train()
    try:
        step, stopped, saved = run_steps(step, cfg.steps, one_step, checkpoint, cfg.checkpoint_every,
                                         "training StyleBank", progress, callback)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    model.eval()
    return StyleBankRun(history=history, step=step, stopped=stopped, settings=asdict(cfg), checkpoint=saved)
