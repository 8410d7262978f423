"""`vitamin plot`: accuracy against cost or measured speed, with the Pareto front."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt

EXAMPLES = """
Examples:

  vitamin plot                                   # the whole zoo in the terminal
  vitamin plot -o zoo.png                        # image MACs against ImageNet, as a PNG (or .svg)
  vitamin plot --size L --y avg38 -o large.svg
  vitamin plot --x throughput --bench h200.json  # accuracy per measured image/s on your own GPU
"""
X_AXES = ("macs", "params", "throughput")  # those of views/plot.py, which the command imports only when it runs


@opt.selecting(with_all=False)
def plot_command(
    selection: opt.Selection,
    x: Annotated[
        str,
        typer.Option(
            "--x",
            metavar="[" + "|".join(X_AXES) + "]",
            autocompletion=lambda: list(X_AXES),
            help="Image MACs, image params or measured throughput (needs --bench).",
        ),
    ] = "macs",
    y: Annotated[
        str,
        typer.Option(
            "--y",
            metavar="[" + "|".join(zoo.METRICS) + "]",
            autocompletion=lambda: list(zoo.METRICS),
            help="An accuracy column of the zoo.",
        ),
    ] = "imagenet",
    bench_file: Annotated[
        Path | None, typer.Option("--bench", metavar="FILE", help="Throughput saved by `vitamin bench -o FILE`.")
    ] = None,
    gpu: opt.BenchGpu = None,
    eval_file: Annotated[
        Path | None,
        typer.Option("--eval", metavar="FILE", help="Put accuracy measured by `vitamin eval -o FILE` on the y axis."),
    ] = None,
    out: Annotated[Path | None, typer.Option("-o", "--output", help="Write a .png or .svg file.")] = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Scatter the selected models (default: all 61), one colour per family, each encoder's data scales
    joined, the Pareto front drawn. Without -o, the plot is drawn in the terminal."""
    from vitamin_cli.bench.results import bench_speeds
    from vitamin_cli.eval.results import read_accuracy
    from vitamin_cli.files import check_writable
    from vitamin_cli.views import plot

    if out is not None:
        check_writable(out)
    models = selection.models(zoo.load(zoo_path))
    speeds = bench_speeds(bench_file, gpu)
    accuracy = read_accuracy(eval_file, models) if eval_file else None
    pts = plot.points(models, x, y, speeds, accuracy)
    title = f"{len(pts)} models of the ViTamin zoo"
    if out is not None:
        plot.draw_file(pts, x, y, out, title)
        print(f"wrote {out}", file=sys.stderr)
        return
    from vitamin_cli.views.texttable import terminal_width, use_color

    height = 30 if sys.stdout.isatty() else 40
    picture = plot.draw_terminal(pts, x, y, title, width=terminal_width(), height=height, color=use_color())
    console.write_text(picture)
