"""nstlib.data: the registry file, its agreement with the shared manifest, look-up and pickers."""
import csv
import re

import pytest

from nstlib import data
from nstlib.images import load_image
from tests.conftest import shared_file

SKIMAGE = {"astronaut", "coffee", "chelsea", "rocket"}


def test_registry_entries_are_complete():
    entries = data.registry()
    assert len(entries) >= 29
    for a in entries.values():
        assert re.fullmatch(r"[a-z0-9_]+", a.name), a.name  # usable as a Python-ish identifier
        assert a.kind in data.KINDS
        assert re.fullmatch(r"[0-9a-f]{64}", a.sha256)
        assert a.bytes > 0 and a.credit and a.licence
        assert a.url.startswith("https://") or a.bundled


def test_registry_lists_the_shared_manifest_with_the_same_urls_and_hashes():
    manifest = shared_file("NSTLIB_DATA_DIR", "MANIFEST.tsv")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by_url = {a.url: a for a in data.registry().values()}
    for row in rows:
        a = by_url[row["public_url"]]
        assert a.sha256 == row["sha256"] and a.bytes == int(row["bytes"])
        assert "images/" + a.file == row["path"]
    assert len(by_url) == len(rows) + len(SKIMAGE)


def test_scikit_image_photos_need_no_download(monkeypatch, tmp_path):
    monkeypatch.delenv("NSTLIB_DATA_DIR", raising=False)
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path))
    for name in SKIMAGE:
        assert data.asset(name).bundled
        path = data.get(name)
        assert path.is_file() and "skimage" in str(path)
    assert load_image("chelsea").shape == (1, 3, 300, 451)
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())


def test_list_images_by_kind():
    styles = data.list_images("style")
    assert "starry_night" in styles and "the_scream" in styles and "tubingen" not in styles
    assert set(data.list_images("content")) >= {"tubingen", "golden_gate"} | SKIMAGE
    assert data.list_images("mask") == ["mask"]
    assert len(data.list_images()) == len(data.registry())
    with pytest.raises(ValueError, match="kind must be one of"):
        data.list_images("paintings")


def test_unknown_names_get_suggestions():
    with pytest.raises(ValueError, match="starry_night"):
        data.asset("stary_night")
    with pytest.raises(ValueError, match="list_images"):
        data.get("no_such_thing_at_all")


def test_credit_line():
    line = data.credit("starry_night")
    assert "van Gogh" in line and "public domain" in line


def test_get_finds_the_override_copy_and_checks_it(monkeypatch, tmp_path):
    shared_file("NSTLIB_DATA_DIR", "style/starry_night.jpg")
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path))
    path = data.get("starry_night")
    assert path.parts[-2:] == ("style", "starry_night.jpg")
    assert path.stat().st_size == data.asset("starry_night").bytes
    assert data.get("mask").name == "mask.png"


def test_every_registry_image_loads():
    for name in data.list_images():
        if not data.asset(name).bundled:
            shared_file("NSTLIB_DATA_DIR", data.asset(name).file)
        x = load_image(name, max_size=64)
        assert x.shape[0] == 1 and x.shape[1] == 3 and max(x.shape[-2:]) == 64
