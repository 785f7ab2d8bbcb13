"""Training Johnson's transformation network (Johnson, Alahi & Fei-Fei 2016, Sec. 3-4.1) for one
style, or a conditional-instance-norm network for N styles (Dumoulin, Shlens & Kudlur 2017), on the
shared training skeleton (nstlib.training): resumable to the bit.

    vgg = VGGFeatures("vgg16", "caffe", up_to="relu4_3")
    model = TransformNet()                                   # one style; TransformNet(n_styles=4): CIN
    run = train_transform_net(model, ["bsds500"], ["the_scream"], vgg, "runs/scream", precision="bf16")

One step: a batch of B random crops y_c, the network's outputs y^ = f_W(y_c), and Johnson's loss
(johnson.perceptual_loss, Eq. 2-5) against the style's Gram targets, then one Adam update of W.

Settings (`JohnsonSettings`; every default says where it comes from):

* Adam, learning rate 1e-3, batches of 4 crops of 256 x 256, 40,000 steps (Sec. 4.1: "roughly two
  epochs over the [80k COCO] training data"); the paper resizes each COCO image to 256 x 256. Here
  each photo's shorter side is resized to `load_size` = 256 and a random 256 x 256 crop is taken:
  the same scale, without squashing BSDS500's 3:2 photos.
* Loss network VGG-16 (the course's Caffe weights, the network Johnson used). Style at relu1_2,
  relu2_2, relu3_3, relu4_3 (Sec. 4.1). **Content at relu3_3**, with fast-neural-style's weights:
  the paper's text says relu2_2 (Sec. 4.1), but the authors' released training code
  (jcjohnson/fast-neural-style, train.lua) defaults to layer 16 = relu3_3 with content weight 1.0,
  style weight 5.0 and TV strength 1e-6, and those weights were chosen together with that layer.
  lengstrom/fast-style-transfer, whose trained networks `johnson.pretrained` loads, uses VGG-19
  with content at relu4_2 and style at relu1_1 ... relu5_1 (content 7.5, style 100, TV 200 in its
  own normalisation). `content_layer="relu2_2"` trains as the paper's text says.
* The style weight is fast-neural-style's: its nn.MSECriterion on the Gram matrices averages Eq. 4
  over the C_j^2 entries, so the trainer passes lambda_s / C_j^2 per layer to perceptual_loss (whose
  Eq. 4 is the paper's sum). The style image is resized to `style_size` = 256 px (fast-neural-style's
  -style_image_size default) before its Gram targets are computed.

Conditional instance normalisation (TransformNet(n_styles=N), N style images in the network's
order): **each image of a batch gets its own randomly drawn style** (its own CIN gamma_s, beta_s and
its own Gram targets), as Magenta's released training code does (image_stylization_train.py batches
randomly drawn style examples with one label each); Dumoulin et al. only say the N styles are
trained jointly. `one_style_per_batch=True` draws one style per batch instead (as StyleBank's
trainer does), for comparison.

bf16 (`precision="bf16"`): the transformation network and VGG run under bfloat16 autocast in
channels-last; VGG's features are taken back to float32 before the Gram matrices and losses, and
Adam's state stays float32 (training.Precision). The style targets are computed once, in float32.

`run_dir/checkpoint.pt` is written atomically every `checkpoint_every` steps, at the end, and on
Ctrl-C; calling again with the same run_dir resumes (network, optimizer, step, history, every RNG),
and refuses a checkpoint made with other settings, images or another network (norm, styles, widths).
Sample grids go to `run_dir/samples/` every `sample_every` steps.

Under torchrun (nstlib.distributed) every process draws the global batch of batch_size x N crops and
their styles and trains on its slice; gradients are averaged before each step. With norm='batch'
each process normalises its own slice (batch statistics are not shared across processes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import torch

from . import distributed, johnson
from .datasets import ImageSet, random_crops
from .features import VGGFeatures
from .images import load_image, save_image
from .training import Precision, TrainRun, check_run_dir, data_identity, loss_step, run_training


@dataclass
class JohnsonSettings:
    steps: int = 40_000  # Sec. 4.1: 40k iterations of batch 4 (~2 epochs of COCO's 80k photos)
    batch_size: int = 4  # Sec. 4.1
    crop: int = 256  # Sec. 4.1: 256 x 256 training images
    load_size: int = 256  # shorter side before cropping: COCO was resized to 256 x 256 (Sec. 4.1)
    style_size: int = 256  # longer side of each style image for its Gram targets (fast-neural-style)
    lr: float = 1e-3  # Sec. 4.1, Adam
    content_layer: str = "relu3_3"  # fast-neural-style's default; the paper's text: relu2_2
    content_weight: float = 1.0  # fast-neural-style's -content_weights
    style_weight: float = 5.0  # fast-neural-style's -style_weights: per layer, Eq. 4 averaged over the C_j^2 entries
    tv_weight: float = johnson.TV_WEIGHT  # fast-neural-style's -tv_strength 1e-6, for images in [0, 1]
    one_style_per_batch: bool = False  # CIN only: one style for the whole batch instead of one per image
    checkpoint_every: int = 500
    keep_every: int = 0  # also keep the checkpoints written at multiples of this in run_dir/kept/ (0: off)
    sample_every: int = 500
    seed: int = 0
    # the values a text setting may take (the command line offers them as choices)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"content_layer": ("relu2_2", "relu3_3", "relu4_3")}


CONTENT_LAYERS = JohnsonSettings.CHOICES["content_layer"]  # what `content_layer` may be (VGG-16 up to relu4_3)


def layer_style_weights(style_weight: float, targets: dict[str, torch.Tensor]) -> dict[str, float]:
    """lambda_s / C_j^2 for each style layer j: fast-neural-style's MSE over the C_j x C_j Gram entries,
    expressed as weights of the paper's Eq. 4 (a sum over those entries, johnson.perceptual_loss)."""
    return {j: style_weight / g.shape[-1] ** 2 for j, g in targets.items()}


