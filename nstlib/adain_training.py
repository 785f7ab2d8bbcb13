"""Training AdaIN's decoder (Huang & Belongie 2017, Sec. 6.2), resumable to the bit.

    model = AdaIN()                                   # VGG-16 encoder, fresh decoder
    run = train_decoder(model, photos, paintings, "runs/adain", steps=20_000)
    plot_losses(run.history)

Settings as in the paper and its code: Adam with learning rate 1e-4 decayed as
lr_t = 1e-4 / (1 + 5e-5 t), batches of 8 content and 8 style crops of 256 px (shorter side
resized to 512 first), lambda = 10. `run_dir/checkpoint.pt` is written atomically every
`checkpoint_every` steps, at the end, and on Ctrl-C; calling `train_decoder` again with the same
run_dir resumes from it (decoder, optimizer, step, loss history and every RNG), so a resumed run
ends with the same weights as an uninterrupted one. The checkpoint records its images (names and
sha256) and refuses a resume on other ones. Sample images are written to
`run_dir/samples/` every `sample_every` steps.

Under torchrun (`torchrun --nproc_per_node N -m nstlib train-adain ...`, nstlib.distributed) each
of the N processes trains on batch_size crops of the global batch of batch_size x N, the gradients
averaged: the run is the one-process run with batch_size x N. The paper's batch of 8 on 4 GPUs is
batch_size=2; the learning rate is not rescaled.

One departure, off by default: `shuffle_style_channels=True` puts each style crop's RGB channels
in a random order (datasets.shuffle_channels). The paper's 80,000 WikiArt paintings cover every
palette; a dozen offline paintings do not, and a decoder trained on them paints every result in
their shared colours whatever the style image says. Shuffling makes colour something the decoder
must read from AdaIN's statistics.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import adain as adain_lib
from . import distributed
from .datasets import ImageSet, UnpairedBatches
from .images import save_image
from .training import Precision, TrainRun, check_run_dir, data_identity, loss_step, run_training


@dataclass
class TrainSettings:
    steps: int = 160_000  # the original trains 160k iterations of batch 8
    batch_size: int = 8
    crop: int = 256
    load_size: int = 512
    lr: float = 1e-4
    lr_decay: float = 5e-5  # lr_t = lr / (1 + lr_decay * t)
    style_weight: float = adain_lib.STYLE_LOSS_WEIGHT
    shuffle_style_channels: bool = False  # not in the paper: colour augmentation for small style sets
    checkpoint_every: int = 500
    keep_every: int = 0  # also keep the checkpoints written at multiples of this in run_dir/kept/ (0: off)
    sample_every: int = 500
    seed: int = 0


def learning_rate(step: int, lr: float, decay: float) -> float:
    """The schedule of the original code: lr / (1 + decay * step)."""
    return lr / (1.0 + decay * step)


def train_decoder(model: adain_lib.AdaIN, content: ImageSet | Sequence, style: ImageSet | Sequence,
                  run_dir: str | Path, progress: bool = True,
                  callback: Callable[[int, dict[str, float], adain_lib.AdaIN], None] | None = None,
                  precision: str | None = None, **settings) -> TrainRun:
    """Train `model.decoder` on unpaired crops of `content` and `style` (ImageSets, or folders,
    files and registry names to make them from) until `steps` steps are done in total; resumes
    from run_dir's checkpoint if there is one. Settings: see TrainSettings. `precision` ('fp32' or
    'bf16'; default $NSTLIB_PRECISION, else bf16 where the device runs it natively: runtime.
    BF16_MEASURED): with bf16 the networks run in bfloat16 autocast and channels-last, the losses
    and Adam in float32; a run may resume in the other precision.
    `callback(step, values, model)` runs after each step. History per step: 'content', 'style',
    'total', 'lr', 'seconds'."""
    cfg = TrainSettings(**settings)
    if cfg.steps < 0 or cfg.checkpoint_every < 1 or cfg.sample_every < 1:
        raise ValueError("steps must be >= 0 and checkpoint_every, sample_every >= 1")
    run_dir = check_run_dir(run_dir)
    precision = Precision(precision, model.encoder.vgg.mean.device, "adain training")
    content = content if isinstance(content, ImageSet) else ImageSet(content, cfg.load_size)
    style = style if isinstance(style, ImageSet) else ImageSet(style, cfg.load_size)
    generator = torch.Generator().manual_seed(cfg.seed)
    batches = UnpairedBatches(content, style, cfg.batch_size, cfg.crop, generator, cfg.shuffle_style_channels,
                              shard=(distributed.rank(), distributed.world_size()))
    optimizer = torch.optim.Adam(model.decoder.parameters(), lr=cfg.lr)
    history: dict[str, list[float]] = {k: [] for k in ("content", "style", "total", "lr", "seconds")}

    def state() -> dict:
        return {"decoder": model.decoder.state_dict(), "optimizer": optimizer.state_dict()}

    def restore(state: dict) -> None:
        model.decoder.load_state_dict(state["decoder"])
        optimizer.load_state_dict(state["optimizer"])

    def one_step(step: int) -> dict[str, float]:
        lr = learning_rate(step, cfg.lr, cfg.lr_decay)
        for group in optimizer.param_groups:
            group["lr"] = lr
        c, s = (precision.batch(x) for x in next(batches))
        with precision.autocast():
            parts = adain_lib.decoder_losses(model, c, s, cfg.style_weight)
        values = loss_step(parts, optimizer, history, step)
        history["lr"].append(lr)
        return values

    sample_pairs = []

    def after_step(step: int, values: dict[str, float]) -> dict:
        if step % cfg.sample_every == 0 or step == cfg.steps:
            if not sample_pairs:  # fixed pairs, from their own generator: no effect on training
                g = torch.Generator().manual_seed(cfg.seed + 1)
                sample_pairs.extend((content.random_crop(cfg.crop, g), style.random_crop(cfg.crop, g))
                                    for _ in range(4))
            write_samples(model, sample_pairs, run_dir / "samples" / f"step_{step:07d}.jpg")
        return {"loss": f"{values['total']:.3g}"}

    return run_training(model, run_dir, cfg, history, one_step, state=state, restore=restore,
                        data={"content": data_identity(content), "style": data_identity(style)},
                        precision=precision, generators=(generator,), trained=model.decoder, optimizers=(optimizer,),
                        after_step=after_step, callback=callback, desc="training the decoder", progress=progress)


def write_samples(model: adain_lib.AdaIN, pairs, path: Path) -> Path:
    """One row per (content, style) pair: content | style | result, saved as one image."""
    device = model.encoder.vgg.mean.device
    rows = []
    was_training = model.decoder.training
    model.decoder.eval()
    with torch.no_grad():
        for c, s in pairs:
            c, s = c[None].to(device), s[None].to(device)
            rows.append(torch.cat([c, s, model(c, s)], dim=3))  # (1, 3, H, 3W)
    model.decoder.train(was_training)
    return save_image(torch.cat(rows, dim=2), path)  # (1, 3, 4H, 3W)
