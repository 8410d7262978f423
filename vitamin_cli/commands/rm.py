"""`vitamin rm`: delete pulled checkpoints from the cache."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vitamin_cli import output, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError

EXAMPLES = """
Examples:

  vitamin rm ViTamin-L            # asks first
  vitamin rm ViTamin-L ViTamin-S --yes
"""


def rm_command(
    names: Annotated[list[str], typer.Argument(help="Models to delete from the cache.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    cache_dir: opt.CacheDir = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Delete models' checkpoints from the cache: only their own files, and their manifest entries."""
    from vitamin_cli.hubcache import hub_dir, read_manifest, remove

    registry = zoo.load(zoo_path)
    root = hub_dir(cache_dir)
    manifest = read_manifest(root)
    models = [registry.get(name) for name in names]
    missing = [m.name for m in models if m.name not in manifest]
    entries = [manifest[m.name] for m in models if m.name in manifest]
    for name in missing:
        print(f"{name} is not pulled into {root}; nothing to delete", file=sys.stderr)
    if entries and not yes:
        if not sys.stdin.isatty():
            raise UsageError("not deleting without confirmation: pass --yes")
        total = output.human_bytes(sum(e.size_bytes for e in entries))
        typer.confirm(f"Delete {', '.join(e.name for e in entries)} ({total}) from {root}?", abort=True)
    for entry in entries:
        remove(root, entry)
        output.write_text(f"deleted {entry.name} ({output.human_bytes(entry.size_bytes)})")
    if missing:
        raise typer.Exit(EXIT_FAILURE)
