"""Video: stylising a clip frame by frame with a feed-forward network, and measuring its flicker.
Notebook 08 (fast feed-forward transfer) uses it; `python -m nstlib video IN OUT --style NAME` is the
command line.

A feed-forward network (Johnson's, a CIN network, AdaIN, StyleBank) stylises a frame in one forward
pass, so a video is just its frames, one at a time:

    stylizer = load_stylizer("scream")                      # johnson.pretrained("scream")
    result = stylize_video("clip.mp4", "out.mp4", stylizer, max_size=512)
    result.flicker_ratio                                    # how much more the result flickers than the clip

Frames are read and written by ffmpeg through imageio-ffmpeg (PyPI; it ships its own ffmpeg binary),
streamed: one frame in memory at a time, whatever the clip's length. Output is H.264 (.mp4, .mov,
.m4v or .mkv) at the input's frame rate. **Audio is copied**: the input's first audio stream goes
into the output unchanged where the container takes its codec (AAC or MP3 into .mp4, anything into
.mkv), otherwise re-encoded to AAC; a clip without audio gives a video without audio.

Flicker. Each frame is stylised on its own, so small changes between frames (noise, compression,
a moving edge) can change the painted texture a lot: the result flickers. With x_t the input frames,
y_t the output frames (T frames, (3, H, W) in [0, 1]):

    D(x)    = 1/(T-1) sum_{t=1}^{T-1} mean_{c,h,w} |x_t - x_{t-1}|     mean absolute change per frame
    flicker = D(y) / D(x)                                             `flicker_ratio`

A result that changes exactly as much as its input has flicker 1; the texture's own jitter adds to it.

One simple remedy, `blend` = b in [0, 1): each output frame is blended with the previous output,

    o_0 = f(x_0),    o_t = (1 - b) f(x_t) + b o_{t-1}                  an exponential moving average

which damps changes that last one frame and lags behind true motion (ghosting). `departure` measures
that cost: the mean |o_t - f(x_t)|, how far what was written is from each frame's own stylisation.
Real remedies need training (a temporal loss with optical flow: Ruder et al. 2016; Huang et al. 2017).
"""
from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import runtime
from .files import atomic_write
from .images import check_image

