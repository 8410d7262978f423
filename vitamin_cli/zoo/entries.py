"""The zoo's entries: one `Model` per row of the zoo table, its `Weights`, and the names and columns they use.

Frozen, typed values; `vitamin_cli.zoo.schema` builds them from a zoo file and checks every field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

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
