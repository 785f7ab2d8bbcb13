"""Command line.

    python -m nstlib info                       versions, device, quick mode, weights and images found
    python -m nstlib stylize CONTENT STYLE [STYLE ...] -o out.png [--max-size --steps --style-weight
                             --blend --preserve-colors --init ...]
                                                Gatys style transfer (nstlib.stylize)
    python -m nstlib train-adain --run-dir runs/adain [--content SRC ...] [--style SRC ...] [--steps ...]
                             [--export decoder.pth]
                                                train AdaIN's decoder; resumes from the run's checkpoint
    python -m nstlib train-johnson --run-dir runs/scream --style STYLE [STYLE ...] [--content SRC ...]
                             [--norm instance|batch] [--precision bf16] [--steps ...] [--export net.pth]
                                                train Johnson's transform network (several STYLEs: one
                                                CIN network); resumes likewise
    python -m nstlib train-cyclegan --run-dir runs/h2z [--dataset horse2zebra] [--crop 256 --load-size 286]
                             [--blocks 9 --width 64] [--steps ...] [--export generators.pth]
                                                train CycleGAN on a two-domain set; resumes likewise
    python -m nstlib video IN OUT --style NAME [--method johnson|adain|stylebank] [--model FILE]
                             [--max-size PX] [--blend B] [--precision bf16]
                                                stylise a video frame by frame with a feed-forward
                                                network; prints the flicker measure
    python -m nstlib datasets [--verify] [--download] [NAME ...]
                                                the training sets with their local state; --verify
                                                re-hashes every file against its manifest (exit 1 on
                                                any difference, naming the file); --download fetches
    python -m nstlib train-stylebank --run-dir runs/stylebank --style STYLE [STYLE ...] [--content SRC ...] [--precision bf16]
                             [--steps ...] [--export stylebank.pth]
                                                train a StyleBank, one bank per STYLE; resumes likewise
    python -m nstlib compare -o runs/compare [--methods gatys cnnmrf adain stylebank johnson] [--content C ...]
                             [--style S ...] [--size 256] [--steps 100]
                                                every method on content x style pairs (default: the
                                                held-out ones), measured (nstlib.metrics): compare.csv,
                                                a table of means, grid.png; resumes from compare.csv
    python -m nstlib site [--out build/site]    the course site: README and the executed notebooks as
                                                HTML, from their stored outputs (nstlib.site; needs
                                                pip install -e ".[site]")

The training commands run on several GPUs (or CPU processes) under torchrun, one process each:
    torchrun --standalone --nproc_per_node 4 -m nstlib train-adain --run-dir runs/adain --batch-size 2 ...
trains with the global batch of 4 x 2 (nstlib.distributed); rank 0 alone prints and writes files.

Training sources (--content, --style) are also training-set names, with an optional folder:
bsds500 (its test/ is held out), bsds500/train, wikiart, wikiart/cubism, monet.
CONTENT and STYLE are data-registry names (`python -m nstlib info` lists them) or image files.
Every argument is checked before the network is loaded, and errors are one line on stderr
with exit status 2."""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Callable

from . import data, runtime
from .download import cache_dir


def _positive_float(text: str) -> float:
    return _number(text, minimum=0.0, strict=True)


def _nonnegative_float(text: str) -> float:
    return _number(text, minimum=0.0, strict=False)


