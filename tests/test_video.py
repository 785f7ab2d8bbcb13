"""nstlib.video: the flicker measure and the blending remedy are the docstring's equations, a self-made
clip (a registry photo, panned and zoomed, written here with imageio) goes through every feed-forward
network and back into a video with its audio, and `python -m nstlib video` fails in one line."""
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from nstlib import johnson, video
from nstlib.images import load_image

W, H, T, FPS = 96, 64, 12, 12


def _write_clip(path, frames, fps=FPS):
    """(T, 3, H, W) in [0, 1] -> an H.264 file, with imageio (imageio-ffmpeg underneath)."""
    pixels = (frames.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # (T, H, W, 3)
    iio.imwrite(path, pixels, fps=fps, codec="libx264", macro_block_size=1)
    return path


@pytest.fixture(scope="module")
def frames():
    return video.pan_zoom_frames(load_image("tubingen", max_size=256), T, (W, H))


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames):
    return _write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames)


@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory, clip):
    """The clip with one second of a 440 Hz tone (AAC) added by the ffmpeg that imageio-ffmpeg ships."""
    import imageio_ffmpeg

    path = tmp_path_factory.mktemp("audio") / "clip_audio.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:v", "copy", "-c:a", "aac",
                    str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def scream():
    return video.load_stylizer("scream", device="cpu")


# ----------------------------------------------------------------------------- the equations

def test_mean_abs_change_and_flicker_ratio_by_hand():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 2, 3, generator=gen, dtype=torch.float64)
    y = torch.rand(4, 3, 2, 3, generator=gen, dtype=torch.float64)

    def d(f):  # D = 1/(T-1) sum_{t>=1} mean_{c,h,w} |f_t - f_{t-1}|
        total = 0.0
        for t in range(1, 4):
            total += sum(abs(float(f[t, c, i, j] - f[t - 1, c, i, j]))
                         for c in range(3) for i in range(2) for j in range(3)) / 18
        return total / 3

    assert video.mean_abs_change(x) == pytest.approx(d(x), rel=1e-12)
    assert video.flicker_ratio(y, x) == pytest.approx(d(y) / d(x), rel=1e-12)
    assert video.flicker_ratio(x, x) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="T >= 2"):
        video.mean_abs_change(x[:1])
    with pytest.raises(ValueError, match="do not change"):
        video.flicker_ratio(y, x[:1].expand(4, -1, -1, -1))
    with pytest.raises(ValueError, match="differ in shape"):
        video.flicker_ratio(y[:3], x)


def test_blending_is_the_moving_average_and_the_meter_measures_it(frames):
    def paint(x):  # any frame -> frame function
        return (1 - x) ** 2

    meter = video.FlickerMeter()
    out = torch.cat(list(video.stylize_frames((f[None] for f in frames), paint, blend=0.4, meter=meter)))
    styl = paint(frames)
    expected = [styl[0]]
    for t in range(1, T):  # o_t = (1 - b) f(x_t) + b o_{t-1}
        expected.append(0.6 * styl[t] + 0.4 * expected[-1])
    expected = torch.stack(expected)
    assert torch.allclose(out, expected, atol=1e-6)
    assert meter.frames == T
    assert meter.change("input") == pytest.approx(video.mean_abs_change(frames), rel=1e-5)
    assert meter.change("stylised") == pytest.approx(video.mean_abs_change(styl), rel=1e-5)
    assert meter.change("output") == pytest.approx(video.mean_abs_change(expected), rel=1e-5)
    assert meter.departure == pytest.approx(float((expected - styl).abs().mean()), rel=1e-5)
    assert meter.change("output") < meter.change("stylised")  # blending damps change ...
    assert meter.departure > 0  # ... at a price
    # blend 0: every frame is its own stylisation
    plain = torch.cat(list(video.stylize_frames((f[None] for f in frames), paint)))
    assert torch.equal(plain, styl)
    with pytest.raises(ValueError, match="blend must lie in"):
        list(video.stylize_frames((f[None] for f in frames), paint, blend=1.0))


