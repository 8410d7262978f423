"""Models side by side: every number of the zoo (and measured throughput), the best of each row marked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vitamin_cli.eval.results import Accuracy
from vitamin_cli.models.bench_results import Speeds
from vitamin_cli.zoo import METRICS, Model

METRIC_LABELS = {
    "imagenet": "ImageNet (%)",
    "avg38": "avg. 38 datasets (%)",
    "dist_shift": "ImageNet dist. shift (%)",
    "vtab": "VTAB (%)",
    "retrieval": "retrieval (%)",
}


@dataclass(frozen=True)
class Field:
    label: str
    key: str
    get: Callable[[Model, Speeds], Any]
    better: str | None  # "higher", "lower", or None when there is no better


def _speed(tower: str) -> Callable[[Model, Speeds], float | None]:
    return lambda m, speeds: speeds.get(m, tower)


def _reported(metric: str) -> Callable[[Model, Speeds], float]:
    return lambda model, _: float(getattr(model, metric))


FIELDS = (
    Field("encoder", "encoder", lambda m, _: m.encoder, None),
    Field("image size (px)", "image_size", lambda m, _: m.image_size, None),
    Field("text depth / width", "text", lambda m, _: f"{m.text_depth} / {m.text_width}", None),
    Field("seen samples", "seen_samples", lambda m, _: m.seen_samples, None),
    Field("params image (M)", "params_image_m", lambda m, _: m.params_image_m, "lower"),
    Field("params text (M)", "params_text_m", lambda m, _: m.params_text_m, "lower"),
    Field("MACs image (G)", "macs_image_g", lambda m, _: m.macs_image_g, "lower"),
    Field("MACs text (G)", "macs_text_g", lambda m, _: m.macs_text_g, "lower"),
    *(Field(METRIC_LABELS[m], m, _reported(m), "higher") for m in METRICS),
    Field("weights", "weights", lambda m, _: m.weights.repo if m.weights else None, None),
)
MEASURED = (
    Field("images/s (measured)", "throughput_image", _speed("image"), "higher"),
    Field("texts/s (measured)", "throughput_text", _speed("text"), "higher"),
)


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    values: list[Any]
    best: list[str]  # names of the models with the best value (ties included), empty when none is better

    def to_json(self) -> dict[str, Any]:
        return {"field": self.key, "label": self.label, "values": self.values, "best": self.best}


def _measured_fields(accuracy: Accuracy) -> tuple[Field, ...]:
    def getter(metric: str) -> Callable[[Model, Speeds], float | None]:
        return lambda model, _: accuracy.get(model, metric)

    return tuple(Field(f"{METRIC_LABELS[m]} measured", f"{m}_measured", getter(m), "higher") for m in METRICS)


def compare(models: Sequence[Model], speeds: Speeds | None = None, accuracy: Accuracy | None = None) -> list[Row]:
    """One row per field, the best marked; measured accuracy (`vitamin eval`) and throughput when given."""
    rows = []
    measured = _measured_fields(accuracy) if accuracy is not None else ()
    for field in FIELDS + measured + (MEASURED if speeds is not None else ()):
        values = [field.get(m, speeds or Speeds()) for m in models]
        numbers = [v for v in values if isinstance(v, (int, float))]
        best: list[str] = []
        if field.better and numbers and len(set(numbers)) > 1:
            target = max(numbers) if field.better == "higher" else min(numbers)
            best = [m.name for m, v in zip(models, values, strict=True) if v == target]
        rows.append(Row(field.label, field.key, values, best))
    return rows