def _number(text: str, minimum: float, strict: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {'>' if strict else '>='} {minimum:g}")
    return value


def _int_at_least(minimum: int, maximum: int | None = None, why: str = ""):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at most {maximum}{why}")
        return value
    return parse


# Gatys' optimisation keeps VGG's activations and their gradients for the whole image: about 4 KB
# per pixel for VGG-16 (270 feature values per input pixel, summed over the layers, each kept for
# the forward and the backward pass in float32), so a 4096 px square needs about 70 GB.
MAX_IMAGE_SIDE = 4096
_SIZE_REASON = (" px: the optimisation keeps VGG's activations and gradients, about 4 KB per pixel "
                "(a 4096 px square needs about 70 GB)")


# torch's generators take 64-bit seeds; trainers also use seed + 1 (sample pairs)
MAX_SEED = 2**63 - 2
_seed = _int_at_least(0, MAX_SEED, " (a 64-bit seed)")


def _size(text: str) -> int:
    return _int_at_least(32, MAX_IMAGE_SIDE, _SIZE_REASON)(text)


def _device(name: str | None):
    """A device that exists here (runtime.get_device checks), or a one-line error before anything
    is loaded; None: the best, chosen later."""
    if name is None:
        return None
    try:
        return runtime.get_device(name)
    except runtime.DeviceError as e:
        raise ValueError(f"--device {e.label}: {e.reason}") from None


def _check_source(source: str, what: str) -> None:
    """A registry name or a readable file, else a one-line error (before anything is loaded)."""
    if source in data.registry():
        return
    path = Path(source).expanduser()
    if path.is_file():
        if not os.access(path, os.R_OK):
            raise ValueError(f"{what} {source!r}: the file cannot be read (permission denied)")
        return
    if path.exists():
        raise ValueError(f"{what} {source!r} is not a file")
    import difflib

    names = data.list_images("content" if what == "content" else "style")
    close = difflib.get_close_matches(source, data.registry(), n=3)
    hint = (f"; did you mean {' or '.join(map(repr, close))}?" if close
            else f" (registry: {', '.join(names)})")
    raise ValueError(f"{what} {source!r} is neither a file nor a registry name{hint}")


def _check_output(output: str) -> Path:
    """The output must be a type save_image writes, in a writable folder; checked before the work."""
    from .images import output_format

    path = Path(output).expanduser()
    output_format(path)  # save_image's own check and message: a type Pillow writes as 8-bit RGB
    if path.is_dir():
        raise ValueError(f"output {output!r} is a folder; give a file name such as out.png")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"output {output!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"output {output!r}: cannot write there (permission denied)")
    return path


def _input_paths(source: str) -> list[Path]:
    """Where an input may live: the file itself, or a registry name's local and cached copies."""
    if source in data.registry():
        a = data.asset(source)
        places = [cache_dir("images", create=False) / a.file]
        override = data.data_dir_override()
        if override is not None:
            places += [override / a.file, override / Path(a.file).name]
        return places
    return [Path(source).expanduser()]


def _check_not_an_input(output: Path, inputs: dict[str, str], force: bool) -> None:
    """Never write over an input; write over another existing file only with --force."""
    target = output.resolve()
    for what, source in inputs.items():
        for place in _input_paths(source):
            same = place.resolve() == target or (place.exists() and output.exists()
                                                 and os.path.samefile(place, output))
            if same:
                raise ValueError(f"output {str(output)!r} is the {what} image {source!r}; "
                                 "choose another output file")
    if output.exists() and not force:
        raise ValueError(f"output {str(output)!r} exists; pass --force to overwrite it, or choose another name")


def _add_stylize_parser(sub) -> None:
    from .stylize import PRESETS

    p = sub.add_parser("stylize", help="Gatys style transfer of CONTENT in the style of STYLE",
                       description="Paint CONTENT in the style of STYLE (Gatys et al. 2016) by optimising its "
                                   "pixels. CONTENT and STYLE are registry names or image files; several STYLE "
                                   "images are blended (see --blend).")
    p.add_argument("content", help="content photo: a registry name (e.g. tubingen) or an image file")
    p.add_argument("style", nargs="+", help="style image(s): registry names (e.g. starry_night) or files")
    p.add_argument("-o", "--output", required=True,
                   help="where to write the result (.png or .jpg); never one of the inputs, and an existing "
                        "file only with --force")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    p.add_argument("--max-size", "--size", dest="max_size", type=_size, default=512,
                   help=f"longer side of the result, px (512; at most {MAX_IMAGE_SIDE}); --size is an older "
                        "spelling of it")
    p.add_argument("--steps", type=_int_at_least(0), default=300, help="optimizer iterations per scale (300)")
    p.add_argument("--content-weight", type=_nonnegative_float, help="alpha, for a 512x512 image (preset: 1)")
    p.add_argument("--style-weight", type=_nonnegative_float, help="beta (preset: 1e3)")
    p.add_argument("--tv-weight", type=_nonnegative_float, help="total-variation weight (preset: 0)")
    p.add_argument("--blend", "--blend-weights", dest="blend", type=_nonnegative_float, nargs="+", metavar="W",
                   help="one weight per STYLE image when blending several (--blend-weights: an older spelling)")
    p.add_argument("--preserve-colors", choices=["luminance", "histogram"],
                   help="keep the photo's colours: luminance-only transfer or colour histogram matching")
    p.add_argument("--init", choices=["content", "noise", "style"], default="content", help="start image")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--scales", type=_int_at_least(32), nargs="+", default=[], metavar="PX",
                   help="coarse-to-fine: smaller longer sides to optimise at first, e.g. --scales 256 512 --max-size 1024")
    p.add_argument("--style-scale", type=_positive_float, default=1.0,
                   help="longer side of the style image relative to --max-size (1.0)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="course",
                   help="course: VGG-16 Caffe, max pooling; gatys2016: VGG-19, avg pooling (the same layers)")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the noise init (0)")


def stylize_command(args) -> str:
    """Run `python -m nstlib stylize`; returns the line to print. Raises ValueError on bad input."""
    from . import images, stylize

    _check_source(args.content, "content")
    for s in args.style:
        _check_source(s, "style")
    output = _check_output(args.output)
    _check_not_an_input(output, {"content": args.content, **{
        f"style{'' if len(args.style) == 1 else f' {i + 1}'}": s for i, s in enumerate(args.style)}}, args.force)
    if args.blend is not None and len(args.blend) != len(args.style):
        raise ValueError(f"{len(args.blend)} --blend weights for {len(args.style)} style images: give one per STYLE")
    _device(args.device)
    if args.max_size * args.style_scale > MAX_IMAGE_SIDE:
        raise ValueError(f"--style-scale {args.style_scale:g} makes the style image {args.max_size * args.style_scale:.0f} "
                         f"px; at most {MAX_IMAGE_SIDE}{_SIZE_REASON}")
    result = stylize.stylize(
        args.content, args.style, max_size=args.max_size, steps=args.steps, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, blend=args.blend,
        preserve_colors=args.preserve_colors, init=args.init, optimizer=args.optimizer, scales=args.scales,
        style_scale=args.style_scale, preset=args.preset, device=args.device, seed=args.seed, progress=True)
    if result.stopped == "non-finite loss":
        raise ValueError(f"the loss became non-finite (NaN or inf), so no image was written to {output}; "
                         "lower --style-weight / --content-weight, or check the VGG weights")
    images.save_image(result.image, output)
    h, w = result.image.shape[-2:]
    note = "" if result.stopped == "finished" else f" (stopped early: {result.stopped})"
    return f"wrote {output} ({w}x{h} px, {result.seconds:.1f} s){note}"