def test_pan_zoom_frames_move_smoothly(frames):
    assert frames.shape == (T, 3, H, W) and 0 <= frames.min() and frames.max() <= 1
    changes = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    assert (changes > 0.005).all() and (changes < 0.2).all()  # every frame moves, none jumps
    with pytest.raises(ValueError, match="at least 2"):
        video.pan_zoom_frames(frames[:1], 1)


def test_frame_sizes_are_even():
    assert video.frame_size(96, 64) == (96, 64)
    assert video.frame_size(95, 63) == (94, 62)  # one odd row and column cut
    assert video.frame_size(96, 64, max_size=50) == (50, 32)  # 33.3 rounds to 33, then down to even
    assert video.frame_size(640, 480, max_size=512) == (512, 384)


# ----------------------------------------------------------------------------- reading and writing

def test_probe_and_read_frames_round_trip(clip, frames):
    info = video.probe(clip)
    assert (info.width, info.height, info.fps, info.audio) == (W, H, FPS, None) and info.frames == T
    back = torch.cat(list(video.read_frames(clip)))
    assert back.shape == (T, 3, H, W) and back.dtype == torch.float32
    assert (back - frames).abs().mean() < 0.03  # H.264 and 4:2:0 chroma are lossy, not wrong
    small = torch.cat(list(video.read_frames(clip, max_size=48)))
    assert small.shape == (T, 3, 32, 48)


def test_stylize_video_writes_every_frame_and_measures_flicker(clip, scream, tmp_path):
    result = video.stylize_video(clip, tmp_path / "out.mp4", scream, progress=False)
    assert (result.frames, result.size, result.fps, result.audio) == (T, (W, H), FPS, "none in the input")
    info = video.probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.fps, info.frames) == (W, H, FPS, T)
    assert result.flicker_input > 0 and result.flicker_ratio > 0
    assert result.flicker_output == result.flicker_stylised and result.departure == 0  # no blending
    # the frames written are the network's, up to the codec
    out = torch.cat(list(video.read_frames(tmp_path / "out.mp4")))
    first = scream(next(video.read_frames(clip)))
    assert (out[0] - first[0]).abs().mean() < 0.05

    blended = video.stylize_video(clip, tmp_path / "blended.mkv", scream, blend=0.5, max_frames=6, progress=False)
    assert blended.frames == 6 and video.probe(tmp_path / "blended.mkv").frames == 6
    assert blended.output_flicker_ratio < blended.flicker_ratio and blended.departure > 0


