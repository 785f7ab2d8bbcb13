"""nstlib.gpu_kit: the kit packs what a run reads (truncated fp16 VGG, resized images, hashes),
refuses a damaged kit by file name, and its CPU dry run goes through the same code path as the
GPU run, down to an exported decoder that the course's AdaIN loads."""
import json

import pytest
import torch

from nstlib import adain, gpu_kit
from nstlib.features import VGGFeatures
from nstlib.images import load_image
from nstlib.models import training_record

TINY = gpu_kit.Job(name="adain", method="adain", minutes=5.0,
                   settings=dict(batch_size=2, crop=32, steps=3, checkpoint_every=2, sample_every=2),
                   sources={"content": ["chicago", "cornell", "flowers"], "style": ["asheville", "mondrian"]},
                   sizes={"content": 48, "style": 40}, fps_size=64, notes=["tiny test job"])
TINY_GAN = gpu_kit.Job(name="cyclegan", method="cyclegan", minutes=5.0,
                       settings=dict(batch_size=2, crop=32, steps=3, checkpoint_every=2, sample_every=2),
                       sources={"A": ["chicago", "cornell"], "B": ["asheville", "mondrian"], "samples": ["flowers"]},
                       sizes={"A": 40, "B": 40, "samples": 32}, model=dict(blocks=1, width=8, norm="instance"))


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    kit_dir = tmp_path_factory.mktemp("kit") / ".device"
    manifest = gpu_kit.pack(kit_dir, [TINY], progress=False)
    return kit_dir, manifest


def test_pack_writes_truncated_fp16_vgg_resized_images_and_hashes(kit):
    kit_dir, manifest = kit
    job = manifest["jobs"][0]
    assert job["images"]["content"]["labels"] == ["chicago", "cornell", "flowers"]  # names, never machine paths
    assert manifest["vgg"]["up_to"] == adain.ENCODER_LAYER
    state = torch.load(kit_dir / manifest["vgg"]["file"], weights_only=True)
    assert {v.dtype for v in state.values()} == {torch.float16}
    assert "features.24.weight" not in state and "features.17.weight" in state  # conv5_1 out, conv4_1 in
    for role, size in (("content", 48), ("style", 40)):
        for path in sorted((kit_dir / job["images"][role]["folder"]).iterdir()):
            assert min(load_image(path).shape[-2:]) == size  # large sources shrunk to the load size
    assert set(manifest["files"]) == {p.relative_to(kit_dir).as_posix() for p in kit_dir.rglob("*")
                                      if p.is_file() and p.name != gpu_kit.KIT_FILE}


def test_truncated_vgg_gives_the_full_networks_features(kit, vgg16):
    kit_dir, manifest = kit
    small = gpu_kit.kit_vgg(kit_dir, manifest, torch.device("cpu"))
    x = load_image("chicago", size=64)
    a, b = small.extract(x, "relu4_1")["relu4_1"], vgg16.extract(x, "relu4_1")["relu4_1"]
    assert (a - b).abs().max() < 1e-2 * b.abs().max()  # fp16 weights: close, not equal
    with pytest.raises(ValueError, match="missing"):
        VGGFeatures("vgg16", kit_dir / manifest["vgg"]["file"], up_to="relu5_1")  # the file stops at relu4_1


