"""Resumable training: atomic checkpoints that restore everything a run depends on.

A training run is resumable *exactly* when its checkpoint holds every piece of state that the next
step reads: the model's and the optimizer's state dicts, the step counter, the learning-rate
schedule's position, and every random number generator (Python's, NumPy's, torch's on the CPU and
on each CUDA device, and the data loader's own generator). Then training N steps, stopping, and
resuming for M more gives the same weights as training N + M steps in one go (tests check this
bit for bit on the CPU).

Checkpoints are written atomically (files.atomic_write: beside the target, then renamed), so a crash
or Ctrl-C during the save leaves the previous checkpoint intact. They load with
`torch.load(weights_only=True)`: only tensors, numbers, strings and containers, never code.

The skeleton every trainer runs on (adain_training, stylebank_training, cyclegan_training):

    run_dir = check_run_dir(run_dir)                  # before loading anything: a bad path costs nothing
    precision = Precision(precision, device)          # bf16: autocast + channels-last; fp32: neither
    ...                                               # data, networks, optimizers, history = {...}
    def one_step(step) -> dict: ...                   # one update; returns the step's values
    return run_training(model, run_dir, cfg, history, one_step, state=..., restore=..., data=...,
                        precision=precision, callback=callback, ...)

`run_training` resumes from `run_dir/checkpoint.pt` if there is one (`resume`), runs the steps
(`run_steps`), calls the user's `callback(step, values, model)` after each, checkpoints, and returns
a `TrainRun`. A trainer's own module holds only what differs: its settings dataclass, its data, its
step, and what its checkpoint holds (`state()`) and how that is put back (`restore(state)`).

Under torchrun (nstlib.distributed) the same skeleton trains on N processes. A trainer takes part
by three things: it draws the global batch and trains on its slice (datasets.random_crops with
distributed.global_batch, or UnpairedBatches(shard=...)); it passes its `optimizers`, whose
gradients the skeleton averages over the processes before every step; and it returns what each
process keeps for itself (CycleGAN's image pools) from `rank_state()`, put back by
`restore_rank(state)`. The skeleton does the rest: rank 0 alone checkpoints (gathering every rank's
RNGs and rank state), writes samples, shows progress and runs the callback; every rank resumes
from that checkpoint, which refuses another number of processes; the history records the step's
values averaged over the processes. The rule for the batch and the learning rate: the global batch
is batch_size x N, and a run on N processes is the one-process run with that batch and the same
learning rate.
"""
from __future__ import annotations

import itertools
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from . import distributed, runtime
from .files import atomic_write

CHECKPOINT = "checkpoint.pt"  # a trainer's checkpoint, in its run_dir


def rng_state(*generators: torch.Generator) -> dict:
    """The state of every global RNG, plus that of the given torch generators, as plain tensors,
    numbers and tuples (safe for weights_only loading)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, *generators: torch.Generator) -> None:
    """Restore what `rng_state` captured (the generators in the same order)."""
    random.setstate(_as_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if len(state["generators"]) != len(generators):
        raise ValueError(f"the checkpoint holds {len(state['generators'])} generator states, "
                         f"{len(generators)} generators were given")
    for g, s in zip(generators, state["generators"]):
        g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(x):
    """random.setstate needs tuples; a round trip through some serialisers gives lists."""
    return tuple(_as_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def check_file_target(path: str | os.PathLike, what: str) -> Path:
    """Raise ValueError unless a file can be written at `path` later (a checkpoint, an export): it is
    not a folder, and no file stands where one of its folders would be. Trainers call this before
    the first step, so a bad path does not cost a whole run."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a folder; give a file name (or remove the folder)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise ValueError(f"{what} {str(path)!r}: cannot write in {str(parent)!r} (permission denied)")
            break
    return path


