"""nstlib.training_sets' pinned sets (issue 27): per-file manifests pinned by the table, lookup
($NSTLIB_DATASETS_DIR, cache, download from 127.0.0.1), verification stamps, held-out folders, the
`datasets` command, and the trainers reading the sets by name. Nothing here contacts the internet;
the real sets are read from the developers' shared copy (CI fails, elsewhere skips, without it)."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nstlib import training_sets as ts
from nstlib.data import shipped_file
from nstlib.download import DownloadError, HashMismatchError

from tests.conftest import shared_file

PINNED = ["bsds500", "monet", "wikiart", "horse2zebra", "deep_photo"]


@pytest.fixture
def shared_root():
    """$NSTLIB_DATASETS_DIR of the developers (CI: ../shared/datasets)."""
    return shared_file(ts.DATASETS_ENV, "photos/bsds500/test/100007.jpg").parents[3]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ----------------------------------------------------------------------------- the table

def test_every_pinned_set_has_a_manifest_matching_the_table():
    sets = ts.training_sets()
    assert set(PINNED) <= set(sets)
    for name in PINNED + ["monet2photo"]:
        e = sets[name]
        rows = ts.manifest(name)  # checks the manifest's own sha256
        assert hashlib.sha256(shipped_file(e.manifest).read_bytes()).hexdigest() == e.manifest_sha256
        assert (len(rows), sum(r.bytes for r in rows)) == (e.files, e.files_bytes), name
        assert len({r.path for r in rows}) == len(rows) and all(len(r.sha256) == 64 for r in rows)
        assert not e.file_url or e.file_url.startswith("https://raw.githubusercontent.com/")
    assert ts.splits("bsds500") == {"test": 200, "train": 200, "val": 100}
    assert ts.splits("horse2zebra") == {"testA": 40, "testB": 40, "trainA": 200, "trainB": 200}
    assert len(ts.splits("wikiart")) == 10 and set(ts.splits("wikiart").values()) == {120}
    assert ts.splits("monet") == {} and ts.training_set("monet").files == 500
    assert sets["bsds500"].held_out == ("test",) and sets["horse2zebra"].held_out == ("testA", "testB")
    # the full archive entry of horse2zebra is still there for full-scale runs
    assert sets["horse2zebra"].folders == {"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140}


def test_unpinned_archives_fail_loudly_saying_what_is_missing():
    with pytest.raises(ts.DatasetError, match="vangogh2photo is not pinned.*no manifest"):
        ts.fetch_training_set("vangogh2photo")
    with pytest.raises(ts.DatasetError, match="no manifest"):
        ts.dataset("cezanne2photo")


def test_a_changed_manifest_is_refused(monkeypatch, tmp_path):
    copy = tmp_path / "m.tsv"
    copy.write_text(shipped_file("datasets/deep_photo.tsv").read_text(encoding="utf-8") + "x\t" + "0" * 64 + "\t1\n",
                    encoding="utf-8")
    entry = ts.training_set("deep_photo")
    monkeypatch.setattr(ts, "training_sets", lambda: {"deep_photo": ts.TrainingSet(
        **{**entry.__dict__, "manifest": str(copy)})})
    with pytest.raises(ts.DatasetError, match="manifest was changed"):
        ts.manifest("deep_photo")


def test_spec_parsing():
    assert ts.parse_spec("bsds500") == ("bsds500", None)
    assert ts.parse_spec("wikiart/cubism") == ("wikiart", "cubism")
    assert ts.parse_spec("datasets:photos/bsds500/train") == ("bsds500", "train")
    assert ts.parse_spec("datasets:paintings/monet") == ("monet", None)
    assert ts.parse_spec("tubingen") is None and ts.parse_spec("vangogh2photo") is None


# ----------------------------------------------------------------------------- the shared copy

def test_the_shared_copy_is_found_verified_once_and_held_out_folders_are_left_out(shared_root, fresh_cache,
                                                                                  monkeypatch):
    monkeypatch.setenv(ts.DATASETS_ENV, str(shared_root))
    hashed = []
    real = ts.file_hash
    monkeypatch.setattr(ts, "file_hash", lambda p, *a: hashed.append(Path(p)) or real(p, *a))
    train = ts.dataset_files("bsds500", training=True)
    assert len(train) == 300 and not any("/test/" in p.as_posix() for p in train)
    assert len([p for p in hashed if p.suffix == ".jpg"]) == 300  # each file read once; test/ is not read
    hashed.clear()
    ts._manifest_cached.cache_clear()
    assert len(ts.dataset_files("bsds500", "train", training=True)) == 200
    assert [p for p in hashed if p.suffix == ".jpg"] == []  # stamped: nothing re-hashed
    assert ts.dataset("bsds500", "test") == shared_root / "photos/bsds500/test"  # evaluation may read it
    with pytest.raises(ts.DatasetError, match="held out"):
        ts.dataset_files("bsds500", "test", training=True)
    with pytest.raises(ts.DatasetError, match="held out"):
        ts.dataset_files("horse2zebra", "testB", training=True)
    assert len(ts.dataset_files("horse2zebra", training=True)) == 400
    assert len(ts.dataset_files("wikiart", "ukiyo_e", training=True)) == 120
    with pytest.raises(ts.DatasetError, match="no folder 'cubist'"):
        ts.dataset("wikiart", "cubist")


def _copy_with_flipped_byte(shared_root: Path, name: str, tmp: Path) -> tuple[Path, Path]:
    """A copy of set `name` (symlinks to the shared files, one file copied with a byte flipped)."""
    entry = ts.training_set(name)
    root = tmp / "datasets"
    rows = ts.manifest(name)
    victim = rows[len(rows) // 2].path
    for row in rows:
        target = root / entry.path / row.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if row.path == victim:
            raw = bytearray((shared_root / entry.path / row.path).read_bytes())
            raw[len(raw) // 2] ^= 0x01
            target.write_bytes(bytes(raw))
        else:
            target.symlink_to(shared_root / entry.path / row.path)
    return root, root / entry.path / victim


@pytest.mark.parametrize("name", PINNED)
def test_a_flipped_byte_in_a_copy_of_any_set_is_reported_by_name(name, shared_root, fresh_cache, tmp_path,
                                                                 monkeypatch, capsys):
    from nstlib.__main__ import main

    root, victim = _copy_with_flipped_byte(shared_root, name, tmp_path)
    monkeypatch.setenv(ts.DATASETS_ENV, str(root))
    assert main(["datasets", "--verify", name]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {victim}: sha256" in out and out.count("FAILED") == 1
    with pytest.raises(ts.DatasetError, match=victim.name):  # and the trainers' lookup refuses it
        ts.dataset_files(name)


def test_the_datasets_command_lists_and_verifies_the_shared_copy(shared_root, fresh_cache, monkeypatch, capsys):
    from nstlib.__main__ import main

    monkeypatch.setenv(ts.DATASETS_ENV, str(shared_root))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "bsds500" in out and "vangogh2photo" in out and "archive only" in out
    assert main(["datasets", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "every set matches its manifest" in out
    for name in PINNED:
        assert f"{len(ts.manifest(name))} files match datasets/{name}.tsv" in out
    assert main(["datasets", "nosuchset"]) == 2


# ----------------------------------------------------------------------------- downloads, on 127.0.0.1

def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 48, 3), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


TOY = {"train/a.png": _png(10), "train/b.png": _png(60), "val/c.png": _png(120), "test/d é.png": _png(200)}


@pytest.fixture
def toyset(tmp_path, monkeypatch, http_server, fresh_cache):
    """A registry with one tiny set, 'toy', served by the local server under other folder names."""
    monkeypatch.delenv(ts.DATASETS_ENV, raising=False)
    src = tmp_path / "src"
    for rel, data in TOY.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
        top, rest = rel.split("/")
        http_server.add(f"/repo/0123abcd/{top.upper()}/" + urllib.parse.quote(rest), data)
    sha = ts.write_manifest(src, tmp_path / "toy.tsv")
    entry = ts.TrainingSet("toy", (), "", 0, {}, "test", "test", path="photos/toy", manifest=str(tmp_path / "toy.tsv"),
                           manifest_sha256=sha, file_url=http_server.url("/repo/0123abcd/{path}"),
                           renames={"train": "TRAIN", "val": "VAL", "test": "TEST"}, held_out=("test",), files=4,
                           files_bytes=sum(map(len, TOY.values())))
    monkeypatch.setattr(ts, "training_sets", lambda: {"toy": entry})
    ts._manifest_cached.cache_clear()
    return entry


def test_a_set_is_downloaded_file_by_file_verified_and_moved_into_place(toyset, http_server, fresh_cache):
    files = ts.dataset_files("toy", training=True)
    target = fresh_cache / "datasets" / "pinned" / "photos" / "toy"
    assert files == [target / "train/a.png", target / "train/b.png", target / "val/c.png"]
    assert sorted(http_server.requests) == sorted(["/repo/0123abcd/TRAIN/a.png", "/repo/0123abcd/TRAIN/b.png",
                                                   "/repo/0123abcd/VAL/c.png", "/repo/0123abcd/TEST/d%20%C3%A9.png"])
    assert not (fresh_cache / "datasets" / "pinned" / ".partial" / "toy").exists()
    assert ts.status("toy")["state"] == "4 of 4 files, all verified"
    http_server.requests.clear()
    assert ts.dataset("toy", "test") == target / "test"
    assert http_server.requests == []  # found in the cache, checked by its stamps


def test_a_wrong_file_from_the_server_leaves_no_set(toyset, http_server, fresh_cache):
    http_server.add("/repo/0123abcd/VAL/c.png", _png(121))
    with pytest.raises(HashMismatchError, match="c.png"):
        ts.dataset("toy")
    assert not (fresh_cache / "datasets" / "pinned" / "photos" / "toy").exists()


def test_an_interrupted_download_resumes_with_the_missing_files(toyset, http_server, fresh_cache):
    del http_server.files["/repo/0123abcd/VAL/c.png"]
    with pytest.raises(DownloadError, match="c.png"):
        ts.dataset("toy")
    assert not (fresh_cache / "datasets" / "pinned" / "photos" / "toy").exists()  # no half set in place
    http_server.add("/repo/0123abcd/VAL/c.png", TOY["val/c.png"])
    http_server.requests.clear()
    folder = ts.dataset("toy")
    assert http_server.requests == ["/repo/0123abcd/VAL/c.png"]  # the others were kept in .partial
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == sorted(TOY)


def test_a_cached_file_that_changes_is_hashed_again_and_named(toyset, fresh_cache):
    folder = ts.dataset("toy")
    victim = folder / "train" / "b.png"
    raw = bytearray(victim.read_bytes())
    raw[-5] ^= 0xFF
    victim.write_bytes(bytes(raw))
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    with pytest.raises(ts.DatasetError, match=r"(?s)b\.png: sha256 .*remove_training_set"):
        ts.dataset("toy")
    ts.remove_training_set("toy")
    assert ts.dataset("toy", "train") == folder / "train"  # downloaded again


def test_the_datasets_folder_wins_and_a_different_copy_there_is_an_error(toyset, tmp_path, monkeypatch, http_server):
    local = tmp_path / "local"
    for rel, data in TOY.items():
        (local / "photos/toy" / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / "photos/toy" / rel).write_bytes(data)
    monkeypatch.setenv(ts.DATASETS_ENV, str(local))
    assert ts.dataset("toy") == local / "photos/toy" and http_server.requests == []
    (local / "photos/toy/val/c.png").unlink()
    with pytest.raises(ts.DatasetError, match=r"(?s)c\.png: missing.*NSTLIB_DATASETS_DIR"):
        ts.dataset("toy")
    assert ts.dataset("toy", "train").name == "train"  # the other folders are still usable


def test_image_set_and_gpu_kit_read_sets_by_name(toyset, monkeypatch, tmp_path):
    from nstlib import gpu_kit
    from nstlib.datasets import ImageSet

    images = ImageSet(["toy"], load_size=32)
    assert len(images) == 3 and all(p.parent.name in ("train", "val") for p in images.items)  # test/ held out
    assert len(ImageSet(["datasets:toy/val"], load_size=32)) == 1
    with pytest.raises(ts.DatasetError, match="held out"):
        ImageSet(["toy/test"])
    monkeypatch.setenv(ts.DATASETS_ENV, str(tmp_path / "nowhere"))
    ts.dataset("toy")  # into the cache: the kit packs verified files from there too
    labels = [label for label, _ in gpu_kit._sources(["datasets:toy/train", "datasets:photos/toy/val"])]
    assert labels == ["photos/toy/train/a.png", "photos/toy/train/b.png", "photos/toy/val/c.png"]


# ----------------------------------------------------------------------------- trainers, quick mode

def test_adain_trains_on_bsds500_and_wikiart_by_name(shared_root, fresh_cache, monkeypatch, tmp_path, capsys):
    from nstlib.__main__ import main
    from nstlib.models import training_record

    monkeypatch.setenv(ts.DATASETS_ENV, str(shared_root))
    argv = ["train-adain", "--run-dir", str(tmp_path / "run"), "--content", "bsds500", "--style", "wikiart/cubism",
            "monet", "--steps", "1", "--batch-size", "1", "--crop", "32", "--load-size", "40", "--sample-every", "1",
            "--device", "cpu", "--export", str(tmp_path / "decoder.pth")]
    assert main(argv) == 0, capsys.readouterr().err
    assert "finished at step 1" in capsys.readouterr().out
    record = training_record(tmp_path / "decoder.pth")
    assert record["content"] == ["bsds500"] and record["style"] == ["wikiart/cubism", "monet"]


def test_stylebank_trains_on_bsds500_by_name(shared_root, fresh_cache, monkeypatch, tmp_path, capsys):
    from nstlib.__main__ import main

    monkeypatch.setenv(ts.DATASETS_ENV, str(shared_root))
    painting = ts.dataset_files("wikiart", "ukiyo_e")[0]
    argv = ["train-stylebank", "--run-dir", str(tmp_path / "run"), "--style", str(painting), "--content", "bsds500/val",
            "--steps", "1", "--batch-size", "1", "--crop", "32", "--load-size", "40", "--style-size", "48",
            "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "finished at step 1" in capsys.readouterr().out


def test_cyclegan_trains_on_horse2zebra_by_name(shared_root, fresh_cache, monkeypatch, tmp_path):
    from nstlib.cyclegan import CycleGAN
    from nstlib.cyclegan_training import train_translation
    from nstlib.translation_task import FolderTask

    monkeypatch.setenv(ts.DATASETS_ENV, str(shared_root))
    task = FolderTask.from_dataset("horse2zebra", crop=32, load_size=40, n_samples=2)
    assert len(task.a) == len(task.b) == 200
    assert all("/train" in Path(p).as_posix() for p in task.a.items + task.b.items)  # test* never trained on
    torch.manual_seed(0)
    run = train_translation(CycleGAN(blocks=1, width=8), task, tmp_path, steps=1, progress=False,
                            checkpoint_every=1, eval_every=1, sample_every=1)
    assert run.step == 1 and (tmp_path / "samples" / "step_0000001.jpg").is_file()
    shutil.rmtree(tmp_path / "samples")
