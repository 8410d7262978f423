"""`vitamin compare`: models side by side, the best value of each row marked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import UsageError
from vitamin_cli.views import sink
from vitamin_cli.views.sink import Cell, OutputFormat

FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.markdown)
EXAMPLES = """
Examples:

  vitamin compare ViTamin-L ViT-L-14-s1.28B
  vitamin compare ViTamin-S ViTamin-B ViTamin-L --bench h200.json --json
  vitamin compare ViTamin-L ViTamin-L2 --markdown   # to paste into a page
"""


def compare_command(
    names: Annotated[
        list[str],
        typer.Argument(help="Two or more models.", autocompletion=opt.complete_model_names, show_default=False),
    ],
    bench_file: Annotated[
        Path | None, typer.Option("--bench", metavar="FILE", help="Add throughput saved by `vitamin bench -o FILE`.")
    ] = None,
    gpu: opt.BenchGpu = None,
    eval_file: Annotated[
        Path | None, typer.Option("--eval", metavar="FILE", help="Add accuracy measured by `vitamin eval -o FILE`.")
    ] = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_markdown: opt.MarkdownFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Show models side by side: metrics, params, MACs, weights; measured accuracy with --eval, throughput with
    --bench."""
    from vitamin_cli.bench.results import bench_speeds
    from vitamin_cli.eval.results import read_accuracy
    from vitamin_cli.views import compare

    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_markdown=as_markdown)
    registry = zoo.load(zoo_path)
    models = list({m.name: m for m in (registry.get(n) for n in names)}.values())
    if len(models) < 2:
        raise UsageError(
            "name at least two different models to compare", hint="e.g. vitamin compare ViTamin-L ViT-L-14-s1.28B"
        )
    speeds = bench_speeds(bench_file, gpu)
    accuracy = read_accuracy(eval_file, models) if eval_file else None
    columns = compare.entries(models, speeds, accuracy)
    rows = compare.rows(columns, speeds is not None, accuracy is not None)

    titles = ["", *(e.label for e in columns)]
    cells: list[list[Cell]] = []
    for row in rows:
        line: list[Cell] = [row.label]
        for entry, text in zip(columns, compare.texts(row), strict=True):
            line.append((text + " *", "bold green") if entry.label in row.best else text)
        cells.append(line)

    def table() -> None:
        console.console().print(sink.side_by_side(titles, cells))
        sink.write_prose("* best of the row")

    sink.write(
        chosen,
        json=lambda: {
            "models": [e.model.name for e in columns],
            "columns": [e.to_json() for e in columns],
            "rows": [r.to_json() for r in rows],
        },
        table=table,
        markdown=lambda: sink.to_markdown(titles, cells) + "\n\\* best of the row\n",
    )
