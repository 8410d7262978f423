"""The zoo as data: zoo.yaml parsed into frozen, typed entries, validated strictly.

    from vitamin_cli import zoo
    zoo.get("ViTamin-XL-384")              # by canonical name, alias or Hugging Face repo, any case
    zoo.select(size=["L"], released=True)  # the filters of `vitamin ls`
    zoo.load("lab-zoo.yaml").models        # another registry

Every problem in a zoo file is reported with the file, line and field (ZooFileError, exit code 2): the
checks live in `vitamin_cli.zoo_schema`, and `vitamin_cli.zoo_memo` keeps validated files so that a start
does not validate the same bytes again.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vitamin_cli.errors import UnknownModelError, UsageError, ZooFileError

ZOO_ENV = "VITAMIN_ZOO"
SCHEMA_VERSION = 1


class Family(str, Enum):
    vit = "vit"
    convnext = "convnext"
    coatnet = "coatnet"
    vitamin = "vitamin"


class Size(str, Enum):
    S = "S"
    B = "B"
    L = "L"
    L2 = "L2"
    XL = "XL"


FAMILIES = tuple(f.value for f in Family)
SIZES = tuple(s.value for s in Size)
SCHEDULES = ("benchmark", "long")
METRICS = ("imagenet", "avg38", "dist_shift", "vtab", "retrieval")
# Columns `--sort` accepts: every numeric field; seen_samples sorts by its total.
NUMERIC_COLUMNS = (
    "image_size",
    "num_patches",
    "text_depth",
    "text_width",
    "seen_samples",
    "params_image_m",
    "params_text_m",
    "macs_image_g",
    "macs_text_g",
    *METRICS,
)

# The keys of `vitamin ls --json`, in order (docs/json.md); `weights` is an object of Weights' fields or null.
JSON_KEYS = (
    "name",
    "aliases",
    "encoder",
    "family",
    "size",
    "image_size",
    "num_patches",
    "text_depth",
    "text_width",
    "seen_samples",
    "seen_samples_total",
    "params_image_m",
    "params_text_m",
    "macs_image_g",
    "macs_text_g",
    *METRICS,
    "weights",
    "weights_note",
)

_SAMPLES_RE = re.compile(r"(\d+(?:\.\d+)?)([MB])\Z")
_UNITS = {"M": 10**6, "B": 10**9}


@dataclass(frozen=True)
class Weights:
    """Where a released checkpoint lives on the Hugging Face Hub, and its pins (empty until pinned)."""

    repo: str
    filename: str
    revision: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class Model:
    """One row of the zoo: reported values as printed in the zoo table, plus how to build and fetch it."""

    name: str
    aliases: tuple[str, ...]
    encoder: str  # the table's spelling, e.g. "ViT-S/32"
    family: str
    size: str
    schedule: str  # "benchmark" (the 48-model table) or "long" (the 13 long-schedule models)
    image_size: int
    num_patches: int | None
    text_depth: int
    text_width: int
    seen_samples: str  # e.g. "128M", "12.8B+0.5B"
    params_image_m: float
    params_text_m: float
    macs_image_g: float
    macs_text_g: float
    imagenet: float
    avg38: float
    dist_shift: float
    vtab: float
    retrieval: float
    arch: str  # an upstream open_clip config name, or a key of the zoo file's `architectures`
    weights: Weights | None
    weights_note: str | None
    line: int = field(default=0, compare=False)  # where the entry starts in its zoo file

    @property
    def seen_samples_total(self) -> int:
        return parse_samples(self.seen_samples)

    @property
    def released(self) -> bool:
        return self.weights is not None

    def value(self, column: str) -> float | int | None:
        """A numeric column by its JSON key; `seen_samples` gives the total."""
        if column == "seen_samples":
            return self.seen_samples_total
        value: float | int | None = getattr(self, column)
        return value

    def to_json(self) -> dict[str, Any]:
        """The `vitamin ls --json` object (docs/json.md): exactly the keys of JSON_KEYS, in that order."""
        computed = {
            "aliases": list(self.aliases),
            "seen_samples_total": self.seen_samples_total,
            "weights": None if self.weights is None else dict(vars(self.weights)),
        }
        return {key: computed[key] if key in computed else getattr(self, key) for key in JSON_KEYS}


def parse_samples(text: str) -> int:
    """'128M' -> 128e6, '12.8B+0.5B' -> 13.3e9, exactly (integer arithmetic, no float rounding)."""
    total = 0
    for part in text.split("+"):
        match = _SAMPLES_RE.match(part.strip())
        if not match:
            raise ValueError(f"'{text}' is not a sample count like 128M, 1.28B or 12.8B+0.5B")
        whole, _, fraction = match.group(1).partition(".")
        total += int(whole + fraction) * _UNITS[match.group(2)] // 10 ** len(fraction)
    return total


@dataclass(frozen=True)
class Zoo:
    """A loaded zoo file: its models in table order and its inline architectures."""

    path: Path
    models: tuple[Model, ...]
    architectures: Mapping[str, Mapping[str, Any]]

    @functools.cached_property
    def _index(self) -> dict[str, Model]:
        return {key: model for model in self.models for key in lookup_keys(model)}

    def get(self, name: str) -> Model:
        """A model by canonical name, alias or Hugging Face repo (`org/name` or `name`), ignoring case."""
        if not isinstance(name, str):
            raise UnknownModelError(f"a model name is text, not {type(name).__name__}")
        model = self._index.get(name.strip().lower())
        if model is None:
            shown = repr(name) if len(name) <= 80 else f"{name[:60]!r}... ({len(name):,} characters)"
            raise UnknownModelError(f"unknown model {shown}", hint=suggest(name[:200], self._display_names()))
        return model

    def _display_names(self) -> list[str]:
        return [n for m in self.models for n in (m.name, *m.aliases)]

    def select(
        self,
        names: str | Sequence[str] = (),
        *,
        size: str | Iterable[str] = (),
        family: str | Iterable[str] = (),
        samples: str | Iterable[str] = (),
        resolution: int | Iterable[int] = (),
        released: bool | None = None,
    ) -> list[Model]:
        """The models matching every given filter, in table order. Values of one filter are alternatives.

        `names` are names, aliases or repos (an unknown one raises UnknownModelError) or shell-style
        globs ('ViTamin-L*') matched against names and aliases. A filter takes one value or several.
        """
        sizes = {s.upper() for s in _several(size)}
        families = {f.lower() for f in _several(family)}
        _check_known("size", sizes, SIZES)
        _check_known("family", families, FAMILIES)
        totals = {_parse_samples_arg(s) for s in _several(samples)}
        resolutions = set(_several(resolution))
        matched = self._match_names(list(_several(names))) if names else None
        return [
            m
            for m in self.models
            if (matched is None or m.name in matched)
            and (not sizes or m.size.upper() in sizes)
            and (not families or m.family in families)
            and (not totals or m.seen_samples_total in totals)
            and (not resolutions or m.image_size in resolutions)
            and (released is None or m.released == released)
        ]

    def _match_names(self, patterns: Sequence[str]) -> set[str]:
        matched: set[str] = set()
        for pattern in patterns:
            if not any(ch in pattern for ch in "*?["):
                matched.add(self.get(pattern).name)
                continue
            glob = pattern.lower()
            matched.update(m.name for m in self.models if any(fnmatch.fnmatchcase(k, glob) for k in lookup_keys(m)))
        return matched

    def siblings(self, model: Model) -> list[Model]:
        """The same encoder at other data scales or resolutions."""
        return [m for m in self.models if m.encoder == model.encoder and m.name != model.name]

    @functools.cached_property
    def winners(self) -> Mapping[str, frozenset[str]]:
        """For each model, the metrics it wins (ties included) in its block, as the zoo table bolds them.

        A block is one size class at one data scale of the benchmarked table, or the long-schedule table.
        """
        blocks: dict[tuple[str, ...], list[Model]] = {}
        for m in self.models:
            key = (m.schedule, m.size, m.seen_samples) if m.schedule == "benchmark" else (m.schedule,)
            blocks.setdefault(key, []).append(m)
        wins: dict[str, set[str]] = {m.name: set() for m in self.models}
        for block in blocks.values():
            for metric in METRICS:
                best = max(getattr(m, metric) for m in block)
                for m in block:
                    if getattr(m, metric) == best:
                        wins[m.name].add(metric)
        return MappingProxyType({name: frozenset(metrics) for name, metrics in wins.items()})

    def inline_architecture(self, model: Model) -> dict[str, Any] | None:
        """The open_clip config zoo.yaml gives for the model's arch, or None for an upstream config name."""
        config = self.architectures.get(model.arch)
        return None if config is None else thaw(config)


