"""`vitamin rm`: delete pulled checkpoints from the cache."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError, VitaminError

if TYPE_CHECKING:
    from vitamin_cli.hub.cache import Pulled

EXAMPLES = """
Examples:

  vitamin rm ViTamin-L            # asks first
  vitamin rm ViTamin-L ViTamin-S --yes
"""


def rm_command(
    names: Annotated[
        list[str],
        typer.Argument(
            help="Models to delete from the cache.", autocompletion=opt.complete_model_names, show_default=False
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    cache_dir: opt.CacheDir = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Delete models' files from the cache: every revision vitamin pulled of each, but only what no other model
    and no other tool's snapshot uses; then their manifest entries. A checkpoint another tool put in the cache
    (open_clip, timm, `hf download`) is left in place, and the message says how to delete it."""
    from vitamin_cli.checkpoints.pull import with_found
    from vitamin_cli.checkpoints.verify import canonical_name
    from vitamin_cli.hub.cache import hub_dir, remove

    registry = zoo.load(zoo_path)
    root = hub_dir(cache_dir)
    manifest = with_found(root, [m for m in registry.models if m.released])
    wanted: list[str] = []
    for name in names:
        canonical = canonical_name(registry, manifest, name)  # a name pulled with another zoo file counts too
        if canonical not in wanted:
            wanted.append(canonical)
    ours = {n: [e for e in manifest.of(n) if not e.adopted] for n in wanted}
    found = {n: [e for e in manifest.of(n) if e.adopted] for n in wanted}
    missing = [n for n in wanted if not ours[n] and not found[n]]
    present = [n for n in wanted if ours[n]]
    for name in missing:
        print(f"{name} is not pulled into {root}; nothing to delete", file=sys.stderr)
    if present and not yes:
        if not sys.stdin.isatty():
            raise UsageError("not deleting without confirmation: pass --yes")
        total = console.human_bytes(sum(e.size_bytes for n in present for e in ours[n]))
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
    for name in wanted:
        _left_in_place(name, found[name], root, cache_dir is not None)
    if missing or any(found.values()):
        raise typer.Exit(EXIT_FAILURE)


def _left_in_place(name: str, entries: list[Pulled], root: Path, explicit_cache: bool) -> None:
    """Say that files another tool put in the cache stay, and how to delete them with the hf CLI."""
    for entry in entries:
        where = _short(entry.snapshot(root), root)
        option = f" --cache-dir {shlex.quote(str(root))}" if explicit_cache else ""
        console.report_error(
            VitaminError(
                f"{name}: left {where} in place: another tool put it in the cache, and vitamin deletes only what "
                "it pulled",
                hint=f"to delete it: hf cache rm {entry.repo_type}/{entry.repo}{option}",
            )
        )


def _short(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
