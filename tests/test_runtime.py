"""nstlib.runtime and the command line: device choice, seeding, quick mode, describe(), `info`."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import nstlib
from nstlib import runtime


def test_quick_mode_follows_the_environment(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("0", False), ("", False), ("no", False)]:
        monkeypatch.setenv("NSTLIB_QUICK", value)
        assert runtime.is_quick() is expected
    monkeypatch.delenv("NSTLIB_QUICK")
    assert runtime.is_quick() is False


def test_config_applies_quick_values_in_one_call(monkeypatch):
    monkeypatch.setenv("NSTLIB_QUICK", "1")
    cfg = nstlib.config(size=512, steps=300, style="starry_night", quick=dict(size=128, steps=20))
    assert (cfg.size, cfg.steps, cfg.style, cfg.quick) == (128, 20, "starry_night", True)
    monkeypatch.setenv("NSTLIB_QUICK", "0")
    cfg = nstlib.config(size=512, steps=300, quick=dict(size=128, steps=20))
    assert (cfg.size, cfg.steps, cfg.quick) == (512, 300, False)
    _pretend(monkeypatch, cuda=True, mps=False)
    assert nstlib.config(size=512).device == torch.device("cuda")  # the best there is
    assert nstlib.config(size=512, device="cpu").device == torch.device("cpu")  # or the one asked for


def _pretend(monkeypatch, cuda: bool, mps: bool, cuda_count: int = 1):
    """Make runtime see a machine with or without a CUDA GPU and Apple's MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_count if cuda else 0)
    monkeypatch.setattr(runtime, "_mps_available", lambda: mps)


def test_config_rejects_quick_only_keys():
    with pytest.raises(ValueError, match="no full-mode value"):
        nstlib.config(size=512, quick=dict(steps=3))


def test_seed_everything_repeats_every_rng():
    def draw():
        return (torch.rand(3).tolist(), np.random.rand(3).tolist(), __import__("random").random())

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    runtime.seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("cuda, mps, best", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                             (False, False, "cpu")])
def test_device_choice_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, best):
    _pretend(monkeypatch, cuda=cuda, mps=mps)
    assert runtime.get_device() == torch.device(best)
    assert runtime.get_device("cpu") == torch.device("cpu")  # asked for: taken, whatever else is here


def test_device_choice_on_this_machine():
    """Unpatched: what this machine has (a CPU-only CI runner gets cpu)."""
    assert runtime.get_device().type in runtime.DEVICE_TYPES
    assert runtime.get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert runtime.get_device().type != "cuda"


@pytest.mark.parametrize("name, cuda, mps, message", [
    ("cuda", False, False, "device cuda: no CUDA GPU is available here"),
    ("cuda:1", True, False, "device cuda:1: there are only 1 CUDA devices"),
    ("mps", True, False, "device mps: MPS (Apple GPU) is not available here"),
    ("meta", True, True, "device meta: nstlib runs on cpu, cuda or mps, not meta"),
    ("toaster", True, True, "device 'toaster': not a device name (cpu, cuda, mps)"),
])
def test_a_device_that_is_not_here_is_an_error_saying_why(monkeypatch, name, cuda, mps, message):
    """One source for these messages: the command line's --device check prints them too."""
    _pretend(monkeypatch, cuda=cuda, mps=mps)
    with pytest.raises(runtime.DeviceError, match=f"^{re.escape(message)}") as e:
        runtime.get_device(name)
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, ValueError)
    assert f"device {e.value.label}: {e.value.reason}" == str(e.value)
    if name == "cuda":
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            nstlib.config(size=1, device="cuda")


def test_describe_is_one_line(monkeypatch):
    monkeypatch.setenv("NSTLIB_QUICK", "1")
    line = nstlib.describe("cpu")
    assert "\n" not in line and "quick mode" in line and torch.__version__ in line and "cpu" in line