def network_description(model: johnson.TransformNet) -> str:
    """What a checkpoint's network must match to be resumed: norm, number of styles, widths."""
    return f"norm={model.norm_kind} n_styles={model.n_styles} widths={list(model.widths)}"


class MixedPrecisionVGG:
    """vgg.extract under the precision's autocast, the features handed back in float32: VGG runs in
    bf16 while perceptual_loss computes the Gram matrices and losses from float32 features (under
    autocast its matmuls would run in bf16 again)."""

    def __init__(self, vgg: VGGFeatures, precision: Precision):
        self.vgg, self.precision = vgg, precision

    def extract(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        with self.precision.autocast():
            feats = self.vgg.extract(x, layers)
        return {k: v.float() for k, v in feats.items()}


def draw_styles(n_styles: int, batch: int, generator: torch.Generator, one_per_batch: bool = False) -> torch.Tensor:
    """The (B,) style indices of one CIN batch: one uniform draw per image, or one for the whole batch."""
    return torch.randint(n_styles, (1 if one_per_batch else batch,), generator=generator).expand(batch)


def _as_list(styles) -> list:
    return [styles] if isinstance(styles, (str, Path)) or torch.is_tensor(styles) else list(styles)


def train_transform_net(model: johnson.TransformNet, content: ImageSet | Sequence, styles: Sequence, vgg: VGGFeatures,
                        run_dir: str | Path, progress: bool = True,
                        callback: Callable[[int, dict[str, float], johnson.TransformNet], None] | None = None,
                        precision: str | None = None, **settings) -> TrainRun:
    """Train `model` (a TransformNet: one style, or CIN with n_styles = len(styles)) on crops of
    `content` (an ImageSet, or training sets, folders, files and registry names to make one from) for
    the style images `styles` (registry names, files or (1, 3, H, W) tensors; for CIN in the network's
    style order), with VGG `vgg` (VGG-16 up to at least relu4_3), until `steps` steps are done in total;
    resumes from run_dir's checkpoint if there is one. Settings: see JohnsonSettings. `precision`
    ('fp32' or 'bf16', default runtime.precision(): fp32 unless NSTLIB_PRECISION=bf16, since its bf16
    parity is not measured yet): see the module docstring. `callback(step, values,
    model)` runs after each step. History per step: 'content' (Eq. 2), 'style' (Eq. 4 summed over
    the layers, unweighted), 'tv', 'total' (the weighted sum that is minimised), 'seconds'."""
    cfg = JohnsonSettings(**settings)
    styles = _as_list(styles)
    n = model.n_styles or 1
    if len(styles) != n:
        raise ValueError(f"{len(styles)} style images for a network with {n} style{'s' if n > 1 else ''} "
                         "(TransformNet(n_styles=N) trains N styles)")
    if cfg.steps < 0 or cfg.checkpoint_every < 1 or cfg.sample_every < 1 or cfg.batch_size < 1:
        raise ValueError("steps must be >= 0 and batch_size, checkpoint_every, sample_every >= 1")
    if cfg.content_layer not in CONTENT_LAYERS:
        raise ValueError(f"content_layer must be one of {CONTENT_LAYERS}, got {cfg.content_layer!r}")
    if cfg.one_style_per_batch and not model.n_styles:
        raise ValueError("one_style_per_batch is for CIN networks (TransformNet(n_styles=N))")
    if johnson.STYLE_LAYERS[-1] not in vgg.layer_names:
        raise ValueError(f"the VGG must reach {johnson.STYLE_LAYERS[-1]} (VGGFeatures('vgg16', up_to='relu4_3')), "
                         f"it stops at {vgg.layer_names[-1]}")
    run_dir = check_run_dir(run_dir)
    device = vgg.mean.device
    precision = Precision(precision, device)
    content = content if isinstance(content, ImageSet) else ImageSet(content, cfg.load_size)
    style_images = [(s if torch.is_tensor(s) else load_image(s, max_size=cfg.style_size)).to(device) for s in styles]
    precision.prepare(vgg)  # before the targets, so that every run computes them with the same layout
    targets = [johnson.style_targets(vgg, s) for s in style_images]  # per style: layer -> (1, C, C), float32
    weights = layer_style_weights(cfg.style_weight, targets[0])
    loss_vgg = MixedPrecisionVGG(vgg, precision)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    history: dict[str, list[float]] = {k: [] for k in ("content", "style", "tv", "total", "seconds")}

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    def restore(state: dict) -> None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    def one_step(step: int) -> dict[str, float]:
        total, mine = distributed.global_batch(cfg.batch_size)  # one process: the whole batch
        batch = precision.batch(random_crops(content, total, cfg.crop, generator, mine))  # (B, 3, crop, crop)
        ids = draw_styles(n, total, generator, cfg.one_style_per_batch)[mine] if model.n_styles else None
        parts = batch_losses(model, loss_vgg, batch, targets, ids, cfg, weights, precision)
        values = loss_step(parts, optimizer, history, step)
        return values

    sample_photos = []

    def after_step(step: int, values: dict[str, float]) -> dict:
        if step % cfg.sample_every == 0 or step == cfg.steps:
            if not sample_photos:  # fixed crops, from their own generator: no effect on training
                g = torch.Generator().manual_seed(cfg.seed + 1)
                sample_photos.extend(content.random_crop(cfg.crop, g) for _ in range(4))
            write_samples(model, sample_photos, run_dir / "samples" / f"step_{step:07d}.jpg")
        return {"loss": f"{values['total']:.3g}"}

    return run_training(model, run_dir, cfg, history, one_step, state=state, restore=restore,
                        data={"content": data_identity(content), "style": data_identity(styles)},
                        precision=precision, generators=(generator,), optimizers=(optimizer,),
                        same={"network": network_description(model)},
                        after_step=after_step, callback=callback, desc="training the transform net",
                        progress=progress)


def batch_losses(model: johnson.TransformNet, loss_vgg, batch: torch.Tensor, targets: Sequence[dict[str, torch.Tensor]],
                 ids: torch.Tensor | None, cfg: JohnsonSettings, weights: dict[str, float],
                 precision: Precision) -> dict[str, torch.Tensor]:
    """One step's losses (johnson.perceptual_loss) for a batch (B, 3, H, W) of photos: `targets` holds
    each style's Gram targets, `ids` the (B,) style of each image for a CIN network (None for one
    style), `weights` the per-layer style weights (`layer_style_weights`), `loss_vgg` VGG as
    MixedPrecisionVGG wraps it. The network runs under the precision's autocast; its output goes to
    the loss in float32."""
    if ids is not None:
        with precision.autocast():
            output = model(batch, ids.to(batch.device), clamp=False)
        target = {j: torch.cat([targets[int(i)][j] for i in ids]) for j in johnson.STYLE_LAYERS}  # (B, C, C)
    else:
        with precision.autocast():
            output = model(batch, clamp=False)
        target = targets[0]
    return johnson.perceptual_loss(loss_vgg, output.float(), batch, target, cfg.content_layer, cfg.content_weight,
                                   weights, cfg.tv_weight)


def write_samples(model: johnson.TransformNet, photos: Sequence[torch.Tensor], path: Path) -> Path:
    """One row per photo: the photo, then its stylisation in each of the network's styles."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows = []
    with torch.no_grad():
        for x in photos:
            x = x[None].to(device)  # (1, 3, H, W)
            outs = [model(x, i) for i in range(model.n_styles)] if model.n_styles else [model(x)]
            rows.append(torch.cat([x, *outs], dim=3))  # (1, 3, H, (1 + S) W)
    model.train(was_training)
    return save_image(torch.cat(rows, dim=2), path)