def test_pack_refuses_a_folder_that_is_not_a_kit(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not overwriting"):
        gpu_kit.pack(tmp_path, [TINY], progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_pack_refuses_a_kit_over_the_size_limit(tmp_path):
    with pytest.raises(ValueError, match="more than"):
        gpu_kit.pack(tmp_path / "kit", [TINY], max_mib=1, progress=False)


def test_datasets_sources_need_the_datasets_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(gpu_kit.DATASETS_ENV, raising=False)
    job = gpu_kit.Job(**{**TINY.__dict__, "sources": {**TINY.sources, "content": ["datasets:photos/bsds500/train"]}})
    with pytest.raises(ValueError, match=gpu_kit.DATASETS_ENV):
        gpu_kit.pack(tmp_path / "kit", [job], progress=False)


def test_a_flipped_byte_is_reported_by_name(kit, tmp_path):
    import shutil

    kit_dir, manifest = kit
    copy = tmp_path / "kit"
    shutil.copytree(kit_dir, copy)
    victim = copy / manifest["jobs"][0]["images"]["style"]["folder"] / "00001.jpg"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="00001.jpg does not match"):
        gpu_kit.run(copy, tmp_path / "out", device="cpu")


def test_cpu_dry_run_exports_a_decoder_the_course_loads(kit, tmp_path):
    kit_dir, _ = kit
    out = tmp_path / "out"
    summary = gpu_kit.run(kit_dir, out, device="cpu")
    job = summary["jobs"]["adain"]
    assert job["steps"] == 3 and set(job["fps"]) == {"size", "fp32", "bf16"}
    assert sorted(p.name for p in out.iterdir()) == ["adain_decoder_vgg16.pth", "adain_samples.jpg", "log.txt",
                                                     "summary.json"]
    assert json.loads((out / "summary.json").read_text())["jobs"]["adain"]["sha256"] == job["sha256"]
    record = training_record(out / "adain_decoder_vgg16.pth")
    assert record["steps"] == 3 and record["settings"]["precision"] == "bf16"
    assert record["machine"].startswith("cpu") and record["content"] == ["chicago", "cornell", "flowers"]
    model = adain.load_decoder(adain.AdaIN("vgg16", "caffe"), out / "adain_decoder_vgg16.pth")
    y = model(load_image("chicago", size=64), load_image("asheville", size=64))
    assert y.shape == (1, 3, 64, 96) and torch.isfinite(y).all()


def test_the_time_budget_ends_a_run_with_its_checkpoint(kit, tmp_path):
    kit_dir, _ = kit
    summary = gpu_kit.run(kit_dir, tmp_path / "out", device="cpu", minutes=1e-9)
    assert summary["jobs"]["adain"]["steps"] == 1  # the budget is checked after each step
    assert training_record(tmp_path / "out" / "adain_decoder_vgg16.pth")["stopped"] == "interrupted"


def test_a_run_can_continue_an_exported_model(kit, tmp_path):
    kit_dir, _ = kit
    gpu_kit.run(kit_dir, tmp_path / "first", device="cpu")
    first = tmp_path / "first" / "adain_decoder_vgg16.pth"
    gpu_kit.run(kit_dir, tmp_path / "second", device="cpu", init=first)
    record = training_record(tmp_path / "second" / "adain_decoder_vgg16.pth")
    assert record["init"]["record"]["steps"] == 3 and record["init"]["sha256"] == gpu_kit.file_hash(first)
    assert record["command"].endswith("--init " + first.as_posix())


def test_cyclegan_job_exports_a_generator_pair_and_fits_its_steps_to_the_budget(tmp_path):
    from nstlib.cyclegan import load_generators

    kit_dir = tmp_path / "kit"
    manifest = gpu_kit.pack(kit_dir, [TINY_GAN], progress=False)
    assert manifest["vgg"] is None  # CycleGAN's losses need no VGG: none is packed
    summary = gpu_kit.run(kit_dir, tmp_path / "out", device="cpu")
    assert summary["jobs"]["cyclegan"]["steps"] == 3
    G, F = load_generators(tmp_path / "out" / "cyclegan_generators.pth")
    x = load_image("flowers", size=32)[..., :32, :32]
    assert G(x).shape == x.shape and torch.isfinite(F(G(x))).all()
    record = training_record(tmp_path / "out" / "cyclegan_generators.pth")
    assert record["samples"] == ["flowers"] and record["settings"]["precision"] == "bf16"
    assert (tmp_path / "out" / "cyclegan_samples.jpg").is_file()

    # without a step count, 60 steps measure the speed and the run is sized to fill the budget
    timed = gpu_kit.Job(**{**TINY_GAN.__dict__, "settings": {k: v for k, v in TINY_GAN.settings.items() if k != "steps"}})
    gpu_kit.pack(kit_dir, [timed], progress=False)
    summary = gpu_kit.run(kit_dir, tmp_path / "timed", device="cpu", minutes=0.2)
    log = (tmp_path / "timed" / "log.txt").read_text()
    planned = int(log.split(" ms per step: training ")[1].split()[0])
    assert 60 <= summary["jobs"]["cyclegan"]["steps"] <= planned  # the deadline stays a safety net


def test_a_run_is_planned_to_fill_its_budget_at_the_measured_speed():
    seconds = [0.5 + 0.1 * i for i in range(60)]  # 10 steps per second after a slow first step
    steps, per_step = gpu_kit.planned_steps(seconds, budget_s=60.0)
    assert per_step == pytest.approx(0.1)
    assert steps == 60 + int(0.97 * (60.0 - seconds[-1]) / 0.1)  # 60 measured, then 97% of what is left
    assert gpu_kit.planned_steps(seconds, budget_s=3.0)[0] == 60  # over budget already: no more steps
    # a calibration the deadline cut short (fewer than 12 steps): every step is timed, nothing indexes past the end
    assert gpu_kit.planned_steps([0.5, 1.0, 1.5], budget_s=3.0) == (3 + int(0.97 * 1.5 / 0.5), 0.5)
    assert gpu_kit.planned_steps([2.0], budget_s=3.0) == (1, 2.0)


def test_kit_pack_command_packs_a_real_job(tmp_path, capsys):
    """The CLI the team runs before a GPU call, on the real horse2zebra subset (CI: NSTLIB_DATASETS_DIR)."""
    from nstlib.__main__ import main
    from tests.conftest import shared_file

    shared_file("NSTLIB_DATASETS_DIR", "horse2zebra/trainA/n02381460_1001.jpg")
    assert main(["kit-pack", "--kit", str(tmp_path / "kit"), "--jobs", "cyclegan"]) == 0
    assert "cyclegan: 200 A, 200 B, 40 samples" in capsys.readouterr().out
    assert gpu_kit.verify(tmp_path / "kit")["jobs"][0]["images"]["samples"]["labels"][0].startswith("horse2zebra/testA/")


def test_files_too_large_to_come_back_are_split_and_joined(tmp_path):
    from nstlib.__main__ import main

    out = tmp_path / "out"
    out.mkdir()
    big = bytes(range(256)) * 1000  # 256,000 bytes
    (out / "model.pth").write_bytes(big)
    (out / "log.txt").write_text("small")
    parts = gpu_kit.split_large_files(out, limit=100_000)
    assert parts["model.pth"]["parts"] == ["model.pth.part00", "model.pth.part01", "model.pth.part02"]
    assert not (out / "model.pth").exists() and (out / "log.txt").is_file()
    (out / "summary.json").write_text(json.dumps({"parts": parts}))
    assert main(["kit-join", str(out), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "model.pth").read_bytes() == big
    (out / "model.pth.part01").write_bytes(b"x" * 100_000)  # a damaged part is caught by the hash
    with pytest.raises(ValueError, match="does not match"):
        gpu_kit.join_parts(out, tmp_path)


TINY_JOHNSON = gpu_kit.Job(name="johnson", method="johnson", minutes=5.0,
                           settings=dict(batch_size=2, crop=32, steps=3, checkpoint_every=2, sample_every=2),
                           sources={"content": ["chicago", "cornell"], "style": ["the_scream", "la_muse"]},
                           sizes={"content": 40, "style": 48})


def test_johnson_job_trains_a_cin_network_the_course_loads(tmp_path):
    from nstlib import johnson

    manifest = gpu_kit.pack(tmp_path / "kit", [TINY_JOHNSON], progress=False)
    assert manifest["vgg"]["up_to"] == "relu4_3"  # Johnson's last style layer
    summary = gpu_kit.run(tmp_path / "kit", tmp_path / "out", device="cpu")
    assert summary["jobs"]["johnson"]["steps"] == 3
    model = johnson.load_transform_net(tmp_path / "out" / "johnson_cin_2styles.pth")
    assert model.style_names == ["the_scream", "la_muse"] and model.n_styles == 2
    x = load_image("flowers", size=32)
    assert model(x, 1).shape == x.shape
    record = training_record(tmp_path / "out" / "johnson_cin_2styles.pth")
    assert record["style"] == ["the_scream", "la_muse"] and record["settings"]["precision"] == "bf16"
    assert (tmp_path / "out" / "johnson_samples.jpg").is_file()
