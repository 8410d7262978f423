"""The zoo as data: zoo.yaml parsed into frozen, typed entries, validated strictly.

    from vitamin_cli import zoo
    zoo.get("ViTamin-XL-384")              # by canonical name, alias or Hugging Face repo, any case
    zoo.select(size=["L"], released=True)  # the filters of `vitamin ls`
    zoo.load("lab-zoo.yaml").models        # another registry

Every problem in a zoo file is reported with the file, line and field (ZooFileError, exit code 2): the
checks live in `schema`, and `memo` keeps validated files so that a start does not validate the same bytes
again. The types are in `entries`, the queries in `registry`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vitamin_cli.errors import ZooFileError
from vitamin_cli.zoo.entries import (
    FAMILIES,
    JSON_KEYS,
    METRICS,
    NUMERIC_COLUMNS,
    SCHEDULES,
    SIZES,
    Family,
    Model,
    Size,
    Weights,
    parse_samples,
)
from vitamin_cli.zoo.registry import Zoo, suggest

__all__ = [
    "FAMILIES",
    "JSON_KEYS",
    "METRICS",
    "NUMERIC_COLUMNS",
    "SCHEDULES",
    "SIZES",
    "ZOO_ENV",
    "Family",
    "Model",
    "Size",
    "Weights",
    "Zoo",
    "default_path",
    "get",
    "load",
    "parse_samples",
    "select",
    "suggest",
]

ZOO_ENV = "VITAMIN_ZOO"


def default_path() -> Path:
    """$VITAMIN_ZOO, else the zoo.yaml bundled in the package (or at the root of a source checkout)."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent.parent
    bundled = package / "zoo.yaml"
    return bundled if bundled.exists() else package.parent / "zoo.yaml"


def load(path: str | os.PathLike[str] | None = None) -> Zoo:
    """Load and validate a zoo file (default: `default_path()`)."""
    from vitamin_cli.zoo import memo

    resolved = Path(path) if path is not None else default_path()
    try:
        if not resolved.exists():
            raise ZooFileError(str(resolved), None, None, "cannot read the zoo file: no such file")
        if not resolved.is_file():  # a folder, a device or a pipe would fail late or never end
            raise ZooFileError(str(resolved), None, None, "not a regular file; expected a zoo YAML file")
        data = resolved.read_bytes()
    except OSError as err:
        raise ZooFileError(str(resolved), None, None, f"cannot read the zoo file: {err.strerror}") from None
    return memo.load(str(resolved), data)


def get(name: str) -> Model:
    """A model of the default zoo by name, alias or repo."""
    return load().get(name)


def select(names: str | Sequence[str] = (), **filters: Any) -> list[Model]:
    """Models of the default zoo matching the `vitamin ls` filters (see Zoo.select): a filter value of the
    wrong type or one no model could have (`resolution="384"`, `released="no"`) raises UsageError naming the
    filter, an unknown filter TypeError."""
    return load().select(names, **filters)
