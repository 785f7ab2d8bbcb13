"""Training on several processes: one per GPU (or a share of a CPU), started by torchrun.

    torchrun --standalone --nproc_per_node 4 -m nstlib train-adain --run-dir runs/adain ...

torchrun starts N copies of the command and tells each its place through environment variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). `setup` reads them, joins the process
group (NCCL on CUDA, gloo on the CPU) and gives each process its own GPU (cuda:LOCAL_RANK). Without
torchrun WORLD_SIZE is unset, every function here is a no-op, and training is exactly what it was.
The training skeleton (nstlib.training.run_training) calls these helpers, so every trainer on it
runs under torchrun the same way:

* **Data.** Every process draws the *global* batch, batch_size x N crops, from the same generator
  seeded with the run's seed, and trains on its own slice of it (`global_batch`; rank r takes
  crops r*b .. (r+1)*b - 1), like DistributedSampler, where every rank shuffles with the same seed
  and takes its own indices. The union of the N slices is exactly the batch that one process with
  batch_size x N draws, so a run on N processes with batch b is the one-process run with batch
  b x N (up to float rounding: tests/test_distributed.py). Crops of another rank's slice are drawn
  for their random numbers only; their images are not decoded once their size is known
  (datasets.random_crops).
* **Gradients.** Before each optimizer step the gradients are averaged over the processes
  (`average_gradients`, from an optimizer step pre-hook that `synchronised` installs):
  (1/N) sum_r grad L_r, L_r the mean loss of rank r's slice, which is the gradient of the global
  batch's mean loss. Every process then takes the same Adam step from the same weights, so the
  weights stay identical (checked at every checkpoint: `check_same_weights`).
* **Rank 0 alone** writes checkpoints, samples and the progress bar and runs the user's callback;
  the other ranks' per-rank state (their RNGs, CycleGAN's image pools) is gathered into rank 0's
  checkpoint, and every rank resumes from that one file.

Why an all-reduce before the step and not torch's DistributedDataParallel: DDP averages the same
gradients (it also divides by N) but hooks into the wrapped module's forward pass, so every forward
must go through the wrapper and every parameter it registered must take part in each backward pass.
The course's trainers break both assumptions: AdaIN's losses call `model.decoder` from inside
adain.decoder_losses; StyleBank uses one bank per step and none on auto-encoder steps (DDP needs
find_unused_parameters=True, a graph traversal per step) and must rescale the *averaged* gradient;
CycleGAN calls G, F, D_A, D_B separately, several times per backward pass, with the discriminators
frozen during the generators' step. One all-reduce after backward gives DDP's result with none of
these constraints: a parameter used on some ranks gets (sum of their gradients) / N, zeros from
the others, as with find_unused_parameters; one unused on every rank keeps grad None, so Adam
leaves it alone as in one process. The price is that communication does not overlap the backward
pass: one all-reduce of the trained weights' size per step (AdaIN's decoder: 14 MB), a fraction
of a millisecond over NVLink, a few over PCIe.

BatchNorm (Johnson's original networks) normalises each rank's own slice, as under DDP without
SyncBatchNorm; its running statistics are rank 0's in the checkpoint.
"""
from __future__ import annotations

import os
import signal
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

# rank r > 0 seeds its own generators (CycleGAN's image pools) with seed + r * this, mod 2^63: the
# 64-bit golden-ratio increment (splitmix64) keeps the ranks' seeds far from each other and from the
# seed + small offsets the trainers already use
_RANK_SEED_STEP = 0x9E3779B97F4A7C15


def world_size() -> int:
    """How many processes train together: torchrun's WORLD_SIZE, 1 without torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's place among them, 0 .. world_size() - 1 (torchrun's RANK)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """Its place on this machine (torchrun's LOCAL_RANK): the index of its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True in the process that writes files and shows progress (rank 0; the only one without torchrun)."""
    return rank() == 0


def setup(device: torch.device | str | None = None) -> torch.device:
    """Join torchrun's process group (once; later calls only check) and return the device this
    process trains on: cuda:LOCAL_RANK when `device` is CUDA, else `device` (default cpu). Without
    torchrun (WORLD_SIZE unset or 1) it only returns `device`. Errors, one line each: MPS (no
    collective backend), more processes on this machine than GPUs, and networks on another rank's
    GPU."""
    device = torch.device(device if device is not None else "cpu")
    if world_size() == 1:
        return device
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"several processes train on CUDA (NCCL) or the CPU (gloo), not {device.type}")
    if device.type == "cuda":
        if local_rank() >= torch.cuda.device_count():
            raise ValueError(f"process {local_rank()} of this machine has no GPU of its own: torchrun started more "
                             f"processes here than its {torch.cuda.device_count()} GPUs (--nproc_per_node)")
        if device.index is not None and device.index != local_rank():
            raise ValueError(f"under torchrun rank {rank()} trains on cuda:{local_rank()} (its LOCAL_RANK), not "
                             f"{device}: give 'cuda' (in Python, put the networks on nstlib.distributed.setup('cuda'))")
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)  # from here on, "cuda" means this process's GPU
    if not dist.is_initialized():
        # env:// reads MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE, which torchrun sets
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown() -> None:
    """Leave the process group (the end of a command-line run); a no-op without one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _device() -> torch.device:
    """Where collective tensors live: the process's GPU with NCCL, the CPU with gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def rank_seed(seed: int) -> int:
    """The seed of a generator that each rank keeps for itself (CycleGAN's image pools): `seed` on
    rank 0, so one process is unchanged; another 64-bit seed on each other rank."""
    return (seed + rank() * _RANK_SEED_STEP) % 2**63