def _add_train_adain_parser(sub) -> None:
    from .adain_training import TrainSettings

    p = sub.add_parser("train-adain", help="train AdaIN's decoder (resumable)",
                       description="Train AdaIN's decoder on unpaired crops of photos and paintings (Huang & "
                                   "Belongie 2017). Running the same command again resumes from --run-dir.")
    p.add_argument("--run-dir", required=True, help="checkpoint, samples and exported decoder go here")
    p.add_argument("--content", nargs="+", help="training sets (bsds500, bsds500/train), folders, files or registry "
                   "names (default: the registry's photos except those held out for notebook 05)")
    p.add_argument("--style", nargs="+", help="training sets (wikiart, wikiart/cubism, monet), folders, files or "
                   "registry names (default: the registry's paintings except those held out for notebook 05)")
    _add_settings_arguments(p, TrainSettings, steps="total steps")
    p.add_argument("--photos-as-styles", action="store_true",
                   help="add the content photos to the style images (more palettes for a small style set)")
    p.add_argument("--arch", choices=["vgg16", "vgg19"], default="vgg16")
    _add_run_arguments(p, "decoder")


# What the training settings' options say, and the smallest value each whole-number one accepts (the
# others: 1). Floats: the learning rate > 0, every other one >= 0.
_SETTING_HELP = {
    "crop": "crop size, px", "load_size": "shorter side before cropping, px",
    "style_size": "longer side of the style images, px", "T": "stylising steps per auto-encoder step",
    "seed": "seeds everything: the model's initial weights, crops, batches",
    "shuffle_style_channels": "put each style crop's RGB channels in a random order (colour augmentation; not in "
                              "the paper)",
    "content_layer": "VGG-16 layer of the content (feature reconstruction) loss",
    "one_style_per_batch": "several styles (CIN): one style per batch instead of one per image",
    "style_lr_scale": "each style's own parameters learn at lr times this",
    "clip_grad_norm": "clip each step's gradient norm to this (the history logs it unclipped)",
    "keep_every": "also keep every this many steps' checkpoint in RUN_DIR/kept/; 0: only the latest",
}
_SETTING_MINIMUM = {"steps": 0, "crop": 32, "load_size": 32, "style_size": 32, "keep_every": 0, "pool_size": 0}


def _add_settings_arguments(p, settings_class, skip: tuple[str, ...] = (), **helps: str) -> None:
    """One option per field of a trainer's settings dataclass (dataclasses.fields) except those in
    `skip`: --batch-size for batch_size, --T for T; the field's default and type; `helps` adds to
    _SETTING_HELP."""
    import dataclasses
    import typing

    types = typing.get_type_hints(settings_class)
    for f in dataclasses.fields(settings_class):
        if f.name in skip:
            continue
        flag, text = "--" + f.name.replace("_", "-"), {**_SETTING_HELP, **helps}.get(f.name)
        if types[f.name] is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction if f.default else "store_true",
                           default=f.default, help=text)
            continue
        if f.name == "seed":
            parse = _seed
        elif types[f.name] is int:
            parse = _int_at_least(_SETTING_MINIMUM.get(f.name, 1))
        elif types[f.name] is float:
            parse = _positive_float if f.name == "lr" else _nonnegative_float
        elif types[f.name] == typing.Optional[float]:  # a threshold that None switches off
            parse = _positive_float
        elif types[f.name] is str and f.name in getattr(settings_class, "CHOICES", {}):
            p.add_argument(flag, choices=settings_class.CHOICES[f.name], default=f.default,
                           help=f"{text} ({f.default})" if text else f"default {f.default}")
            continue
        else:
            raise TypeError(f"{settings_class.__name__}.{f.name}: no command-line type for {types[f.name]}")
        default = f"{f.default:g}" if isinstance(f.default, float) else "off" if f.default is None else str(f.default)
        p.add_argument(flag, type=parse, default=f.default,
                       help=f"{text} ({default})" if text else f"default {default}")


def _settings(args, settings_class, skip: tuple[str, ...] = ()) -> dict:
    """The values of a trainer's settings options, by field name (the fields in `skip` keep their defaults)."""
    import dataclasses

    return {f.name: getattr(args, f.name) for f in dataclasses.fields(settings_class) if f.name not in skip}


def _add_run_arguments(p, exported: str) -> None:
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--export", help=f"after training, write the {exported} in fp16 to this file and print its sha256")


