"""`vitamin cache`: what is on disk, with sizes and the total."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from vitamin_cli import console
from vitamin_cli.commands import _options as opt
from vitamin_cli.views import sink
from vitamin_cli.views.sink import Cell, OutputFormat
from vitamin_cli.views.texttable import Spec, short_path

if TYPE_CHECKING:
    from vitamin_cli.checkpoints.store import Partial, Record

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin cache                       # pulled models and partial downloads, with sizes
  vitamin cache --cache-dir /data/hf --json
"""


def cache_command(
    cache_dir: opt.CacheDir = None,
    columns: opt.TableColumns = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Show the zoo's checkpoints in the cache (each revision of each model), whether vitamin pulled them or
    found them there (put by open_clip, timm, `hf download`), interrupted downloads, and the total on disk. A
    file deleted by another tool is listed as gone."""
    from vitamin_cli import zoo
    from vitamin_cli.checkpoints.owners import ModelOwner
    from vitamin_cli.checkpoints.store import Store

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    shown = opt.table_columns(columns, COLUMNS, chosen)
    store = Store(cache_dir)
    root = store.root
    released = [ModelOwner(m) for m in zoo.load(zoo_path).models if m.released]
    pulled = sorted(store.records(released, everything=True), key=lambda r: (r.name, r.pulled_at))
    partials = store.partials()
    present = [r for r in pulled if r.present]
    # a blob two entries share is counted once, as the cache scanner counts it
    blobs = {(r.repo_type, r.repo, r.etag): r.size_bytes for r in present}
    total = sum(blobs.values()) + sum(p.size_bytes for p in partials)

    def table() -> None:
        sink.write_prose(f"cache {root}")
        if not pulled and not partials:
            sink.write_prose("nothing pulled yet; `vitamin pull NAME` fetches a checkpoint")
            return
        rows: list[list[Cell]] = [_row(r, root) for r in pulled] + [_partial_row(p, root) for p in partials]
        order = [COLUMNS.index(c) for c in shown]
        console.console().print(sink.table(shown, [[row[i] for i in order] for row in rows], choosable=True))
        elsewhere = len(pulled) - len(present)
        sink.write_prose(
            f"total {console.human_bytes(total)} in {len(present)} file{'s' * (len(present) != 1)}"
            + (f" and {len(partials)} partial download{'s' * (len(partials) != 1)}" if partials else "")
            + (f"; {elsewhere} not as pulled (`vitamin verify` says why)" if elsewhere else "")
        )

    _problems(pulled)
    sink.write(
        chosen,
        json=lambda: {
            "cache_dir": str(root),
            "manifest": str(store.manifest_path),
            "models": [r.to_json(root) for r in pulled],
            "partial": [
                {
                    "repo": p.repo,
                    "repo_type": p.repo_type,
                    "path": str(p.path),
                    "size_bytes": p.size_bytes,
                    "for": list(p.names),
                    "stale": p.stale,
                }  # fmt: skip
                for p in partials
            ],
            "total_bytes": total,
        },
        table=table,
    )


# The table's columns; on a narrow terminal paths are shown from the cache (or `~`), then Pulled and Revision go.
COLUMNS = (
    Spec("Model"),
    Spec("Size", right=True, priority=1),
    Spec("Revision", priority=2),
    Spec("Pulled", priority=3),
    Spec("Path", path=True),
)


def _path(path: Path, root: Path) -> Cell:
    return str(path), "", short_path(path, root)


def _row(record: Record, root: Path) -> list[Cell]:
    """A file: its name marked with its state when it is not present (gone, leads out, not a link to its blob)."""
    name: Cell = record.name if record.present else (f"{record.name} ({record.state})", "yellow")
    size = console.human_bytes(record.size_bytes) if record.size_bytes else ""
    pulled = f"found {record.pulled_at}" if record.adopted else record.pulled_at
    return [name, size, record.revision[:10], pulled, _path(record.path(root), root)]


def _partial_row(partial: Partial, root: Path) -> list[Cell]:
    what = "partial, stale" if partial.stale else "partial"
    label = ", ".join(partial.names) or partial.repo
    return [(f"{label} ({what})", "yellow"), console.human_bytes(partial.size_bytes), "", "", _path(partial.path, root)]


def _problems(records: list[Record]) -> None:
    """Folders that lead out of the cache, each said once on stderr with what to do."""
    from vitamin_cli.checkpoints.store import leading_out

    for problem in leading_out(records):
        console.report_error(problem)