def lookup_keys(model: Model) -> list[str]:
    """Lower-case names a model answers to: its name, aliases and Hugging Face repo (full and short)."""
    keys = [model.name, *model.aliases]
    if model.weights is not None:
        keys += [model.weights.repo, model.weights.repo.split("/", 1)[1]]
    return [k.lower() for k in keys]


def suggest(name: str, candidates: Sequence[str], otherwise: str = "run `vitamin ls` to see every model") -> str:
    import difflib

    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)
    if not close:
        return otherwise
    return "did you mean: " + ", ".join(by_lower[c] for c in close) + "?"


def _several(value: Any) -> Iterable[Any]:
    """One filter value or several."""
    return (value,) if isinstance(value, (str, int)) else value


def _check_known(what: str, given: set[str], known: Sequence[str]) -> None:
    unknown = given - {k.lower() if what == "family" else k.upper() for k in known}
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(sorted(unknown))}; expected one of {', '.join(known)}")


def _parse_samples_arg(text: str) -> int:
    try:
        return parse_samples(text.strip().upper())
    except ValueError:
        raise UsageError(f"--samples: '{text}' is not a sample count like 128M, 1.28B or 12.8B+0.5B") from None


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, from what `freeze` made."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def freeze(value: Any) -> Any:
    """Read-only mappings and tuples, so that a loaded zoo cannot be changed by accident."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


# ---------------------------------------------------------------------------------------------------
# Loading


def default_path() -> Path:
    """$VITAMIN_ZOO, else the zoo.yaml bundled in the package (or at the root of a source checkout)."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    bundled = here / "zoo.yaml"
    return bundled if bundled.exists() else here.parent / "zoo.yaml"


def load(path: str | os.PathLike[str] | None = None) -> Zoo:
    """Load and validate a zoo file (default: `default_path()`)."""
    from vitamin_cli import zoo_memo

    resolved = Path(path) if path is not None else default_path()
    try:
        if not resolved.exists():
            raise ZooFileError(str(resolved), None, None, "cannot read the zoo file: no such file")
        if not resolved.is_file():  # a folder, a device or a pipe would fail late or never end
            raise ZooFileError(str(resolved), None, None, "not a regular file; expected a zoo YAML file")
        data = resolved.read_bytes()
    except OSError as err:
        raise ZooFileError(str(resolved), None, None, f"cannot read the zoo file: {err.strerror}") from None
    return zoo_memo.load(str(resolved), data)


def get(name: str) -> Model:
    """A model of the default zoo by name, alias or repo."""
    return load().get(name)


def select(names: str | Sequence[str] = (), **filters: Any) -> list[Model]:
    """Models of the default zoo matching the `vitamin ls` filters (see Zoo.select)."""
    return load().select(names, **filters)
