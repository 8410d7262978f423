"""`vitamin bench`: inference throughput of the image and text towers on this machine's GPU or CPU."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vitamin_cli import output
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError
from vitamin_cli.output import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.bench import Result

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
    tower: Annotated[str, typer.Option(help="image, text or both.")] = "both",
    dtype: opt.Dtype = None,
    amp: Annotated[bool, typer.Option("--amp", help="Autocast to the dtype instead of casting the model.")] = False,
    batch_size: opt.BatchSize = None,
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
    format_: Annotated[OutputFormat | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_csv: opt.CsvFlag = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Append the environment and each result to this JSON-lines file; a rerun skips them."
        ),
    ] = None,
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
    from vitamin_cli import audit, bench, zoo
    from vitamin_cli.hubcache import hub_dir

    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_csv=as_csv)
    if tune and weights:
        raise UsageError("--tune measures random weights; drop --weights (the weights do not change the speed)")
    if tower not in ("image", "text", "both"):
        raise UsageError(f"--tower must be image, text or both, not {tower!r}")
    opt.check_dtype(dtype)
    if ray is not None and tune:
        raise UsageError("--tune searches on one device; drop --ray")
    opt.check_ray_device(ray, device)
    saved: dict[str, bench.Result] = {}
    if out is not None:
        from vitamin_cli import results_file
        from vitamin_cli.files import check_writable

        check_writable(out)
        saved = results_file.saved_bench(out) if out.exists() else {}
    registry = zoo.load(zoo_path)
    models = selection.models(registry)
    hub_root = hub_dir(cache_dir)
    if weights and not (selection.names or selection.filtered):
        pulled = opt.pulled_names(hub_root)
        models = [m for m in models if m.released and m.name in pulled]
        if not models:
            raise UsageError(
                "--weights measures pulled checkpoints, and none is pulled", hint="`vitamin pull NAME` first"
            )
    resources = None
    if ray is not None:
        from vitamin_cli import sweep

        sweep.connect(ray)
        device = device or ("cuda" if sweep.gpu_count() else "cpu")
        if device == "cuda" and not sweep.gpu_count():
            raise UsageError("--device cuda, but the Ray cluster has no GPU", hint="use --device cpu")
        cuda = device == "cuda"
        resources = sweep.Resources(num_gpus=1 if cuda else 0, num_cpus=1 if cuda else sweep.cpus_per_node(),
                                    fresh_worker=cuda)  # fmt: skip
    settings = bench.default_settings(
        device or opt.default_device(),
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
    if ray is None:
        bench.check_device(settings)  # with Ray, each worker checks its own device
    if weights:
        from vitamin_cli.loading import checkpoint_path

        for model in models:
            checkpoint_path(model, hub_root)  # fails now, naming `vitamin pull`, if one is missing
    towers = bench.TOWERS if tower == "both" else (tower,)
    distinct = len({m.name if weights else audit.architecture_id(registry, m) for m in models})
    print(
        f"measuring {distinct} {'checkpoints' if weights else 'architectures'} x {len(towers)} "
        f"tower{'s' if len(towers) > 1 else ''} ({len(models)} models) on {settings.device}",
        file=sys.stderr,
    )
    log = _Log(out)
    with _live_table(enabled=sys.stderr.isatty()) as show:
        if tune:
            results, roofs = bench.tune(registry, models, settings, towers, on_result=show)
            log.measured(bench.Measured(None, bench.environment(settings, roofs.get(settings.dtype)), ""))
            for result in results:
                log.row(result)
        else:

            def shown(result: bench.Result) -> None:
                show(result)
                log.row(result)

            results = bench.bench(
                registry,
                models,
                settings,
                towers,
                on_result=shown,
                hub_root=hub_root if weights else None,
                runner=_ray_runner(resources) if resources is not None else None,
                on_measured=log.measured,
                saved=saved,
            )
    rows = [r.to_json() for r in results]
    if chosen == OutputFormat.json:
        output.write_json(rows)
    elif chosen == OutputFormat.csv:
        _write_csv(rows)
    else:
        output.console().print(_table(results))
    failed = [r for r in results if r.error]
    for r in failed:
        typer.echo(f"{r.model} {r.tower}: {r.error}", err=True)
    if failed:
        raise typer.Exit(EXIT_FAILURE)


class _Log:
    """`-o FILE`: one JSON line per environment (each node and GPU, once) and one per result, as they come."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.key: str | None = None
        self.environment: dict[str, Any] = {}
        self.written: set[tuple[Any, Any]] = set()

    def _append(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            from vitamin_cli.results_file import append_line

            append_line(self.path, record)

    def measured(self, measured: Any) -> None:
        """What the job just finished gave back; None when its worker died before it could say."""
        self.key = None if measured is None else measured.key
        if measured is not None:
            self.environment = measured.environment

    def row(self, result: Result) -> None:
        if result.resumed:
            return
        if self.key is not None:
            where = (self.environment.get("node"), self.environment.get("gpu_name"))
            if where not in self.written:  # written before the first result measured there
                self.written.add(where)
                self._append({"kind": "environment", **self.environment})
        self._append({"kind": "result", "key": self.key, **result.to_json()})


def _ray_runner(resources: Any) -> Any:
    """Run bench jobs as Ray tasks, each result handed back as it finishes."""
    from vitamin_cli import bench, sweep

    def run(jobs: list[Any], finished: Any) -> None:
        # the longest first (by FLOPs in the timed batches), so that no GPU is left with a long one at the end
        order = sorted(
            range(len(jobs)),
            key=lambda i: -(jobs[i].gflops_per_item or 0) * bench.default_batch(jobs[i].settings, jobs[i].tower),
        )
        sweep.run(
            bench.measure,
            [(jobs[i],) for i in order],
            resources,
            on_finished=lambda f: finished(order[f.index], f.value, f.node, f.node_id, f.error),
        )

    return run


def _write_csv(rows: list[dict[str, Any]]) -> None:
    import csv
    from dataclasses import fields

    from vitamin_cli.bench import Result

    columns = [f.name for f in fields(Result) if not f.metadata.get("apart")]  # the JSON keys
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "aliases": ";".join(row["aliases"])})


def _table(results: list[Result]) -> Any:
    titles = ("Model", "Tower", "Batch", "Items/s", "Spread", "ms/batch", "GiB", "TFLOP/s", "MFU", "Warm-up s")
    rows: list[list[output.Cell]] = []
    for r in results:
        if r.error:
            rows.append([r.model, r.tower, str(r.batch_size or "-"), (r.error[:60], "red")])
            continue
        rows.append(
            [
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
            ]
        )
    return output.table(titles, rows, right=set(titles[2:]))


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