def _check_training_paths(args) -> None:
    """--run-dir a folder (its checkpoint a file), --export a file: checked before anything loads."""
    from .training import check_file_target, check_run_dir

    check_run_dir(args.run_dir)
    if args.export:
        check_file_target(args.export, "--export")


def _check_crop(args, multiple: int = 1) -> None:
    """The training paths, and --crop: at most --load-size, a multiple of `multiple` (a network's
    stride-2 convolutions: 4 for two)."""
    _check_training_paths(args)
    if args.crop > args.load_size:
        raise ValueError(f"--crop {args.crop} is larger than --load-size {args.load_size}")
    if args.crop % multiple:
        raise ValueError(f"--crop must be a multiple of {multiple} (the network's stride-2 convolutions), got {args.crop}")


def train_adain_command(args) -> str | None:
    from . import adain, adain_training, datasets, distributed, runtime
    from .training import training_summary

    _check_crop(args)
    device = distributed.setup(runtime.get_device(_device(args.device)))  # under torchrun: this rank's GPU
    content = args.content or datasets.training_images("content")
    style = list(args.style or datasets.training_images("style"))
    if args.photos_as_styles:
        style += [c for c in content if c not in style]
    runtime.seed_everything(args.seed)  # the decoder's initial weights come from --seed too
    model = adain.AdaIN(arch=args.arch).to(device)
    run = adain_training.train_decoder(model, content, style, args.run_dir,
                                       **_settings(args, adain_training.TrainSettings))
    return _report_training(run, args.export, "decoder",
                            lambda: adain.export_decoder(model, args.export, training_summary(run, content, style, device)))


def _add_train_stylebank_parser(sub) -> None:
    from .stylebank_training import StyleBankSettings

    p = sub.add_parser("train-stylebank", help="train a StyleBank, one bank per style (resumable)",
                       description="Train StyleBank (Chen et al. 2017) with the (T+1)-step alternation on crops of "
                                   "photos. Running the same command again resumes from --run-dir.")
    p.add_argument("--run-dir", required=True, help="the checkpoint goes here")
    p.add_argument("--style", nargs="+", required=True, help="style images (files or registry names), one bank each")
    p.add_argument("--content", nargs="+", help="training sets (bsds500), folders, files or registry names "
                   "(default: the registry's photos except those held out for notebooks 05 and 06)")
    p.add_argument("--paper-decoder", action="store_true",
                   help="the paper's network exactly: no per-style scales and shifts in the decoder's norms "
                        "(every style then shares one colour cast, notebook 06)")
    p.add_argument("--no-instance-norm", action="store_true",
                   help="no instance norm in the encoder or decoder (a per-channel scale and shift where the "
                        "decoder's were): the auto-encoder then sees and keeps a photo's exposure and colour")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: networks under bfloat16 autocast, channels-last (default: $NSTLIB_PRECISION, "
                        "else bf16 where the device runs it natively)")
    _add_settings_arguments(p, StyleBankSettings, steps="stylising + auto-encoder steps")
    _add_run_arguments(p, "model")


def train_stylebank_command(args) -> str | None:
    from . import datasets, distributed, runtime
    from .training import training_summary
    from .features import VGGFeatures
    from .stylebank import CONTENT_LAYER, StyleBank, export_stylebank
    from .stylebank_training import StyleBankSettings, train_stylebank

    _check_crop(args, multiple=4)
    for style in args.style:
        _check_source(style, "style image")
    device = distributed.setup(runtime.get_device(_device(args.device)))  # under torchrun: this rank's GPU
    content = args.content or datasets.training_images("content")
    names = [Path(s).stem if Path(s).suffix else s for s in args.style]
    vgg = VGGFeatures("vgg16", "caffe", up_to=CONTENT_LAYER).to(device)  # relu4_2 is the deepest layer used
    runtime.seed_everything(args.seed)  # the model's initial weights come from --seed too
    model = StyleBank(len(args.style), names, style_norms=not args.paper_decoder,
                      instance_norm=not args.no_instance_norm).to(device)
    run = train_stylebank(model, content, args.style, vgg, args.run_dir, precision=args.precision,
                          **_settings(args, StyleBankSettings))
    curves = ("content", "style", "tv", "reconstruction")
    return _report_training(run, args.export, "StyleBank", lambda: export_stylebank(
        model, args.export, training_summary(run, content, args.style, device, curves=curves)))


def _report_training(run, export: str | None, what: str, write: Callable[[], str]) -> str | None:
    """A training command's last lines: how the run ended and, if it finished and --export was given,
    `write()` (which exports and returns the sha256). Under torchrun only rank 0 reports and exports."""
    from . import distributed

    if not distributed.is_main():
        return None
    lines = [f"{run.stopped} at step {run.step}; checkpoint {run.checkpoint}"]
    if export and run.stopped == "finished":
        lines.append(f"{what} written to {export} (sha256 {write()})")
    return "\n".join(lines)