def global_batch(batch_size: int) -> tuple[int, slice]:
    """(how many crops every rank draws, which of them it trains on): the global batch of
    batch_size x world_size crops and this rank's slice of batch_size. One process: (batch_size,
    all of them)."""
    r = rank()
    return batch_size * world_size(), slice(r * batch_size, (r + 1) * batch_size)


# ----------------------------------------------------------------------------- gradients

_averaged: "weakref.WeakSet[torch.optim.Optimizer]" = weakref.WeakSet()  # since their last step


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Replace the gradients of `optimizer`'s parameters by their mean over the processes, once
    between two steps (a second call before the step does nothing). A parameter with a gradient on
    some ranks only gets the sum of those over N (the others count as zeros, as in DDP with
    find_unused_parameters); one without a gradient on any rank keeps None, so Adam leaves it as
    one process would. Call it yourself where the averaged gradient is needed before the step
    (StyleBank's rescaling); `synchronised` calls it before every step. No-op in one process."""
    if world_size() == 1 or optimizer in _averaged:
        return
    params = [p for group in optimizer.param_groups for p in group["params"]]
    device = _device()
    # which parameters have a gradient somewhere: every rank must all-reduce the same tensors
    held = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=device)
    dist.all_reduce(held)
    used = [p for p, n in zip(params, held.tolist()) if n > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in used:
        by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():  # one all-reduce per dtype: a flat copy of every gradient
        flat = torch.cat([g.reshape(-1) for g in grads]).to(device)
        dist.all_reduce(flat)
        flat /= world_size()
        offset = 0
        for g in grads:  # copy_ keeps each gradient's own memory format (channels-last under bf16)
            g.copy_(flat[offset: offset + g.numel()].view(g.shape))
            offset += g.numel()
    _averaged.add(optimizer)


@contextmanager
def synchronised(optimizers: Sequence[torch.optim.Optimizer]) -> Iterator[None]:
    """Within the block, every step of these optimizers first averages their gradients over the
    processes (average_gradients, unless the trainer already did). No-op in one process."""
    if world_size() == 1:
        yield
        return
    handles = []
    for opt in optimizers:
        handles.append(opt.register_step_pre_hook(lambda o, args, kwargs: average_gradients(o)))
        handles.append(opt.register_step_post_hook(lambda o, args, kwargs: _averaged.discard(o)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for opt in optimizers:
            _averaged.discard(opt)


# ----------------------------------------------------------------------------- values, weights, state

def mean_values(values: dict[str, float]) -> dict[str, float]:
    """The mean over the processes of each of a step's values (the same keys on every rank): the
    global batch's loss when each value is its slice's mean. One process: `values`."""
    if world_size() == 1:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return dict(zip(values, (t / world_size()).tolist()))


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is True on any of them (a stop that all must agree on)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32, device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_module(module: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (as DDP does when it wraps a module), so that
    ranks whose networks were initialised differently still train one model. No-op in one process."""
    if world_size() == 1:
        return
    device = _device()
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            buf = t.detach().to(device).contiguous()
            dist.broadcast(buf, src=0)
            t.copy_(buf)


def fingerprint(module: nn.Module) -> float:
    """A float64 checksum of a module's parameters: equal weights give equal checksums."""
    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in module.parameters()))


def check_same_weights(module: nn.Module, step: int) -> None:
    """Raise RuntimeError on every rank if the ranks' weights differ (a trainer that did not average
    some gradient, or drew different data on different ranks). No-op in one process."""
    if world_size() == 1:
        return
    mine = torch.tensor([fingerprint(module)], dtype=torch.float64, device=_device())
    every = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(every, mine)
    values = [float(t) for t in every]
    if any(v != values[0] for v in values):
        raise RuntimeError(f"after step {step} the {world_size()} processes hold different weights (checksums "
                           f"{values}): the trainer does not average every gradient or draws different batches")


def to_cpu(obj: Any) -> Any:
    """`obj` with every tensor in it moved to the CPU (before a state crosses processes)."""
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def gather(obj: Any) -> list | None:
    """Every rank's `obj` (tensors moved to the CPU), as a list by rank on rank 0 and None on the
    others. One process: [obj]."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(to_cpu(obj), out, dst=0)
    return out


def barrier() -> None:
    """Wait until every process gets here (after rank 0 wrote a checkpoint). No-op in one process."""
    if world_size() > 1:
        dist.barrier()


@contextmanager
def stop_at_step_end() -> Iterator[dict]:
    """Within the block, a request to stop sets `requested['stop']` instead of raising wherever the
    process is; the training loop then stops after the step, every rank after the same one
    (`any_rank`), and saves a checkpoint.

    * SIGTERM, in one process or several: what `kill`, a batch system or a closing session sends.
      Without this a terminated run loses every step since its last checkpoint.
    * SIGINT under torchrun (it passes Ctrl-C on to every process), so that a step's collectives
      are never left half done; torchrun waits 30 s (--shutdown_timeout) before it kills them. In
      one process Ctrl-C raises KeyboardInterrupt as always (the loop saves then too).
    Signal handlers belong to the main thread: elsewhere the block changes nothing."""
    requested = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum, frame):
        requested["stop"] = True

    signals = [signal.SIGTERM] + ([signal.SIGINT] if world_size() > 1 else [])
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
