"""Models side by side: every number of the zoo (and measured throughput and accuracy), the best of each row
marked. A model measured under several identities (checkpoints, dtypes, batch sizes, ...) gets a column for
each, labelled with what defines it: results of two identities are never combined."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vitamin_cli.bench.results import Speeds
from vitamin_cli.eval.results import Accuracy
from vitamin_cli.zoo import METRICS, Model

METRIC_LABELS = {
    "imagenet": "ImageNet (%)",
    "avg38": "avg. 38 datasets (%)",
    "dist_shift": "ImageNet dist. shift (%)",
    "vtab": "VTAB (%)",
    "retrieval": "retrieval (%)",
}


@dataclass(frozen=True)
class Entry:
    """One column of the comparison: a model, with one identity of its measured accuracy and one identity of its
    measured throughput, both towers (each None when not measured)."""

    model: Model
    accuracy: Mapping[str, float] | None = None
    identity: str | None = None  # what defines the accuracy, in words
    speeds: Mapping[str, float] | None = None  # tower -> items/s
    settings: str | None = None  # what defines the throughput, in words
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model.name, "label": self.label, "accuracy": self.identity, "throughput": self.settings}


@dataclass(frozen=True)
class Field:
    label: str
    key: str
    get: Callable[[Entry], Any]
    better: str | None  # "higher", "lower", or None when there is no better


def _speed(tower: str) -> Callable[[Entry], float | None]:
    return lambda entry: (entry.speeds or {}).get(tower)


def _reported(metric: str) -> Callable[[Entry], float]:
    return lambda entry: float(getattr(entry.model, metric))


def _measured(metric: str) -> Callable[[Entry], float | None]:
    return lambda entry: (entry.accuracy or {}).get(metric)


FIELDS = (
    Field("encoder", "encoder", lambda e: e.model.encoder, None),
    Field("image size (px)", "image_size", lambda e: e.model.image_size, None),
    Field("text depth / width", "text", lambda e: f"{e.model.text_depth} / {e.model.text_width}", None),
    Field("seen samples", "seen_samples", lambda e: e.model.seen_samples, None),
    Field("params image (M)", "params_image_m", lambda e: e.model.params_image_m, "lower"),
    Field("params text (M)", "params_text_m", lambda e: e.model.params_text_m, "lower"),
    Field("MACs image (G)", "macs_image_g", lambda e: e.model.macs_image_g, "lower"),
    Field("MACs text (G)", "macs_text_g", lambda e: e.model.macs_text_g, "lower"),
    *(Field(METRIC_LABELS[m], m, _reported(m), "higher") for m in METRICS),
    Field("weights", "weights", lambda e: e.model.weights.repo if e.model.weights else None, None),
)
ACCURACY = (
    Field("accuracy measured with", "accuracy_identity", lambda e: e.identity, None),
    *(Field(f"{METRIC_LABELS[m]} measured", f"{m}_measured", _measured(m), "higher") for m in METRICS),
)
MEASURED = (
    Field("throughput measured with", "throughput_settings", lambda e: e.settings, None),
    Field("images/s (measured)", "throughput_image", _speed("image"), "higher"),
    Field("texts/s (measured)", "throughput_text", _speed("text"), "higher"),
)


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    values: list[Any]
    best: list[str]  # labels of the columns with the best value (ties included), empty when none is better

    def to_json(self) -> dict[str, Any]:
        return {"field": self.key, "label": self.label, "values": self.values, "best": self.best}


def entries(models: Sequence[Model], speeds: Speeds | None = None, accuracy: Accuracy | None = None) -> list[Entry]:
    """A column per model, or per identity of a model measured under several: each accuracy identity with each
    throughput identity (both towers of one bench run in one column: `read_bench`), the newest first. A
    column's label is the model's name, numbered when it repeats."""
    found = []
    for model in models:
        identities: list[tuple[Mapping[str, float] | None, str | None]] = [
            (dict(m.columns), m.identity.describe()) for m in (accuracy.measured(model) if accuracy else ())
        ] or [(None, None)]
        groups: list[tuple[str | None, Mapping[str, float] | None]] = [
            (m.settings, m.rates) for m in (speeds.measured(model) if speeds else ())
        ]
        if speeds is not None and not groups and speeds.by_model.get(model.name.lower()):
            groups = [(None, speeds.by_model[model.name.lower()])]
        groups = groups or [(None, None)]
        combined = [(a, i, rates, text) for a, i in identities for text, rates in groups]
        for index, (columns, identity, rates, text) in enumerate(combined):
            label = model.name if len(combined) == 1 else f"{model.name} ({index + 1})"
            found.append(Entry(model, columns, identity, rates, text, label))
    return found


def compare(models: Sequence[Model], speeds: Speeds | None = None, accuracy: Accuracy | None = None) -> list[Row]:
    """One row per field, the best marked; measured accuracy (`vitamin eval`) and throughput when given."""
    return rows(entries(models, speeds, accuracy), speeds is not None, accuracy is not None)


def rows(columns: Sequence[Entry], with_speeds: bool, with_accuracy: bool) -> list[Row]:
    found = []
    for field in FIELDS + (ACCURACY if with_accuracy else ()) + (MEASURED if with_speeds else ()):
        values = [field.get(e) for e in columns]
        numbers = [v for v in values if isinstance(v, (int, float))]
        best: list[str] = []
        if field.better and numbers and len(set(numbers)) > 1:
            target = max(numbers) if field.better == "higher" else min(numbers)
            best = [e.label for e, v in zip(columns, values, strict=True) if v == target]
        found.append(Row(field.label, field.key, values, best))
    return found


RATES = ("throughput_image", "throughput_text")  # the rows printed as rates: whole numbers, unless too close


def texts(row: Row) -> list[str]:
    """A row's values as printed: "-" for none; a rate as a whole number with thousands separators, with as
    many more decimals as it takes for values that differ to print differently (the mark of the best follows
    the full values: a mark between two values that print alike would say nothing); anything else as it is."""
    if row.key not in RATES:
        return ["-" if v is None else str(v) for v in row.values]
    numbers = {v for v in row.values if isinstance(v, (int, float))}
    for decimals in range(0, 10):
        shown = {v: f"{v:,.{decimals}f}" for v in numbers}
        if len(set(shown.values())) == len(numbers):
            break
    return ["-" if v is None else shown.get(v, str(v)) for v in row.values]
