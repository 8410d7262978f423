"""What `vitamin eval` measures and saves: a `TaskResult` per model and task, `-o FILE`'s JSON lines (one per
finished task, so an interrupted sweep loses at most one), and the zoo columns made from them, which ls, plot
and compare read back without torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli import report, sweeps
from vitamin_cli.errors import UsageError
from vitamin_cli.jsonlines import APART, from_row
from vitamin_cli.zoo import METRICS, Model

if TYPE_CHECKING:
    from vitamin_cli.eval.tasks import Task


@dataclass
class TaskResult:
    """One model on one task; `vitamin eval --json` and each line of `-o FILE` (docs/json.md)."""

    model: str
    checkpoint_sha256: str | None
    task: str
    task_name: str
    data_revision: str | None = None
    templates: str | None = None  # "task", "default", "none" (retrieval, WinoGAViL) or the --templates file
    templates_sha256: str | None = None
    dtype: str | None = None
    device: str | None = None
    architecture_sha256: str | None = None  # models.arch.fingerprint: config and preprocessing; null in older files
    classnames_sha256: str | None = None  # the class names, one per line; null in files written before
    samples: int = 0
    undecodable: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # percent
    main_metric: str | None = None
    main: float | None = None  # percent
    seconds: float | None = None
    images_per_s: float | None = None
    classifier_s: float | None = None
    classifier_cached: bool | None = None
    node: str | None = None  # host name, with --ray
    node_id: str | None = None  # Ray's node id; null without Ray
    status: str = "ok"  # ok, skipped (not evaluated yet, or no weights) or failed
    error: str | None = None
    resumed: bool = field(default=False, repr=False, metadata=APART)  # read back from -o FILE, not measured now

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("apart")}

    def key(self) -> str:
        """Everything the result depends on (`key_parts`), as one key (`sweeps.key_of`): a rerun with the same
        `-o FILE` skips a result of the same key."""
        return sweeps.key_of(*self.key_parts())

    def key_parts(self) -> tuple[Any, ...]:
        """Everything the result depends on. A result read from a file written before a part was recorded has
        None there, so it never matches."""
        return (
            self.model,
            self.checkpoint_sha256,
            self.architecture_sha256,
            self.task,
            self.data_revision,
            self.classnames_sha256,
            self.templates_sha256,
            self.dtype,
            device_kind(self.device),
        )

    def identity(self) -> Identity:
        """What a zoo column made of this result is a mean over: one checkpoint, one architecture, one dtype
        on one kind of device, one choice of templates."""
        # The task's own templates, or none (retrieval, WinoGAViL): both what the zoo's columns are made with.
        own = f"file {(self.templates_sha256 or '')[:12]}"
        chosen = {"task": "task", "none": "task", "default": "default"}.get(self.templates or "", own)
        return Identity(
            self.checkpoint_sha256, self.architecture_sha256, self.dtype, device_kind(self.device), chosen or "?"
        )


def device_kind(device: str | None) -> str | None:
    """cuda for cuda:N, cpu for cpu: what a result may depend on (the GPU's index does not matter)."""
    return device.split(":")[0] if device else None


@dataclass(frozen=True)
class Identity:
    """The settings a column of measured accuracy is a mean over; results of two identities are never averaged
    together."""

    checkpoint_sha256: str | None
    architecture_sha256: str | None
    dtype: str | None
    device: str | None
    templates: str

    def describe(self) -> str:
        checkpoint = (self.checkpoint_sha256 or "unknown")[:12]
        architecture = (self.architecture_sha256 or "not recorded")[:12]
        return (
            f"checkpoint {checkpoint}, architecture {architecture}, {self.dtype or '?'} on {self.device or '?'}, "
            f"{self.templates} templates"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Column:
    """One zoo column of one model: reported, measured (when every task of it ran) and the difference."""

    column: str
    reported: float
    measured: float | None
    difference: float | None  # measured - reported, in points
    tasks: int  # how many tasks make the column
    missing: list[str]  # the tasks without a result: the column is incomplete while any is missing

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def columns(model: Model, results: Iterable[TaskResult], registry: Sequence[Task]) -> list[Column]:
    """The five columns of a model from its results of one identity (the newest result of each task counts)."""
    main = {r.task: r.main for r in results if r.model == model.name and r.status == "ok" and r.main is not None}
    found = []
    for suite in METRICS:
        members = [t.key for t in registry if suite in t.groups]
        missing = [key for key in members if key not in main]
        measured = None if missing else round(sum(main[k] for k in members) / len(members), 2)
        reported = float(getattr(model, suite))
        difference = None if measured is None else round(measured - reported, 2)
        found.append(Column(suite, reported, measured, difference, len(members), missing))
    return found


def by_identity(model: Model, results: Sequence[TaskResult]) -> list[tuple[Identity, list[TaskResult]]]:
    """A model's finished results, grouped by identity; the identity measured last first."""
    groups: dict[Identity, list[TaskResult]] = {}
    last: dict[Identity, int] = {}
    for index, result in enumerate(results):
        if result.model == model.name and result.status == "ok":
            groups.setdefault(result.identity(), []).append(result)
            last[result.identity()] = index
    return [(identity, groups[identity]) for identity in sorted(groups, key=lambda i: -last[i])]


def newest_columns(
    models: Sequence[Model], measured: Sequence[TaskResult]
) -> dict[str, tuple[Identity | None, list[Column]]]:
    """Each evaluated model's zoo columns, from its results of one identity (the newest): never a mean over
    results of two checkpoints, architectures, dtypes or devices."""
    from vitamin_cli.eval import tasks

    found: dict[str, tuple[Identity | None, list[Column]]] = {}
    for model in models:
        if any(r.model == model.name for r in measured):
            groups = by_identity(model, measured)
            identity, group = groups[0] if groups else (None, [])
            found[model.name] = (identity, columns(model, group, tasks.load().tasks))
    return found


# ---------------------------------------------------------------------------------------------------
# The results file: one JSON line per finished task, so an interrupted sweep loses at most one


def _read(row: Mapping[str, Any]) -> TaskResult | None:
    recorded_later = {"architecture_sha256": None, "classnames_sha256": None}  # absent from older files
    return from_row(TaskResult, {**recorded_later, **row})


# `eval -o FILE`'s lines (`sweeps`): each result but a skipped one, its key computed from its fields (no key is
# saved); a result with status ok is what a rerun skips.
ROWS = sweeps.Rows(
    what="evaluation results",
    ours=lambda row: row.get("kind") == "result" and "task" in row,
    read=_read,
    key=lambda result: result.key() if result.status == "ok" else None,
    line=lambda result: None if result.status == "skipped" else result.to_json(),
)


def read_results(path: Path) -> list[TaskResult]:
    """The results in a file written by `vitamin eval -o FILE`; other lines (an environment record, a line cut
    short by a kill, a hand edit with wrong types) are left alone."""
    return sweeps.read_results(ROWS, path)


@dataclass(frozen=True)
class Measured:
    """The complete columns of one model under one identity."""

    identity: Identity
    columns: Mapping[str, float]  # zoo column -> %, only those whose every task has a result

    def to_json(self) -> dict[str, Any]:
        return {"identity": self.identity.to_json(), "columns": dict(self.columns)}


@dataclass(frozen=True)
class Accuracy:
    """Accuracy `vitamin eval` measured, by model: each identity with a complete column, the newest first. A
    table with one row per model shows the newest (`get`) and marks that others exist (`others`)."""

    by_model: Mapping[str, Sequence[Measured]] = field(default_factory=dict)  # lower-case name -> identities

    def get(self, model: Model, column: str) -> float | None:
        shown = self.by_model.get(model.name.lower())
        return shown[0].columns.get(column) if shown else None

    def others(self, model: Model) -> int:
        """How many identities with complete columns there are besides the one `get` shows."""
        return max(0, len(self.by_model.get(model.name.lower(), ())) - 1)

    def measured(self, model: Model) -> Sequence[Measured]:
        return self.by_model.get(model.name.lower(), ())


def read_accuracy(path: Path, models: Sequence[Model]) -> Accuracy:
    """The measured columns of these models in a file written by `vitamin eval -o FILE`, never averaged across
    identities."""
    from vitamin_cli.eval import tasks

    if not path.exists():
        raise UsageError(f"cannot read evaluation results from {path}: no such file")
    results = read_results(path)
    if not results:
        raise UsageError(f"{path} holds no evaluation results", hint="pass a file written by `vitamin eval -o FILE`")
    registry = tasks.load().tasks
    for key in sorted({r.task for r in results} & set(tasks.RETIRED)):
        report.note(f"{path} holds results of {key}: {tasks.RETIRED[key]}; never counted in a column")
    found: dict[str, list[Measured]] = {}
    for model in models:
        for identity, group in by_identity(model, results):
            complete = {c.column: c.measured for c in columns(model, group, registry) if c.measured is not None}
            if complete:
                found.setdefault(model.name.lower(), []).append(Measured(identity, complete))
    return Accuracy(found)
