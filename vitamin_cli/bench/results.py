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
from typing import Any, Protocol

from vitamin_cli import sweeps
from vitamin_cli.errors import UsageError
from vitamin_cli.jsonlines import APART, fits, from_row, read_text, records
from vitamin_cli.zoo import Model


class Settings(Protocol):
    """What a result records of `measure.BenchSettings`."""

    @property
    def device(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def amp(self) -> bool: ...
    @property
    def compile(self) -> bool: ...
    @property
    def channels_last(self) -> bool: ...


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

    @classmethod
    def started(cls, model: Model, tower: str, settings: Settings, env: Mapping[str, Any] | None = None) -> BenchResult:
        """A result of one tower with what it is measured under filled in, and nothing measured yet: the model,
        the settings (channels last is an image tower's only) and, from `env`, the GPU."""
        return cls(
            model=model.name,
            aliases=list(model.aliases),
            architecture=model.arch,
            tower=tower,
            device=settings.device,
            gpu_name=(env or {}).get("gpu_name"),
            node=None,
            node_id=None,
            dtype=settings.dtype,
            amp=settings.amp,
            compile=settings.compile,
            channels_last=settings.channels_last and tower == "image",
        )

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("apart")}
        if self.tried:
            data["tried"] = self.tried
        return data


# The keys of a result's JSON object (docs/json.md), and the columns of `vitamin bench --csv`.
JSON_KEYS = tuple(f.name for f in fields(BenchResult) if not f.metadata.get("apart"))


@dataclass(frozen=True)
class Measured:
    """One identity of a model's throughput: the rate of each tower measured under it, and its settings in
    words (`settings_text`)."""

    settings: str
    rates: Mapping[str, float]  # tower -> items/s


