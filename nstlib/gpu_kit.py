"""The GPU job kit: pack a training run here, run it on a lent GPU, ship what comes back.

About one developer session in five is lent a GPU (an H200) for fifteen minutes in all, through a
tool that copies the working tree and a few git-ignored folders (64 MiB together) to a machine with
no internet and no `../shared`. Only prepared work fits in that, so the kit splits a run in two:

    python -m nstlib kit-pack --kit .device                 # here: everything a run reads, < 48 MiB
    python -m nstlib kit-run --kit .device --out "$OUT"      # there: train each job for its minutes

`kit-pack` writes into the kit folder: VGG-16's Caffe weights truncated to the deepest layer the jobs
use, in float16 (relu4_1 for AdaIN: 5.8 MB instead of 59), each job's training images resized so
that their shorter side is at most the job's load size (JPEG q85; files already small enough are
copied byte for byte), and `kit.json`: the jobs, where each image came from (registry names and
paths relative to $NSTLIB_DATASETS_DIR, never a machine path), and every file's sha256.

`kit-run` checks every file against `kit.json`, then trains the jobs one after another, each until
its time budget is spent, under bfloat16 autocast and channels-last on CUDA (runtime.autocast),
with all images decoded once and kept on the GPU (ImageSet.preload). For each job it writes to
`--out` the exported fp16 model with its training record (settings, images, steps, seconds, loss
curves, the GPU's name and the command), the last sample grid, and it times inference; then
`summary.json` and `log.txt`. At most 8 files come back from the GPU machine, so a job writes
three. The team's instructions for the call itself are in docs/gpu.md.

Jobs (JOBS): `adain`, the decoder of notebook 05 (Huang & Belongie 2017) on BSDS500 photos and
WikiArt + Monet paintings; `cyclegan`, horse2zebra with the paper's networks (notebook 07);
`johnson`, one CIN network for four paintings (Dumoulin et al. 2017, notebook 08). Pack them
separately. A StyleBank job would follow the same pattern: a job names its sources and settings, a
runner trains it with the method's `<method>_training` loop.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import data, runtime
from .download import file_hash
from .images import ImageError, load_image, to_pil
from .registry import DATASETS_ENV

KIT_FILE = "kit.json"
KIT_FORMAT = 1
MAX_KIT_MIB = 48  # the device tool carries 64 MiB with the working tree (about 14 MB)
JPEG_QUALITY = 85


@dataclass
class Job:
    """One training run of the kit: `method` names its runner, `minutes` its time budget on the
    GPU, `settings` the trainer's settings (`steps` caps the run: tests use a few), `model` the
    network's constructor arguments, `sources` its images by role (AdaIN: content and style;
    CycleGAN: A, B and held-out samples) as files, registry names, 'registry:<kind>', or training
    sets as 'datasets:<name>[/<folder>]' or 'datasets:<path under $NSTLIB_DATASETS_DIR>' (resolved and
    verified by nstlib.training_sets), and `sizes` the shorter side each role is loaded at (smaller
    images are upscaled when loaded, not when packed)."""
    name: str
    method: str
    minutes: float
    settings: dict
    sources: dict[str, list[str]]
    sizes: dict[str, int]
    model: dict = field(default_factory=dict)
    precision: str = "bf16"
    fps_size: int = 512  # AdaIN: inference is timed at this size after training
    notes: list[str] = field(default_factory=list)


# The paper trains on MS-COCO photos and WikiArt paintings loaded with their shorter side at 512 px,
# cropped to 256. The offline sets are smaller than that: BSDS500 photos are 481x321, WikiArt 224 and
# Monet 256 px square. So content is loaded at 320 (a 256 crop covers most of the shorter side), style
# at 256 (the WikiArt paintings upscaled from 224): a crop sees most of a painting, not a quarter.
# Batch 32 and lr 2e-4 (the paper: 8 and 1e-4): an H200 is barely loaded by 8 crops of 256 px, a
# minute-limited run gains more from 4x the images per step than from more steps, and the larger
# batch takes the larger step (square-root rule); the paper's decay 5e-5.
#
# CycleGAN (Zhu et al. 2017, Sec. 4 and 7.1): the ResNet generator with 9 blocks at 256 px, 70x70
# PatchGANs, LSGAN, lambda 10, identity 0.5, pool 50, Adam 2e-4 with beta1 0.5, constant then linearly
# decayed to 0 (train_translation), images loaded at 286 and cropped to 256 with flips. Batch 4 where
# the paper uses 1 (instance norm is per image, so batches do not mix; the GPU is otherwise idle).
# The run's length is set from its measured speed so the decay ends with the budget.
JOBS = {
    "adain": Job(
        name="adain", method="adain", minutes=6.5,
        settings=dict(batch_size=32, crop=256, lr=2e-4, lr_decay=5e-5, checkpoint_every=2000,
                      sample_every=1000, steps=1_000_000),
        sources={"content": ["datasets:bsds500/train", "datasets:bsds500/val", "registry:content"],
                 "style": ["datasets:wikiart", "datasets:monet", "registry:style"]},
        sizes={"content": 320, "style": 256},
        notes=["BSDS500 test photos and the registry images in datasets.HELD_OUT are never trained on"]),
    "cyclegan": Job(
        name="cyclegan", method="cyclegan", minutes=6.5,
        settings=dict(batch_size=4, crop=256, lr=2e-4, checkpoint_every=2000, sample_every=1000),
        sources={"A": ["datasets:horse2zebra/trainA"], "B": ["datasets:horse2zebra/trainB"],
                 "samples": ["datasets:horse2zebra/testA"]},
        sizes={"A": 286, "B": 286, "samples": 256},
        model=dict(blocks=9, width=64, norm="instance"),
        notes=["horse2zebra testA/testB are never trained on; the sample grid shows testA horses"]),
    # Johnson et al. 2016 / Dumoulin et al. 2017: one CIN network for the course's four paintings, each
    # image of a batch with its own style (johnson_training), fast-neural-style's losses and weights,
    # Adam 1e-3. Photos loaded at 256 (the paper's 256 x 256 COCO), batch 16 (the paper: 4; the GPU
    # is otherwise idle); styles at 256 px for their Gram targets.
    "johnson": Job(
        name="johnson", method="johnson", minutes=6.5,
        settings=dict(batch_size=16, crop=256, lr=1e-3, checkpoint_every=2000, sample_every=1000, steps=1_000_000),
        sources={"content": ["datasets:bsds500/train", "datasets:bsds500/val", "registry:content"],
                 "style": ["la_muse", "the_scream", "shipwreck", "starry_night"]},
        sizes={"content": 256, "style": 256},
        notes=["BSDS500 test photos and the registry images in datasets.HELD_OUT are never trained on"]),
}
# the VGG a method's losses need (None: none); one VGG to the deepest of them is packed
DEEPEST_LAYER = {"adain": "relu4_1", "cyclegan": None, "johnson": "relu4_3"}


# ----------------------------------------------------------------------------- packing (here)

def _sources(spec: Sequence[str], training: bool = True) -> list[tuple[str, Path]]:
    """(label, path) for each image a job's source list names. Labels are what the training record
    stores: registry names, or paths relative to the datasets folder, never a machine path. With
    `training`, a training set's held-out folders are refused (samples shown, not trained on, may
    come from them)."""
    from .datasets import training_images

    out: list[tuple[str, Path]] = []
    for source in spec:
        if source.startswith("registry:"):  # the registry's training images of a kind
            out += [(name, data.get(name)) for name in training_images(source.split(":", 1)[1])]
        elif source.startswith("datasets:"):  # a training set: 'datasets:bsds500/train' or its path
            from . import training_sets

            if not os.environ.get(DATASETS_ENV):  # the kit is packed from the developers' copy, never downloaded
                raise ValueError(f"{source}: set {DATASETS_ENV} to a folder laid out like the course's datasets "
                                 "(photos/bsds500, paintings/wikiart, ...)")
            parsed = training_sets.parse_spec(source)
            if parsed is None:
                raise ValueError(f"{source}: not a training set of data/training_sets.tsv (known: "
                                 f"{', '.join(n for n, e in training_sets.training_sets().items() if e.path)})")
            entry = training_sets.training_set(parsed[0])
            files = training_sets.dataset_files(*parsed, training=training, download=False)  # verified
            root = training_sets.dataset(parsed[0], download=False)
            out += [(f"{entry.path}/{p.relative_to(root).as_posix()}", p) for p in files]
        elif source in data.registry():
            out.append((source, data.get(source)))
        else:
            path = Path(source).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{source}: neither a registry name, 'registry:<kind>', "
                                        "'datasets:<set>[/<folder>]' nor an image file")
            out.append((path.name, path))
    if not out:
        raise ValueError(f"no images in {list(spec)}")
    return out


def _pack_image(source: Path, target: Path, size: int) -> None:
    """Copy a JPEG whose shorter side is at most `size` as it is; otherwise write it resized to
    shorter side `size` (never upscaled here: the trainer upscales when it loads) as JPEG (JPEG_QUALITY)."""
    from PIL import Image

    with Image.open(source) as im:
        small = min(im.size) <= size  # the shorter side does not depend on the EXIF orientation
        small_jpeg = small and im.format == "JPEG" and im.mode == "RGB"
    if small_jpeg:
        shutil.copyfile(source, target)
        return
    to_pil(load_image(source, size=None if small else size)).save(target, quality=JPEG_QUALITY)  # decoded once


def pack(kit_dir: str | Path, jobs: Sequence[Job] | None = None, max_mib: float = MAX_KIT_MIB,
         progress: bool = True) -> dict:
    """Write the kit for `jobs` (default: every job in JOBS) into `kit_dir`, replacing an earlier
    kit there; returns kit.json's contents. Refuses a kit larger than `max_mib`."""
    from tqdm.auto import tqdm

    from . import vgg as vgg_arch
    from .features import VGGFeatures

    jobs = list(jobs) if jobs is not None else list(JOBS.values())
    kit_dir = Path(kit_dir)
    if kit_dir.exists() and any(kit_dir.iterdir()) and not (kit_dir / KIT_FILE).is_file():
        raise FileExistsError(f"{kit_dir} is not empty and holds no {KIT_FILE}: not overwriting it")
    if kit_dir.exists():
        shutil.rmtree(kit_dir)
    kit_dir.mkdir(parents=True)

    unknown = sorted({j.method for j in jobs} - set(RUNNERS))
    if unknown:
        raise ValueError(f"no runner for methods {unknown}; known: {sorted(RUNNERS)}")
    manifest = {"format": KIT_FORMAT, "vgg": None, "jobs": [], "files": {}}
    layers = [DEEPEST_LAYER[j.method] for j in jobs if DEEPEST_LAYER[j.method] is not None]
    if layers:  # only the layers the losses use: VGG-16 to relu4_1 is 5.8 MB in fp16, all of it 29
        up_to = max(layers, key=vgg_arch.layer_names("vgg16").index)
        vgg = VGGFeatures("vgg16", "caffe", up_to=up_to)
        vgg_file = f"vgg16_caffe_to_{up_to}_fp16.pth"
        torch.save({f"features.{k}": v.to(torch.float16) for k, v in vgg.features.state_dict().items()},
                   kit_dir / vgg_file)
        manifest["vgg"] = {"file": vgg_file, "arch": "vgg16", "weights": "caffe", "up_to": up_to}
    for job in jobs:
        entry = asdict(job)
        entry["images"] = {}
        for role, spec in job.sources.items():
            folder = f"{job.name}/{role}"
            (kit_dir / folder).mkdir(parents=True)
            labels = []
            for i, (label, path) in enumerate(tqdm(_sources(spec, training=role != "samples"),
                                                   desc=f"packing {job.name} {role}",
                                                   disable=not progress)):
                try:
                    _pack_image(path, kit_dir / folder / f"{i:05d}.jpg", job.sizes[role])
                except (ImageError, OSError) as e:
                    raise ImageError(f"{label}: cannot be packed ({e})") from None
                labels.append(label)
            entry["images"][role] = {"folder": folder, "labels": labels}
        manifest["jobs"].append(entry)
    for path in sorted(p for p in kit_dir.rglob("*") if p.is_file()):
        manifest["files"][path.relative_to(kit_dir).as_posix()] = file_hash(path)
    (kit_dir / KIT_FILE).write_text(json.dumps(manifest, indent=1))
    mib = kit_size(kit_dir) / 2**20
    if mib > max_mib:
        raise ValueError(f"the kit in {kit_dir} is {mib:.1f} MiB, more than {max_mib} MiB: pack fewer jobs or images")
    manifest["mib"] = round(mib, 2)
    return manifest


