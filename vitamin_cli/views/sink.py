"""The one output sink: what a command prints on stdout, in the format it was asked for.

A command hands over its data once: the JSON document (docs/json.md), and whichever of a table, CSV rows and
markdown it writes; `write` prints the one the user chose. Most commands print a list of rows: `write_rows`
makes every format from the rows and their columns. Cells are plain text, never rich markup.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vitamin_cli import console
from vitamin_cli.console import NATURAL_WIDTH
from vitamin_cli.views.texttable import Cell as Cell
from vitamin_cli.views.texttable import Spec, TextTable, cell_width, chosen_indices, columns_asked, fold

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.measure import Measurement

T = TypeVar("T")


class OutputFormat(str, Enum):
    """What a command prints on stdout (`--format`); each command writes some of them."""

    table = "table"  # for people: a table or a view, on a terminal
    json = "json"  # docs/json.md
    csv = "csv"
    markdown = "markdown"


def table(
    columns: Sequence[Spec | str], rows: Iterable[Sequence[Cell]], right: Collection[str] = (), choosable: bool = False
) -> RenderableType:
    """A borderless table with a bold header, fitted to the width it is printed at (texttable.py says how: it
    folds between words, shortens paths, hides the columns of lowest priority with a note, and never splits a
    model's name or a number); at its natural width into a pipe. `columns` are Specs, or titles with `right`
    naming the right-justified ones; `choosable` when the command takes `--columns`. Cells are plain text, never
    markup."""
    built = TextTable(columns, right, choosable)
    for row in rows:
        built.add_row(row)
    return _Rich(built)


def side_by_side(titles: Sequence[str], rows: Sequence[Sequence[Cell]]) -> RenderableType:
    """A table of things side by side, a column each after the first (the row labels): where they cannot all fit
    the width, as many tables as it takes, each of as many of them as fit, the labels repeated in each."""
    return _SideBySide(list(titles), [list(row) for row in rows])


class _SideBySide:
    def __init__(self, titles: list[str], rows: list[list[Cell]]) -> None:
        self.titles, self.rows = titles, rows

    def _part(self, start: int, stop: int) -> TextTable:
        """The labels and columns start to stop; a cell such as a Hub repo may fold after a slash."""
        named = [Spec(t, right=True, path=True, named=True) for t in self.titles[start:stop]]
        part = TextTable([Spec(self.titles[0]), *named])
        for row in self.rows:
            part.add_row([row[0], *row[start:stop]])
        return part

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = room_of(options)
        count = len(self.titles) - 1
        each = count

        def parts(each: int) -> list[TextTable]:
            return [self._part(start, min(start + each, count + 1)) for start in range(1, count + 1, each)]

        while each > 1 and room is not None and any(part.layout(room).broken for part in parts(each)):
            each -= 1
        for index, part in enumerate(parts(each)):
            if index:
                yield ""
            yield _Rich(part)


def room_of(options: ConsoleOptions) -> int | None:
    """The width a renderable must fit: the console's, or None on a console into a pipe (console.console), which
    has no width to fit."""
    return None if options.max_width >= NATURAL_WIDTH else options.max_width


class _Rich:
    """A TextTable as rich prints it: fitted to the console's width (none into a pipe: see console.console)."""

    def __init__(self, built: TextTable) -> None:
        self.built = built

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        lines, note = self.built.lines(room_of(options))
        for line in lines:
            yield Text.assemble(*line, no_wrap=True, end="\n")
        if note:
            yield Text("\n".join(fold(note, options.max_width)), style="dim")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        lines, _ = self.built.lines(None)
        widest = max((sum(cell_width(t) for t, _ in line) for line in lines), default=0)
        return Measurement(widest, widest)


def write(
    chosen: OutputFormat,
    *,
    json: Callable[[], Any],
    table: Callable[[], None] | None = None,
    csv: Callable[[], str] | None = None,
    markdown: Callable[[], str] | None = None,
) -> None:
    """Print the command's output in the chosen format; each argument makes one format's output when asked."""
    writers: dict[OutputFormat, Callable[[], None] | None] = {
        OutputFormat.json: lambda: console.write_json(json()),
        OutputFormat.table: table,
        OutputFormat.csv: (lambda: console.write_text(csv())) if csv is not None else None,
        OutputFormat.markdown: (lambda: console.write_text(markdown())) if markdown is not None else None,
    }
    writer = writers[chosen]
    if writer is None:  # the command's --format choices leave this out: a bug, not a user's mistake
        raise AssertionError(f"no {chosen.value} output")
    writer()


@dataclass(frozen=True)
class Column(Generic[T]):
    """A column of a table of rows: its title, its cell for a row, whether it is right-justified, its priority
    where the table must lose columns to fit (0: never; the highest goes first), its key for `--columns`
    (default: made of the title) and whether its cells are paths (texttable.Spec)."""

    title: str
    cell: Callable[[T], Cell]
    right: bool = False
    priority: int = 0
    key: str = ""
    path: bool = False

    @property
    def spec(self) -> Spec:
        return Spec(self.title, right=self.right, priority=self.priority, key=self.key, path=self.path)


C = TypeVar("C", Column[Any], Spec)


def picked(columns: Sequence[C], chosen: str | None) -> list[C]:
    """The columns (Columns or Specs) `--columns a,b,c` chose, in its order; all of them when it was not given."""
    if not chosen:
        return list(columns)
    names = [c.name if isinstance(c, Spec) else c.spec.name for c in columns]
    return [columns[i] for i in chosen_indices(names, columns_asked(chosen))]


def write_rows(
    chosen: OutputFormat,
    rows: Sequence[T],
    columns: Sequence[Column[T]],
    *,
    record: Callable[[T], Mapping[str, Any]],
    document: Callable[[list[Mapping[str, Any]]], Any] | None = None,
    after: Callable[[], None] | None = None,
    markdown: Callable[[], str] | None = None,
    fields: Sequence[str] | None = None,
) -> None:
    """Rows as a table (then `after`, for a summary line), markdown (of the same cells, unless the command has its
    own), JSON (the list of their records, or the `document` made of it) or CSV of their records (their `fields`,
    by default every key)."""

    def show() -> None:
        cells = [[c.cell(row) for c in columns] for row in rows]
        console.console().print(table([c.spec for c in columns], cells, choosable=True))
        if after is not None:
            after()

    def records() -> list[Mapping[str, Any]]:
        return [record(row) for row in rows]

    write(
        chosen,
        json=lambda: document(records()) if document is not None else records(),
        table=show,
        csv=lambda: to_csv(records(), fields),
        markdown=markdown
        or (lambda: to_markdown([c.title for c in columns], [[c.cell(row) for c in columns] for row in rows])),
    )


def write_prose(text: str) -> None:
    """Sentences under a table: on a terminal, folded between words (and a long path after its slashes) to its
    width, as the table is; into a pipe, each line as it is."""
    console.write_text(_folded(text, console.width()))


def write_note(text: str) -> None:
    """A note on stderr, folded as `write_prose` folds, to stderr's terminal when it is one; a line that starts
    with spaces keeps them on the lines it folds into."""
    import sys

    print(_folded(text, console.width(sys.stderr)), file=sys.stderr)


def _folded(text: str, columns: int | None) -> str:
    if columns is None:
        return text
    lines = []
    for given in text.rstrip("\n").split("\n"):
        indent = given[: len(given) - len(given.lstrip(" "))]
        lines += [indent + line for line in fold(given.strip(" "), max(columns - len(indent), 8), path=True)]
    return "\n".join(lines)


def to_csv(records: Sequence[Mapping[str, Any]], fields: Sequence[str] | None = None) -> str:
    """Records as CSV: a column per field (default: every key of any record, in order of first appearance, so
    that rows with other metrics keep theirs); a list becomes its items
    joined by `;`, a mapping a column per key (`weights` -> `weights_repo`, ...), null an empty cell."""
    import csv
    import io

    flat = [_flat(r) for r in records]
    names = list(fields) if fields is not None else list(dict.fromkeys(k for row in flat for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}_"))
        elif isinstance(value, (list, tuple)):
            flat[prefix + key] = ";".join(str(v) for v in value)
        else:
            flat[prefix + key] = value
    return flat


def to_markdown(titles: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A markdown table of plain cells; `|` inside a cell is escaped."""

    def text(cell: Cell) -> str:
        return (cell if isinstance(cell, str) else cell[0]).replace("|", "\\|")

    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(text(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
