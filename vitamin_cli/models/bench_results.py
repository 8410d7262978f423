"""What `vitamin bench` measures and saves, and reads back.

A `BenchResult` is one tower of one model on one device. `-o FILE` is JSON lines: an environment line for each
node and GPU (written before the first result measured there), then a line per result with the key that a
rerun skips. `vitamin ls`, `plot` and `compare` read the throughput back (`Speeds`), without torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UsageError
from vitamin_cli.jsonlines import APART, append_line, check_appendable, fits, from_row, read_text, records
from vitamin_cli.zoo import Model


@dataclass
class BenchResult:
    """One model's tower on one device; `vitamin bench --json` prints these fields (docs/json.md)."""

    model: str
    aliases: list[str]
    architecture: str
    tower: str
    device: str
    gpu_name: str | None
    node: str | None  # host name, with --ray
    node_id: str | None  # Ray's node id; null without Ray
    dtype: str
    amp: bool
    compile: bool
    channels_last: bool
    batch_size: int | None = None
    throughput: float | None = None  # items per second, the median run
    throughput_min: float | None = None
    throughput_max: float | None = None
    latency_ms: float | None = None  # per batch, the median run
    peak_memory_gib: float | None = None
    gflops_per_item: float | None = None
    tflops: float | None = None
    mfu: float | None = None
    warmup_s: float | None = None
    spread: float | None = None  # the runs' interquartile range over their median (0.03: 3%)
    runs: int | None = None  # timed runs made: until the spread was under its target, or the budget spent
    noisy: bool = False  # not to be believed as it is: the machine was busy, the spread stayed wide, or MFU > 100%
    noise: str | None = None  # why it is noisy, in words
    busy_share: float | None = None  # the share of this process's CPUs other processes used in the timed runs
    latency_p50_ms: float | None = None  # --latency: one item (batch 1), percentiles of single calls
    latency_p90_ms: float | None = None
    latency_p99_ms: float | None = None
    error: str | None = None
    tried: list[dict[str, Any]] = field(default_factory=list, repr=False, metadata=APART)  # --tune's attempts
    resumed: bool = field(default=False, repr=False, metadata=APART)  # read back from -o FILE, not measured now
    key: str | None = field(default=None, repr=False, metadata=APART)  # what a rerun with -o FILE skips
    environment: dict[str, Any] = field(default_factory=dict, repr=False, metadata=APART)  # where it was measured

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("apart")}
        if self.tried:
            data["tried"] = self.tried
        return data


# The keys of a result's JSON object (docs/json.md), and the columns of `vitamin bench --csv`.
JSON_KEYS = tuple(f.name for f in fields(BenchResult) if not f.metadata.get("apart"))


