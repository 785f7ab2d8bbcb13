"""nstlib.registry: shipped tables read into typed rows, errors that name the file and the line, and
the override folders looked up in one way for every registry."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from nstlib import registry
from nstlib.registry import RegistryError, find_override, override_dir, read_table


@dataclass(frozen=True)
class Row:
    name: str
    bytes: int
    note: str = ""


def table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.tsv"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_rows_are_typed_in_file_order_and_blank_lines_are_skipped(tmp_path):
    path = table(tmp_path, "bytes\tname\n12\tb\n\n3\ta\n")  # any column order
    assert read_table(path, Row, bytes=int) == [Row("b", 12), Row("a", 3)]
    # columns with a default may be absent; every other column stays text
    path = table(tmp_path, "name\tbytes\tnote\nx\t1\t\"quoted\" words\n")
    assert read_table(path, Row, bytes=int) == [Row("x", 1, '"quoted" words')]  # no quoting: kept as written


@pytest.mark.parametrize("text, fragment", [
    ("name\tbytes\na\t1\nb\n", r"t\.tsv:3: 1 tab-separated fields, the header has 2"),
    ("name\tbytes\na\t1\nb\tmany\n", r"t\.tsv:3: column 'bytes' cannot be 'many'"),
    ("name\tbytes\na\t1\na\t2\n", r"t\.tsv:3: name 'a' again \(first on line 2\)"),
    ("name\tsize\na\t1\n", r"t\.tsv:1: the header does not match Row: unknown columns \['size'\], missing \['bytes'\]"),
    ("", r"t\.tsv: empty"),
])
def test_errors_name_the_file_and_the_line(tmp_path, text, fragment):
    with pytest.raises(RegistryError, match=fragment):
        read_table(table(tmp_path, text), Row, unique="name", bytes=int)


def test_a_registry_error_is_a_value_error():
    assert issubclass(RegistryError, ValueError)  # what the registries raised for a bad table before


def test_every_shipped_table_reads():
    from nstlib import data, johnson, models, training_sets

    assert registry.shipped_file("registry.tsv") == data.registry_path()
    assert data.registry() and models.shipped_models() and johnson.ml5_files()
    for name, entry in training_sets.training_sets().items():
        if entry.manifest:
            assert len(training_sets.manifest(name)) == entry.files, name


def test_a_bad_row_in_the_data_registry_names_its_line(tmp_path, monkeypatch):
    from nstlib import data

    good = registry.shipped_file("registry.tsv").read_text(encoding="utf-8").splitlines()
    bad = good[:3] + [good[3].replace("\tcontent\t", "\tpainting\t", 1)]
    monkeypatch.setattr(data, "registry_path", lambda: table(tmp_path, "\n".join(bad) + "\n"))
    data.registry.cache_clear()
    try:
        with pytest.raises(RegistryError, match=r"t\.tsv:4: column 'kind' cannot be 'painting' \(unknown kind"):
            data.registry()
    finally:
        data.registry.cache_clear()


def test_override_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("NSTLIB_TEST_DIR", raising=False)
    assert override_dir("NSTLIB_TEST_DIR") is None and find_override("NSTLIB_TEST_DIR", "a") is None
    monkeypatch.setenv("NSTLIB_TEST_DIR", "")
    assert override_dir("NSTLIB_TEST_DIR") is None
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NSTLIB_TEST_DIR", "~/o")
    assert override_dir("NSTLIB_TEST_DIR") == tmp_path / "o"
    (tmp_path / "o" / "sub").mkdir(parents=True)
    (tmp_path / "o" / "b.jpg").write_bytes(b"")
    # the first name present wins; a folder is not a file and a file is not a folder
    assert find_override("NSTLIB_TEST_DIR", "a.jpg", "b.jpg") == tmp_path / "o" / "b.jpg"
    assert find_override("NSTLIB_TEST_DIR", "sub", "b.jpg") == tmp_path / "o" / "b.jpg"
    assert find_override("NSTLIB_TEST_DIR", "b.jpg", "sub", folder=True) == tmp_path / "o" / "sub"


def test_each_registry_reads_its_variable_through_the_registry(tmp_path, monkeypatch):
    from nstlib import data, training_sets, weights

    for variable, lookup in ((registry.DATA_ENV, data.data_dir_override),
                             (registry.WEIGHTS_ENV, weights.weights_dir_override),
                             (registry.DATASETS_ENV, training_sets.datasets_dir_override)):
        monkeypatch.setenv(variable, str(tmp_path / variable))
        assert lookup() == tmp_path / variable
        monkeypatch.delenv(variable)
        assert lookup() is None
    assert weights.ENV_VAR == "NSTLIB_WEIGHTS_DIR" and training_sets.DATASETS_ENV == "NSTLIB_DATASETS_DIR"
