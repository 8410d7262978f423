"""What `vitamin eval` measures and saves: a `TaskResult` per model and task, `-o FILE`'s JSON lines (one per
finished task, so an interrupted sweep loses at most one), and the zoo columns made from them, which ls, plot
and compare read back without torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli.errors import UsageError
from vitamin_cli.jsonlines import APART, append_line, from_row, read_text, records
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
    templates: str | None = None  # "task", "default" or the --templates file
    templates_sha256: str | None = None
    dtype: str | None = None
    device: str | None = None
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

    def key(self) -> tuple[Any, ...]:
        """What makes two results the same measurement: a rerun with the same `-o FILE` skips it."""
        return (self.model, self.checkpoint_sha256, self.task, self.data_revision, self.templates_sha256, self.dtype)


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
    """The five columns of a model from its results (the newest result of each task counts)."""
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


# ---------------------------------------------------------------------------------------------------
# The results file: one JSON line per finished task, so an interrupted sweep loses at most one


def read_results(path: Path) -> list[TaskResult]:
    """The results in a file written by `vitamin eval -o FILE`; other lines (an environment record, a line cut
    short by a kill, a hand edit with wrong types) are left alone."""
    if not path.exists():
        return []
    rows = [r for r in records(read_text(path, "evaluation results")) if r.get("kind") == "result"]
    return [result for result in (from_row(TaskResult, row) for row in rows) if result is not None]


def append_result(path: Path, result: TaskResult) -> None:
    append_line(path, {"kind": "result", **result.to_json()})


@dataclass(frozen=True)
class Accuracy:
    """Accuracy `vitamin eval` measured, by model and zoo column; only columns whose every task has a result."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> column -> %

    def get(self, model: Model, column: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(column)


def read_accuracy(path: Path, models: Sequence[Model]) -> Accuracy:
    """The measured columns of these models in a file written by `vitamin eval -o FILE`."""
    from vitamin_cli.eval import tasks

    if not path.exists():
        raise UsageError(f"cannot read evaluation results from {path}: no such file")
    results = read_results(path)
    if not results:
        raise UsageError(f"{path} holds no evaluation results", hint="pass a file written by `vitamin eval -o FILE`")
    registry = tasks.load().tasks
    measured: dict[str, dict[str, float]] = {}
    for model in models:
        found = {c.column: c.measured for c in columns(model, results, registry) if c.measured is not None}
        if found:
            measured[model.name.lower()] = found
    return Accuracy(measured)
