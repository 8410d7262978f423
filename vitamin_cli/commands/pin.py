"""`vitamin pin`: write the Hub's current commit, sha256 and size of released checkpoints into zoo.yaml."""

from __future__ import annotations

from typing import Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import UsageError

EXAMPLES = """
Examples:

  vitamin pin ViTamin-L                  # pin one model in the zoo file in use
  vitamin pin --all --zoo zoo.yaml       # pin every released model (maintainers, with the network)
"""


def pin_command(
    names: opt.Names = None,
    all_models: opt.AllFlag = False,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch, tag or commit to pin (default: main).")
    ] = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Ask the Hub for each released model's current commit, file size and sha256, and write them into zoo.yaml.

    Only the `weights:` values change; comments and layout stay. Needs the network (or HF_ENDPOINT's mirror).
    """
    from vitamin_cli.checkpoints import pin

    if bool(names) == all_models:
        raise UsageError("name the models to pin, or use --all")
    from vitamin_cli.checkpoints.pull import check_revision

    check_revision(revision)
    registry = zoo.load(zoo_path)
    models = registry.select(names or ()) if names else list(registry.models)
    if names:
        unreleased = [m.name for m in models if m.weights is None]
        if unreleased:
            raise UsageError(f"no public weights to pin: {', '.join(unreleased)}")
    pins = pin.fetch_pins(pin.check_pinnable(models), revision=revision)
    pin.write_pins(registry.path, pins)
    for p in pins:
        console.write_text(f"pinned {p.name}: {p.repo}@{p.revision} sha256 {p.sha256} ({p.size_bytes} bytes)")
    console.err_console().print(f"wrote {len(pins)} pins to {registry.path}", markup=False)
