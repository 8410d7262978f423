"""`vitamin ls`: the zoo as a table, or as JSON, CSV or markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import UsageError
from vitamin_cli.views import render, sink
from vitamin_cli.views.sink import OutputFormat
from vitamin_cli.views.texttable import rule_char, terminal_width, use_color

FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.csv, OutputFormat.markdown)
EXAMPLES = """
Examples:

  vitamin ls --size L                  # the 22 large models
  vitamin ls 'ViTamin-L*' --released   # released ViTamin-L and -L2 models
  vitamin ls --sort imagenet --reverse # best ImageNet accuracy first
  vitamin ls --family vitamin --json   # machine-readable (docs/json.md)
"""


def _sort_column(value: str | None) -> str | None:
    if value is not None and value not in zoo.NUMERIC_COLUMNS:
        raise typer.BadParameter(f"'{value}' is not a numeric column; choose one of {', '.join(zoo.NUMERIC_COLUMNS)}")
    return value


@opt.selecting(with_all=False)
def ls_command(
    selection: opt.Selection,
    pulled: opt.PulledFilter = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            metavar="COLUMN",
            callback=_sort_column,
            autocompletion=lambda: list(zoo.NUMERIC_COLUMNS),
            help="Sort by a numeric column (ascending): " + ", ".join(zoo.NUMERIC_COLUMNS) + ".",
            show_default=False,
        ),
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Sort descending.")] = False,
    bench_file: Annotated[
        Path | None,
        typer.Option("--bench", metavar="FILE", help="Add throughput saved by `vitamin bench -o FILE` (or --json)."),
    ] = None,
    gpu: opt.BenchGpu = None,
    eval_file: Annotated[
        Path | None,
        typer.Option("--eval", metavar="FILE", help="Add the accuracy measured by `vitamin eval -o FILE`."),
    ] = None,
    with_audit: Annotated[
        bool,
        typer.Option("--audit", help="Add the params and MACs measured by `vitamin audit` (from its cache)."),
    ] = False,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_csv: opt.CsvFlag = False,
    as_markdown: opt.MarkdownFlag = False,
    zoo_path: opt.ZooPath = None,
    cache_dir: opt.CacheDir = None,
) -> None:
    """List the zoo: one row per model, grouped like the zoo table, winners of each block highlighted."""
    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_csv=as_csv, as_markdown=as_markdown)
    _refuse_conflicts(chosen, sort=sort, reverse=reverse, adds_columns=bool(with_audit or bench_file or eval_file))
    registry = zoo.load(zoo_path)
    models = selection.models(registry)
    if pulled is not None:
        from vitamin_cli.checkpoints.owners import ModelOwner
        from vitamin_cli.checkpoints.store import Store

        present = Store(cache_dir).pulled(ModelOwner(m) for m in models)
        models = [m for m in models if (m.name in present) == pulled]
    if sort is not None:
        models = _sorted(models, sort, reverse)
    if chosen == OutputFormat.table and not models:
        console.err_console().print("no model matches these filters; `vitamin ls` shows them all")
        return

    def table() -> None:
        measured = _audit_counts(registry, models) if with_audit else None
        speeds = accuracy = None
        if bench_file or eval_file or gpu:  # reading results files costs a start-up what plain ls never needs
            from vitamin_cli.bench.results import bench_speeds
            from vitamin_cli.eval.results import read_accuracy

            speeds = bench_speeds(bench_file, gpu)
            accuracy = read_accuracy(eval_file, models) if eval_file else None
        shown = render.ls_table(
            registry, models, grouped=sort is None, measured=measured, speeds=speeds, accuracy=accuracy
        )
        console.write_text(shown.render(color=use_color(), width=terminal_width(), rule=rule_char()))
        note = render.others_note(models, speeds, accuracy)
        if note:
            console.write_text(note + "\n")

    sink.write(
        chosen,
        json=lambda: [m.to_json() for m in models],
        table=table,
        csv=lambda: render.to_csv(models),
        markdown=lambda: render.to_markdown(registry, models),
    )


def _refuse_conflicts(chosen: OutputFormat, *, sort: str | None, reverse: bool, adds_columns: bool) -> None:
    """Options that make no sense together, refused before the zoo is read."""
    if reverse and sort is None:
        raise UsageError("--reverse needs --sort COLUMN")
    if adds_columns and chosen != OutputFormat.table:
        raise UsageError("--audit, --bench and --eval add columns to the table only")


def _sorted(models: list[zoo.Model], column: str, reverse: bool) -> list[zoo.Model]:
    """The models with a value in the column, sorted by it; then those without one, in their order."""
    present = [m for m in models if m.value(column) is not None]
    present.sort(key=lambda m: cast(float, m.value(column)), reverse=reverse)
    return present + [m for m in models if m.value(column) is None]


def _audit_counts(registry: zoo.Zoo, models: list[zoo.Model]) -> dict[str, dict[str, float]]:
    """Measured counts by model name, from the cache `vitamin audit` fills; no torch is imported here."""
    from vitamin_cli.models.audit import architecture_id, cached_counts

    cached = cached_counts()
    counts = {m.name: cached.get(architecture_id(registry, m)) for m in models}
    missing = sorted({m.arch for m in models if counts[m.name] is None})
    if missing:
        raise UsageError(
            f"no audit of {', '.join(missing)} yet with the installed torch, open_clip and timm",
            hint="run `vitamin audit --all` once (about a minute); its results are cached",
        )
    return {name: value for name, value in counts.items() if value is not None}
