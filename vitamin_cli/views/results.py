"""Measured results as tables: `vitamin bench`'s towers, `vitamin eval`'s tasks and the zoo columns made of
them, and the rows their live progress tables show while a sweep runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vitamin_cli import console
from vitamin_cli.views.sink import Cell, Column, table, write_prose

if TYPE_CHECKING:
    from vitamin_cli.bench.measure import Progress as BenchProgress
    from vitamin_cli.bench.results import BenchResult
    from vitamin_cli.eval.results import Column as ZooColumn
    from vitamin_cli.eval.results import TaskResult
    from vitamin_cli.eval.zeroshot import Progress as EvalProgress
    from vitamin_cli.views.progress import LiveTable


REASON_WIDTH = 60  # a table row's reason, cut at a word; the whole reason is on stderr and in the JSON


def short(reason: str, width: int = REASON_WIDTH) -> str:
    """A reason cut to `width` characters at a word boundary, with an ellipsis to say it goes on (a single word
    longer than that is cut inside it)."""
    reason = " ".join(reason.split())
    if len(reason) <= width:
        return reason
    room = reason[: width - 3]
    cut = room.rfind(" ")
    if cut > 0:
        room = room[:cut]
    return room.rstrip(" ,;:.-") + "..."


def rate(value: float | None) -> str:
    """A throughput: 3 significant digits below 100 ("2.4", "37.5"), whole numbers with thousands separators
    above ("1,234"); "-" for none."""
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 99.95 else f"{value:,.0f}"


NOISY = "~"  # beside a throughput that is not to be believed as it is (`bench_notes` says why)


def _spread(r: BenchResult) -> str:
    """The runs' spread as a percentage of the median (IQR over median), or the slowest-fastest range for a
    result saved before spreads were."""
    if r.spread is None:
        return f"{rate(r.throughput_min)}-{rate(r.throughput_max)}"
    return f"{r.spread:.0%}" if r.spread >= 0.005 else "<1%"


def _items(r: BenchResult) -> Cell:
    if r.error:
        return short(r.error), "red"
    return (f"{NOISY}{rate(r.throughput)}", "yellow") if r.noisy else rate(r.throughput)


def _latency(r: BenchResult) -> str:
    if r.latency_p50_ms is None:
        return ""
    return f"{_ms(r.latency_p50_ms)}/{_ms(r.latency_p99_ms)}"  # p90 too in --json


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def bench_notes(results: Sequence[BenchResult], out: Path | None) -> list[str]:
    """What stderr says after `vitamin bench`: the legend of the noisy mark and why each marked row is noisy,
    that clocks and other processes on a GPU went unchecked (once), and how many results a rerun took from
    `-o FILE` instead of measuring them again."""
    notes = []
    noisy = [r for r in results if r.noisy and not r.error]
    if noisy:
        notes.append(f"{NOISY} marks a number not to be believed as it is:")
        notes += [f"  {r.model} {r.tower}: {r.noise}" for r in noisy]
        again = f" (delete their lines from {out} first: a rerun reuses what it holds)" if out is not None else ""
        notes.append(f"  rerun on a quiet machine{again}; a wide spread alone: or with more --iters")
    if any(r.environment.get("gpu_checked") is False for r in results):
        notes.append("note: the GPU's clocks and other processes on it were not checked: "
                     "`pip install nvidia-ml-py` to have them checked")  # fmt: skip
    reused = len({r.key for r in results if r.resumed})  # models of one architecture share one result
    if out is not None and reused:
        notes.append(f"skipped {reused} result{'s' * (reused != 1)} already in {out} (same key); "
                     "delete their lines to measure again")  # fmt: skip
    return notes


BENCH_COLUMNS: list[Column[BenchResult]] = [
    Column("Model", lambda r: r.model),
    Column("Tower", lambda r: r.tower),
    Column("Batch", lambda r: str(r.batch_size or "-"), right=True, priority=3),
    Column("Items/s", _items, right=True),
    Column("Spread", lambda r: "" if r.error else _spread(r), right=True, priority=1),
    Column("ms/batch", lambda r: "" if r.latency_ms is None else f"{r.latency_ms:.1f}", right=True, priority=5),
    Column("p50/p99 ms", _latency, right=True, priority=2, key="latency"),
    Column("GiB", lambda r: "-" if r.peak_memory_gib is None else f"{r.peak_memory_gib:.1f}", right=True, priority=4),
    Column("TFLOP/s", lambda r: "-" if r.tflops is None else f"{r.tflops:.3g}", right=True, priority=6),
    Column("MFU", lambda r: "-" if r.mfu is None else f"{r.mfu:.0%}", right=True, priority=3),
    Column("Warm-up s", lambda r: "" if r.warmup_s is None else f"{r.warmup_s:.1f}", right=True, priority=7),
]


def _state(r: TaskResult) -> Cell:
    state = r.status if r.status != "ok" else ""
    if r.error:
        return (state + ": " + short(_why(r))), "yellow"
    if r.undecodable:
        return f"{r.undecodable:,} image{'s' * (r.undecodable > 1)} did not decode, not counted", "yellow"
    return state, ""


def _recalls(k: int) -> Callable[[TaskResult], Cell]:
    """A retrieval task's recall@k, text->image / image->text ("" for another kind of task)."""

    def cell(r: TaskResult) -> Cell:
        found = [r.metrics.get(f"{kind}_retrieval_recall@{k}") for kind in ("image", "text")]
        return "" if None in found else f"{found[0]:.1f}/{found[1]:.1f}"

    return cell