def test_an_error_half_way_leaves_no_half_video(clip, tmp_path):
    calls = []

    def failing(x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the third frame
        return x

    with pytest.raises(KeyboardInterrupt):
        video.stylize_video(clip, tmp_path / "out.mp4", failing, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the video nor its .part folder


def test_audio_is_copied_when_present_and_can_be_left_out(clip_with_audio, scream, tmp_path):
    assert video.probe(clip_with_audio).audio == "aac"
    result = video.stylize_video(clip_with_audio, tmp_path / "out.mp4", scream, max_frames=4, progress=False)
    assert result.audio == "copied (aac)" and video.probe(tmp_path / "out.mp4").audio == "aac"
    result = video.stylize_video(clip_with_audio, tmp_path / "mute.mp4", scream, max_frames=4, keep_audio=False,
                                 progress=False)
    assert result.audio.startswith("left out") and video.probe(tmp_path / "mute.mp4").audio is None


def test_audio_plan_copies_what_the_container_takes():
    info = video.VideoInfo(None, W, H, FPS, 1.0, "pcm_s16le")
    from pathlib import Path

    assert video.audio_plan(info, Path("o.mkv")) == ("copy", "copied (pcm_s16le)")
    assert video.audio_plan(info, Path("o.mp4"))[0] == "aac"  # MP4 does not take PCM: re-encoded
    assert video.audio_plan(video.VideoInfo(None, W, H, FPS, 1.0, "aac"), Path("o.mp4"))[0] == "copy"
    assert video.audio_plan(video.VideoInfo(None, W, H, FPS, 1.0, None), Path("o.mp4")) == (None, "none in the input")


def test_not_a_video_and_bad_outputs_get_one_line_errors(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(ValueError, match="not a video ffmpeg can read") as e:
        video.probe(text)
    assert "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="no such video file"):
        video.probe(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="must end in .mp4"):
        video.check_output(tmp_path / "out.avi")
    with pytest.raises(ValueError, match="does not exist"):
        video.check_output(tmp_path / "nowhere" / "out.mp4")


# ----------------------------------------------------------------------------- every feed-forward network

def test_every_feed_forward_network_paints_frames(frames, tmp_path):
    x = frames[:1]  # (1, 3, H, W)
    torch.manual_seed(0)
    cin = johnson.TransformNet(n_styles=2, widths=(8, 16, 32), style_names=["a", "b"])
    cin.conv1.norm.bias.data[1] += 1.0  # style b differs from style a
    johnson.export_transform_net(cin, tmp_path / "cin.pth")
    stylizers = [video.load_stylizer("wave"), video.load_stylizer("a", model=tmp_path / "cin.pth"),
                 video.load_stylizer("b", model=tmp_path / "cin.pth"),
                 video.load_stylizer("starry_night", "adain", style_size=64),
                 video.load_stylizer("the_scream", "stylebank")]
    outs = {}
    for s in stylizers:
        y = s(x)
        assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and y.device.type == "cpu", s
        outs[s.name] = y
    assert not torch.allclose(outs["CIN a"], outs["CIN b"])
    assert set(outs) == {"Johnson wave", "CIN a", "CIN b", "AdaIN starry_night", "StyleBank the_scream"}
    with pytest.raises(ValueError, match="no published Johnson network 'starry_night'"):
        video.load_stylizer("starry_night")
    with pytest.raises(ValueError, match="has no style 'c'"):
        video.load_stylizer("c", model=tmp_path / "cin.pth")


def test_bf16_stylizer_runs_channels_last_and_stays_close_to_fp32(frames):
    x = frames[:1]
    fp32 = video.load_stylizer("udnie", precision="fp32")(x)
    bf16 = video.load_stylizer("udnie", precision="bf16")
    assert bf16.module.conv1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    y = bf16(x)
    assert y.dtype == torch.float32 and (y - fp32).abs().mean() < 0.05


# ----------------------------------------------------------------------------- the command

def test_the_video_command_stylises_and_reports_flicker(clip, tmp_path, capsys):
    from nstlib.__main__ import main

    out = tmp_path / "out.mp4"
    argv = ["video", str(clip), str(out), "--style", "scream", "--max-frames", "5", "--blend", "0.5",
            "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert f"wrote {out}: 5 frames of {W}x{H} at {FPS} fps" in text and "audio none in the input" in text
    assert "flicker (mean |frame change| over the input's):" in text and "blended by 0.5" in text
    assert main(argv) == 2  # exists
    assert "exists; pass --force" in capsys.readouterr().err
    assert main([*argv, "--force", "--max-size", "48"]) == 0
    assert video.probe(out).width == 48


@pytest.mark.parametrize("args, message", [
    (["OUT.avi", "--style", "scream"], "must end in .mp4"),
    (["OUT", "--style", "scream", "--blend", "1"], "--blend 1 must be below 1"),
    (["OUT", "--style", "starry_night"], "no published Johnson network 'starry_night'"),
    (["OUT", "--style", "nowhere", "--method", "adain"], "neither a file nor a registry name"),
    (["OUT", "--style", "scream", "--model", "missing.pth"], "--model 'missing.pth': no such file"),
])
def test_the_video_command_refuses_bad_arguments_in_one_line(clip, tmp_path, capsys, args, message):
    from nstlib.__main__ import main

    args = [str(tmp_path / "out.mp4") if a == "OUT" else str(tmp_path / a) if a.startswith("OUT.") else a
            for a in args]
    assert main(["video", str(clip), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out.mp4").exists()


def test_the_video_command_refuses_a_file_that_is_not_a_video(tmp_path, capsys):
    from nstlib.__main__ import main

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["video", str(text), str(tmp_path / "out.mp4"), "--style", "scream"]) == 2
    assert "not a video ffmpeg can read" in capsys.readouterr().err