class ResultsLog:
    """`-o FILE`: each result appended as it comes, after the environment line of where it was measured (once
    per node and GPU); results read back from the file (resumed) are not written again."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.places: set[tuple[Any, Any]] = set()

    def add(self, result: BenchResult) -> None:
        if self.path is None or result.resumed:
            return
        env = result.environment
        if env and (env.get("node"), env.get("gpu_name")) not in self.places:
            self.places.add((env.get("node"), env.get("gpu_name")))
            append_line(self.path, {"kind": "environment", **env})
        append_line(self.path, {"kind": "result", "key": result.key, **result.to_json()})


@dataclass(frozen=True)
class Speeds:
    """Measured throughput (items per second) by model and tower: for each, the settings measured last (`get`),
    and every setting measured (`measured`), never mixed."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> tower -> rate
    settings: Mapping[str, Sequence[tuple[str, str, float]]] = field(
        default_factory=dict
    )  # name -> (tower, settings, rate)

    def get(self, model: Model, tower: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(tower)

    def others(self, model: Model) -> int:
        """How many measurements under other settings there are besides those `get` shows."""
        return max(0, len(self.settings.get(model.name.lower(), ())) - len(self.by_model.get(model.name.lower(), {})))

    def measured(self, model: Model) -> Sequence[tuple[str, str, float]]:
        """(tower, settings, rate) of every setting this model was measured with, the newest first."""
        return self.settings.get(model.name.lower(), ())


SETTINGS_KEYS = ("dtype", "amp", "compile", "channels_last", "batch_size")


def settings_text(row: Mapping[str, Any]) -> str:
    """What a throughput depends on besides the architecture and the device, in words."""
    parts = [str(row.get("dtype")), f"batch {row.get('batch_size')}"]
    parts += [name.replace("_", " ") for name in ("amp", "compile", "channels_last") if row.get(name) is True]
    return ", ".join(parts)


def bench_rows(path: Path) -> list[dict[str, Any]]:
    """The result rows of a file `vitamin bench` wrote: JSON lines (`-o FILE`: an environment line per node
    and GPU, a line per result), or one JSON document (`--json`, and `-o FILE` before JSON lines). A file with
    no result in it is a usage error."""
    rows = _bench_rows(path)
    if not rows:
        raise UsageError(f"{path} holds no benchmark results", hint="pass a file written by `vitamin bench -o FILE`")
    return rows


def _bench_rows(path: Path) -> list[dict[str, Any]]:
    text = read_text(path, "benchmark results")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        data = None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        rows = data["results"]
    elif isinstance(data, list):
        rows = data
    else:  # JSON lines (a file of one line parses as a document too)
        rows = [r for r in records(text) if r.get("kind") == "result"]
    return [r for r in rows if isinstance(r, dict)]


def bench_speeds(path: Path | None, gpu: str | None) -> Speeds | None:
    """What `--bench FILE [--gpu NAME]` of ls, plot and compare ask for; --gpu alone is a usage error."""
    if path is None:
        if gpu is not None:
            raise UsageError("--gpu chooses among the devices of a --bench file", hint="add --bench FILE")
        return None
    return read_bench(path, gpu)


def read_bench(path: Path, gpu: str | None = None) -> Speeds:
    """The throughput of each model and tower in a bench file. Results of different GPUs are never mixed: a
    file that holds several needs `gpu` to say which. Results of other settings (dtype, batch size, amp,
    compile, channels last) are kept apart: the newest of each tower is shown, the others listed."""
    rows = [
        r
        for r in bench_rows(path)
        if isinstance(r.get("model"), str) and isinstance(r.get("tower"), str) and fits(r.get("throughput"), float)
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
    newest: dict[tuple[str, str, tuple[Any, ...]], tuple[int, float, str]] = {}
    for index, row in enumerate(rows):
        identity = tuple(json.dumps(row.get(k)) for k in SETTINGS_KEYS)
        newest[(row["model"].lower(), row["tower"], identity)] = (index, float(row["throughput"]), settings_text(row))
    speeds: dict[str, dict[str, float]] = {}
    settings: dict[str, list[tuple[str, str, float]]] = {}
    for (name, tower, _), (_, rate, text) in sorted(newest.items(), key=lambda item: -item[1][0]):
        speeds.setdefault(name, {}).setdefault(tower, rate)  # the newest settings of each tower
        settings.setdefault(name, []).append((tower, text, rate))
    return Speeds(speeds, settings)


def check_results_file(path: Path) -> None:
    """`bench -o FILE`: a file to append results to (jsonlines.check_appendable)."""
    check_appendable(path, "benchmark results", lambda r: r.get("kind") == "environment" or "tower" in r)


def read_saved(path: Path) -> dict[str, BenchResult]:
    """Results a rerun of `vitamin bench -o FILE` need not measure again, by their key: those measured without
    an error (a failure is tried again). A file that does not exist yet holds none."""
    if not path.exists():
        return {}
    saved = {}
    for row in _bench_rows(path):
        result = from_row(BenchResult, row)
        if isinstance(row.get("key"), str) and row["key"] and result is not None and result.error is None:
            saved[row["key"]] = result
    return saved
