"""`vitamin show`: everything about one model."""

from __future__ import annotations

from typing import Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.views import render, sink
from vitamin_cli.views.sink import OutputFormat

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin show ViTamin-XL-384          # the 41B model; mentions the other XL-384 row
  vitamin show jienengchen/ViTamin-S   # by Hugging Face repo
  vitamin show ConvNeXt-T-s1.28B --json
"""


def show_command(
    name: Annotated[
        str,
        typer.Argument(
            help="Canonical name, alias or Hugging Face repo (any case).", autocompletion=opt.complete_model_names
        ),
    ],
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Show one model: metrics, params, MACs, architecture, weights, siblings and an open_clip snippet."""
    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    registry = zoo.load(zoo_path)
    model = registry.get(name)

    def view() -> None:
        out = console.console()
        for part in render.show_view(registry, model):
            out.print(part)
            out.print()
        # Plain text, never wrapped or cropped, so that it can be pasted as it is.
        console.write_text(render.open_clip_snippet(registry, model))

    sink.write(chosen, json=lambda: render.show_json(registry, model), table=view)