def _add_train_johnson_parser(sub) -> None:
    from .johnson import NORMS
    from .johnson_training import JohnsonSettings

    p = sub.add_parser("train-johnson", help="train Johnson's transform network, one style or CIN (resumable)",
                       description="Train Johnson et al.'s transformation network with the perceptual loss for one "
                                   "STYLE, or a conditional-instance-norm network (Dumoulin et al.) for several. "
                                   "Running the same command again resumes from --run-dir.")
    p.add_argument("--run-dir", required=True, help="checkpoint and samples go here")
    p.add_argument("--style", nargs="+", required=True,
                   help="style image(s), files or registry names; several train one CIN network, in this order")
    p.add_argument("--content", nargs="+", default=["bsds500"],
                   help="training sets (bsds500: its test/ is held out; bsds500/train), folders, files or registry "
                        "names (bsds500)")
    p.add_argument("--norm", choices=NORMS, default="instance",
                   help="normalisation layers: instance (Ulyanov et al.) or batch (Johnson's original; the ablation)")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: networks under bfloat16 autocast, channels-last (default: $NSTLIB_PRECISION or fp32)")
    _add_settings_arguments(p, JohnsonSettings, steps="total steps")
    _add_run_arguments(p, "network")


def train_johnson_command(args) -> str:
    from . import distributed, runtime
    from .features import VGGFeatures
    from .johnson import STYLE_LAYERS, TransformNet, export_transform_net
    from .johnson_training import JohnsonSettings, train_transform_net
    from .training import training_summary

    _check_crop(args)
    for style in args.style:
        _check_source(style, "style image")
    if len(args.style) > 1 and args.norm != "instance":
        raise ValueError(f"--norm {args.norm} trains one style; several styles need conditional instance norm")
    if args.one_style_per_batch and len(args.style) == 1:
        raise ValueError("--one-style-per-batch is for several styles (CIN)")
    device = distributed.setup(runtime.get_device(_device(args.device)))  # under torchrun: this rank's GPU
    names = [Path(s).stem if Path(s).suffix else s for s in args.style]
    vgg = VGGFeatures("vgg16", "caffe", up_to=STYLE_LAYERS[-1]).to(device)  # relu4_3 is the deepest layer used
    runtime.seed_everything(args.seed)  # the network's initial weights come from --seed too
    n_styles = len(args.style) if len(args.style) > 1 else None
    model = TransformNet(args.norm, n_styles, style_names=names if n_styles else None).to(device)
    if not n_styles:
        model.style_names = names
    run = train_transform_net(model, args.content, args.style, vgg, args.run_dir, precision=args.precision,
                              **_settings(args, JohnsonSettings))
    curves = ("content", "style", "tv", "total")
    return _report_training(run, args.export, "network", lambda: export_transform_net(
        model, args.export, training_summary(run, args.content, args.style, device, curves=curves)))


def _add_train_cyclegan_parser(sub) -> None:
    from .cyclegan_training import GANSettings

    p = sub.add_parser("train-cyclegan", help="train CycleGAN on a two-domain training set (resumable)",
                       description="Train CycleGAN (Zhu et al. 2017) on unpaired images: the paper's ResNet "
                                   "generators, 70x70 PatchGANs, LSGAN, cycle and identity losses, image pools of 50, "
                                   "Adam 2e-4 constant for half the steps, then linearly to 0. Running the same "
                                   "command again resumes from --run-dir.")
    p.add_argument("--run-dir", required=True, help="checkpoint and sample grids go here")
    p.add_argument("--dataset", default="horse2zebra",
                   help="a two-domain training set (nstlib.training_sets): trainA and trainB are trained on, the first "
                        "images of testA are shown in the sample grids and never trained on (horse2zebra)")
    p.add_argument("--crop", type=_int_at_least(32), default=256, help="crop size, px; a multiple of 4 (256)")
    p.add_argument("--load-size", type=_int_at_least(32), default=286,
                   help="shorter side before cropping, px (286: the paper's jitter for 256-px crops)")
    p.add_argument("--blocks", type=_int_at_least(1), default=9,
                   help="residual blocks per generator (9: the paper's at 256 px; 6 at 128)")
    p.add_argument("--width", type=_int_at_least(1), default=64,
                   help="channels of the generators' and discriminators' first layer (64: the paper's)")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: networks under bfloat16 autocast, channels-last (default: $NSTLIB_PRECISION or fp32)")
    _add_settings_arguments(p, GANSettings, skip=("l1_weight",), steps="total steps (the lr decays to 0 at the last)",
                            identity_weight="identity loss weight, times --cycle-weight; 0 switches it off",
                            pool_size="images each discriminator's pool keeps; 0: no pool")
    _add_run_arguments(p, "generator pair")


