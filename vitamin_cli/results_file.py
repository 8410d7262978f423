"""Results saved by `vitamin bench -o FILE` and `vitamin eval -o FILE`, read back for ls, plot and compare.

No torch here: reading results is as light as `vitamin ls`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli.errors import UsageError
from vitamin_cli.zoo import METRICS, Model

if TYPE_CHECKING:
    from vitamin_cli.tasks import Task


@dataclass(frozen=True)
class Speeds:
    """Measured throughput (items per second) by model and tower."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> tower -> rate

    def get(self, model: Model, tower: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(tower)


def bench_rows(path: Path) -> list[dict[str, Any]]:
    """The result rows of a file `vitamin bench` wrote: JSON lines (`-o FILE`: an environment line per node
    and GPU, a line per result), or one JSON document (`--json`, and `-o FILE` before JSON lines)."""
    try:
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
            rows = data["results"] if isinstance(data, dict) else data
        except ValueError:
            records = [json.loads(line) for line in text.splitlines() if line.strip()[:1] == "{"]
            rows = [r for r in records if isinstance(r, dict) and r.get("kind") == "result"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TypeError("not a list of results")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(
            f"cannot read benchmark results from {path}: {err}", hint="pass a file written by `vitamin bench -o FILE`"
        ) from None
    return rows


def read_bench(path: Path, gpu: str | None = None) -> Speeds:
    """The throughput of each model and tower in a bench file. Results of different GPUs are never mixed: a
    file that holds several needs `gpu` to say which."""
    rows = [r for r in bench_rows(path) if r.get("throughput") is not None]
    gpus = sorted({str(r.get("gpu_name") or "cpu") for r in rows})
    if gpu is not None:
        rows = [r for r in rows if str(r.get("gpu_name") or "cpu") == gpu]
        if not rows:
            raise UsageError(f"{path} holds no results of {gpu!r}", hint=f"it holds: {', '.join(gpus)}")
    elif len(gpus) > 1:
        raise UsageError(
            f"{path} holds results of {len(gpus)} devices ({', '.join(gpus)}), which are never mixed",
            hint="choose one with --gpu NAME",
        )
    speeds: dict[str, dict[str, float]] = {}
    try:
        for row in rows:
            speeds.setdefault(str(row["model"]).lower(), {})[str(row["tower"])] = float(row["throughput"])
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"cannot read benchmark results from {path}: {err}") from None
    return Speeds(speeds)


def saved_bench(path: Path) -> dict[str, Any]:
    """Results a rerun of `vitamin bench -o FILE` need not measure again, by their key."""
    from dataclasses import fields

    from vitamin_cli.bench import Result

    names = {f.name for f in fields(Result) if f.init and f.name not in ("tried", "resumed")}
    saved = {}
    for row in bench_rows(path):
        if "key" in row and names <= set(row):
            saved[str(row["key"])] = Result(**{k: row[k] for k in names})
    return saved


# ---------------------------------------------------------------------------------------------------
# Evaluation results


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

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
    short by a kill) are left alone."""
    import dataclasses

    if not path.exists():
        return []
    known = {f.name for f in dataclasses.fields(TaskResult)}
    found = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from None
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("kind") == "result" and known <= set(row):
            found.append(TaskResult(**{k: row[k] for k in known}))
    return found


def append_result(path: Path, result: TaskResult) -> None:
    """Add one line to the results file (created with the user's umask), flushed to disk at once."""
    import os

    line = json.dumps({"kind": "result", **result.to_json()}) + "\n"
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())


@dataclass(frozen=True)
class Measured:
    """Accuracy `vitamin eval` measured, by model and zoo column; only columns whose every task has a result."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> column -> %

    def get(self, model: Model, column: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(column)


def read_eval(path: Path, models: Sequence[Model]) -> Measured:
    """The measured columns of these models in a file written by `vitamin eval -o FILE`."""
    from vitamin_cli import tasks

    if not path.is_file():
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
    return Measured(measured)
