"""Recompute every model's parameters and MACs from its real architecture and set them beside the reported ones.

Each distinct architecture is built once (the data scales of an encoder are one network), on the meta
device. Results are cached per architecture and library versions, so a second audit is instant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from vitamin_cli.errors import VitaminError
from vitamin_cli.files import memo_dir, read_memo, write_atomic
from vitamin_cli.zoo import Model, Zoo

COUNTING_VERSION = 1  # bump when the way of counting changes, to drop cached counts
MAX_MEMO_BYTES = 64 * 2**20  # counts of thousands of architectures; a larger memo is not read, but rebuilt
_LIBRARIES = ("torch", "open_clip_torch", "timm")


@dataclass
class AuditRow:
    """`vitamin audit --json` prints these fields (docs/json.md)."""

    model: str
    architecture: str
    params_image_m_reported: float
    params_image_m_measured: float
    params_text_m_reported: float
    params_text_m_measured: float
    macs_image_g_reported: float
    macs_image_g_measured_paper: float
    macs_image_g_measured_full: float
    macs_text_g_reported: float
    macs_text_g_measured_paper: float
    macs_text_g_measured_full: float
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def tolerance(model: Model) -> float:
    """One unit of the last decimal the zoo table prints for params and MACs (2 decimals, or 1): the table
    rounds some numbers and truncates others (ViTamin-L's 72.608 G is printed 72.60)."""
    return 0.01 if model.schedule == "benchmark" else 0.1


def cache_file() -> Path:
    """Where counts are kept: one file per version of the libraries that build the models."""
    import hashlib

    versions = ";".join(f"{name}={_version(name)}" for name in _LIBRARIES)
    key = hashlib.sha256(f"{COUNTING_VERSION};{versions}".encode()).hexdigest()[:16]
    return memo_dir() / f"audit-{key}.json"


def libraries() -> dict[str, str]:
    """The versions of the libraries that build the models, which the counts of `cached_counts` were made with."""
    return {name: _version(name) for name in _LIBRARIES}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def cached_counts() -> dict[str, dict[str, float]]:
    """Counts by architecture key from earlier audits with these library versions (no torch needed). The memo
    is read like user input: an entry that is not every count as a positive finite number is left out (and
    measured again by the next audit), and a file that is not a JSON object of them (garbage, a list, a FIFO, a
    folder) counts as none."""
    from vitamin_cli.jsonlines import from_row
    from vitamin_cli.models.arch import Counts

    kept = read_memo(cache_file(), MAX_MEMO_BYTES)
    try:
        data = json.loads(kept) if kept is not None else None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        data = None
    if not isinstance(data, dict):
        return {}
    found = {}
    for key, row in data.items():
        counts = from_row(Counts, row) if isinstance(row, dict) else None
        if counts is not None and all(value > 0 for value in counts.to_json().values()):
            found[key] = counts.to_json()
    return found


def audit(
    registry: Zoo,
    models: Sequence[Model],
    progress: Callable[[str], None] | None = None,
    failures: dict[str, VitaminError] | None = None,
) -> list[AuditRow]:
    """Measure each distinct architecture once (or take it from the cache) and compare every model. A model
    whose architecture cannot be built or counted is left out, its error put in `failures` (else raised).
    Flags that compare a model with others look at the whole zoo, not only at `models`, so a model gets the
    same flags whatever else is audited with it."""
    counter = _Counter(registry, progress)
    rows = []
    for model in models:
        try:
            counts = counter.counts(model)
        except VitaminError as err:
            if failures is None:
                counter.save()
                raise
            failures[model.name] = err
            continue
        rows.append(_row(model, counts))
    by_name = {m.name: m for m in models}
    for row in rows:
        _flag_copied_params(row, by_name[row.model], counter)
    counter.save()
    return rows


class _Counter:
    """Counts by architecture, from the memo or measured once; what is measured goes back to the memo."""

    def __init__(self, registry: Zoo, progress: Callable[[str], None] | None) -> None:
        self.registry = registry
        self.progress = progress
        self.known = cached_counts()
        self.failed: dict[str, VitaminError] = {}  # by model name: its architecture could not be counted
        self.fresh = False

    def counts(self, model: Model) -> Any:
        """The model's architecture counted (an `arch.Counts`), or the VitaminError that stopped it."""
        from vitamin_cli.models import arch

        if model.name in self.failed:
            raise self.failed[model.name]
        key = architecture_id(self.registry, model)
        if key not in self.known:
            if self.progress is not None:
                self.progress(model.arch)
            try:
                self.known[key] = arch.count(arch.config(self.registry, model)).to_json()
            except VitaminError as err:
                self.failed[model.name] = err
                raise
            self.fresh = True
        return arch.Counts(**self.known[key])

    def save(self) -> None:
        if self.fresh:
            try:
                write_atomic(cache_file(), json.dumps(self.known))
            except OSError:
                pass  # a cache that cannot be written only costs the next audit its speed
            self.fresh = False


def architecture_id(registry: Zoo, model: Model) -> str:
    """What identifies an architecture in the cache: its config from the zoo file, or open_clip's config name
    (fixed by the open_clip version in the cache file's name). Needs no torch."""
    inline = registry.inline_architecture(model)
    return json.dumps(inline, sort_keys=True) if inline is not None else f"open_clip:{model.arch}"


def _row(model: Model, counts: Any) -> AuditRow:
    row = AuditRow(
        model=model.name,
        architecture=model.arch,
        params_image_m_reported=model.params_image_m,
        params_image_m_measured=round(counts.params_image_m, 4),
        params_text_m_reported=model.params_text_m,
        params_text_m_measured=round(counts.params_text_m, 4),
        macs_image_g_reported=model.macs_image_g,
        macs_image_g_measured_paper=round(counts.macs_image_g_paper, 4),
        macs_image_g_measured_full=round(counts.macs_image_g_full, 4),
        macs_text_g_reported=model.macs_text_g,
        macs_text_g_measured_paper=round(counts.macs_text_g_paper, 4),
        macs_text_g_measured_full=round(counts.macs_text_g_full, 4),
    )
    for label, reported, measured in (
        ("params image", row.params_image_m_reported, row.params_image_m_measured),
        ("params text", row.params_text_m_reported, row.params_text_m_measured),
        ("MACs image", row.macs_image_g_reported, row.macs_image_g_measured_paper),
        ("MACs text", row.macs_text_g_reported, row.macs_text_g_measured_paper),
    ):
        if _disagrees(model, reported, measured):
            row.flags.append(f"{label}: reported {reported:g}, measured {measured:.2f}")
    if any(flag.startswith("MACs image") for flag in row.flags):
        # A convolutional tower's MACs grow with the pixel count: the size that gives the reported number.
        pixels = model.image_size * math.sqrt(row.macs_image_g_reported / row.macs_image_g_measured_paper)
        if abs(pixels - round(pixels / 16) * 16) < 0.5 and round(pixels) != model.image_size:
            row.flags.append(f"MACs image as at {round(pixels)} px, not {model.image_size} px")
    return row


def _flag_copied_params(row: AuditRow, model: Model, counter: _Counter) -> None:
    """Name the sibling whose (correct) params a row repeats: the zoo table's copy-paste findings. Siblings are
    sought in the whole zoo, in table order, by their reported params; only a sibling with the same printed
    number is counted (from the memo, or measured once), to see that its own number is right."""
    if not any(flag.startswith("params image") for flag in row.flags):
        return
    for other in counter.registry.models:
        if (
            other.arch == model.arch
            or other.schedule != model.schedule
            or other.params_image_m != row.params_image_m_reported
        ):
            continue
        try:
            counts = counter.counts(other)
        except VitaminError:
            continue  # a sibling that cannot be counted is no evidence either way
        if not _disagrees(other, other.params_image_m, counts.params_image_m):
            row.flags.append(f"params image printed as {other.encoder}'s")
            return


def _disagrees(model: Model, reported: float, measured: float) -> bool:
    """Whether a measured number (rounded as the audit prints it) is off the reported one by more than the
    table's rounding."""
    return abs(reported - round(measured, 4)) > tolerance(model) + 1e-9


def to_markdown(rows: Sequence[AuditRow]) -> str:
    """The audit as a markdown table (docs/audit.md carries it for the whole zoo)."""
    lines = [
        "| model | params image (M) reported / measured | params text (M) reported / measured "
        "| MACs image (G) reported / paper / full | MACs text (G) reported / paper / full | flags |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.params_image_m_reported:g} / {r.params_image_m_measured:.2f} "
            f"| {r.params_text_m_reported:g} / {r.params_text_m_measured:.2f} "
            f"| {r.macs_image_g_reported:g} / {r.macs_image_g_measured_paper:.2f} / {r.macs_image_g_measured_full:.2f} "
            f"| {r.macs_text_g_reported:g} / {r.macs_text_g_measured_paper:.2f} / {r.macs_text_g_measured_full:.2f} "
            f"| {'; '.join(r.flags)} |"
        )
    return "\n".join(lines) + "\n"