def train_cyclegan_command(args) -> str | None:
    from . import distributed, runtime
    from .cyclegan import CycleGAN, export_generators
    from .cyclegan_training import GAN_CURVES, GANSettings, train_translation
    from .training import training_summary
    from .translation_task import FolderTask

    _check_crop(args, multiple=4)
    device = distributed.setup(runtime.get_device(_device(args.device)))  # under torchrun: this rank's GPU
    task = FolderTask.from_dataset(args.dataset, crop=args.crop, load_size=args.load_size, seed=args.seed)
    runtime.seed_everything(args.seed)  # the networks' initial weights come from --seed too
    model = CycleGAN(blocks=args.blocks, width=args.width).to(device)
    run = train_translation(model, task, args.run_dir, precision=args.precision,
                            **_settings(args, GANSettings, skip=("l1_weight",)))
    run.settings.update(dataset=args.dataset, crop=args.crop, load_size=args.load_size)
    # CycleGAN's sets are named A2B (horse2zebra, monet2photo): the domains' names in the export
    domains = tuple(args.dataset.split("2", 1)) if "2" in args.dataset else ("A", "B")
    return _report_training(run, args.export, "generator pair", lambda: export_generators(
        model.G, model.F, args.export, domains=domains,
        settings=dict(blocks=args.blocks, width=args.width, norm="instance"),
        training=training_summary(run, [f"{args.dataset}/trainA"], [f"{args.dataset}/trainB"], device,
                                  curves=GAN_CURVES)))


def _add_video_parser(sub) -> None:
    from .video import CONTAINERS, METHODS

    p = sub.add_parser("video", help="stylise a video frame by frame with a feed-forward network",
                       description="Stylise every frame of IN with a feed-forward network and write OUT (H.264, the "
                                   "input's frame rate; the input's audio is copied). Prints the flicker measure: "
                                   "the mean absolute change between consecutive output frames over the input's. "
                                   'Needs imageio-ffmpeg (pip install "nstlib[video]").')
    p.add_argument("input", help="the video to stylise (anything ffmpeg reads)")
    p.add_argument("output", help=f"the stylised video ({', '.join(CONTAINERS)}); an existing file only with --force")
    p.add_argument("--style", required=True,
                   help="johnson: la_muse, scream, udnie, wave, wreck, or a style of --model (CIN); adain: a style "
                        "image (registry name or file); stylebank: one of its styles")
    p.add_argument("--method", choices=METHODS, default="johnson", help="the network (johnson; read from --model)")
    p.add_argument("--model", help="an exported network (train-johnson, train-adain, train-stylebank --export)")
    p.add_argument("--max-size", type=_int_at_least(16, MAX_IMAGE_SIDE), metavar="PX",
                   help="longer side of the frames, px (default: the input's)")
    p.add_argument("--style-size", type=_size, default=512, help="adain: longer side of the style image, px (512)")
    p.add_argument("--blend", type=_nonnegative_float, default=0.0, metavar="B",
                   help="flicker remedy: blend each frame with the previous output, o = (1-B) f(x) + B o_prev "
                        "(0 = off; below 1)")
    p.add_argument("--max-frames", type=_int_at_least(1), help="stop after this many frames")
    p.add_argument("--no-audio", action="store_true", help="leave the audio out")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: the network under bfloat16 autocast, channels-last (default: $NSTLIB_PRECISION or fp32)")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def video_command(args) -> str:
    from . import video

    output = video.check_output(args.output)
    info = video.probe(args.input)
    if output.exists() and output.resolve() == info.path.resolve():
        raise ValueError(f"output {args.output!r} is the input video; choose another file")
    if output.exists() and not args.force:
        raise ValueError(f"output {args.output!r} exists; pass --force to overwrite it, or choose another name")
    if args.blend >= 1:
        raise ValueError(f"--blend {args.blend:g} must be below 1 (1 would repeat the first frame forever)")
    if args.model is not None and not Path(args.model).expanduser().is_file():
        raise ValueError(f"--model {args.model!r}: no such file")
    if args.method == "adain" and args.model is None:
        _check_source(args.style, "style")
    device = _device(args.device)
    stylizer = video.load_stylizer(args.style, args.method, args.model, device, args.precision, args.style_size)
    result = video.stylize_video(info.path, output, stylizer, args.max_size, args.blend, args.max_frames,
                                 keep_audio=not args.no_audio)
    w, h = result.size
    line = (f"wrote {output}: {result.frames} frames of {w}x{h} at {result.fps:g} fps in {result.seconds:.1f} s "
            f"({result.frames_per_second:.2f} frames/s, {stylizer.name}); audio {result.audio}")
    if result.frames > 1:
        line += f"\nflicker (mean |frame change| over the input's): {result.flicker_ratio:.2f}"
        if args.blend:
            line += (f"; blended by {args.blend:g}: {result.output_flicker_ratio:.2f}, each frame "
                     f"{result.departure:.3f} from its own stylisation")
    return line


def _add_datasets_parser(sub) -> None:
    p = sub.add_parser("datasets", help="the training sets (BSDS500, WikiArt, Monet, horse2zebra, ...) and their local state",
                       description="List the training sets of data/training_sets.tsv with where they are found "
                                   "($NSTLIB_DATASETS_DIR, the cache) and how many files are verified.")
    p.add_argument("names", nargs="*", help="only these sets (default: all)")
    p.add_argument("--verify", action="store_true",
                   help="hash every file against its manifest; exit 1 on any missing or changed file, naming it")
    p.add_argument("--download", action="store_true", help="download the named sets that are not here")