VIDEO_EXTRA = 'pip install "nstlib[video]"'
CONTAINERS = (".mp4", ".mov", ".m4v", ".mkv")  # H.264 (libx264) goes into each
# audio codecs each container takes as they are (no re-encoding); None: any
COPYABLE_AUDIO = {".mp4": {"aac", "mp3", "alac", "ac3", "opus"}, ".m4v": {"aac", "mp3", "alac", "ac3"},
                  ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le"}, ".mkv": None}
METHODS = ("johnson", "adain", "stylebank")


def _ffmpeg():
    """imageio_ffmpeg, or a one-line error that says how to install it."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImportError(f"video needs imageio-ffmpeg: {VIDEO_EXTRA} (or pip install imageio imageio-ffmpeg)") from None
    return imageio_ffmpeg


# ----------------------------------------------------------------------------- reading

@dataclass
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    duration: float  # seconds (0 if ffmpeg could not tell)
    audio: str | None  # the first audio stream's codec ('aac', 'mp3', ...), None without audio

    @property
    def frames(self) -> int:
        """The number of frames, estimated from the duration and the frame rate (for progress bars)."""
        return max(1, round(self.duration * self.fps)) if self.duration and self.fps else 0


def _one_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:limit]


def probe(path: str | Path) -> VideoInfo:
    """What ffmpeg says about a video file: size, frame rate, duration and audio codec. A missing file
    or one ffmpeg cannot read as video gets a one-line error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    ff = _ffmpeg()
    reader = ff.read_frames(str(path))
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        raise ValueError(f"{path}: not a video ffmpeg can read ({_one_line(e)})") from None
    finally:
        reader.close()
    if not meta.get("size") or meta["size"][0] < 1:
        raise ValueError(f"{path}: no video stream")
    text = subprocess.run([ff.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True, errors="replace").stderr  # ffmpeg describes the streams on stderr
    audio = re.search(r"Stream #\d+:\d+\S*: Audio: (\w+)", text)
    w, h = meta["size"]
    return VideoInfo(path, int(w), int(h), float(meta.get("fps") or 0.0), float(meta.get("duration") or 0.0),
                     audio.group(1) if audio else None)


def frame_size(width: int, height: int, max_size: int | None = None) -> tuple[int, int]:
    """(W, H) of the frames that are stylised and written: the longer side `max_size` (default: the
    input's), each side rounded down to an even number (H.264 in yuv420p needs even sides)."""
    if max_size is not None:
        if max_size < 2:
            raise ValueError(f"max_size must be at least 2 px, got {max_size}")
        scale = max_size / max(width, height)
        width, height = round(width * scale), round(height * scale)
    return max(2, width - width % 2), max(2, height - height % 2)


def read_frames(path: str | Path, max_size: int | None = None, info: VideoInfo | None = None) -> Iterator[torch.Tensor]:
    """The frames of a video, one (1, 3, H, W) float tensor in [0, 1] at a time, at `frame_size`:
    resized by ffmpeg (bicubic) when `max_size` is given, otherwise at most one odd row and column cut."""
    info = info or probe(path)
    w, h = frame_size(info.width, info.height, max_size)
    if max_size is not None and (w, h) != (info.width, info.height):
        filt = f"scale={w}:{h}:flags=bicubic"
    else:
        filt = f"crop={w}:{h}:0:0"
    reader = _ffmpeg().read_frames(str(info.path), output_params=["-vf", filt])
    try:
        next(reader)  # the metadata
        for raw in reader:
            frame = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)  # (H, W, 3) RGB
            yield torch.from_numpy(frame.copy()).permute(2, 0, 1)[None].float().contiguous() / 255.0  # (1, 3, H, W)
    finally:
        reader.close()


# ----------------------------------------------------------------------------- writing

def check_output(path: str | Path) -> Path:
    """An output video must end in one of CONTAINERS and lie in an existing folder."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in CONTAINERS:
        raise ValueError(f"output {str(path)!r}: the video must end in {', '.join(CONTAINERS)} (H.264)")
    if path.is_dir():
        raise ValueError(f"output {str(path)!r} is a folder; give a file name such as out.mp4")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"output {str(path)!r}: the folder {str(folder)!r} does not exist")
    return path


def audio_plan(info: VideoInfo, output: Path, keep_audio: bool = True) -> tuple[str | None, str]:
    """(ffmpeg's audio codec for the output or None for no audio, what happens in words)."""
    if not keep_audio:
        return None, "left out (no audio asked for)"
    if info.audio is None:
        return None, "none in the input"
    allowed = COPYABLE_AUDIO[output.suffix.lower()]
    if allowed is None or info.audio in allowed:
        return "copy", f"copied ({info.audio})"
    return "aac", f"re-encoded ({info.audio} -> aac: {output.suffix} does not take {info.audio})"


class VideoWriter:
    """Frames ((1, 3, H, W) in [0, 1]) to an H.264 file through ffmpeg; with `audio_from`, that file's
    first audio stream is muxed in (`audio_codec` 'copy' or an encoder) and cut to the video's length.
    A context manager: the file is complete when it closes."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, audio_from: Path | None = None,
                 audio_codec: str | None = None, quality: float = 8.0):
        ff = _ffmpeg()
        self.path, self.size = Path(path), size
        kwargs = {}
        if audio_from is not None:
            kwargs = {"audio_path": str(audio_from), "audio_codec": audio_codec}
        # macro_block_size=2: frame_size already made both sides even, so ffmpeg must not rescale
        self._writer = ff.write_frames(str(path), size, fps=fps or 25.0, quality=quality, macro_block_size=2,
                                       output_params=["-shortest"] if audio_from is not None else None, **kwargs)
        self._writer.send(None)  # starts ffmpeg

    def write(self, frame: torch.Tensor) -> None:
        check_image(frame, "frame")
        if tuple(frame.shape[-2:]) != (self.size[1], self.size[0]):
            raise ValueError(f"frame of {tuple(frame.shape[-2:])} (H, W) for a video of {self.size[::-1]}")
        pixels = (frame[0].detach().float().clamp(0, 1) * 255).round().to(torch.uint8)  # (3, H, W)
        self._writer.send(np.ascontiguousarray(pixels.permute(1, 2, 0).cpu().numpy()))  # (H, W, 3)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------------- flicker

def mean_abs_change(frames: torch.Tensor) -> float:
    """D(x) = 1/(T-1) sum_{t=1}^{T-1} mean_{c,h,w} |x_t - x_{t-1}| for frames (T, 3, H, W)."""
    if frames.dim() != 4 or frames.shape[0] < 2:
        raise ValueError(f"need (T, C, H, W) frames with T >= 2, got {tuple(frames.shape)}")
    return float((frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3)).mean())


def flicker_ratio(output: torch.Tensor, input: torch.Tensor) -> float:
    """D(output) / D(input) (see the module docstring), both (T, 3, H, W) of the same shape."""
    if output.shape != input.shape:
        raise ValueError(f"output {tuple(output.shape)} and input {tuple(input.shape)} differ in shape")
    d = mean_abs_change(input)
    if d == 0:
        raise ValueError("the input frames do not change: the flicker ratio is undefined")
    return mean_abs_change(output) / d


class FlickerMeter:
    """D(x) of the input, of the per-frame stylisations f(x_t) and of the frames written o_t, and the
    mean |o_t - f(x_t)|, accumulated one frame at a time (a video never has to fit in memory)."""

    def __init__(self):
        self.frames = 0
        self._prev = None
        self._sums = {"input": 0.0, "stylised": 0.0, "output": 0.0, "departure": 0.0}

    def update(self, x: torch.Tensor, stylised: torch.Tensor, output: torch.Tensor) -> None:
        now = [t.detach().float().cpu() for t in (x, stylised, output)]
        if self._prev is not None:
            for key, a, b in zip(("input", "stylised", "output"), now, self._prev):
                self._sums[key] += float((a - b).abs().mean())
        self._sums["departure"] += float((now[2] - now[1]).abs().mean())
        self._prev = now
        self.frames += 1

    def change(self, key: str) -> float:
        """D(.) of 'input', 'stylised' or 'output' (nan before two frames)."""
        return self._sums[key] / (self.frames - 1) if self.frames > 1 else float("nan")

    @property
    def departure(self) -> float:
        return self._sums["departure"] / self.frames if self.frames else float("nan")


def stylize_frames(frames: Iterable[torch.Tensor], stylizer: Callable[[torch.Tensor], torch.Tensor],
                   blend: float = 0.0, meter: FlickerMeter | None = None) -> Iterator[torch.Tensor]:
    """Output frames o_t for input frames x_t ((1, 3, H, W) each): f(x_t), blended with the previous
    output by `blend` (o_t = (1 - b) f(x_t) + b o_{t-1}; 0: no blending). `meter` records flicker."""
    if not 0.0 <= blend < 1.0:
        raise ValueError(f"blend must lie in [0, 1), got {blend}")
    previous = None
    for x in frames:
        y = stylizer(x)
        out = y if previous is None or blend == 0 else (1 - blend) * y + blend * previous
        if meter is not None:
            meter.update(x, y, out)
        previous = out
        yield out


# ----------------------------------------------------------------------------- the networks

class Stylizer:
    """A feed-forward network as a frame -> frame function: (1, 3, H, W) in [0, 1] on any device in,
    the stylised frame on the CPU out, clamped to [0, 1]. Runs without gradients, on `device`, with
    `precision` 'bf16' under bfloat16 autocast in channels-last. `module` is the network `fn` calls:
    it is moved to `device`, put in eval mode and, for bf16, converted to channels-last *in place*
    (a copy would leave `fn` calling the unconverted one), so pass a network you will not train on."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str, module: torch.nn.Module,
                 device: torch.device | str = "cpu", precision: str | None = None):
        self.fn, self.name, self.device = fn, name, torch.device(device)
        self.precision = runtime.precision(precision)
        self.memory_format = torch.channels_last if self.precision == "bf16" else torch.contiguous_format
        self.module = module.to(self.device, memory_format=self.memory_format).eval()

    def __call__(self, frame: torch.Tensor) -> torch.Tensor:
        check_image(frame, "frame")
        x = frame.to(self.device, memory_format=self.memory_format)
        with torch.no_grad(), runtime.autocast(self.device, self.precision):
            y = self.fn(x)
        return y.float().clamp(0.0, 1.0).cpu()

    def __repr__(self) -> str:
        return f"Stylizer({self.name}, {self.device}, {self.precision})"


def load_stylizer(style: str, method: str = "johnson", model: str | Path | None = None,
                  device: torch.device | str | None = None, precision: str | None = None,
                  style_size: int = 512) -> Stylizer:
    """The network that paints frames in `style`:

    * method 'johnson': `style` one of johnson.ML5_STYLES (the published networks), or with `model`
      a file from johnson.export_transform_net: one style, or a CIN network and `style` one of its
      style names;
    * 'adain': the shipped decoder (adain.pretrained(), or `model` from adain.export_decoder) and
      `style` an image (registry name or file) loaded with its longer side `style_size`; its features
      are computed once;
    * 'stylebank': the shipped StyleBank (stylebank.pretrained(), or `model` from export_stylebank)
      and `style` one of its style names.

    With `model` the method is read from the file. `device` defaults to the best available."""
    from . import adain, johnson, stylebank
    from .training import load_checkpoint

    device = runtime.get_device(device)
    if model is not None:
        saved = load_checkpoint(Path(model).expanduser())
        kind = saved.get("kind") or ("adain" if "decoder" in saved else None)
        if kind not in METHODS:
            raise ValueError(f"{model}: not a network nstlib exported (Johnson/CIN, AdaIN decoder or StyleBank)")
        method = kind
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "johnson":
        if model is None:
            if style not in johnson.ML5_STYLES:
                raise ValueError(f"no published Johnson network {style!r}; styles: {', '.join(johnson.ML5_STYLES)} "
                                 "(or pass an exported network with --model)")
            net = johnson.pretrained(style)
        else:
            net = johnson.load_transform_net(model)
        if net.n_styles:
            index = net.style_id(style)
            return Stylizer(lambda x: net(x, index), f"CIN {style}", net, device, precision)
        if style not in net.style_names:
            raise ValueError(f"{model}: this network has one style, {net.style_names[0]!r}, not {style!r}")
        return Stylizer(net, f"Johnson {style}", net, device, precision)
    if method == "stylebank":
        net = stylebank.pretrained() if model is None else stylebank.load_stylebank(model)
        index = net.style_id(style)
        return Stylizer(lambda x: net(x, index), f"StyleBank {style}", net, device, precision)
    from .images import load_image

    net = adain.pretrained() if model is None else adain.load_decoder(adain.AdaIN(), model)
    net = net.to(device).eval()
    image = load_image(style, max_size=style_size).to(device)
    with torch.no_grad(), runtime.autocast(device, runtime.precision(precision)):
        style_features = net.encoder(image)  # computed once for the whole clip

    def paint(x: torch.Tensor) -> torch.Tensor:
        return net.decode(adain.adain(net.encoder(x), style_features, unbiased=net.unbiased))

    return Stylizer(paint, f"AdaIN {Path(style).stem}", net, device, precision)


# ----------------------------------------------------------------------------- a whole clip

@dataclass
class VideoResult:
    path: Path
    frames: int
    size: tuple[int, int]  # (W, H)
    fps: float  # the clip's frame rate (kept)
    seconds: float  # reading, stylising and writing
    audio: str  # what happened to the audio, in words
    blend: float
    flicker_input: float  # D(x)
    flicker_stylised: float  # D(f(x)): each frame on its own
    flicker_output: float  # D(o): what was written
    departure: float  # mean |o_t - f(x_t)|

    @property
    def flicker_ratio(self) -> float:
        """D(f(x)) / D(x): the flicker of per-frame stylisation."""
        return self.flicker_stylised / self.flicker_input

    @property
    def output_flicker_ratio(self) -> float:
        """D(o) / D(x): the flicker of what was written (after blending)."""
        return self.flicker_output / self.flicker_input

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else float("nan")


def stylize_video(input: str | Path, output: str | Path, stylizer: Callable[[torch.Tensor], torch.Tensor],
                  max_size: int | None = None, blend: float = 0.0, max_frames: int | None = None,
                  keep_audio: bool = True, progress: bool = True) -> VideoResult:
    """Stylise every frame of `input` (or its first `max_frames`) with `stylizer` and write `output`
    (H.264, the input's frame rate, audio copied: see the module docstring; written atomically), with a
    progress bar.
    `max_size`: the frames' longer side (default: the input's). `blend`: the flicker remedy."""
    output = check_output(output)
    info = probe(input)
    if output.resolve() == info.path.resolve():
        raise ValueError(f"output {str(output)!r} is the input video; choose another file")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if not 0.0 <= blend < 1.0:
        raise ValueError(f"blend must lie in [0, 1), got {blend}")
    codec, audio = audio_plan(info, output, keep_audio)
    size = frame_size(info.width, info.height, max_size)
    total = min(info.frames or max_frames or 0, max_frames or info.frames) or None
    meter = FlickerMeter()
    start = time.perf_counter()
    frames = read_frames(info.path, max_size, info)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"stylising {info.path.name}", unit="frame")
    try:
        # written beside the target and renamed when complete: an error or Ctrl-C leaves no half video
        with atomic_write(output) as part, VideoWriter(part, size, info.fps, info.path if codec else None,
                                                       codec) as writer:
            for i, frame in enumerate(stylize_frames(frames, stylizer, blend, meter)):
                writer.write(frame)
                if bar is not None:
                    bar.update(1)
                if max_frames is not None and i + 1 >= max_frames:
                    break
            if meter.frames == 0:
                raise ValueError(f"{info.path}: no frames could be read")
    finally:
        frames.close()
        if bar is not None:
            bar.close()
    return VideoResult(output, meter.frames, size, info.fps, time.perf_counter() - start, audio, blend,
                       meter.change("input"), meter.change("stylised"), meter.change("output"), meter.departure)


