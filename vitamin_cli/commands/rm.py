"""`vitamin rm`: delete pulled checkpoints from the cache."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vitamin_cli import console, zoo
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
    """Delete models' files from the cache: every revision pulled of each, but only what no other model and no
    other tool's snapshot uses; then their manifest entries."""
    from vitamin_cli.checkpoints.verify import canonical_name
    from vitamin_cli.hub.cache import hub_dir, read_manifest, remove

    registry = zoo.load(zoo_path)
    root = hub_dir(cache_dir)
    manifest = read_manifest(root)
    pulled = {e.name for e in manifest.entries}
    wanted: list[str] = []
    for name in names:
        canonical = canonical_name(registry, manifest, name)  # a name pulled with another zoo file counts too
        if canonical not in wanted:
            wanted.append(canonical)
    missing = [n for n in wanted if n not in pulled]
    present = [n for n in wanted if n in pulled]
    for name in missing:
        print(f"{name} is not pulled into {root}; nothing to delete", file=sys.stderr)
    if present and not yes:
        if not sys.stdin.isatty():
            raise UsageError("not deleting without confirmation: pass --yes")
        total = console.human_bytes(sum(e.size_bytes for n in present for e in manifest.of(n)))
        typer.confirm(f"Delete {', '.join(present)} (up to {total}) from {root}?", abort=True)
    for name in present:
        removal = remove(root, name)
        files = len(removal.deleted)
        console.write_text(
            f"deleted {name}: {files} file{'s' if files != 1 else ''}, {console.human_bytes(removal.freed_bytes)} freed"
        )
        for path, reason in removal.kept:
            console.write_text(f"  kept {_short(path, root)}: {reason}")
        for path in removal.others:
            console.write_text(f"  still in the cache, not pulled by vitamin: {_short(path, root)}")
    if missing:
        raise typer.Exit(EXIT_FAILURE)


def _short(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