def kit_size(kit_dir: str | Path) -> int:
    """Bytes of every file in the kit."""
    return sum(p.stat().st_size for p in Path(kit_dir).rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- running (there)

def verify(kit_dir: str | Path) -> dict:
    """kit.json's contents, after checking every file it lists against its sha256; a missing or
    changed file is named in the error."""
    kit_dir = Path(kit_dir)
    if not (kit_dir / KIT_FILE).is_file():
        raise FileNotFoundError(f"no {KIT_FILE} in {kit_dir}: run `python -m nstlib kit-pack --kit {kit_dir}` first")
    manifest = json.loads((kit_dir / KIT_FILE).read_text())
    if manifest.get("format") != KIT_FORMAT:
        raise ValueError(f"{kit_dir / KIT_FILE} has format {manifest.get('format')}, this nstlib reads {KIT_FORMAT}")
    for name, digest in manifest["files"].items():
        path = kit_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is listed in {KIT_FILE} but missing")
        if file_hash(path) != digest:
            raise ValueError(f"{path} does not match its sha256 in {KIT_FILE}: the kit is damaged, pack it again")
    return manifest


def kit_vgg(kit_dir: str | Path, manifest: dict, device: torch.device):
    """The kit's truncated VGG as a frozen VGGFeatures on `device`."""
    from .features import VGGFeatures

    v = manifest["vgg"]
    return VGGFeatures(v["arch"], Path(kit_dir) / v["file"], up_to=v["up_to"], convention="caffe").to(device)


def machine(device: torch.device) -> str:
    """The device in words, for a training record: the GPU's name, or the CPU's core count."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {os.cpu_count()} cores"


class Log:
    """Lines to stdout (flushed: the GPU machine shows nothing until exit otherwise) and to a file."""

    def __init__(self, path: Path | None):
        self.path = path

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


def run(kit_dir: str | Path, out_dir: str | Path, only: Sequence[str] | None = None,
        device: str | None = None, minutes: float | None = None, init: str | Path | None = None) -> dict:
    """Train the kit's jobs (or those named in `only`) on `device` (default: the best available),
    each for its minutes (or `minutes`), writing models, samples, `summary.json` and `log.txt` to
    `out_dir`; returns the summary. `init`: an exported model to start from instead of fresh
    weights (a second GPU session continues the first's model; the optimizer starts afresh)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = Log(out_dir / "log.txt")
    dev = runtime.get_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels
    manifest = verify(kit_dir)
    log(f"kit verified: {len(manifest['files'])} files, {kit_size(kit_dir) / 2**20:.1f} MiB | {runtime.describe(dev)}")
    jobs = [j for j in manifest["jobs"] if only is None or j["name"] in only]
    if only is not None and len(jobs) != len(set(only)):
        raise ValueError(f"jobs {sorted(set(only) - {j['name'] for j in jobs})} are not in the kit")
    vgg = kit_vgg(kit_dir, manifest, dev) if manifest["vgg"] else None
    summary = {"machine": machine(dev), "torch": torch.__version__, "jobs": {}}
    for job in jobs:
        budget = (job["minutes"] if minutes is None else minutes) * 60
        log(f"--- {job['name']}: {job['method']} for at most {budget / 60:.1f} min")
        summary["jobs"][job["name"]] = RUNNERS[job["method"]](Path(kit_dir), job, vgg, dev, out_dir, budget, log, init)
    summary["parts"] = split_large_files(out_dir)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    log(json.dumps(summary, indent=1))
    return summary


# The device tool returns files of at most 16 MiB: a CycleGAN generator pair in fp16 is ~45 MB.
MAX_RETURNED_BYTES = 15 * 2**20
PART = ".part"


def split_large_files(folder: str | Path, limit: int = MAX_RETURNED_BYTES) -> dict[str, dict]:
    """Split every file in `folder` larger than `limit` into `<name>.part00`, `.part01`, ... (the
    original is removed) so that it can come back from the GPU machine; returns {name: {"sha256",
    "bytes", "parts"}} for `join_parts`."""
    split = {}
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and p.stat().st_size > limit):
        digest, size, parts = file_hash(path), path.stat().st_size, []
        with open(path, "rb") as f:
            for i, chunk in enumerate(iter(lambda: f.read(limit), b"")):
                part = path.with_name(f"{path.name}{PART}{i:02d}")
                part.write_bytes(chunk)
                parts.append(part.name)
        path.unlink()
        split[path.name] = {"sha256": digest, "bytes": size, "parts": parts}
    return split


def join_parts(folder: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Reassemble the files `split_large_files` split, as listed in `folder`/summary.json, into
    `out_dir` (default `folder`; the parts may lie in a read-only folder); each checked against its
    sha256. Returns the joined files."""
    folder = Path(folder)
    out_dir = Path(out_dir) if out_dir is not None else folder
    summary = json.loads((folder / "summary.json").read_text())
    joined = []
    for name, entry in summary.get("parts", {}).items():
        target = out_dir / name
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as f:
            for part in entry["parts"]:
                if not (folder / part).is_file():
                    tmp.unlink()
                    raise FileNotFoundError(f"{folder / part} is missing: cannot rebuild {name}")
                f.write((folder / part).read_bytes())
        if file_hash(tmp) != entry["sha256"]:
            tmp.unlink()
            raise ValueError(f"{name} rebuilt from {len(entry['parts'])} parts does not match its sha256 in summary.json")
        os.replace(tmp, target)
        joined.append(target)
    return joined


def _deadline_callback(budget_s: float, log: Callable[[str], None], every: int = 200):
    """A trainer callback that logs every `every` steps and ends the run (as Ctrl-C would: the
    trainer saves its checkpoint and returns) once `budget_s` seconds have passed."""
    start = time.perf_counter()

    def callback(step: int, values: dict, model) -> None:
        elapsed = time.perf_counter() - start
        if step % every == 0:
            shown = " ".join(f"{k} {v:.4g}" for k, v in values.items())
            log(f"step {step} | {shown} | {step / elapsed:.2f} steps/s")
        if elapsed > budget_s:
            raise KeyboardInterrupt

    return callback


def _job_result(trained, record: dict, path: Path, digest: str, losses) -> dict:
    """What summary.json says of a finished job: steps, time, speed, the last 50 steps' mean losses
    and the exported file."""
    return {"steps": trained.step, "seconds": round(record["seconds"], 1),
            "steps_per_s": round(trained.step / max(record["seconds"], 1e-9), 2),
            "final_loss": {k: round(sum(v[-50:]) / len(v[-50:]), 4) for k, v in trained.history.items()
                           if k in losses and v},
            "file": path.name, "sha256": digest, "bytes": path.stat().st_size}



def _run_adain(kit_dir: Path, job: dict, vgg, device: torch.device, out_dir: Path, budget_s: float, log,
               init: Path | None) -> dict:
    from . import adain
    from .adain_training import train_decoder, write_samples
    from .training import training_summary
    from .datasets import ImageSet

    content, style = (ImageSet(kit_dir / job["images"][role]["folder"], job["sizes"][role]).preload(device)
                      for role in ("content", "style"))
    log(f"{len(content)} content and {len(style)} style images on {device}")
    torch.manual_seed(job["settings"].get("seed", 0))  # the decoder's initial weights
    model = adain.AdaIN(encoder=adain.Encoder(vgg=vgg, scales=adain.FEATURE_SCALES[("vgg16", "caffe")])).to(device)
    if init is not None:
        adain.load_decoder(model, init)
        log(f"starting from {Path(init).name} (sha256 {file_hash(init)[:12]}...)")
    with tempfile.TemporaryDirectory() as run_dir:  # the checkpoint (decoder + Adam) stays on that machine
        trained = train_decoder(model, content, style, run_dir, progress=False, precision=job["precision"],
                                callback=_deadline_callback(budget_s, log), **job["settings"])
    g = torch.Generator().manual_seed(job["settings"].get("seed", 0) + 1)  # the trainer's own sample pairs
    crop = job["settings"]["crop"]
    write_samples(model,  # the trainer hands it back in the default layout
                  [(content.random_crop(crop, g), style.random_crop(crop, g)) for _ in range(4)],
                  out_dir / f"{job['name']}_samples.jpg")
    # load_size is TrainSettings' default, unused with ready ImageSets: record the sizes the sets used
    trained.settings.update(steps=trained.step, load_size=job["sizes"]["content"], content_load_size=job["sizes"]["content"],
                            style_load_size=job["sizes"]["style"])
    record = training_summary(trained, job["images"]["content"]["labels"], job["images"]["style"]["labels"], device)
    record.update(machine=machine(device), command="python -m nstlib kit-run (nstlib.gpu_kit, job "
                  f"{job['name']!r}, {budget_s / 60:g} min)", stopped=trained.stopped, notes=job["notes"])
    if init is not None:  # this run continued an earlier model: keep that model's own record
        from .models import training_record

        record.update(command=record["command"] + f" --init {Path(init).as_posix()}",
                      init={"file": Path(init).name, "sha256": file_hash(init), "record": training_record(init)})
    path = out_dir / f"{job['name']}_decoder_vgg16.pth"
    digest = adain.export_decoder(model, path, record)
    result = _job_result(trained, record, path, digest, ("content", "style", "total"))
    try:  # the model is safe on disk: a failed measurement must not cost the run
        result["fps"] = {"size": job["fps_size"], **adain_fps(model, device, job["fps_size"])}
    except RuntimeError as e:
        result["fps"] = {"error": f"{type(e).__name__}: {e}"}
    log(json.dumps(result))
    return result


def adain_fps(model, device: torch.device, size: int = 512, repeats: int = 20) -> dict:
    """Stylised images per second for one content and one style image of size x size px, in fp32
    and in bf16 (autocast, channels-last)."""
    g = torch.Generator().manual_seed(0)
    c, s = (torch.rand(1, 3, size, size, generator=g).to(device) for _ in range(2))
    out = {}
    for precision in ("fp32", "bf16"):
        fmt = torch.channels_last if precision == "bf16" else torch.contiguous_format
        model.to(memory_format=fmt)
        with torch.no_grad(), runtime.autocast(device, precision):
            for _ in range(3):
                model(c, s)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(repeats):
                model(c, s)
            if device.type == "cuda":
                torch.cuda.synchronize()
        out[precision] = round(repeats / (time.perf_counter() - t0), 1)
    model.to(memory_format=torch.contiguous_format)
    return out


def planned_steps(seconds: Sequence[float], budget_s: float, margin: float = 0.97) -> tuple[int, float]:
    """(steps, seconds per step) for a run whose first len(seconds) steps took `seconds` (cumulative):
    those steps plus as many as fit in `margin` of the budget left, at the speed measured after the
    first 10 (cuDNN's first choices); never fewer than already done. A calibration that the deadline
    stopped before its 12th step (a slow or busy machine) is timed over all its steps."""
    if not seconds:
        raise ValueError("planned_steps needs the time of at least one step")
    warm = 10 if len(seconds) > 11 else 0
    per_step = (seconds[-1] - seconds[warm]) / (len(seconds) - 1 - warm) if len(seconds) > 1 else seconds[0]
    per_step = max(per_step, 1e-9)
    return len(seconds) + max(0, int(margin * (budget_s - seconds[-1]) / per_step)), per_step


def _run_cyclegan(kit_dir: Path, job: dict, vgg, device: torch.device, out_dir: Path, budget_s: float, log,
                  init: Path | None) -> dict:
    from .training import training_summary
    from .cyclegan import CycleGAN, export_generators, load_generators
    from .cyclegan_training import GAN_CURVES, train_translation, write_samples
    from .translation_task import FolderTask

    settings = dict(job["settings"])
    crop, seed = settings.pop("crop"), settings.get("seed", 0)
    folder = {role: kit_dir / job["images"][role]["folder"] for role in job["images"]}
    task = FolderTask([folder["A"]], [folder["B"]], crop=crop, load_size=job["sizes"]["A"],
                      sample_sources=[folder["samples"]], n_samples=6, seed=seed)
    task.a.preload(device), task.b.preload(device)
    log(f"{len(task.a)} images in A and {len(task.b)} in B on {device}")
    torch.manual_seed(seed)  # the networks' initial weights
    model = CycleGAN(**job["model"]).to(device)
    if init is not None:  # the generators continue; the discriminators start afresh
        G, F_ = load_generators(init)
        model.G.load_state_dict(G.state_dict()), model.F.load_state_dict(F_.state_dict())
        log(f"starting from {Path(init).name} (sha256 {file_hash(init)[:12]}...)")
    deadline = _deadline_callback(budget_s, log)
    with tempfile.TemporaryDirectory() as run_dir:
        if "steps" not in settings:
            # the lr decays to 0 at the last step, so the run's length must be known: measure the
            # speed on a first stretch (stopped as Ctrl-C would), then resume with the steps that fit
            calibration = 60

            def stop_after_calibration(step, values, model):
                deadline(step, values, model)
                if step == calibration:
                    raise KeyboardInterrupt

            first = train_translation(model, task, run_dir, progress=False, precision=job["precision"],
                                      callback=stop_after_calibration, **settings, steps=10**9)
            settings["steps"], per_step = planned_steps(first.history["seconds"], budget_s)
            log(f"{per_step * 1000:.1f} ms per step: training {settings['steps']} steps")
        trained = train_translation(model, task, run_dir, progress=False, precision=job["precision"],
                                    callback=deadline, **settings)
    write_samples(model.G, task, out_dir / f"{job['name']}_samples.jpg")
    trained.settings.update(crop=crop, load_size=job["sizes"]["A"])
    record = training_summary(trained, job["images"]["A"]["labels"], job["images"]["B"]["labels"], device,
                              curves=GAN_CURVES)
    record.update(machine=machine(device), command="python -m nstlib kit-run (nstlib.gpu_kit, job "
                  f"{job['name']!r}, {budget_s / 60:g} min)" + (f" --init {Path(init).as_posix()}" if init else ""),
                  stopped=trained.stopped, notes=job["notes"], samples=job["images"]["samples"]["labels"])
    path = out_dir / f"{job['name']}_generators.pth"
    digest = export_generators(model.G, model.F, path, domains=("A", "B"), settings=job["model"], training=record)
    result = _job_result(trained, record, path, digest, GAN_CURVES)
    log(json.dumps(result))
    return result


def _run_johnson(kit_dir: Path, job: dict, vgg, device: torch.device, out_dir: Path, budget_s: float, log,
                 init: Path | None) -> dict:
    from . import johnson
    from .datasets import ImageSet
    from .images import load_image
    from .johnson_training import train_transform_net, write_samples
    from .training import training_summary

    content = ImageSet(kit_dir / job["images"]["content"]["folder"], job["sizes"]["content"]).preload(device)
    style_files = sorted((kit_dir / job["images"]["style"]["folder"]).glob("*.jpg"))
    styles = [load_image(f).to(device) for f in style_files]  # packed at their size already
    names = job["images"]["style"]["labels"]
    log(f"{len(content)} content images and the styles {', '.join(names)} on {device}")
    torch.manual_seed(job["settings"].get("seed", 0))  # the network's initial weights
    model = johnson.TransformNet(n_styles=len(styles), style_names=names, **job["model"]).to(device)
    if init is not None:
        model.load_state_dict(johnson.load_transform_net(init).state_dict())
        log(f"starting from {Path(init).name} (sha256 {file_hash(init)[:12]}...)")
    with tempfile.TemporaryDirectory() as run_dir:
        trained = train_transform_net(model, content, styles, vgg, run_dir, progress=False, precision=job["precision"],
                                      callback=_deadline_callback(budget_s, log), **job["settings"])
    g = torch.Generator().manual_seed(job["settings"].get("seed", 0) + 1)  # the trainer's own sample crops
    write_samples(model,  # the trainer hands it back in the default layout
                  [content.random_crop(job["settings"]["crop"], g) for _ in range(4)],
                  out_dir / f"{job['name']}_samples.jpg")
    trained.settings.update(steps=trained.step, load_size=job["sizes"]["content"])
    record = training_summary(trained, job["images"]["content"]["labels"], names, device,
                              curves=("content", "style", "tv", "total"))
    record.update(machine=machine(device), command="python -m nstlib kit-run (nstlib.gpu_kit, job "
                  f"{job['name']!r}, {budget_s / 60:g} min)" + (f" --init {Path(init).as_posix()}" if init else ""),
                  stopped=trained.stopped, notes=job["notes"])
    path = out_dir / f"{job['name']}_cin_{len(styles)}styles.pth"
    digest = johnson.export_transform_net(model, path, record)
    result = _job_result(trained, record, path, digest, ("content", "style", "total"))
    log(json.dumps(result))
    return result


RUNNERS = {"adain": _run_adain, "cyclegan": _run_cyclegan, "johnson": _run_johnson}
