"""`vitamin bench`: inference throughput of the image and text towers on this machine's GPU or CPU."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError
from vitamin_cli.views import sink
from vitamin_cli.views.results import BENCH_COLUMNS as COLUMNS
from vitamin_cli.views.results import bench_notes, bench_progress
from vitamin_cli.views.sink import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.bench.measure import Progress
    from vitamin_cli.bench.results import BenchResult
    from vitamin_cli.sweeps import ResultsFile
    from vitamin_cli.zoo import Model, Zoo

FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.csv)
EXAMPLES = """
Examples:

  vitamin bench ViTamin-L --device cuda              # image and text towers, bf16, batch 256 / 1024
  vitamin bench --device cuda -o h200.json          # the whole zoo; 26 architectures, each measured once
  vitamin bench ViTamin-L --device cuda --tune       # search dtype, compile and batch size for the fastest
  vitamin bench ViTamin-S --device cpu --tower text  # works without a GPU, slowly
  vitamin ls --bench h200.json                       # saved throughput beside the zoo's columns
"""


@opt.selecting(with_all=True)
def bench_command(
    selection: opt.Selection,
    device: opt.Device = None,
    tower: opt.Tower = "both",
    dtype: opt.Dtype = None,
    amp: opt.Amp = False,
    batch_size: opt.BatchSize = None,
    compile_: opt.Compile = False,
    compile_mode: opt.CompileMode = None,
    channels_last: opt.ChannelsLast = None,
    warmup: opt.Warmup = None,
    iters: opt.Iters = None,
    repeats: opt.Repeats = None,
    latency: opt.Latency = False,
    tune: opt.Tune = False,
    weights: opt.Weights = False,
    columns: opt.TableColumns = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_csv: opt.CsvFlag = False,
    out: opt.BenchOutput = None,
    ray: opt.RayAddress = None,
    cache_dir: opt.CacheDir = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Measure inference throughput: images/s of the image towers, texts/s (77 tokens) of the text towers.

    With no names or filters, the whole zoo (each distinct architecture once); with --weights, every pulled
    released model. Random weights by default. Batches of 256 images / 1024 texts on CUDA, 8 / 32 on the
    CPU, unless --batch-size says otherwise. Warm-up and compilation are timed apart; the median of several
    timed runs is reported with its spread, peak memory, TFLOP/s and MFU against a matmul roof measured here.
    With --ray, every tower is a Ray task on a GPU of its own, on this machine or a cluster (docs/scale.md).
    """
    from vitamin_cli import runners, sweeps, zoo
    from vitamin_cli.bench import results as bench_results
    from vitamin_cli.bench import sweep as bench_sweep
    from vitamin_cli.bench.measure import TOWERS

    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_csv=as_csv)
    shown = opt.table_columns(columns, COLUMNS if latency else [c for c in COLUMNS if c.key != "latency"], chosen)
    _refuse_conflicts(tower=tower, tune=tune, weights=weights, ray=ray)
    _check_compile_mode(compile_, compile_mode)
    opt.check_dtype(dtype)
    log, saved = sweeps.resume(bench_results.ROWS, out)
    registry = zoo.load(zoo_path)
    models, hub_root, whole = selection.models(registry), None, not (selection.names or selection.filtered)
    if weights:  # the whole zoo: every pulled released model
        models, hub_root = bench_sweep.with_weights(models, cache_dir, pulled_only=whole)
    runner = runners.make(ray)
    auto = batch_size == "auto"
    settings = bench_sweep.default_settings(
        runner, device, dtype=dtype, amp=amp or None, batch_size=int(batch_size) if batch_size and not auto else None,
        auto_batch=auto or None, compile=compile_ or None, compile_mode=compile_mode, channels_last=channels_last,
        warmup=warmup, iters=iters, repeats=repeats, latency=latency or None,
    )  # fmt: skip
    towers = TOWERS if tower == "both" else (tower,)
    _announce(registry, models, towers, settings.device, hub_root)
    if settings.device == "cpu" and hub_root is None and whole:
        _warn_cpu_zoo(*bench_sweep.cpu_estimate(registry, models, towers, settings))

    def found(progress: Callable[[str, str], Progress]) -> Iterable[BenchResult]:
        if tune:
            return bench_sweep.tune(registry, models, settings, towers, progress=progress)
        return bench_sweep.sweep(
            registry, models, settings, towers, hub_root=hub_root, saved=saved, runner=runner, progress=progress
        )

    results = bench_sweep.in_table_order(_shown_live(found, log), models)
    sink.write_rows(chosen, results, shown, record=lambda r: r.to_json(), fields=bench_results.JSON_KEYS)
    for note in bench_notes(results, out):
        sink.write_note(note)
    _exit_if_failed(results, weights)


