"""Results saved by `vitamin bench -o FILE` and `vitamin eval -o FILE`, read back for ls, plot and compare.

No torch here: reading results is as light as `vitamin ls`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vitamin_cli.errors import UsageError
from vitamin_cli.zoo import METRICS, Model

if TYPE_CHECKING:
    from vitamin_cli.tasks import Task

T = TypeVar("T")


@dataclass(frozen=True)
class Speeds:
    """Measured throughput (items per second) by model and tower."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> tower -> rate

    def get(self, model: Model, tower: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(tower)


def bench_rows(path: Path) -> list[dict[str, Any]]:
    """The result rows of a file `vitamin bench` wrote: JSON lines (`-o FILE`: an environment line per node
    and GPU, a line per result), or one JSON document (`--json`, and `-o FILE` before JSON lines). A file with
    no result in it is a usage error."""
    rows = _bench_rows(path)
    if not rows:
        raise UsageError(f"{path} holds no benchmark results", hint="pass a file written by `vitamin bench -o FILE`")
    return rows


def _bench_rows(path: Path) -> list[dict[str, Any]]:
    text = _read(path, "benchmark results")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        data = None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        rows = data["results"]
    elif isinstance(data, list):
        rows = data
    else:  # JSON lines (a file of one line parses as a document too)
        rows = [r for r in _records(text) if r.get("kind") == "result"]
    return [r for r in rows if isinstance(r, dict)]


def _read(path: Path, what: str) -> str:
    if path.is_dir():
        raise UsageError(f"cannot read {what} from {path}: it is a folder")
    if path.exists() and not path.is_file():
        raise UsageError(f"cannot read {what} from {path}: it is not a regular file (a device or a pipe)")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UsageError(f"cannot read {what} from {path}: {err.strerror}") from None


def _records(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines text; a line that is not one (cut short by a kill, edited by hand) is
    left out."""
    found = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def _fits(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON has the type a dataclass field declares (finite numbers only)."""
    import math
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    return isinstance(value, hint)


def from_row(cls: type[T], row: Mapping[str, Any]) -> T | None:
    """The row as an instance of the dataclass `cls` if it holds every field with its declared type; else None
    (another tool's line, a hand edit, a wrong type)."""
    wanted = _line_fields(cls)  # type: ignore[arg-type]
    if all(k in row and _fits(row[k], hint) for k, hint in wanted.items()):
        return cls(**{k: row[k] for k in wanted})
    return None


@functools.lru_cache(maxsize=4)
def _line_fields(cls: type) -> dict[str, Any]:
    """The fields of a dataclass that a results line carries, with their types (resolved once per class)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and not f.metadata.get("apart")}


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    """Add one JSON line to a results file (created with the user's umask), flushed to disk at once. A last
    line cut short by a kill gets its end first, so the new line stays readable."""
    import os

    line = json.dumps(record) + "\n"
    with open(path, "a+b") as out:
        if out.tell() > 0:
            out.seek(-1, os.SEEK_END)
            if out.read(1) != b"\n":
                line = "\n" + line
        out.write(line.encode("utf-8"))  # one write: lines of concurrent runs never interleave
        out.flush()
        os.fsync(out.fileno())


def bench_speeds(path: Path | None, gpu: str | None) -> Speeds | None:
    """What `--bench FILE [--gpu NAME]` of ls, plot and compare ask for; --gpu alone is a usage error."""
    if path is None:
        if gpu is not None:
            raise UsageError("--gpu chooses among the devices of a --bench file", hint="add --bench FILE")
        return None
    return read_bench(path, gpu)


def read_bench(path: Path, gpu: str | None = None) -> Speeds:
    """The throughput of each model and tower in a bench file. Results of different GPUs are never mixed: a
    file that holds several needs `gpu` to say which."""
    rows = [
        r
        for r in bench_rows(path)
        if isinstance(r.get("model"), str) and isinstance(r.get("tower"), str) and _fits(r.get("throughput"), float)
    ]
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
    for row in rows:
        speeds.setdefault(row["model"].lower(), {})[row["tower"]] = float(row["throughput"])
    return Speeds(speeds)


def saved_bench(path: Path) -> dict[str, Any]:
    """Results a rerun of `vitamin bench -o FILE` need not measure again, by their key: those measured without
    an error (a failure is tried again)."""
    from vitamin_cli.bench import Result

    saved = {}
    for row in _bench_rows(path):
        result = from_row(Result, row)
        if isinstance(row.get("key"), str) and row["key"] and result is not None and result.error is None:
            saved[row["key"]] = result
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
    short by a kill, a hand edit with wrong types) are left alone."""
    if not path.exists():
        return []
    rows = [r for r in _records(_read(path, "evaluation results")) if r.get("kind") == "result"]
    return [result for result in (from_row(TaskResult, row) for row in rows) if result is not None]


def append_result(path: Path, result: TaskResult) -> None:
    append_line(path, {"kind": "result", **result.to_json()})


@dataclass(frozen=True)
class Measured:
    """Accuracy `vitamin eval` measured, by model and zoo column; only columns whose every task has a result."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> column -> %

    def get(self, model: Model, column: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(column)


def read_eval(path: Path, models: Sequence[Model]) -> Measured:
    """The measured columns of these models in a file written by `vitamin eval -o FILE`."""
    from vitamin_cli import tasks

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
    return Measured(measured)