# ----------------------------------------------------------------------------- a test clip

def pan_zoom_frames(image: torch.Tensor, frames: int = 24, size: tuple[int, int] = (96, 64),
                    zoom: float = 1.25, window: float = 0.7) -> torch.Tensor:
    """A self-made clip: a camera panning left to right across `image` ((1, 3, H, W) in [0, 1]) while
    zooming in by `zoom`, as (T, 3, h, w) frames, `size` = (w, h). The window starts at `window` times
    the image's width and height; positions are sub-pixel (bilinear), so the motion is smooth."""
    check_image(image)
    if frames < 2:
        raise ValueError(f"frames must be at least 2, got {frames}")
    if not (zoom >= 1 and 0 < window <= 1):
        raise ValueError(f"need zoom >= 1 and 0 < window <= 1, got zoom={zoom}, window={window}")
    out = []
    for t in range(frames):
        s = t / (frames - 1)
        scale = window / (1 + (zoom - 1) * s)  # the window's size, a fraction of the image
        shift = (1 - scale) * (2 * s - 1)  # its centre in [-1, 1] coordinates: left edge to right edge
        theta = torch.tensor([[[scale, 0.0, shift], [0.0, scale, 0.0]]], dtype=image.dtype)
        grid = F.affine_grid(theta, (1, 3, size[1], size[0]), align_corners=False)  # (1, h, w, 2)
        out.append(F.grid_sample(image, grid, mode="bilinear", align_corners=False))
    return torch.cat(out).clamp(0, 1)  # (T, 3, h, w)
