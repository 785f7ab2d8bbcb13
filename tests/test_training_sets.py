"""Training-set downloads (nstlib.training_sets) against a local HTTP server: mirrors, hash check,
layout check, atomic unpacking, the NSTLIB_DATA_DIR override. Nothing here contacts the internet."""
from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from nstlib import training_sets
from nstlib.download import DownloadError, HashMismatchError
from nstlib.training_sets import TrainingSet, fetch_training_set

from tests.http_server import dead_url

FOLDERS = {"trainA": 3, "trainB": 2, "testA": 1, "testB": 1}


def png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_zip(folders: dict[str, int], top: str = "toyset/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for folder, n in folders.items():
            for i in range(n):
                z.writestr(f"{top}{folder}/{i}.png", png())
    return buf.getvalue()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("NSTLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NSTLIB_DATA_DIR", raising=False)
    return tmp_path / "cache" / "datasets"


def use_entry(monkeypatch, urls, sha256="", folders=FOLDERS, **pinned):
    entry = TrainingSet("toyset", tuple(urls), sha256, 0, dict(folders), "test", "test", **pinned)
    monkeypatch.setattr(training_sets, "training_sets", lambda: {"toyset": entry})
    training_sets._manifest_cached.cache_clear()


def fetch_unpinned(name):
    """The archive of a set nothing pins: only on request, checked by its folders."""
    return fetch_training_set(name, allow_unpinned=True)


def test_the_table_lists_https_mirrors_and_cyclegan_folders():
    sets = training_sets.training_sets()
    assert {"horse2zebra", "monet2photo"} <= set(sets)
    h2z = sets["horse2zebra"]
    assert len(h2z.urls) >= 2 and all(u.startswith("https://") for u in h2z.urls)
    assert h2z.folders == {"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140}


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="horse2zebra"):
        fetch_training_set("horse2elephant")


def test_a_dead_host_falls_back_to_the_mirror_and_the_cache_is_reused(http_server, monkeypatch, isolated, capsys):
    archive = make_zip(FOLDERS)
    use_entry(monkeypatch, [dead_url("/toyset.zip"), http_server.add("/mirror/toyset.zip", archive)])
    folders = fetch_unpinned("toyset")
    assert set(folders) == set(FOLDERS)
    assert {k: len(list(p.iterdir())) for k, p in folders.items()} == FOLDERS
    assert folders["trainA"] == isolated / "toyset" / "trainA"
    assert hashlib.sha256(archive).hexdigest() in capsys.readouterr().out  # unpinned: says what it got
    assert sorted(p.name for p in isolated.iterdir()) == ["toyset"]  # archive and temporary folder gone
    fetch_unpinned("toyset")
    assert http_server.requests == ["/mirror/toyset.zip"]  # the second call downloads nothing


def test_a_pinned_hash_that_does_not_match_leaves_nothing(http_server, monkeypatch, isolated):
    use_entry(monkeypatch, [http_server.add("/toyset.zip", make_zip(FOLDERS))], sha256="0" * 64)
    with pytest.raises(HashMismatchError):
        fetch_training_set("toyset")  # pinned by its hash: no allow_unpinned needed
    assert list(isolated.iterdir()) == []


def test_every_host_down_names_each_url_and_the_override(monkeypatch):
    urls = [dead_url("/a.zip"), dead_url("/b.zip")]
    use_entry(monkeypatch, urls)
    with pytest.raises(DownloadError) as err:
        fetch_unpinned("toyset")
    assert all(u in str(err.value) for u in urls) and "NSTLIB_DATA_DIR/toyset" in str(err.value)


@pytest.mark.filterwarnings("ignore:toyset/trainA holds 2 images")  # the count check runs before the missing folder
def test_an_archive_without_the_folders_is_refused_and_nothing_is_left(http_server, monkeypatch, isolated):
    use_entry(monkeypatch, [http_server.add("/toyset.zip", make_zip({"trainA": 2, "trainB": 2}))])
    with pytest.raises(ValueError, match="testA"):
        fetch_unpinned("toyset")
    assert list(isolated.iterdir()) == []  # neither the wrong archive nor a half set


def test_a_file_that_is_not_a_zip_is_deleted(http_server, monkeypatch, isolated):
    use_entry(monkeypatch, [http_server.add("/toyset.zip", b"<html>moved</html>")])
    with pytest.raises(ValueError, match="not a zip"):
        fetch_unpinned("toyset")
    assert list(isolated.iterdir()) == []


def test_an_archive_that_unpacks_far_beyond_its_size_is_refused_before_unpacking(http_server, monkeypatch, isolated):
    """Issue 24, 4: unpacked archives are capped at a stated multiple of their size (a zip bomb)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("toyset/trainA/0.png", png())
        z.writestr("toyset/trainA/huge.bin", bytes(training_sets.UNPACK_SLACK_BYTES * 8))  # 8 MiB of zeros
    assert len(buf.getvalue()) < 100_000  # compresses to almost nothing
    use_entry(monkeypatch, [http_server.add("/toyset.zip", buf.getvalue())])
    with pytest.raises(ValueError, match="would unpack to 8,388,.* bytes, more than 4x.*was deleted"):
        fetch_unpinned("toyset")
    assert list(isolated.iterdir()) == []  # neither the archive nor anything unpacked


def test_an_archive_of_photos_is_within_the_unpack_cap():
    with zipfile.ZipFile(io.BytesIO(make_zip(FOLDERS))) as z:
        total = training_sets.check_unpacked_size(z, len(make_zip(FOLDERS)))
    assert total == len(png()) * sum(FOLDERS.values())


def test_the_data_dir_override_is_used_without_downloading(http_server, monkeypatch, tmp_path):
    local = tmp_path / "local"
    with zipfile.ZipFile(io.BytesIO(make_zip(FOLDERS, top=""))) as z:
        z.extractall(local / "toyset")
    monkeypatch.setenv("NSTLIB_DATA_DIR", str(local))
    use_entry(monkeypatch, [http_server.add("/toyset.zip", b"unused")])
    assert fetch_unpinned("toyset")["testB"] == local / "toyset" / "testB"
    assert http_server.requests == []


def test_a_count_unlike_the_published_one_warns(http_server, monkeypatch):
    use_entry(monkeypatch, [http_server.add("/toyset.zip", make_zip({**FOLDERS, "trainA": 2}))])
    with pytest.warns(UserWarning, match="trainA holds 2 images; the published set has 3"):
        fetch_unpinned("toyset")


def test_an_unpinned_archive_is_refused_unless_asked_for(http_server, monkeypatch, isolated):
    use_entry(monkeypatch, [http_server.add("/toyset.zip", make_zip(FOLDERS))])
    with pytest.raises(training_sets.DatasetError, match="toyset is not pinned.*allow_unpinned=True"):
        fetch_training_set("toyset")
    assert http_server.requests == []


def _pin_subset(tmp_path, files: dict[str, bytes]) -> dict:
    folder = tmp_path / "subset"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    sha = training_sets.write_manifest(folder, tmp_path / "subset.tsv")
    return dict(manifest=str(tmp_path / "subset.tsv"), manifest_sha256=sha, files=len(files))


def test_the_files_a_manifest_pins_are_checked_inside_the_archive(http_server, monkeypatch, isolated, tmp_path):
    """horse2zebra's case: the manifest pins a subset; the full archive must hold it byte for byte."""
    archive = make_zip(FOLDERS)
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        subset = {name.removeprefix("toyset/"): z.read(name) for name in ("toyset/trainA/0.png", "toyset/testB/0.png")}
    use_entry(monkeypatch, [http_server.add("/toyset.zip", archive)], **_pin_subset(tmp_path / "a", subset))
    assert fetch_training_set("toyset")["trainA"] == isolated / "toyset" / "trainA"  # pinned: no flag needed
    assert training_sets.dataset("toyset", "testB") == isolated / "toyset" / "testB"  # the subset, from the archive
    training_sets.remove_training_set("toyset")
    other = dict(subset, **{"trainA/0.png": subset["trainA/0.png"] + b"!"})
    use_entry(monkeypatch, [http_server.add("/toyset.zip", archive)], **_pin_subset(tmp_path / "b", other))
    with pytest.raises(ValueError, match=r"(?s)is not the set: 1 of the files nstlib pins differ.*trainA/0\.png"):
        fetch_training_set("toyset")
    assert [p.name for p in isolated.iterdir() if p.name != "verified"] == []  # neither archive nor set
    assert list((isolated / "verified").iterdir()) == []  # remove_training_set dropped the stamps too
