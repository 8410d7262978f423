"""`vitamin show`: everything about one model."""

from __future__ import annotations

from typing import Annotated

import typer

from vitamin_cli import output, render, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.output import OutputFormat

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin show ViTamin-XL-384          # the 41B model; mentions the other XL-384 row
  vitamin show jienengchen/ViTamin-S   # by Hugging Face repo
  vitamin show ConvNeXt-T-s1.28B --json
"""


def show_command(
    name: Annotated[str, typer.Argument(help="Canonical name, alias or Hugging Face repo (any case).")],
    format_: Annotated[OutputFormat | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Show one model: metrics, params, MACs, architecture, weights, siblings and an open_clip snippet."""
    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    registry = zoo.load(zoo_path)
    model = registry.get(name)
    if chosen == OutputFormat.json:
        output.write_json(render.show_json(registry, model))
        return
    console = output.console()
    for part in render.show_view(registry, model):
        console.print(part)
        console.print()
    # Plain text, never wrapped or cropped, so that it can be pasted as it is.
    output.write_text(render.open_clip_snippet(registry, model))
