"""`vitamin bench`: inference throughput of the image and text towers on this machine's GPU or CPU."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError
from vitamin_cli.files import check_writable
from vitamin_cli.views import sink
from vitamin_cli.views.results import BENCH_COLUMNS as COLUMNS
from vitamin_cli.views.results import bench_notes
from vitamin_cli.views.sink import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.bench.measure import BenchSettings, Progress
    from vitamin_cli.bench.results import BenchResult, ResultsLog
    from vitamin_cli.runners import Runner
    from vitamin_cli.views.progress import LiveTable
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
    from vitamin_cli import runners, zoo
    from vitamin_cli.bench import measure as bench
    from vitamin_cli.bench import results as bench_results
    from vitamin_cli.bench import sweep as bench_sweep

    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_csv=as_csv)
    _refuse_conflicts(tower=tower, tune=tune, weights=weights, ray=ray)
    _check_compile_mode(compile_, compile_mode)
    opt.check_dtype(dtype)
    saved = _saved(out)
    registry = zoo.load(zoo_path)
    models, hub_root = _selected(selection, registry, weights, cache_dir)
    runner = runners.make(ray)
    settings = _settings(
        runner,
        device=device,
        dtype=dtype,
        amp=amp,
        batch_size=batch_size,
        compile_=compile_,
        compile_mode=compile_mode,
        channels_last=channels_last,
        warmup=warmup,
        iters=iters,
        repeats=repeats,
        latency=latency,
    )
    towers = bench.TOWERS if tower == "both" else (tower,)
    _announce(registry, models, towers, settings.device, hub_root)
    if settings.device == "cpu" and hub_root is None and not (selection.names or selection.filtered):
        _warn_cpu_zoo(registry, models, towers, settings)

    def found(progress: Callable[[str, str], Progress]) -> Iterable[BenchResult]:
        if tune:
            return bench_sweep.tune(registry, models, settings, towers, progress=progress)
        return bench_sweep.sweep(
            registry, models, settings, towers, hub_root=hub_root, saved=saved, runner=runner, progress=progress
        )

    results = _shown_live(found, bench_results.ResultsLog(out))
    results = bench_sweep.in_table_order(results, models)
    columns = COLUMNS if latency else [c for c in COLUMNS if not c.title.startswith("1-item")]
    sink.write_rows(chosen, results, columns, record=lambda r: r.to_json(), fields=bench_results.JSON_KEYS)
    for note in bench_notes(results, out):
        print(note, file=sys.stderr)
    _exit_if_failed(results, weights)


def _selected(
    selection: opt.Selection, registry: Zoo, weights: bool, cache_dir: Path | None
) -> tuple[list[Model], Path | None]:
    """The models to measure, and with --weights the hub cache their checkpoints are in: with no names or
    filters, every pulled released model."""
    from vitamin_cli.checkpoints.pull import pulled_models
    from vitamin_cli.checkpoints.store import Store

    models = selection.models(registry)
    if not weights:
        return models, None
    store = Store(cache_dir)
    if not (selection.names or selection.filtered):
        models = pulled_models(models, store)
    return models, store.root


def _saved(out: Path | None) -> dict[str, BenchResult]:
    """The results a rerun skips: those already in -o FILE, once the file is known to take more."""
    from vitamin_cli.bench import results as bench_results

    if out is None:
        return {}
    check_writable(out)
    bench_results.check_results_file(out)
    return bench_results.read_saved(out)


def _settings(
    runner: Runner,
    *,
    device: str | None,
    dtype: str | None,
    amp: bool,
    batch_size: str | None,
    compile_: bool,
    compile_mode: str | None,
    channels_last: bool | None,
    warmup: int | None,
    iters: int | None,
    repeats: int | None,
    latency: bool,
) -> BenchSettings:
    """The settings the options ask for, the defaults of the device (the runner's by default) filling the rest,
    checked against the devices the runner has."""
    from vitamin_cli.bench import measure as bench
    from vitamin_cli.models import device as devices

    settings = bench.default_settings(
        device or devices.default_device(runner),
        dtype=dtype,
        amp=amp or None,
        batch_size=int(batch_size) if batch_size and batch_size != "auto" else None,
        auto_batch=batch_size == "auto" or None,
        compile=compile_ or None,
        compile_mode=compile_mode,
        channels_last=channels_last,
        warmup=warmup,
        iters=iters,
        repeats=repeats,
        latency=latency or None,
    )
    devices.check_for(runner, settings.device, settings.dtype, settings.amp)
    return settings


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
    from vitamin_cli.bench import sweep as bench_sweep

    distinct = len({bench_sweep.measured_as(registry, m, hub_root) for m in models})
    kind = "architecture" if hub_root is None else "checkpoint"
    what = f"{_count(distinct, kind)} x {_count(len(towers), 'tower')}"
    print(f"measuring {what} ({_count(len(models), 'model')}) on {device}", file=sys.stderr)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


CPU_GMACS_PER_S = 100.0  # an assumed CPU rate, for `bench`'s estimate of the whole zoo on the CPU


def _warn_cpu_zoo(registry: Zoo, models: list[Model], towers: tuple[str, ...], settings: BenchSettings) -> None:
    """Before the whole zoo is measured on the CPU: about how long it takes, and what to do instead (it still
    runs, asking nothing). The estimate is the zoo's MAC counts of each batch timed, at CPU_GMACS_PER_S."""
    from vitamin_cli.bench import measure as bench
    from vitamin_cli.bench import sweep as bench_sweep

    seen: dict[str, Model] = {}
    for m in models:
        seen.setdefault(bench_sweep.measured_as(registry, m), m)
    batches = settings.warmup + settings.iters * settings.repeats
    gmacs = 0.0
    for m in seen.values():
        for tower in towers:
            per_item = m.macs_image_g if tower == "image" else m.macs_text_g
            gmacs += float(per_item) * bench.default_batch(settings, tower) * batches
    seconds = gmacs / CPU_GMACS_PER_S
    took = f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{max(seconds / 60, 1):.0f} minutes"
    print(
        f"note: the whole zoo on the CPU takes about {took} (the zoo's MAC counts of {batches} batches per tower, "
        f"at an assumed {CPU_GMACS_PER_S:.0f} GMAC/s); name a model (`vitamin bench ViTamin-S --device cpu`) "
        "or use --device cuda for less",
        file=sys.stderr,
    )


def _shown_live(
    found: Callable[[Callable[[str, str], Progress]], Iterable[BenchResult]], log: ResultsLog
) -> list[BenchResult]:
    """Each result saved to the results file and added to the live table as it comes; under the table, what the
    tower in progress is doing (`found(progress)` gives the results, telling `progress` of each tower's steps)."""
    from vitamin_cli.views.progress import LiveTable

    results: list[BenchResult] = []
    with LiveTable([c.title for c in COLUMNS], {c.title for c in COLUMNS if c.right}) as live:
        for result in found(_progress_to(live)):
            log.add(result)
            live.add([c.cell(result) for c in COLUMNS])
            results.append(result)
    return results


def _progress_to(live: LiveTable) -> Callable[[str, str], Progress]:
    """What each tower is doing, on the live table's status line, with the time since the tower began (its
    first word); towers measured on Ray say nothing until their row."""

    def for_tower(model: str, tower: str) -> Progress:
        began: list[float] = []

        def progress(text: str) -> None:
            began[:] = began or [time.monotonic()]
            live.status(f"{model} {tower} tower: {text}", since=began[0])

        return progress

    return for_tower
