"""`vitamin bench`: inference throughput of the image and text towers on this machine's GPU or CPU."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vitamin_cli import output
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError

if TYPE_CHECKING:
    from vitamin_cli.bench import Result

EXAMPLES = """
Examples:

  vitamin bench ViTamin-L --device cuda              # image and text towers, bf16, batch 256 / 1024
  vitamin bench --all --device cuda -o h200.json     # the whole zoo; 26 architectures, each measured once
  vitamin bench ViTamin-L --device cuda --tune       # search dtype, compile and batch size for the fastest
  vitamin bench ViTamin-S --device cpu --tower text  # works without a GPU, slowly
  vitamin ls --bench h200.json                       # saved throughput beside the zoo's columns
"""


def _batch(value: str | None) -> str | None:
    if value is not None and value != "auto" and not (value.isdigit() and int(value) > 0):
        raise typer.BadParameter(f"'{value}' is neither a positive whole number nor 'auto'")
    return value


def bench(
    names: opt.Names = None,
    all_models: opt.AllFlag = False,
    size: opt.SizeFilter = None,
    family: opt.FamilyFilter = None,
    samples: opt.SamplesFilter = None,
    resolution: opt.ResolutionFilter = None,
    released: opt.ReleasedFilter = None,
    device: Annotated[str | None, typer.Option(help="cuda, cuda:N or cpu (default: cuda when there is one).")] = None,
    tower: Annotated[str, typer.Option(help="image, text or both.")] = "both",
    dtype: Annotated[str | None, typer.Option(help="bf16, fp16 or fp32 (default: bf16 on CUDA, fp32 on CPU).")] = None,
    amp: Annotated[bool, typer.Option("--amp", help="Autocast to the dtype instead of casting the model.")] = False,
    batch_size: Annotated[
        str | None,
        typer.Option(
            callback=_batch,
            help="Batch size, or 'auto' for the largest that fits and still helps "
            "(default: 256 images / 1024 texts on CUDA, 8 / 32 on CPU).",
        ),
    ] = None,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the tower (compile time reported apart).")
    ] = False,
    compile_mode: Annotated[str | None, typer.Option(help="torch.compile mode, e.g. max-autotune.")] = None,
    channels_last: Annotated[
        bool | None, typer.Option("--channels-last/--no-channels-last", help="Image towers (default: on for CUDA).")
    ] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="Warm-up batches, not timed.")] = None,
    iters: Annotated[int | None, typer.Option(min=1, help="Batches per timed run.")] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Timed runs; the median is reported.")] = None,
    tune: Annotated[
        bool, typer.Option("--tune", help="Search dtype, compile and batch size; report the fastest.")
    ] = False,
    weights: Annotated[bool, typer.Option("--weights", help="Use the pulled checkpoint, not random weights.")] = False,
    as_json: opt.JsonFlag = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    out: Annotated[
        Path | None, typer.Option("-o", "--output", help="Also save the results and the environment to this JSON file.")
    ] = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Measure inference throughput: images/s of the image towers, texts/s (77 tokens) of the text towers.

    Random weights by default. Warm-up and compilation are timed apart; the median of several timed runs
    is reported with its spread, peak memory, TFLOP/s and MFU against a matmul roof measured here.
    """
    from vitamin_cli import bench as lib

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    if tune and weights:
        raise UsageError("--tune measures random weights; drop --weights (the weights do not change the speed)")
    if tower not in ("image", "text", "both"):
        raise UsageError(f"--tower must be image, text or both, not {tower!r}")
    if dtype is not None and dtype not in lib.DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(lib.DTYPES)}, not {dtype!r}")
    registry, models = opt.select_some(
        "bench", names, all_models, zoo_path, size, family, samples, resolution, released
    )
    settings = lib.default_settings(
        device or _default_device(),
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
    )
    lib.check_device(settings)
    if weights:
        from vitamin_cli.loading import checkpoint_path

        for model in models:
            checkpoint_path(registry, model)  # fails now, naming `vitamin pull`, if one is missing
    towers = lib.TOWERS if tower == "both" else (tower,)
    with _live_table(enabled=sys.stderr.isatty()) as show:
        if tune:
            results, roofs = lib.tune(registry, models, settings, towers, on_result=show)
            roof = roofs.get(settings.dtype)
        else:
            roof = lib.matmul_roof_tflops(settings.device, settings.dtype)
            results = lib.bench(registry, models, settings, towers, roof_tflops=roof, on_result=show, weights=weights)
    rows = [r.to_json() for r in results]
    if out is not None:
        from vitamin_cli.cache import write_atomic

        write_atomic(out, json.dumps({"environment": lib.environment(settings, roof), "results": rows}, indent=2))
    if as_json:
        output.write_json(rows)
    elif as_csv:
        _write_csv(rows)
    else:
        output.console().print(_table(results))
    failed = [r for r in results if r.error]
    for r in failed:
        typer.echo(f"{r.model} {r.tower}: {r.error}", err=True)
    if failed:
        raise typer.Exit(EXIT_FAILURE)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _write_csv(rows: list[dict[str, Any]]) -> None:
    import csv
    from dataclasses import fields

    from vitamin_cli.bench import Result

    columns = [f.name for f in fields(Result) if f.name != "tried"]  # the JSON keys
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "aliases": ";".join(row["aliases"])})


def _table(results: list[Result]) -> Any:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("Model", "Tower", "Batch", "Items/s", "Spread", "ms/batch", "GiB", "TFLOP/s", "MFU", "Warm-up s"):
        table.add_column(title, justify="left" if title in ("Model", "Tower") else "right", no_wrap=title == "Model")
    for r in results:
        if r.error:
            table.add_row(r.model, r.tower, str(r.batch_size or "-"), f"[red]{r.error[:60]}[/]")
            continue
        table.add_row(
            r.model,
            r.tower,
            str(r.batch_size),
            f"{r.throughput:,.0f}",
            f"{r.throughput_min:,.0f}-{r.throughput_max:,.0f}",
            f"{r.latency_ms:.1f}",
            "-" if r.peak_memory_gib is None else f"{r.peak_memory_gib:.1f}",
            "-" if r.tflops is None else f"{r.tflops:.3g}",
            "-" if r.mfu is None else f"{r.mfu:.0%}",
            f"{r.warmup_s:.1f}",
        )
    return table


class _live_table:
    """A table on stderr that grows as results come in, when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.results: list[Result] = []
        self.live: Any = None

    def __enter__(self) -> Any:
        if self.enabled:
            from rich.live import Live

            self.live = Live(_table([]), console=output.err_console(), transient=True, refresh_per_second=4)
            self.live.start()
        return self.add

    def add(self, result: Result) -> None:
        self.results.append(result)
        if self.live is not None:
            self.live.update(_table(self.results))

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