def datasets_command(args) -> tuple[str, int]:
    from . import training_sets as ts

    names = args.names or list(ts.training_sets())
    for name in names:
        ts.training_set(name)  # unknown names: one line, status 2
    lines = [f"{ts.DATASETS_ENV} = {ts.datasets_dir_override() or '(not set)'}; cache = {ts.pinned_cache()}",
             f"{'name':<14} {'files':>5} {'MB':>7}  {'held out':<24} state"]
    failed = 0
    for name in names:
        entry = ts.training_set(name)
        if args.download and entry.manifest and ts.local_root(name) is None:
            ts.dataset(name)
        st = ts.status(name)
        where = f" ({st['where']})" if st.get("where") else ""
        mb = f"{entry.files_bytes / 1e6:.2f}" if entry.files else "-"
        lines.append(f"{name:<14} {entry.files or '-':>5} {mb:>7}  "
                     f"{' '.join(entry.held_out) or '-':<24} {st['state']}{where}")
        # a set that is not here fails only where it should be: named, or a datasets folder is set
        expected = bool(args.names) or (bool(entry.path) and ts.datasets_dir_override() is not None)
        if args.verify and entry.manifest and (expected or ts.local_root(name)):
            problems = ts.verify(name, rehash=True)
            if problems:
                failed += 1
                lines += [f"  FAILED {p}" for p in problems]
            else:
                lines.append(f"  verified: {len(ts.manifest(name))} files match {entry.manifest}")
    if args.verify:
        lines.append(f"{failed} set(s) failed verification" if failed else "every set matches its manifest")
    return "\n".join(lines), (1 if failed else 0)


def _add_kit_parsers(sub) -> None:
    from .gpu_kit import JOBS, MAX_KIT_MIB

    p = sub.add_parser("kit-pack", help="pack the GPU job kit: truncated fp16 VGG, resized images, kit.json",
                       description="Pack what a GPU training run needs into a git-ignored folder the device tool "
                                   "carries (see docs/gpu.md). Reads $NSTLIB_DATASETS_DIR and the data registry.")
    p.add_argument("--kit", default=".device", help="the kit folder (.device, git-ignored); replaced")
    p.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=sorted(JOBS), help="jobs to pack (all)")
    p.add_argument("--max-mib", type=_positive_float, default=MAX_KIT_MIB, help=f"size limit ({MAX_KIT_MIB} MiB)")
    p = sub.add_parser("kit-run", help="run the GPU job kit: train each job for its minutes, export to --out",
                       description="Verify the kit, train its jobs under bf16 autocast and channels-last, and write "
                                   "each exported fp16 model, its samples, summary.json and log.txt to --out.")
    p.add_argument("--kit", default=".device", help="the kit folder (.device)")
    p.add_argument("--out", required=True, help="where models, samples, summary.json and log.txt go")
    p.add_argument("--jobs", nargs="+", help="run only these jobs (default: all in the kit)")
    p.add_argument("--minutes", type=_positive_float, help="time budget per job, overriding the kit's")
    p.add_argument("--init", help="start from this exported model (e.g. the shipped one) instead of fresh weights")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p = sub.add_parser("kit-join", help="rebuild the files kit-run split into parts to bring them back",
                       description="Files over 15 MiB come back from the GPU machine as <name>.partNN; this joins "
                                   "them (sha256-checked against summary.json) into --out.")
    p.add_argument("folder", help="the folder kit-run wrote (with summary.json)")
    p.add_argument("--out", help="where the joined files go (default: the folder itself)")


def kit_join_command(args) -> str:
    from . import gpu_kit

    joined = gpu_kit.join_parts(args.folder, args.out)
    return "\n".join(f"joined {p}" for p in joined) or "nothing to join"


def kit_pack_command(args) -> str:
    from . import gpu_kit

    manifest = gpu_kit.pack(args.kit, [gpu_kit.JOBS[j] for j in args.jobs], max_mib=args.max_mib)
    counts = "; ".join(f"{j['name']}: " + ", ".join(f"{len(i['labels'])} {role}" for role, i in j["images"].items())
                       for j in manifest["jobs"])
    return f"packed {args.kit}: {manifest['mib']} MiB, {len(manifest['files'])} files ({counts})"


def kit_run_command(args) -> str:
    from . import gpu_kit

    summary = gpu_kit.run(args.kit, args.out, only=args.jobs, device=args.device, minutes=args.minutes,
                          init=args.init)
    return f"done in {summary['seconds']} s on {summary['machine']}; wrote {args.out}"


def _add_compare_parser(sub) -> None:
    from .compare import METHODS

    p = sub.add_parser("compare", help="every method on held-out pairs, measured: CSV, table, image grid (resumable)",
                       description="Run the course's methods on content x style pairs at one size, measure each "
                                   "result with nstlib.metrics, and write OUT/compare.csv (one row per method x "
                                   "pair), OUT/images/ and OUT/grid.png; print the per-method means. Running it "
                                   "again with the same settings skips the finished rows. NSTLIB_QUICK=1 makes the "
                                   "defaults tiny (64 px, 3 L-BFGS steps, 2 pairs).")
    p.add_argument("-o", "--out-dir", required=True, help="folder for compare.csv, images/ and grid.png (created)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), metavar="METHOD",
                   help=f"which methods ({' '.join(METHODS)}: all)")
    p.add_argument("--content", nargs="+", help="content photos, registry names or files (default: the held-out "
                                                "tubingen golden_gate chelsea)")
    p.add_argument("--style", nargs="+", help="style images, registry names or files (default: the held-out "
                                              "starry_night the_scream la_muse woman_with_hat_matisse)")
    p.add_argument("--max-size", "--size", dest="max_size", type=_size,
                   help="longer side of every image, px (256; quick mode 64)")
    p.add_argument("--steps", type=_int_at_least(0), help="L-BFGS iterations of gatys and cnnmrf (100; quick mode 3)")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")


