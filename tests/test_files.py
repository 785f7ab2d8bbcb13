"""nstlib.files: the one atomic-write helper every saved file goes through, and the image suffixes."""
from __future__ import annotations

import pytest
import torch

from nstlib.files import atomic_write, is_image_file


def test_atomic_write_replaces_only_after_the_block_succeeds(tmp_path):
    path = tmp_path / "deep" / "table.csv"  # missing folders are made
    with atomic_write(path) as tmp:
        assert tmp.name == path.name and tmp.parent != path.parent  # same name, another folder
        tmp.write_text("first")
    assert path.read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the disk filled up")
    assert path.read_text() == "first"  # the old file survived
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]  # and nothing was left beside it


def test_a_torch_save_through_atomic_write_is_byte_identical_to_a_direct_one(tmp_path):
    """torch.save writes the file's name into its archive; the weights registry pins hashes of
    direct saves, so the temporary file must carry the target's name."""
    state = {"w": torch.arange(6.0)}
    torch.save(state, tmp_path / "direct.pth")
    (tmp_path / "other").mkdir()
    with atomic_write(tmp_path / "other" / "direct.pth") as tmp:
        torch.save(state, tmp)
    assert (tmp_path / "other" / "direct.pth").read_bytes() == (tmp_path / "direct.pth").read_bytes()


@pytest.mark.parametrize("name, expected", [("a.jpg", True), ("b.JPEG", True), ("c.tif", True), ("d.webp", True),
                                            ("notes.txt", False), ("._a.jpg", False), ("archive.zip", False)])
def test_image_files_are_known_by_suffix_and_hidden_ones_skipped(name, expected):
    assert is_image_file(name) is expected
