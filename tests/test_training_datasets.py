"""nstlib.training (atomic saves, every RNG restored) and nstlib.datasets (image sets, crops,
unpaired batches from one generator)."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from nstlib.training import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from nstlib.datasets import ImageSet, UnpairedBatches


def _draws(g):
    return (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=g)))


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(5)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state(g)})
    first = [_draws(g) for _ in range(3)]
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"], g)
    assert [_draws(g) for _ in range(3)] == first
    with pytest.raises(ValueError, match="generator states"):
        set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])


def test_checkpoint_saves_are_atomic_and_damage_is_reported(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "run" / "c.pt", {"step": 1})
    assert load_checkpoint(path)["step"] == 1

    def broken_save(obj, f):
        open(f, "wb").write(b"half a file")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a save

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint survived
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["c.pt"]  # no half-written file left
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


@pytest.fixture
def folder(tmp_path):
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        Image.new("RGB", (90 + 10 * i, 70), colour).save(tmp_path / f"img{i}.png")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (80, 80), (0, 0, 255)).save(tmp_path / "sub" / "deep.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"not an image either")
    return tmp_path


def test_image_set_finds_images_recursively_and_skips_broken_ones(folder):
    images = ImageSet([folder], load_size=40)
    assert len(images) == 4  # three images and the broken .png; the .txt is not listed
    g = torch.Generator().manual_seed(0)
    crops = [images.random_crop(32, g) for _ in range(20)]
    assert all(c.shape == (3, 32, 32) for c in crops)
    assert any("broken.png" in s for s in images.skipped)
    colours = {tuple(c[:, 0, 0].round().tolist()) for c in crops}
    assert colours == {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}


def test_image_set_takes_registry_names_and_reports_bad_sources(tmp_path):
    images = ImageSet(["tubingen", "starry_night"], load_size=64)
    assert images[0].shape[1] == 64  # shorter side
    with pytest.raises(FileNotFoundError, match="neither a folder"):
        ImageSet(["no_such_thing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        ImageSet([tmp_path / "empty"])
    with pytest.raises(ValueError, match="larger than the load size"):
        images.random_crop(128, torch.Generator())


def test_unpaired_batches_are_reproducible_from_the_generator(folder):
    a = ImageSet([folder], load_size=40)
    batches = UnpairedBatches(a, a, batch_size=3, crop=32, generator=torch.Generator().manual_seed(7))
    c, s = next(batches)
    assert c.shape == s.shape == (3, 3, 32, 32)
    again = UnpairedBatches(a, a, batch_size=3, crop=32, generator=torch.Generator().manual_seed(7))
    c2, s2 = next(again)
    assert torch.equal(c, c2) and torch.equal(s, s2)
    with pytest.raises(ValueError, match="batch_size"):
        UnpairedBatches(a, a, batch_size=0)


def test_shuffle_channels_permutes_each_image_on_its_own():
    from nstlib.datasets import shuffle_channels

    x = torch.rand(24, 3, 4, 5)
    out = shuffle_channels(x, torch.Generator().manual_seed(0))
    orders = set()
    for xi, oi in zip(x, out):
        order = tuple(next(j for j in range(3) if torch.equal(oi[k], xi[j])) for k in range(3))
        assert sorted(order) == [0, 1, 2]  # a permutation: the same three channels, no mixing
        orders.add(order)
    assert len(orders) > 3  # drawn per image: 24 images show most of the 6 orders
    assert torch.equal(out, shuffle_channels(x, torch.Generator().manual_seed(0)))  # from the generator alone


def test_unpaired_batches_can_shuffle_the_style_crops_channels(folder):
    a = ImageSet([folder], load_size=40)
    plain = UnpairedBatches(a, a, batch_size=6, crop=32, generator=torch.Generator().manual_seed(3))
    shuffled = UnpairedBatches(a, a, batch_size=6, crop=32, generator=torch.Generator().manual_seed(3),
                               shuffle_style_channels=True)
    (c, s), (c2, s2) = next(plain), next(shuffled)
    assert torch.equal(c, c2)  # content crops untouched
    assert not torch.equal(s, s2)  # the folder's images are pure red, green and blue: a shuffle shows
    for si, s2i in zip(s, s2):
        assert torch.equal(si.sort(dim=0).values, s2i.sort(dim=0).values)  # same crop, channels reordered


def test_checkpoints_and_exports_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    """Issue 24, 14: atomic but not durable; a power cut could leave a renamed, empty checkpoint."""
    import os

    from nstlib.training import save_checkpoint

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b))
    save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
    assert calls == ["fsync", "replace", "fsync"]  # the file, the rename, the folder
