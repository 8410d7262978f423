"""`vitamin show`: everything about one model."""

from __future__ import annotations

from pathlib import Path
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
    cache_dir: opt.CacheDir = None,
) -> None:
    """Show one model: metrics, params, MACs, architecture, weights, siblings and an open_clip snippet."""
    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    registry = zoo.load(zoo_path)
    model = registry.get(name)

    def view() -> None:
        out = console.console()
        from vitamin_cli.checkpoints.store import Store

        for part in render.show_view(registry, model, _pulled(model, cache_dir), Store(cache_dir).root):
            out.print(part)
            out.print()
        # Plain text, never wrapped or cropped, so that it can be pasted as it is.
        console.write_text(render.open_clip_snippet(registry, model))

    def document() -> dict[str, object]:
        path = _pulled(model, cache_dir)
        pulled = {**model.to_json(), "pulled": bool(path), "checkpoint": path or None}  # the keys of `ls --json`
        return {**pulled, **render.show_json(registry, model)}

    sink.write(chosen, json=document, table=view)


def _pulled(model: zoo.Model, cache_dir: Path | None) -> str | None:
    """The path of the model's checkpoint in the cache; "" when it is not there, None when it has no weights."""
    if model.weights is None:
        return None
    from vitamin_cli.checkpoints.owners import ModelOwner
    from vitamin_cli.checkpoints.store import Store

    path = Store(cache_dir).pulled_paths([ModelOwner(model)]).get(model.name)
    return "" if path is None else str(path)
