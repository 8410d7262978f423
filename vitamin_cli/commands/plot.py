"""`vitamin plot`: accuracy against cost or measured speed, with the Pareto front."""

from __future__ import annotations

import sys
from dataclasses import replace
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
  vitamin plot -o zoo.svg --label pareto         # name only the models on the Pareto front
"""
# those of views/plot.py, which the command imports only when it runs
X_AXES = ("macs", "params", "throughput")
LABELS = ("pareto", "all", "none")


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
    label: Annotated[
        str | None,
        typer.Option(
            "--label",
            metavar="[" + "|".join(LABELS) + "]",
            autocompletion=lambda: list(LABELS),
            help="Which models are named beside their points: the Pareto front's, all, or none (default: all in a "
            "file, pareto in the terminal).",
            show_default=False,
        ),
    ] = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Scatter the selected models (default: all 61), one colour per family, each encoder's data scales
    joined, the Pareto front drawn. Without -o, the plot is drawn in the terminal."""
    from vitamin_cli.files import check_writable
    from vitamin_cli.views import plot
    from vitamin_cli.views.measured import Measured, options_given

    if label is not None:
        plot.check_label(label)
    if out is not None:
        check_writable(out)
    given = options_given(bench_file, gpu, eval_file)
    if selection.where is not None:  # a mistake in it is said before any file is read
        from vitamin_cli.zoo import fields

        fields.where(selection.where, given)
    registry = zoo.load(zoo_path)
    measured = Measured.read(registry, replace(selection, where=None).models(registry), bench_file, gpu, eval_file)
    models = selection.models(registry, measured.values, given)  # --where reads what was measured too
    pts = plot.points(models, x, y, measured.speeds, measured.accuracy)
    title = f"{len(pts)} models of the ViTamin zoo"
    if out is not None:
        plot.draw_file(pts, x, y, out, title, label or "all")
        print(f"wrote {out}", file=sys.stderr)
        return
    from vitamin_cli.views.texttable import terminal_width, use_color

    height = 30 if sys.stdout.isatty() else 40
    picture = plot.draw_terminal(
        pts, x, y, title, width=terminal_width(), height=height, color=use_color(), label=label or "pareto"
    )
    console.write_text(picture)
