"""One pipeline for the sweeps of `vitamin bench` and `vitamin eval`: jobs run through a `runners.Runner` (in
this process or on Ray), a job whose result is saved already skipped (the saved result yielded, marked
`resumed`), each new result appended to a JSON-lines results file (`-o FILE`), and a file's results read back
by key.

Bench and eval are two kinds of it. Each plans its own jobs (`bench.sweep.plan`, `eval.sweep.sweep`) and gives:
- a `Kind`: how one job runs (`run`, a plain function of plain data, so that it can run on Ray), and the result
  of a job that could not run to its end (`failed`);
- a `Rows`: how its results are keyed, become a results file's lines, and come back from them.

A key is one JSON text (`key_of`) of everything a result depends on; a job is told the keys saved, and finds its
own key where it runs (it depends on the GPU, the checkpoint's bytes, the installed versions): instead of
running, it gives back `Saved(key)`, and the pipeline yields the saved result.

    log, saved = sweeps.resume(results.ROWS, Path("runs.jsonl"))   # checked before any work; what it holds
    for result in sweep.sweep(..., saved=saved, runner=runner):
        log.add(result)                                             # a resumed result is there already

No torch here: reading results is as light as `vitamin ls`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from vitamin_cli.files import check_writable
from vitamin_cli.jsonlines import append_line, check_appendable, read_text, records
from vitamin_cli.runners import Resources, Runner


def key_of(*parts: Any) -> str:
    """The key of a result made of these parts: what a rerun with the same results file skips."""
    return json.dumps(list(parts), sort_keys=True)


@dataclass(frozen=True)
class Saved:
    """What a job gives back instead of a result when the key of the result it would make is saved already."""

    key: str


class Result(Protocol):
    """What the pipeline sets on a result: where it ran, and whether it was read back rather than made now."""

    node: str | None
    node_id: str | None
    resumed: bool


R = TypeVar("R", bound=Result)
J = TypeVar("J")


@dataclass(frozen=True)
class Rows(Generic[R]):
    """How results of one kind are saved as lines of a results file, and read back."""

    what: str  # what such a file holds, in messages: "benchmark results"
    ours: Callable[[Mapping[str, Any]], bool]  # whether a line is one of them (or their environment)
    read: Callable[[Mapping[str, Any]], R | None]  # a result line back into a result; None: not one
    key: Callable[[R], str | None]  # what a rerun skips; None: tried again (a failure)
    line: Callable[[R], Mapping[str, Any] | None]  # the result's line; None: not saved
    environment: Callable[[R], Mapping[str, Any]] | None = None  # where it ran: a line before its first result


@dataclass(frozen=True)
class Kind(Generic[J, R]):
    """How one job of a kind runs."""

    run: Callable[..., R | Saved]  # `run(job, *here)`: `here` (a progress callback...) in this process only
    failed: Callable[[J, str], R]  # the result of a job that could not run to its end: its worker died, twice


def run(
    kind: Kind[J, R],
    jobs: Sequence[J],
    runner: Runner,
    resources: Resources,
    saved: Mapping[str, R] | None = None,
    here: Callable[[J], tuple[Any, ...]] | None = None,
) -> Iterator[tuple[int, R]]:
    """Run the jobs, in the order given as the runner allows; yield each job's position with its result as it
    finishes. A job that found its key in `saved` gives the saved result, marked `resumed`; a result made now
    says where (`node`, `node_id`: set on Ray). `here(job)` gives what a job takes in this process only."""
    saved = saved or {}
    calls = [(job, *here(job)) if here is not None and runner.in_process else (job,) for job in jobs]
    for finished in runner.run(kind.run, calls, resources):
        value = finished.value
        if isinstance(value, Saved):
            result = copy.copy(saved[value.key])
            result.resumed = True
        elif value is None:  # its worker died, twice
            result = kind.failed(jobs[finished.index], finished.error or "it did not finish")
        else:
            result = value
            result.node, result.node_id = finished.node, finished.node_id
        yield finished.index, result


def read_results(rows: Rows[R], path: Path) -> list[R]:
    """The results in a results file, in its order; other lines (an environment, a line cut short by a kill, a
    hand edit with wrong types) are left out. A file that does not exist yet holds none."""
    if not path.exists():
        return []
    lines = [r for r in records(read_text(path, rows.what)) if r.get("kind") == "result"]
    return [result for result in map(rows.read, lines) if result is not None]


def read_saved(rows: Rows[R], path: Path) -> dict[str, R]:
    """The results a rerun need not make again, by key (the last of a key counts): a failure is tried again."""
    return {key: result for result in read_results(rows, path) if (key := rows.key(result))}


class ResultsFile(Generic[R]):
    """`-o FILE`: each new result appended as it comes (none without a path), after the environment line of
    where it was made (once per node and GPU); a resumed result, read back from the file, is not written again."""

    def __init__(self, rows: Rows[R], path: Path | None) -> None:
        self.rows, self.path = rows, path
        self.places: set[tuple[Any, Any]] = set()

    def add(self, result: R) -> None:
        line = None if self.path is None or result.resumed else self.rows.line(result)
        if self.path is None or line is None:
            return
        env = self.rows.environment(result) if self.rows.environment is not None else {}
        if env and (env.get("node"), env.get("gpu_name")) not in self.places:
            self.places.add((env.get("node"), env.get("gpu_name")))
            append_line(self.path, {"kind": "environment", **env})
        append_line(self.path, {"kind": "result", **line})


def resume(rows: Rows[R], path: Path | None) -> tuple[ResultsFile[R], dict[str, R]]:
    """`-o FILE`, checked before any work starts (it can be written, and is new, empty or a file of these
    results: `jsonlines.check_appendable`), and the results it holds already, by key, for a rerun to skip."""
    if path is None:
        return ResultsFile(rows, None), {}
    check_writable(path)
    check_appendable(path, rows.what, rows.ours)
    return ResultsFile(rows, path), read_saved(rows, path)