def _exit_if_failed(results: list[BenchResult], weights: bool) -> None:
    """Each failed tower's error on stderr, with the command that shows why, then exit 1."""
    failed = [r for r in results if r.error]
    for r in failed:
        typer.echo(f"error: {r.model} {r.tower}: {r.error}", err=True)
    if failed:
        again = f"{failed[0].model} --tower {failed[0].tower} --device {failed[0].device}" + " --weights" * weights
        typer.echo(f"hint: rerun one alone to see why, e.g. `VITAMIN_DEBUG=1 vitamin bench {again}`", err=True)
        raise typer.Exit(EXIT_FAILURE)


def _refuse_conflicts(*, tower: str, tune: bool, weights: bool, ray: str | None) -> None:
    if tune and weights:
        raise UsageError("--tune measures random weights; drop --weights (the weights do not change the speed)")
    if tower not in opt.TOWERS:
        raise UsageError(f"--tower must be image, text or both, not {tower!r}", hint="--tower both measures the two")
    if ray is not None and tune:
        raise UsageError("--tune searches on one device; drop --ray")


def _check_compile_mode(compile_: bool, mode: str | None) -> None:
    """A --compile-mode is one of torch.compile's, and comes with --compile: checked before any tower is built."""
    if mode is None:
        return
    if mode not in opt.COMPILE_MODES:
        raise UsageError(
            f"--compile-mode {mode!r} is not a mode of torch.compile", hint=f"use one of {', '.join(opt.COMPILE_MODES)}"
        )
    if not compile_:
        raise UsageError("--compile-mode without --compile would measure the tower uncompiled", hint="add --compile")


def _announce(registry: Zoo, models: list[Model], towers: tuple[str, ...], device: str, hub_root: Path | None) -> None:
    """One line on stderr before the work starts: what is measured, and where (a model not pulled fails here)."""
    from vitamin_cli.bench.sweep import distinct

    kind = "architecture" if hub_root is None else "checkpoint"
    what = f"{_count(distinct(registry, models, hub_root), kind)} x {_count(len(towers), 'tower')}"
    print(f"measuring {what} ({_count(len(models), 'model')}) on {device}", file=sys.stderr)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _warn_cpu_zoo(seconds: float, batches: int) -> None:
    """Before the whole zoo is measured on the CPU: about how long it takes (`bench.sweep.cpu_estimate`), and
    what to do instead (it still runs, asking nothing)."""
    from vitamin_cli.bench.sweep import CPU_GMACS_PER_S

    took = f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{max(seconds / 60, 1):.0f} minutes"
    print(
        f"note: the whole zoo on the CPU takes about {took} (the zoo's MAC counts of {batches} batches per tower, "
        f"at an assumed {CPU_GMACS_PER_S:.0f} GMAC/s); name a model (`vitamin bench ViTamin-S --device cpu`) "
        "or use --device cuda for less",
        file=sys.stderr,
    )


def _shown_live(
    found: Callable[[Callable[[str, str], Progress]], Iterable[BenchResult]], log: ResultsFile[BenchResult]
) -> list[BenchResult]:
    """Each result saved to the results file and added to the live table as it comes; under the table, what the
    tower in progress is doing (`found(progress)` gives the results, telling `progress` of each tower's steps)."""
    from vitamin_cli.views.progress import LiveTable

    results: list[BenchResult] = []
    with LiveTable([c.title for c in COLUMNS], {c.title for c in COLUMNS if c.right}) as live:
        for result in found(bench_progress(live)):
            log.add(result)
            live.add([c.cell(result) for c in COLUMNS])
            results.append(result)
    return results
