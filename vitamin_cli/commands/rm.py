"""`vitamin rm`: delete pulled checkpoints (and task data) from the cache."""

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
    from vitamin_cli.checkpoints.store import Record, Removal

EXAMPLES = """
Examples:

  vitamin rm ViTamin-L            # asks first
  vitamin rm ViTamin-L ViTamin-S --yes
  vitamin rm task:cifar10 --yes   # a task's data
  vitamin rm ViTamin-L --dry-run  # what would be deleted, and what kept; deletes nothing
"""


def rm_command(
    names: Annotated[
        list[str],
        typer.Argument(
            help="Models (or task:KEY) to delete from the cache.",
            autocompletion=opt.complete_model_names,
            show_default=False,
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say what would be deleted (each file, with its size) and what kept and why, and delete nothing.",
        ),
    ] = False,
    cache_dir: opt.CacheDir = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Delete models' files from the cache: every revision vitamin pulled of each, but only what no other model
    and no other tool's snapshot uses, and their interrupted downloads; then their records. A checkpoint another
    tool put in the cache (open_clip, timm, `hf download`) is left in place, and the message says how to delete
    it."""
    from vitamin_cli.checkpoints.owners import ModelOwner
    from vitamin_cli.checkpoints.store import Store

    registry = zoo.load(zoo_path)
    store = Store(cache_dir)
    every = store.records([ModelOwner(m) for m in registry.models if m.released], everything=True)
    wanted = list(dict.fromkeys(opt.owner_name(registry, store, name) for name in names))
    records = [r for r in every if r.name in wanted]
    refused = _refused(records)
    ours = {n: [r for r in records if r.name == n and r.recorded and not r.adopted] for n in wanted}
    found = {n: [r for r in records if r.name == n and not (r.recorded and not r.adopted)] for n in wanted}
    partials = store.partials()
    downloading = store.downloading()
    present = [n for n in wanted if (ours[n] or n in downloading) and n not in refused]
    missing = [n for n in wanted if not ours[n] and not found[n] and n not in downloading]
    for name in missing:
        print(f"{name} is not pulled into {store.root}; nothing to delete", file=sys.stderr)
    if present and not yes and not dry_run:
        size = sum(r.size_bytes for n in present for r in ours[n])
        size += sum(p.size_bytes for p in partials if set(p.names) & set(present))
        _confirm(f"Delete {', '.join(present)} (up to {console.human_bytes(size)}) from {store.root}?")
    # each name's removal said as it is done, so that an error in the next one leaves it told
    done = store.rehearse(present) if dry_run else ((n, store.remove(n)) for n in present)
    for name, removal in done:
        _show(name, removal, store.root)
    for name in wanted:
        if name not in refused:
            kept = [r for r in found[name] if r.problem is None]
            _left_in_place(name, kept, every, store.root, cache_dir is not None, dry_run)
    if dry_run and present:
        print("dry run: nothing deleted; run it again without --dry-run to delete", file=sys.stderr)
    if missing or refused or any(found.values()):
        raise typer.Exit(EXIT_FAILURE)


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError("not deleting without confirmation: pass --yes")
    typer.confirm(question, abort=True)


def _refused(records: list[Record]) -> set[str]:
    """Names whose files sit behind a folder that leads out of the cache: reported, and nothing of them deleted."""
    from vitamin_cli.checkpoints.store import leading_out

    for problem in leading_out(records):
        console.report_error(problem)
    return {r.name for r in records if r.problem is not None}


def _show(name: str, removal: Removal, root: Path) -> None:
    """What was deleted of a name and what kept; in a dry run, what would be, with each file to delete."""
    files = len(removal.deleted)
    freed = console.human_bytes(removal.freed_bytes)
    deleted, kept = ("would delete", "would keep") if removal.dry_run else ("deleted", "kept")
    console.write_text(f"{deleted} {name}: {files} file{'s' if files != 1 else ''}, {freed} freed")
    for path in removal.deleted if removal.dry_run else ():
        size = path.lstat().st_size if path.is_file() and not path.is_symlink() else None
        console.write_text(f"  {_short(path, root)}" + (f" ({console.human_bytes(size)})" if size is not None else ""))
    for path, reason in removal.kept:
        console.write_text(f"  {kept} {_short(path, root)}: {reason}")
    for path in removal.others:
        console.write_text(f"  still in the cache, not pulled by vitamin: {_short(path, root)}")


def _left_in_place(
    name: str, records: list[Record], every: list[Record], root: Path, explicit_cache: bool, dry_run: bool = False
) -> None:
    """Say that files another tool put in the cache stay, and how to delete them with the hf CLI; or, for a file
    vitamin pulled under another name, which name deletes it."""
    left = "would leave" if dry_run else "left"
    for record in records:
        where = _short(record.path(root), root)
        pulled_for = sorted({r.name for r in every if r.recorded and not r.adopted and r.same_blob(record)} - {name})
        if not record.adopted and pulled_for:
            console.report_error(
                VitaminError(
                    f"{name}: {left} {where} in place: vitamin pulled it for {', '.join(pulled_for)}",
                    hint=f"to delete it: vitamin rm {shlex.quote(pulled_for[0])}",
                )
            )
            continue
        option = f" --cache-dir {shlex.quote(str(root))}" if explicit_cache else ""
        console.report_error(
            VitaminError(
                f"{name}: {left} {where} in place: another tool put it in the cache, and vitamin deletes only what "
                "it pulled",
                hint=f"to delete it: hf cache rm {record.repo_type}/{record.repo}{option}",
            )
        )


def _short(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
