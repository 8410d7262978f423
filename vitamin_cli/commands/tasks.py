"""`vitamin tasks`: the evaluation tasks, the zoo columns they count towards, and whether their data is pulled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from vitamin_cli import console
from vitamin_cli.commands import _options as opt
from vitamin_cli.views import sink
from vitamin_cli.views.sink import Column, OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.checkpoints.store import Record
    from vitamin_cli.eval.tasks import Task

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin tasks                       # the 40 tasks, and which are cached
  vitamin tasks --suite vtab          # the 13 tasks behind the VTAB column
  vitamin tasks --cache-dir /data/hf --json
"""


@dataclass(frozen=True)
class Row:
    """A task, and how much of its data the cache holds."""

    task: Task
    files: int  # recorded in the manifest under `task:KEY`
    present: int  # of those, on disk
    size_bytes: int  # of the present ones, a blob two entries share counted once

    @property
    def cached(self) -> str:
        """yes (every recorded file on disk), partial (some) or no (nothing recorded, or nothing left)."""
        return "no" if not self.present else "yes" if self.present == self.files else "partial"

    def to_json(self) -> dict[str, Any]:
        t = self.task
        return {
            "key": t.key,
            "name": t.name,
            "kind": t.kind,
            "layout": t.layout,
            "metric": t.metric,
            "columns": list(t.groups),
            "repo": t.repo,
            "examples": t.examples,
            "classes": t.classes,
            "cached": self.cached,
            "size_bytes": self.size_bytes,
        }


def _row(task: Task, records: list[Record]) -> Row:
    present = [r for r in records if r.present]
    blobs = {(r.repo_type, r.repo, r.etag): r.size_bytes for r in present}
    return Row(task, len(records), len(present), sum(blobs.values()))


def _cached_cell(row: Row) -> sink.Cell:
    return "-" if row.cached == "no" else (row.cached, "yellow") if row.cached == "partial" else row.cached


COLUMNS: tuple[Column[Row], ...] = (
    Column("Key", lambda r: r.task.key),
    Column("Name", lambda r: r.task.name, priority=3),
    Column("Columns", lambda r: ", ".join(r.task.groups) or "-", priority=2),
    Column("Examples", lambda r: f"{r.task.examples:,}" if r.task.examples else "-", right=True, priority=4),
    Column("Metric", lambda r: r.task.metric or "-", priority=5),
    Column("Cached", _cached_cell, priority=1),
    Column("Size", lambda r: console.human_bytes(r.size_bytes) if r.present else "", right=True, priority=1),
)


def tasks_command(
    suite: opt.Suites = None,
    cache_dir: opt.CacheDir = None,
    columns: opt.TableColumns = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
) -> None:
    """List the evaluation tasks (DataComp's 40, by the keys `vitamin eval --task` and `vitamin pull --task`
    take): the zoo columns each counts towards, its size and main metric, and whether its data is in the
    Hugging Face cache (yes, partial or -) with its size on disk. docs/eval.md."""
    from vitamin_cli.checkpoints.owners import TaskOwner
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.eval import tasks

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    shown = opt.table_columns(columns, COLUMNS, chosen)
    registry = tasks.load()
    listed = list(registry.tasks)
    if suite:
        wanted = {t.key for t in registry.resolve([], suite)}  # an unknown suite is a usage error
        listed = [t for t in listed if t.key in wanted]
    store = Store(cache_dir)
    root = store.root
    owners = [TaskOwner(t.key, t.repo) for t in listed if t.repo is not None]
    records = store.records(owners)
    rows = [_row(t, [r for r in records if r.name == TaskOwner.name_of(t.key)]) for t in listed]

    def after() -> None:
        pulled = [r for r in rows if r.present]
        total = sum(r.size_bytes for r in pulled)
        where = f"{len(pulled)} with data in {root} ({console.human_bytes(total)})" if pulled else f"none in {root}"
        sink.write_prose(
            f"{len(rows)} task{'s' * (len(rows) != 1)}, {where}; `vitamin pull --task KEY` fetches a task's data"
        )

    sink.write_rows(chosen, rows, shown, record=Row.to_json, after=after)