def test_nstlib_imports_without_torchvision():
    """torchvision's wheels do not import next to a CPU-only torch: nstlib must not need it."""
    code = ("import sys; sys.modules['torchvision'] = None\n"
            "import nstlib, nstlib.features, nstlib.weights, nstlib.data, nstlib.images, nstlib.__main__\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_info_command_reports_what_is_found():
    env = dict(os.environ, NSTLIB_QUICK="1")
    out = subprocess.run([sys.executable, "-m", "nstlib", "info"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"torch {torch.__version__}" in text and "quick mode" in text
    assert "NSTLIB_WEIGHTS_DIR" in text and "NSTLIB_DATA_DIR" in text
    for name in ("vgg16-caffe", "vgg19-caffe", "vgg16-torchvision", "vgg19-torchvision"):
        assert name in text
    if os.environ.get("NSTLIB_WEIGHTS_DIR"):  # CI: the shared copies must be reported as found
        assert "vgg16-caffe        found" in text
    if os.environ.get("NSTLIB_DATA_DIR"):
        assert "content  13 of 13 found" in text and "style    15 of 15 found" in text


def test_info_for_stored_outputs_shows_no_machine_path(tmp_path, monkeypatch):
    from nstlib.runtime import info

    weights_dir = tmp_path / "my-secret-folder"
    weights_dir.mkdir()
    monkeypatch.setenv("NSTLIB_WEIGHTS_DIR", str(weights_dir))
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    assert "my-secret-folder" in info() and str(tmp_path) not in info(paths=False)
    assert "NSTLIB_WEIGHTS_DIR = set" in info(paths=False)


def test_cli_without_a_command_explains_itself():
    out = subprocess.run([sys.executable, "-m", "nstlib"], capture_output=True, text=True)
    assert out.returncode == 2 and "info" in out.stderr


CPUINFO = """processor\t: 0
model name\t: Test CPU 9000
flags\t\t: fpu sse2 avx512f {extra}
"""


@pytest.mark.parametrize("extra, expected", [("avx512_bf16 amx_bf16 amx_tile", ("amx_bf16", "avx512_bf16")),
                                             ("avx512_bf16", ("avx512_bf16",)), ("avx512vl", ())])
def test_bf16_instructions_are_read_from_the_cpu_flags(tmp_path, monkeypatch, extra, expected):
    (tmp_path / "cpuinfo").write_text(CPUINFO.format(extra=extra))
    monkeypatch.setattr(runtime, "CPUINFO", tmp_path / "cpuinfo")
    assert runtime.cpu_bf16() == expected
    assert runtime.cpu_name() == f"Test CPU 9000 ({', '.join(expected) or 'no bf16 instructions'})"
    monkeypatch.setattr(runtime, "CPUINFO", tmp_path / "missing")  # macOS, Windows: nothing is claimed
    assert runtime.cpu_bf16() == () and runtime.cpu_name() == "unknown CPU (no bf16 instructions)"


def test_describe_says_which_precision_runs_and_why(tmp_path, monkeypatch):
    (tmp_path / "cpuinfo").write_text(CPUINFO.format(extra="avx512_bf16"))
    monkeypatch.setattr(runtime, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.delenv("NSTLIB_PRECISION", raising=False)
    line = runtime.describe("cpu")
    assert ("| bf16 for stylize, adain training, stylebank training, fp32 elsewhere (the default: this CPU has "
            "avx512_bf16; NSTLIB_PRECISION=fp32 or bf16 sets one for all) |") in line
    monkeypatch.setenv("NSTLIB_PRECISION", "fp32")
    assert "| fp32 (NSTLIB_PRECISION=fp32) |" in runtime.describe("cpu")
    monkeypatch.setenv("NSTLIB_PRECISION", "bf16")
    assert "| bf16 (NSTLIB_PRECISION=bf16) |" in runtime.describe("cpu")  # native here: nothing to add
    (tmp_path / "cpuinfo").write_text(CPUINFO.format(extra=""))
    assert "| bf16 (NSTLIB_PRECISION=bf16, emulated on this cpu: slower than fp32) |" in runtime.describe("cpu")
    monkeypatch.delenv("NSTLIB_PRECISION")
    assert "| fp32 (the default: no bf16 instructions on this CPU) |" in runtime.describe("cpu")


@pytest.mark.parametrize("extra, native", [("avx512_bf16", "bf16"), ("amx_bf16", "bf16"), ("avx512vl", "fp32")])
def test_bf16_is_the_default_only_for_measured_methods_on_native_hardware(tmp_path, monkeypatch, extra, native):
    (tmp_path / "cpuinfo").write_text(CPUINFO.format(extra=extra))
    monkeypatch.setattr(runtime, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.delenv("NSTLIB_PRECISION", raising=False)
    for method in runtime.BF16_MEASURED:
        assert runtime.precision(device="cpu", method=method) == native
        assert runtime.precision(device="mps", method=method) == "fp32"
    assert runtime.precision(device="cpu") == "fp32"  # reconstruction, CycleGAN, ...: not at parity
    assert runtime.precision("bf16", "cpu") == "bf16" and runtime.precision("fp32", "cpu", "stylize") == "fp32"
    monkeypatch.setenv("NSTLIB_PRECISION", " FP32 ")  # the environment sets one for all
    assert runtime.precision(device="cpu", method="stylize") == "fp32"
    monkeypatch.setenv("NSTLIB_PRECISION", "bf16")
    assert runtime.precision(device="cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        runtime.precision("", "cpu")
    with pytest.raises(ValueError, match="method must be one of"):
        runtime.precision(device="cpu", method="stylise")


@pytest.mark.parametrize("extra, expected", [("avx512_bf16", "bf16"), ("amx_bf16", "bf16"), ("avx512vl", "fp32")])
def test_fast_precision_is_bf16_only_where_the_cpu_runs_it_natively(tmp_path, monkeypatch, extra, expected):
    (tmp_path / "cpuinfo").write_text(CPUINFO.format(extra=extra))
    monkeypatch.setattr(runtime, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setenv("NSTLIB_PRECISION", "fp32")  # the default precision does not decide it
    assert runtime.fast_precision("cpu") == expected
    assert runtime.fast_precision("mps") == "fp32"


def test_fast_precision_on_cuda_asks_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert runtime.fast_precision("cuda") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.fast_precision("cuda") == "bf16"