EVAL_COLUMNS: list[Column[TaskResult]] = [
    Column("Model", lambda r: r.model),
    Column("Task", lambda r: r.task),
    Column("Metric", lambda r: r.main_metric or "-", priority=3),
    Column("%", lambda r: ("-" if r.main is None else f"{r.main:.1f}", "bold"), right=True, key="main"),
    Column("R@5\nimg/txt", _recalls(5), right=True, priority=2, key="r5"),
    Column("R@10\nimg/txt", _recalls(10), right=True, priority=3, key="r10"),
    Column("Images", lambda r: str(r.samples), right=True, priority=4),
    Column("Images/s", lambda r: "-" if r.images_per_s is None else rate(r.images_per_s), right=True, priority=5),
    Column("", _state, key="note"),
]
RECALL_KEYS = ("r5", "r10")  # shown only where a retrieval task is among the results


def eval_columns(results: Sequence[TaskResult]) -> list[Column[TaskResult]]:
    """The eval table's columns: the recalls only where a retrieval task was run."""
    retrieval = any("image_retrieval_recall@5" in r.metrics for r in results)
    return [c for c in EVAL_COLUMNS if retrieval or c.key not in RECALL_KEYS]


# The live table of `vitamin eval`: a row per finished task (its result), and the task in progress (time left).
EVAL_PROGRESS_TITLES = ("Model", "Task", "Images", "Images/s", "Result", "Left")
EVAL_PROGRESS_RIGHT = {"Images", "Images/s", "Result", "Left"}


def eval_progress_row(model: str, task: str, done: int, total: int, seconds: float) -> list[Cell]:
    rate = done / seconds if seconds else 0.0
    left = f"{(total - done) / rate:,.0f} s" if rate and total > done else "-"
    return [model, task, f"{done:,}" + (f" / {total:,}" if total else ""), f"{rate:,.0f}", "", left]


def eval_progress(live: LiveTable) -> Callable[[str, str], EvalProgress]:
    """Each task's progress (images done, of how many, in how long) as the live table's bottom row."""

    def progress(model: str, task_key: str) -> EvalProgress:
        return lambda done, total, seconds: live.update(eval_progress_row(model, task_key, done, total, seconds))

    return progress


def bench_progress(live: LiveTable) -> Callable[[str, str], BenchProgress]:
    """What each tower is doing, on the live table's status line, with the time since the tower began (its
    first word); towers measured on Ray say nothing until their row."""

    def for_tower(model: str, tower: str) -> BenchProgress:
        began: list[float] = []

        def progress(text: str) -> None:
            began[:] = began or [time.monotonic()]
            live.status(f"{model} {tower} tower: {text}", since=began[0])

        return progress

    return for_tower


def eval_notes(results: Sequence[TaskResult], out: Path | None) -> list[str]:
    """What stderr says after `vitamin eval`: each failure, each task with images left out, and how many results
    a rerun took from `-o FILE` instead of measuring them again."""
    notes = []
    for r in results:
        if r.status == "failed":
            notes.append(f"{r.model} {r.task}: {_why(r)}")
        elif r.undecodable and not r.resumed:
            notes.append(f"{r.model} {r.task}: {r.undecodable} image(s) did not decode and were left out")
    skipped = sum(r.resumed for r in results)
    if out is not None and skipped:
        notes.append(f"skipped {skipped} task{'s' * (skipped != 1)} already in {out} (status ok, same key); "
                     "delete their lines to measure again")  # fmt: skip
    return notes


def _why(r: TaskResult) -> str:
    """A failure's reason beside its task's key, which the reason itself may begin with."""
    return (r.error or "").removeprefix(f"{r.task}: ")


def eval_finished_row(result: TaskResult) -> list[Cell]:
    note = "done before" if result.resumed else (result.status if result.status != "ok" else f"{result.main or 0:.1f}%")
    return [result.model, result.task, f"{result.samples:,}", f"{result.images_per_s or 0:,.0f}", note, ""]


def print_columns(summaries: Mapping[str, Sequence[ZooColumn]]) -> None:
    """Each model's zoo columns that at least one task of was run: reported, measured and the difference."""
    out = console.console()
    for name, cols in summaries.items():
        cols = [c for c in cols if len(c.missing) < c.tasks]
        if not cols:
            continue
        lines: list[list[Cell]] = []
        for c in cols:
            measured = "-" if c.measured is None else f"{c.measured:.1f}"
            diff = "-" if c.difference is None else f"{c.difference:+.1f}"
            note = "" if not c.missing else f"incomplete: {len(c.missing)} of {c.tasks} tasks missing"
            lines.append([c.column, f"{c.reported:.1f}", (measured, "bold"), diff, (note, "yellow")])
        write_prose(f"\n{name}")
        titles = ("Column", "Reported", "Measured", "Points", "")
        out.print(table(titles, lines, right={"Reported", "Measured", "Points"}))  # small: it fits 60 columns