@dataclass(frozen=True)
class Speeds:
    """Measured throughput (items per second) by model and tower: for each model, the rates of its newest
    identity (`get`), and every identity measured (`measured`), never mixed (`read_bench` says what one is)."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> tower -> rate
    identities: Mapping[str, Sequence[Measured]] = field(default_factory=dict)  # lower-case name -> newest first
    device: str | None = None  # the GPU's name, or "cpu"

    def get(self, model: Model, tower: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(tower)

    def others(self, model: Model) -> int:
        """How many identities there are besides the one `get` shows."""
        return max(0, len(self.identities.get(model.name.lower(), ())) - 1)

    def measured(self, model: Model) -> Sequence[Measured]:
        """Every identity this model was measured under, the newest first."""
        return self.identities.get(model.name.lower(), ())


# What a throughput depends on besides the architecture and the device. The first three are one identity's for
# both towers; each tower has its own batch size, and channels last applies to the image tower only.
SETTINGS_KEYS = ("dtype", "amp", "compile", "channels_last", "batch_size")
SHARED_KEYS = ("dtype", "amp", "compile")


def tower_keys(tower: str) -> tuple[str, ...]:
    """The settings of one tower within an identity (a text row's channels_last means nothing)."""
    return ("channels_last", "batch_size") if tower == "image" else ("batch_size",)


TOWER_WORDS = {"image": "images", "text": "texts"}


def settings_text(*rows: Mapping[str, Any]) -> str:
    """What a throughput depends on besides the architecture and the device, in words: the rows of one identity,
    one per tower (`fp32, batch 8`; `bf16, batch 256 images / 1024 texts, channels last` when the towers'
    batches differ). Settings a row does not record (files of earlier versions) are left out."""
    first = rows[0] if rows else {}
    batches = {str(r.get("tower")): str(r["batch_size"]) for r in rows if r.get("batch_size") is not None}
    parts = [] if first.get("dtype") is None else [str(first["dtype"])]
    if len(batches) == len(rows) and len(set(batches.values())) == 1:
        parts.append(f"batch {next(iter(batches.values()))}")
    elif batches:
        parts.append("batch " + " / ".join(f"{b} {TOWER_WORDS.get(t, t)}" for t, b in batches.items()))
    parts += [name for name in ("amp", "compile") if first.get(name) is True]
    if any(r.get("tower") == "image" and r.get("channels_last") is True for r in rows):
        parts.append("channels last")
    return ", ".join(parts) or "settings not recorded"


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
    file that holds several needs `gpu` to say which.

    A model's results form identities, never mixed: one device (the file's, or `gpu`'s), one dtype, amp and
    compile setting, and for each tower one batch size (the towers' may differ) and, for the image tower, one
    channels-last setting. A tower measured again under the same settings counts once, its newest row. The
    pairing: rows are grouped by dtype, amp and compile; within a group, the k-th newest setting of the image
    tower (batch size, channels last) and the k-th newest batch size of the text tower make the k-th identity,
    and a tower with fewer settings has no rate in the identities past its last. A rerun that changes only the
    image batch (the text tower resumed, not written again) is thus one identity with the text tower measured
    before, and the older image batch an identity of its own. Identities are ordered by their newest row, the
    newest first; `get` gives the newest."""
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
    identities = {name: [m for _, m in found] for name, found in _identities(rows).items()}
    speeds = {name: dict(found[0].rates) for name, found in identities.items()}
    return Speeds(speeds, identities, gpu or (gpus[0] if gpus else None))


def _key(row: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, ...]:
    return tuple(json.dumps(row.get(k), sort_keys=True) for k in keys)


def _identities(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[int, Measured]]]:
    """Each model's identities (`read_bench`), with the file position of the newest row of each, newest first."""
    # model -> shared settings -> tower -> the tower's settings -> (position, row) of its newest row
    settings: dict[str, dict[tuple[str, ...], dict[str, dict[tuple[str, ...], tuple[int, Mapping[str, Any]]]]]] = {}
    for index, row in enumerate(rows):
        towers = settings.setdefault(row["model"].lower(), {}).setdefault(_key(row, SHARED_KEYS), {})
        towers.setdefault(row["tower"], {})[_key(row, tower_keys(row["tower"]))] = (index, row)
    found: dict[str, list[tuple[int, Measured]]] = {}
    for name, groups in settings.items():
        for towers in groups.values():
            ranked = {t: sorted(kept.values(), key=lambda newest: -newest[0]) for t, kept in towers.items()}
            ordered = sorted(ranked, key=lambda t: (t != "image", t != "text", t))  # image, text, any other
            for k in range(max(len(r) for r in ranked.values())):
                paired = [ranked[t][k] for t in ordered if k < len(ranked[t])]
                rates = {row["tower"]: float(row["throughput"]) for _, row in paired}
                newest = max(index for index, _ in paired)
                found.setdefault(name, []).append((newest, Measured(settings_text(*(r for _, r in paired)), rates)))
        found[name].sort(key=lambda item: -item[0])
    return found


# Fields a line written before they were has not: their defaults (the table shows such a row's range of runs).
RECORDED_LATER: dict[str, Any] = {
    "spread": None, "runs": None, "noisy": False, "noise": None, "busy_share": None,
    "latency_p50_ms": None, "latency_p90_ms": None, "latency_p99_ms": None,
}  # fmt: skip


def _read(row: Mapping[str, Any]) -> BenchResult | None:
    """A result line back into a result, with the key it was saved under (none: an error row)."""
    result = from_row(BenchResult, {**RECORDED_LATER, **row})
    if result is not None and isinstance(row.get("key"), str):
        result.key = row["key"]
    return result


# `bench -o FILE`'s lines (`sweeps`): an environment line per node and GPU, then each result with its key; a
# result measured without an error is what a rerun skips.
ROWS = sweeps.Rows(
    what="benchmark results",
    ours=lambda row: row.get("kind") == "environment" or "tower" in row,
    read=_read,
    key=lambda result: result.key if result.error is None and result.key else None,
    line=lambda result: {"key": result.key, **result.to_json()},
    environment=lambda result: result.environment,
)