def check_run_dir(run_dir: str | os.PathLike, checkpoint: str = CHECKPOINT) -> Path:
    """A trainer's run directory must be a folder (or not exist yet) and its checkpoint a file."""
    run_dir = Path(run_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--run-dir {str(run_dir)!r} is a file; give a folder (it is created if missing)")
    check_file_target(run_dir / checkpoint, "the checkpoint")
    return run_dir


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write `state` (state dicts, step, RNG states, ...) to `path` atomically and durably
    (files.atomic_write); returns the path."""
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`; a clear error if it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle, zip and EOF errors all mean the same here
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); delete it to "
                         "start afresh") from None


# Settings that do not change the weights a run ends with: the total steps (a resume may extend a
# run), and how often checkpoints and samples are written (samples come from their own generator).
FREE_SETTINGS = ("steps", "checkpoint_every", "sample_every", "keep_every")
KEPT = "kept"  # run_dir/kept/step_NNNNNN.pt: the checkpoints a run keeps (settings keep_every)


def lr_factor(step: int, steps: int) -> float:
    """The learning rate's factor at `step` of a run of `steps`: 1 for the first half, then
    linearly down to 0 at the end (CycleGAN's schedule, the paper's 100 + 100 epochs; StyleBank's
    lr_decay). `steps` is free on resume (FREE_SETTINGS), so resuming with another number of steps
    changes the schedule from there on."""
    half = steps // 2
    return 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(1, steps - half))


def check_same_settings(saved: dict, current: dict, path: Path, free: tuple[str, ...] = FREE_SETTINGS) -> None:
    """A checkpoint resumes only the run it came from: every setting except those in `free` (the
    total number of steps and how often checkpoints and samples are written and kept, by default)
    must agree."""
    differ = {k: (saved.get(k), v) for k, v in current.items() if k not in free and saved.get(k) != v}
    if differ:
        raise ValueError(f"{path} was made with other settings {differ} (saved, now); use another "
                         "run_dir or the same settings")


def data_identity(images) -> list[list[str]]:
    """[name, sha256] of each training image, in order: a registry name with its registry hash, a
    file with its name and the hash of its bytes, a tensor as 'tensor <i>' with the hash of its
    float32 values. `images`: an ImageSet (its items) or a sequence of those. Stored in checkpoints
    so that a resume on other data is refused (`check_same_data`)."""
    import hashlib

    from . import data
    from .download import file_hash

    items = getattr(images, "items", images)
    out = []
    for i, item in enumerate(items):
        if torch.is_tensor(item):
            digest = hashlib.sha256(item.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            out.append([f"tensor {i}", digest.hexdigest()])
        elif isinstance(item, str) and item in data.registry():
            out.append([item, data.asset(item).sha256])
        else:
            out.append([Path(item).name, file_hash(item)])
    return out


def check_same_data(saved: dict | None, current: dict[str, list], path: Path) -> None:
    """Refuse to resume on other data than the checkpoint's, naming what changed. `saved` and
    `current` map a role ('content', 'style', ...) to `data_identity` lists; for a role whose order
    matters (StyleBank's banks: bank i is painting i) a different order is a change too, and it is
    reported by position. A checkpoint written before nstlib recorded its data (no `saved`) cannot
    be checked and is accepted."""
    if saved is None:
        return
    changes = []
    for role, now in current.items():
        before = [tuple(x) for x in saved.get(role, [])]
        now = [tuple(x) for x in now]
        if before == now:
            continue
        if role == "style banks":
            for i in range(max(len(before), len(now))):
                a = before[i] if i < len(before) else None
                b = now[i] if i < len(now) else None
                if a == b:
                    continue
                if a and b and a[0] == b[0]:
                    changes.append(f"bank {i} holds {a[0]} with other bytes")
                else:
                    changes.append(f"bank {i} held {a[0] if a else 'nothing'}, now {b[0] if b else 'nothing'}")
            continue
        names_before, names_now = {n for n, _ in before}, {n for n, _ in now}
        gone, new = sorted(names_before - names_now), sorted(names_now - names_before)
        edited = sorted(n for n, h in now if n in names_before and (n, h) not in before)
        parts = [f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                 for label, names in (("without", gone), ("with new", new), ("with changed files", edited))
                 if names]
        changes.append(f"{role}: " + ("; ".join(parts) if parts else "the same images in another order"))
    if changes:
        raise ValueError(f"{path} was trained on other data ({'; '.join(changes)}); resume with the same "
                         "images, or use another run_dir")


def progress_bar(total: int, done: int, desc: str, enabled: bool = True):
    """A tqdm bar for a training run resumed at step `done`, or None when disabled or finished."""
    if not enabled or done >= total:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="step")


def run_steps(step: int, steps: int, one_step: Callable[[int], dict], save: Callable[[int], Path],
              checkpoint_every: int, desc: str, progress: bool = True,
              after_step: Callable[[int, dict], dict | None] | None = None) -> tuple[int, str, Path]:
    """The loop every trainer shares: from `step` to `steps`, call one_step(step) (the update; it
    returns the step's values), then after_step(new_step, values) (samples, evaluation, the user's
    callback; it may return a dict to show on the progress bar), and save(new_step) every
    `checkpoint_every` steps. Ctrl-C ends the loop; either way a final save(step) is made.
    Returns (steps done, 'finished' or 'interrupted', the checkpoint's path)."""
    bar = progress_bar(steps, step, desc, progress)
    stopped = "finished"
    try:
        while step < steps:
            values = one_step(step)
            step += 1
            shown = after_step(step, values) if after_step is not None else None
            if bar is not None:
                bar.update(1)
                if shown:
                    bar.set_postfix(shown, refresh=False)
            if step % checkpoint_every == 0:
                save(step)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        if bar is not None:
            bar.close()
    return step, stopped, save(step)


# ----------------------------------------------------------------------------- the training skeleton

@dataclass
class TrainRun:
    """What every trainer returns."""
    history: dict[str, list[float]]  # per step: the method's values (see its trainer) and 'seconds'
    step: int  # steps done in total, over every resumption
    stopped: str  # 'finished' or 'interrupted'
    settings: dict = field(default_factory=dict)  # the settings dataclass as a dict, plus 'precision'
    checkpoint: Path | None = None  # the checkpoint written last


class Precision:
    """How a trainer runs its networks (runtime.precision): with 'bf16' under bfloat16 autocast and
    in channels-last memory, with 'fp32' in float32 and the default layout. The losses, backward
    passes and Adam stay float32 either way (a method's losses cast the features they compare with
    `.float()`). A run may resume in the other precision: it is not one of the compared settings."""

    def __init__(self, precision: str | None, device: torch.device | str, method: str | None = None):
        self.device = torch.device(device)
        self.name = runtime.precision(precision, self.device, method)  # method: see runtime.BF16_MEASURED
        self.memory_format = torch.channels_last if self.name == "bf16" else torch.contiguous_format
        self._layouts: list[tuple[nn.Module, torch.memory_format]] = []  # what prepare changed, as it came

    def autocast(self):
        """The context a network's forward pass runs in (a no-op for fp32)."""
        return runtime.autocast(self.device, self.name)

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """A batch (B, 3, H, W) on the device, in the networks' memory format."""
        return images.to(self.device, memory_format=self.memory_format)

    def prepare(self, *networks: nn.Module) -> None:
        """Put the networks' weights in the memory format, in place (the optimizer keeps its
        parameters), remembering the layout each came in for `restore`."""
        for net in networks:
            if not any(net is seen for seen, _ in self._layouts):
                self._layouts.append((net, memory_format_of(net)))
            net.to(memory_format=self.memory_format)

    def restore(self) -> None:
        """Every network `prepare` changed back in the layout it came in. A trainer hands the caller's
        VGG and network back as it found them: fp32 convolutions in another layout add up in another
        order, so a later result's last digits would otherwise depend on what was trained before."""
        for net, layout in reversed(self._layouts):
            net.to(memory_format=layout)
        self._layouts.clear()


def memory_format_of(net: nn.Module) -> torch.memory_format:
    """channels_last if the network's 4-D weights are stored so, else contiguous_format (the default).
    Weights that are both (1x1 kernels, one input channel) say nothing and are skipped."""
    for t in itertools.chain(net.parameters(), net.buffers()):
        if t.dim() == 4:
            last, default = t.is_contiguous(memory_format=torch.channels_last), t.is_contiguous()
            if last != default:
                return torch.channels_last if last else torch.contiguous_format
    return torch.contiguous_format


def resume(path: Path, settings: dict, data: dict[str, list], history: dict[str, list],
           restore: Callable[[dict], None], generators: Sequence[torch.Generator] = (),
           same: dict[str, Any] | None = None, map_location="cpu",
           restore_rank: Callable[[dict], None] | None = None) -> int:
    """Continue the run whose checkpoint is at `path`, if there is one: refuse it if it was made by
    another number of processes, with other `settings` (check_same_settings; `same` holds further
    entries the checkpoint keeps beside them that must agree, like StyleBank's trained banks) or on
    other `data` (check_same_data); then `restore(state)` (the trainer puts back its networks,
    optimizers, ...) and `restore_rank` with this process's own part (the checkpoint itself in one
    process, its entry of state['ranks'] under torchrun), replace the contents of `history` by the
    saved history, and set every RNG: the global ones and `generators`. Returns the number of steps
    done so far (0 when there is no checkpoint)."""
    if not path.is_file():
        return 0
    state = load_checkpoint(path, map_location=map_location)
    check_same_world_size(state.get("world_size", 1), path)
    same = same or {}
    check_same_settings(state["settings"] | {k: state.get(k) for k in same}, settings | same, path)
    check_same_data(state.get("data"), data, path)
    restore(state)
    own = state if distributed.world_size() == 1 else state["ranks"][distributed.rank()]
    if restore_rank is not None:
        restore_rank(own)
    history.clear()
    history.update(state["history"])
    set_rng_state(own["rng"], *generators)
    return state["step"]


def check_same_world_size(saved: int, path: Path) -> None:
    """A checkpoint resumes on the number of processes that wrote it: each rank's slice of the
    global batch, its RNGs and its image pools belong to its rank, and the batch per rank is a
    setting. (Checkpoints written before nstlib trained on several processes count as one.)"""
    now = distributed.world_size()
    if saved != now:
        def processes(n: int) -> str:
            return "1 process" if n == 1 else f"{n} processes"

        how = "without torchrun" if saved == 1 else f"with torchrun --nproc_per_node {saved}"
        raise ValueError(f"{path} was written by a run on {processes(saved)}, this one has {processes(now)}; "
                         f"resume it {how} (each process's slice of the batch, RNGs and pools belong to its "
                         "rank), or use another run_dir")


def loss_step(parts: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, history: dict[str, list[float]],
              step: int) -> dict[str, float]:
    """The update of a trainer with one loss and one optimizer: the step's losses as numbers (a
    non-finite total is an error that names the step), backward of parts['total'], the optimizer's
    step, and each number appended to `history`. Returns the numbers."""
    values = {k: float(v.detach()) for k, v in parts.items()}
    if not math.isfinite(values["total"]):
        raise FloatingPointError(f"the loss became {values['total']} at step {step}; lower the learning rate")
    optimizer.zero_grad(set_to_none=True)
    parts["total"].backward()
    optimizer.step()
    for k, v in values.items():
        history[k].append(v)
    return values


def run_training(model: nn.Module, run_dir: Path, cfg, history: dict[str, list[float]],
                 one_step: Callable[[int], dict[str, float]], *, state: Callable[[], dict],
                 restore: Callable[[dict], None], data: dict[str, list], precision: Precision, desc: str,
                 generators: Sequence[torch.Generator] = (), same: dict[str, Any] | None = None,
                 networks: Sequence[nn.Module] | None = None, trained: nn.Module | None = None,
                 start: Callable[[int], None] | None = None,
                 after_step: Callable[[int, dict[str, float]], dict | None] | None = None,
                 callback: Callable[[int, dict[str, float], nn.Module], None] | None = None,
                 progress: bool = True, optimizers: Sequence[torch.optim.Optimizer] = (),
                 rank_state: Callable[[], dict] | None = None,
                 restore_rank: Callable[[dict], None] | None = None) -> TrainRun:
    """The skeleton every trainer runs on; `cfg` is its settings dataclass (with `steps` and
    `checkpoint_every`). In order:

    1. under torchrun, join the process group (distributed.setup; the networks must be on this
       rank's device); refuse a trainer that passes no `optimizers` there;
    2. `resume` from run_dir/CHECKPOINT if it exists (`settings` = asdict(cfg), `data`, `history`,
       `restore`, `restore_rank`, `generators`, `same`; on `precision.device`); under torchrun,
       every rank then takes rank 0's weights (distributed.broadcast_module);
    3. `start(step)`, if given: untimed work before the first step (CycleGAN scores its untrained
       generator); rank 0 only;
    4. `networks` (default: the model) in the precision's memory format, `trained` (default: the
       model) in train mode;
    5. `run_steps` up to cfg.steps: `one_step(step)` (the update; returns the step's values and
       records them in `history`; the skeleton adds the run's wall-clock time to
       history['seconds']), then `after_step(step, values)` (the trainer's samples, evaluation; may
       return what the progress bar shows), then the user's `callback(step, values, model)` (raise
       KeyboardInterrupt there to stop as Ctrl-C would); a checkpoint of `state()` (plus
       `rank_state()`, the part each process keeps for itself) with the step, history, settings,
       `same`, data, the number of processes and every RNG every cfg.checkpoint_every steps, on
       Ctrl-C, on SIGTERM (after the step in progress: distributed.stop_at_step_end) and at the end;
       each one replaces the last, and those of every cfg.keep_every-th step (if the settings have
       it and it is > 0) are also kept in run_dir/KEPT, so that a run that diverges still has its
       earlier weights;
    6. `trained` back in eval mode; the `TrainRun` (its settings: asdict(cfg), 'precision' and,
       under torchrun, 'processes'); on the way out, also after an error, every network the
       precision prepared (here and in the trainer, e.g. its VGG) back in its own layout
       (Precision.restore).

    Under torchrun (N > 1 processes): each step of `optimizers` first averages their gradients
    over the processes (distributed.synchronised); one_step's values are averaged too, and the
    entries it appended to `history` (history[k][-1] == values[k]) replaced by the means, so the
    history is the global batch's; `start`, `after_step`, `callback` and the progress bar run on
    rank 0 alone; a stop (the callback's KeyboardInterrupt, Ctrl-C passed on by torchrun) takes
    effect on every rank after the same step; rank 0 writes the checkpoint, with every rank's RNGs
    and `rank_state()` in state['ranks'], after checking that all ranks hold the same weights."""
    try:  # whatever happens, the caller's networks come back in the layout they were given
        settings, same = asdict(cfg), same or {}
        path = Path(run_dir) / CHECKPOINT
        distributed.setup(precision.device)
        world, main = distributed.world_size(), distributed.is_main()
        if world > 1 and not optimizers:
            raise ValueError(f"{desc}: this trainer cannot train on several processes (it gives run_training no "
                             "optimizers to synchronise)")
        step = resume(path, settings, data, history, restore, generators, same, map_location=precision.device,
                      restore_rank=restore_rank)
        distributed.broadcast_module(model)

        keep_every = getattr(cfg, "keep_every", 0)

        def keep(step: int) -> None:
            if keep_every and step % keep_every == 0:  # a hard link: the next checkpoint is a new file (atomic_write)
                kept = path.parent / KEPT / f"step_{step:06d}.pt"
                kept.parent.mkdir(exist_ok=True)
                kept.unlink(missing_ok=True)
                try:
                    os.link(path, kept)
                except OSError:  # a file system without hard links (a mounted Google Drive): copy
                    shutil.copyfile(path, kept)

        def save(step: int) -> Path:
            own = {"rng": rng_state(*generators), **(rank_state() if rank_state is not None else {})}
            if world == 1:
                save_checkpoint(path, {**state(), **own, "step": step, "history": history, "settings": settings,
                                       **same, "data": data, "world_size": 1})
                keep(step)
                return path
            distributed.check_same_weights(model, step)
            ranks = distributed.gather(own)
            if main:
                save_checkpoint(path, {**state(), "rng": ranks[0]["rng"], "ranks": ranks, "step": step,
                                       "history": history, "settings": settings, **same, "data": data,
                                       "world_size": world})
                keep(step)
            distributed.barrier()  # no rank goes on (or exits) before the checkpoint is on disk
            return path

        if start is not None and main:
            start(step)
        precision.prepare(*(networks if networks is not None else [model]))
        trained = trained if trained is not None else model
        began = time.perf_counter() - (history["seconds"][-1] if history["seconds"] else 0.0)

        def timed_step(step: int) -> dict[str, float]:
            values = one_step(step)
            if world > 1:
                means = distributed.mean_values(values)
                for k, v in values.items():  # the entries one_step appended: the global batch's values
                    if history.get(k) and history[k][-1] == v:
                        history[k][-1] = means[k]
                values = means
            history["seconds"].append(time.perf_counter() - began)
            return values

        def after(step: int, values: dict[str, float]) -> dict | None:
            shown = after_step(step, values) if after_step is not None else None
            if callback is not None:
                callback(step, values, model)
            if requested["stop"]:  # SIGTERM: stop after this whole step, and save (run_steps)
                raise KeyboardInterrupt
            return shown

        def after_on_rank_0(step: int, values: dict[str, float]) -> dict | None:
            shown, stop = None, requested["stop"]
            if main:
                try:
                    shown = after(step, values)
                except KeyboardInterrupt:
                    stop = True
            if distributed.any_rank(stop):  # every rank stops after the same step, so all can save
                raise KeyboardInterrupt
            return shown

        trained.train()
        with distributed.synchronised(optimizers), distributed.stop_at_step_end() as requested:
            step, stopped, saved = run_steps(step, cfg.steps, timed_step, save, cfg.checkpoint_every, desc,
                                             progress and main, after if world == 1 else after_on_rank_0)
        trained.eval()
        # an exported model's record says how it was trained: batch_size is per process
        processes = {"processes": world} if world > 1 else {}
        return TrainRun(history=history, step=step, stopped=stopped,
                        settings={**settings, "precision": precision.name, **processes}, checkpoint=saved)
    finally:
        precision.restore()


def training_summary(run, content: Sequence, style: Sequence, device,
                     curves: Sequence[str] = ("content", "style", "total"), points: int = 200) -> dict:
    """What to store with an exported model so a notebook can say honestly how it was made: the
    run's settings, the images (names or paths), steps, seconds, device, and the loss `curves`
    averaged over windows to at most `points` points. `run` is a trainer's result (history,
    step, settings). NaN entries (a loss a step did not compute, e.g. StyleBank's reconstruction
    on stylising steps) are left out of each window's mean."""
    steps = len(run.history["seconds"])
    window = max(1, math.ceil(steps / points))

    def window_means(values: list[float]) -> list[float]:
        out = []
        for i in range(0, steps, window):
            kept = [v for v in values[i:i + window] if not math.isnan(v)]
            out.append(sum(kept) / len(kept) if kept else math.nan)
        return out

    return {"settings": run.settings, "steps": run.step, "seconds": run.history["seconds"][-1] if steps else 0.0,
            "content": [str(c) for c in content], "style": [str(s) for s in style], "device": str(device),
            "torch": str(torch.__version__), "curve_window": window,
            "curves": {k: window_means(run.history[k]) for k in curves}}