def compare_command(args) -> str:
    from . import compare, datasets, runtime

    for source in args.content or ():
        _check_source(source, "content")
    for source in args.style or ():
        _check_source(source, "style")
    device = _device(args.device)
    cfg = runtime.config(quick=dict(max_size=64, steps=3, n_pairs=2), max_size=256, steps=100, n_pairs=None,
                         seed=0, device=None if device is None else str(device))
    max_size = args.max_size if args.max_size is not None else cfg.max_size
    steps = args.steps if args.steps is not None else cfg.steps
    contents = args.content or list(datasets.HELD_OUT["content"])
    styles = args.style or list(datasets.HELD_OUT["style"])
    pairs = [compare.Pair(c, s) for c in contents for s in styles]
    if not (args.content or args.style) and cfg.n_pairs:
        pairs = pairs[: cfg.n_pairs]
    labels = [p.label for p in pairs]
    twice = sorted({l for l in labels if labels.count(l) > 1})
    if twice:
        raise ValueError(f"the pair(s) {', '.join(twice)} are given twice (files are named by their stem)")
    out_dir = Path(args.out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {args.out_dir!r} is a file; give a folder (it is created if missing)")
    inputs = {f"content {c!r}": c for c in contents} | {f"style {s!r}": s for s in styles}
    for target in compare.output_paths(out_dir, args.methods, pairs):
        for what, source in inputs.items():
            if any(place.resolve() == target.resolve() for place in _input_paths(source)):
                raise ValueError(f"{target} would overwrite the {what}; choose another --out-dir")
    compare.read_rows(out_dir / compare.CSV_NAME)  # not a comparison table: fail before any work
    rows = compare.run_comparison(pairs, args.methods, out_dir, max_size=max_size, steps=steps, device=cfg.device)
    return (compare.summary_table(rows, args.methods)
            + f"\nwrote {out_dir / compare.CSV_NAME}, {out_dir / compare.GRID_NAME} and {out_dir / compare.IMAGES_DIR}/"
            + f" ({len(pairs)} pairs at {max_size} px"
            + (f", {steps} L-BFGS steps" if set(args.methods) & set(compare.OPTIMISED) else "") + ")")


def _add_site_parser(sub) -> None:
    p = sub.add_parser("site", help="build the course site (README + executed notebooks) into build/site",
                       description="Render README.md (the landing page) and notebooks/NN_*.ipynb with Sphinx and "
                                   "MyST-NB from their stored outputs, executing nothing (nstlib.site). Needs the "
                                   "[site] extra: pip install -e \".[site]\".")
    p.add_argument("--out", help="the folder for the HTML (default: build/site, git-ignored); an earlier build there "
                                 "is replaced, any other non-empty folder refused")


def site_command(args) -> str:
    from . import site

    return site.build(args.out).summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, device, quick mode, weights and data found")
    _add_stylize_parser(sub)
    _add_train_adain_parser(sub)
    _add_train_stylebank_parser(sub)
    _add_train_johnson_parser(sub)
    _add_train_cyclegan_parser(sub)
    _add_video_parser(sub)
    _add_kit_parsers(sub)
    _add_datasets_parser(sub)
    _add_compare_parser(sub)
    _add_site_parser(sub)
    args = parser.parse_args(argv)
    from .download import DownloadError

    # ImageError is a ValueError; OSError: disk full, say; DownloadError: offline or a hash mismatch;
    # FloatingPointError: a trainer's loss became non-finite
    expected = (ValueError, OSError, DownloadError, FloatingPointError)
    if args.command == "datasets":  # its own exit status: 1 when a file differs from its manifest
        try:
            text, status = datasets_command(args)
        except expected as e:
            print(f"python -m nstlib datasets: error: {_one_line(e)}", file=sys.stderr)
            return 2
        print(text)
        return status
    command = {"info": lambda args: runtime.info(), "stylize": stylize_command, "train-adain": train_adain_command,
               "train-stylebank": train_stylebank_command, "train-johnson": train_johnson_command,
               "train-cyclegan": train_cyclegan_command, "video": video_command, "kit-pack": kit_pack_command,
               "kit-run": kit_run_command, "kit-join": kit_join_command,
               "compare": compare_command, "site": site_command}[args.command]
    from . import distributed

    try:
        text = command(args)
        if text is not None:  # None: a torchrun rank other than 0, which stays quiet
            print(text)
    except expected as e:
        where = f" (rank {distributed.rank()})" if distributed.rank() > 0 else ""
        print(f"python -m nstlib {args.command}{where}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()  # a training command under torchrun leaves its process group
    return 0


def _one_line(error: Exception) -> str:
    """An error message on one line (a download error lists the URLs it tried, one a line)."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())
