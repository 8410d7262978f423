"""The numeric fields that `--where`, `--sort` and `--pareto` name, and their short aliases, in one table
(docs/cli.md, "Fields"). The zoo's own fields are every model's; a measured field needs the option that gives
its values (`--bench FILE`, `--eval FILE`, `--audit`), which `vitamin ls` takes.

`macs` is the image tower's MACs, in the paper's convention, as `vitamin plot` draws them; `macs_total` adds the
text tower's. Each field that is a cost (MACs, params) is better lower, each accuracy and throughput higher: the
Pareto front (`ls --pareto`, `plot`) reads that direction from here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vitamin_cli.errors import UsageError

if TYPE_CHECKING:
    from vitamin_cli.zoo.entries import Model
    from vitamin_cli.zoo.query import Where

HIGHER, LOWER = "higher", "lower"
ZOO = "zoo"


@dataclass(frozen=True)
class Field:
    name: str
    about: str
    better: str | None = None  # HIGHER or LOWER, for a Pareto front; None: neither
    source: str = ZOO  # ZOO, or the option that gives its values
    aliases: tuple[str, ...] = ()
    unit: int | None = 0  # the power of ten it counts in (MACs in G: 9); None: a percentage, which no scale fits
    column: str = ""  # its column in the `ls` table, which stays shown when the field sorts or filters


_ACCURACY = {
    "imagenet": "ImageNet zero-shot top-1, %",
    "avg38": "average over DataComp's 38 tasks, %",
    "dist_shift": "ImageNet distribution shifts, %",
    "vtab": "VTAB, %",
    "retrieval": "retrieval (Flickr, MSCOCO, WinoGAViL), %",
}
_SHORT = {"dist_shift": ("shift",), "retrieval": ("retr",)}

FIELDS: tuple[Field, ...] = (
    Field("image_size", "image size, pixels", aliases=("resolution", "res")),
    Field("num_patches", "image patches (models that have them)", aliases=("patches",)),
    Field("text_depth", "text tower layers"),
    Field("text_width", "text tower width"),
    Field("seen_samples", "samples seen in training, in all", aliases=("samples",)),
    Field("params_image_m", "image tower params, M", LOWER, aliases=("params",), unit=6, column="params"),
    Field("params_text_m", "text tower params, M", LOWER, aliases=("params_text",), unit=6, column="params"),
    Field("params_total_m", "image + text params, M", LOWER, aliases=("params_total",), unit=6, column="params"),
    Field("macs_image_g", "image MACs, G (the paper's convention)", LOWER, aliases=("macs",), unit=9, column="macs"),
    Field("macs_text_g", "text MACs, G", LOWER, aliases=("macs_text",), unit=9, column="macs"),
    Field("macs_total_g", "image + text MACs, G", LOWER, aliases=("macs_total",), unit=9, column="macs"),
    *(Field(m, about, HIGHER, aliases=_SHORT.get(m, ()), unit=None, column=m) for m, about in _ACCURACY.items()),
    Field(
        "images_per_s",
        "measured image tower throughput",
        HIGHER,
        "--bench",
        ("throughput", "images_s"),
        column="images_s",
    ),
    Field("texts_per_s", "measured text tower throughput", HIGHER, "--bench", ("texts_s",), column="texts_s"),
    *(
        Field(
            f"{m}_measured",
            f"{about}, measured",
            HIGHER,
            "--eval",
            tuple(f"{s}_measured" for s in _SHORT.get(m, ())),
            unit=None,
            column=f"{m}_measured",
        )
        for m, about in _ACCURACY.items()
    ),
    Field(
        "params_image_m_measured",
        "image tower params, M, counted",
        LOWER,
        "--audit",
        ("params_measured",),
        6,
        "params_measured",
    ),
    Field("params_text_m_measured", "text tower params, M, counted", LOWER, "--audit", (), 6, "params_measured"),
    Field(
        "macs_image_g_measured",
        "image MACs, G, counted (paper's convention)",
        LOWER,
        "--audit",
        ("macs_measured",),
        9,
        "macs_measured",
    ),
    Field(
        "macs_text_g_measured", "text MACs, G, counted (paper's convention)", LOWER, "--audit", (), 9, "macs_measured"
    ),
)
BY_NAME = {f.name: f for f in FIELDS}
NAMES = tuple(BY_NAME)
ALIASES = {alias: f.name for f in FIELDS for alias in f.aliases}

Values = Mapping[str, float | int | None]


def zoo_values(model: Model) -> dict[str, float | int | None]:
    """The model's own fields (those of ZOO), by name."""
    from vitamin_cli.zoo.entries import NUMERIC_COLUMNS

    found = {name: model.value(name) for name in NUMERIC_COLUMNS}
    found["params_total_m"] = model.params_image_m + model.params_text_m
    found["macs_total_g"] = model.macs_image_g + model.macs_text_g
    return found


def resolve(name: str, given: Collection[str], option: str) -> Field:
    """The field a name or alias names, in any case; one whose option was not given is a usage error."""
    from vitamin_cli.zoo.query import resolve as lookup

    found = BY_NAME[lookup(name, NAMES, ALIASES, option)]
    _check_given([found], given, option)
    return found


def where(expr: str, given: Collection[str]) -> Where:
    """`--where EXPR` parsed; a measured field whose option (`--bench`, ...) was not given is a usage error."""
    from vitamin_cli.zoo.query import parse

    parsed = parse(expr, NAMES, ALIASES, {f.name: f.unit for f in FIELDS})
    _check_given([BY_NAME[name] for name in sorted(parsed.fields)], given, "--where")
    return parsed


def _check_given(used: Iterable[Field], given: Collection[str], option: str) -> None:
    for f in used:
        if f.source != ZOO and f.source not in given:
            flag = f.source + (" FILE" if f.source != "--audit" else "")
            takers = "`vitamin ls` takes it" if f.source == "--audit" else "`vitamin ls` and `vitamin plot` take it"
            raise UsageError(f"{option}: {f.name} is measured, and needs {flag}", hint=f"give {flag} ({takers})")


def values_of(model: Model, measured: Callable[[Model], Values] | None) -> dict[str, float | int | None]:
    """Every field the model has a value of: its own, and what `measured` gives (None for none)."""
    found = zoo_values(model)
    if measured is not None:
        found.update(measured(model))
    return found
