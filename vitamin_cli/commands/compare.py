"""`vitamin compare`: models side by side, the best value of each row marked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitamin_cli import output, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import UsageError
from vitamin_cli.output import OutputFormat

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin compare ViTamin-L ViT-L-14-s1.28B
  vitamin compare ViTamin-S ViTamin-B ViTamin-L --bench h200.json --json
"""


def compare_command(
    names: Annotated[list[str], typer.Argument(help="Two or more models.", show_default=False)],
    bench_file: Annotated[
        Path | None, typer.Option("--bench", metavar="FILE", help="Add throughput saved by `vitamin bench -o FILE`.")
    ] = None,
    gpu: opt.BenchGpu = None,
    eval_file: Annotated[
        Path | None, typer.Option("--eval", metavar="FILE", help="Add accuracy measured by `vitamin eval -o FILE`.")
    ] = None,
    format_: Annotated[OutputFormat | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Show models side by side: metrics, params, MACs, weights; measured accuracy with --eval, throughput with
    --bench."""
    from vitamin_cli import compare, results_file

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    registry = zoo.load(zoo_path)
    models = list({m.name: m for m in (registry.get(n) for n in names)}.values())
    if len(models) < 2:
        raise UsageError("name at least two different models to compare")
    speeds = results_file.bench_speeds(bench_file, gpu)
    accuracy = results_file.read_eval(eval_file, models) if eval_file else None
    rows = compare.compare(models, speeds, accuracy)
    if chosen == OutputFormat.json:
        output.write_json({"models": [m.name for m in models], "rows": [r.to_json() for r in rows]})
        return
    cells: list[list[output.Cell]] = []
    for row in rows:
        line: list[output.Cell] = [row.label]
        for model, value in zip(models, row.values, strict=True):
            text = "-" if value is None else (f"{value:,.0f}" if row.key.startswith("throughput") else str(value))
            line.append((text + " *", "bold green") if model.name in row.best else text)
        cells.append(line)
    titles = ["", *(m.name for m in models)]
    output.console().print(output.table(titles, cells, right=set(titles[1:])))
    output.write_text("* best of the row")
