"""`vitamin compare`: models side by side, the best value of each row marked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitamin_cli import output, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import UsageError

EXAMPLES = """
Examples:

  vitamin compare ViTamin-L ViT-L-14-s1.28B
  vitamin compare ViTamin-S ViTamin-B ViTamin-L --bench h200.json --json
"""


def compare(
    names: Annotated[list[str], typer.Argument(help="Two or more models.", show_default=False)],
    bench_file: Annotated[
        Path | None, typer.Option("--bench", metavar="FILE", help="Add throughput saved by `vitamin bench -o FILE`.")
    ] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Show models side by side: metrics, params, MACs, weights, and measured throughput with --bench."""
    from vitamin_cli import render
    from vitamin_cli.compare import compare as build_rows

    registry = zoo.load(zoo_path)
    models = list({m.name: m for m in (registry.get(n) for n in names)}.values())
    if len(models) < 2:
        raise UsageError("name at least two different models to compare")
    speeds = render.read_bench_file(bench_file) if bench_file else None
    rows = build_rows(models, speeds)
    if as_json:
        output.write_json({"models": [m.name for m in models], "rows": [r.to_json() for r in rows]})
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("")
    for model in models:
        table.add_column(Text(model.name), justify="right")
    for row in rows:
        cells = []
        for model, value in zip(models, row.values, strict=True):
            text = "-" if value is None else (f"{value:,.0f}" if row.key.startswith("throughput") else str(value))
            cells.append(
                Text(
                    text + (" *" if model.name in row.best else ""),
                    style="bold green" if model.name in row.best else "",
                )
            )
        table.add_row(row.label, *cells)
    output.console().print(table)
    output.console().print("* best of the row")
