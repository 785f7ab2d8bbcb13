"""The one reader of nstlib's registries: the tables shipped in data/ and the folders that override them.

It serves every module that pins files by a table:

    nstlib.data           data/registry.tsv              photos, paintings, masks      $NSTLIB_DATA_DIR
    nstlib.models         data/models.tsv                networks the project ships     (none: shipped)
    nstlib.training_sets  data/training_sets.tsv and     training sets, file by file    $NSTLIB_DATASETS_DIR
                          the manifests data/datasets/*.tsv                             (archives: $NSTLIB_DATA_DIR)
    nstlib.johnson        data/johnson_ml5.tsv           the ml5 checkpoints' files     $NSTLIB_WEIGHTS_DIR
    nstlib.weights        (its table is in the code)     VGG weights                    $NSTLIB_WEIGHTS_DIR

A table is UTF-8, one header line, then one row per line, values separated by tabs (no quoting: a
value holds no tab and no newline, and a quote is just a character); each row becomes a dataclass:

    rows = read_table(shipped_file("models.tsv"), ShippedModel, bytes=int)

The header must name exactly the dataclass's fields (any order); columns are text unless a converter
is given. A row that cannot be read is a RegistryError naming the file and the line. An override is
a folder named by an environment variable whose files are used instead of downloading them (and
hash-checked like a download by the module that reads them): `override_dir` reads the variable,
`find_override` looks for a file or folder inside it.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path
from typing import Callable, TypeVar

from .download import repo_root

DATA_ENV = "NSTLIB_DATA_DIR"  # photos, paintings and masks, laid out like the registry's `file` column
WEIGHTS_ENV = "NSTLIB_WEIGHTS_DIR"  # VGG weights and the ml5 checkpoints
DATASETS_ENV = "NSTLIB_DATASETS_DIR"  # training sets, laid out like ../shared/datasets

Row = TypeVar("Row")


class RegistryError(ValueError):
    """A shipped table that cannot be read: the message names the file and the line."""


def shipped_file(name: str) -> Path:
    """A file of data/ (a registry table, a manifest, a shipped model): the checkout's, or its copy
    installed as the package nstlib.assets."""
    root = repo_root()
    if root is not None:
        return root / "data" / name
    from importlib.resources import files

    return Path(str(files("nstlib.assets") / name))


def read_table(path: str | os.PathLike, row_type: type[Row], *, unique: str | None = None,
               **convert: Callable[[str], object]) -> list[Row]:
    """The rows of the table `path` as `row_type` instances, in file order. `convert` maps a column
    to the function that makes its value from the text (`bytes=int`); the other columns stay text.
    With `unique`, two rows with the same value in that column are an error."""
    path = Path(path)
    fields = {f.name for f in dataclasses.fields(row_type)}
    required = {f.name for f in dataclasses.fields(row_type)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    rows, seen = [], {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise RegistryError(f"{path}: empty; a table starts with a header line")
        unknown, missing = [c for c in header if c not in fields], sorted(required - set(header))
        if unknown or missing or len(set(header)) != len(header):
            raise RegistryError(f"{path}:1: the header does not match {row_type.__name__}: "
                                f"unknown columns {unknown}, missing {missing}, columns {header}")
        for fields_of_row in reader:
            if not fields_of_row:
                continue  # a blank line
            where = f"{path}:{reader.line_num}"
            if len(fields_of_row) != len(header):
                raise RegistryError(f"{where}: {len(fields_of_row)} tab-separated fields, the header has "
                                    f"{len(header)} ({', '.join(header)})")
            values = {}
            for column, text in zip(header, fields_of_row):
                try:
                    values[column] = convert.get(column, str)(text)
                except (ValueError, TypeError) as e:
                    raise RegistryError(f"{where}: column {column!r} cannot be {text!r} ({e})") from None
            if unique is not None:
                key = values[unique]
                if key in seen:
                    raise RegistryError(f"{where}: {unique} {key!r} again (first on line {seen[key]})")
                seen[key] = reader.line_num
            rows.append(row_type(**values))
    return rows


def override_dir(variable: str) -> Path | None:
    """The folder the environment variable `variable` names (`~` expanded), or None when it is unset
    or empty."""
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def find_override(variable: str, *names: str | os.PathLike, folder: bool = False) -> Path | None:
    """The first of `names` (paths relative to the override folder of `variable`) that is a file
    there (a folder with `folder=True`); None when the variable is unset or none of them is there.
    Nothing is hash-checked here: the caller checks what it found against its table."""
    root = override_dir(variable)
    if root is None:
        return None
    for name in names:
        candidate = root / name
        if candidate.is_dir() if folder else candidate.is_file():
            return candidate
    return None
