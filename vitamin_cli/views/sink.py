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

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.measure import Measurement
    from rich.table import Table

T = TypeVar("T")


class OutputFormat(str, Enum):
    """What a command prints on stdout (`--format`); each command writes some of them."""

    table = "table"  # for people: a table or a view, on a terminal
    json = "json"  # docs/json.md
    csv = "csv"
    markdown = "markdown"


# A table cell: its text, or its text and a rich style ("bold green").
Cell = str | tuple[str, str]


def table(titles: Sequence[str], rows: Iterable[Sequence[Cell]], right: Collection[str] = ()) -> RenderableType:
    """A borderless rich table with a bold header; `right` names the right-justified columns. A cell or title
    too long for its column is broken over lines, never cut: a model name shortened to "ViTamin-XL..." would
    not say which model it is. Where the table must fold, it folds between words: a column is narrowed to its
    longest word before any word is broken; then a path at its slashes and a heading at its hyphens; and a
    word is broken (after a hyphen where it has one) only when even those parts cannot fit. Cells
    are plain text, never markup."""
    return _Table(list(titles), [list(row) for row in rows], set(right))


def _words(text: str, level: int) -> int:
    """The width of the longest word of `text`, what its column needs not to break a word: at level 0 words
    end at spaces; at level 1 also after a slash (a path's parts); at level 2 also after a hyphen."""
    import re

    from rich.cells import cell_len

    pattern = (r"\S+", r"[^\s/]*/|[^\s/]+", r"[^\s/-]*[/-]|[^\s/-]+")[level]
    return max((cell_len(word) for word in re.findall(pattern, text)), default=0)


def _fold(text: str, width: int) -> str:
    """`text` over lines of at most `width` cells: broken at spaces; a word wider than the line after a slash
    (`jienengchen/` `ViTamin-L-224px`), a part still wider after a hyphen (`ViT-S-16-` `s128M`), and inside a
    run of letters only when that alone is wider."""
    return "\n".join(line for given in text.splitlines() or [""] for line in _fold_line(given, width))


def _fold_line(given: str, width: int) -> list[str]:
    """One line of text folded as `_fold` folds it."""
    import re

    from rich.cells import cell_len

    if cell_len(given) <= width:
        return [given]
    lines: list[str] = []
    line = ""
    for word in given.split():
        joined = f"{line} {word}" if line else word
        if cell_len(joined) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
        line = _place(re.findall(r"[^/]*/+|[^/]+", word), width, lines, lambda part: re.findall(r"[^-]*-+|[^-]+", part))
    lines.append(line)
    return lines


def _place(pieces: list[str], width: int, lines: list[str], split: Callable[[str], list[str]] | None) -> str:
    """A word's pieces added to a new line, each full line appended to `lines`; the last line, still open. A
    piece wider than the line is placed by its `split` parts, or cut where it has none."""
    from rich.cells import cell_len

    line = ""
    for piece in pieces:
        if line and cell_len(line + piece) > width:
            lines.append(line)
            line = ""
        if cell_len(line + piece) <= width:
            line += piece
        elif split is not None:
            line = _place(split(piece), width, lines, None)
        else:  # a run of letters wider than the line
            while cell_len(piece) > width:
                lines.append(piece[:width])
                piece = piece[width:]
            line = piece
    return line


def _widths(natural: list[int], floors: list[list[int]], room: int) -> list[int] | None:
    """Column widths that fit `room`: None when the natural widths fit; else the widest columns narrowed first,
    down to the first floor that fits (the widths the columns' words need, or their parts), then to 1."""
    if sum(natural) <= room:
        return None
    widths = list(natural)
    # a floor that cannot fit would only narrow the short columns (a "2.9 MiB") before the long one gives way
    for floor in [f for f in floors if sum(f) <= room][:1] + [[1] * len(widths)]:
        while sum(widths) > room:
            narrower = [i for i, w in enumerate(widths) if w > floor[i]]
            if not narrower:
                break
            widest = max(narrower, key=lambda i: widths[i])
            widths[widest] -= 1
    return widths


class _Table:
    """A table made when it is printed, when the width it has is known (see `table`)."""

    def __init__(self, titles: list[str], rows: list[list[Cell]], right: set[str]) -> None:
        self.titles, self.rows, self.right = titles, rows, right

    def _texts(self, index: int) -> list[str]:
        cells = [row[index] for row in self.rows if index < len(row)]
        return [self.titles[index], *(c if isinstance(c, str) else c[0] for c in cells)]

    def build(self, room: int | None) -> Table:
        from rich.cells import cell_len
        from rich.table import Table
        from rich.text import Text

        widths: list[int] | None = None
        if room is not None and self.titles:
            texts = [self._texts(i) for i in range(len(self.titles))]
            natural = [max((cell_len(line) for t in ts for line in t.splitlines()), default=0) for ts in texts]
            # a column folds at spaces first; then a cell also at its slashes (a path), a heading at its hyphens too
            spaces = [max(_words(t, 0) for t in ts) for ts in texts]
            parts = [max([_words(ts[0], 2), *(_words(t, 1) for t in ts[1:])]) for ts in texts]  # rows or none
            widths = _widths(natural, [spaces, parts], room - 2 * (len(self.titles) - 1))

        def fold(text: str, index: int) -> str:
            return text if widths is None else _fold(text, max(widths[index], 1))

        built = Table(box=None, header_style="bold", pad_edge=False)
        for index, title in enumerate(self.titles):
            built.add_column(
                Text(fold(title, index), overflow="fold"),
                justify="right" if title in self.right else "left",
                overflow="fold",
                width=None if widths is None else max(widths[index], 1),
            )
        for row in self.rows:
            built.add_row(
                *(
                    Text(fold(cell, i)) if isinstance(cell, str) else Text(fold(cell[0], i), style=cell[1])
                    for i, cell in enumerate(row)
                )
            )
        return built

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        return Measurement.get(console, options, self.build(None))


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
    """A column of a table of rows: its title, its cell for a row, and whether it is right-justified."""

    title: str
    cell: Callable[[T], Cell]
    right: bool = False


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
    """Rows as a table (then `after`, for a summary line), markdown (of the same cells, unless the command has
        its own), JSON (the list of their records, or the `document` made of it) or CSV of their records (their
    `fields`, by default every key)."""

    def show() -> None:
        cells = [[c.cell(row) for c in columns] for row in rows]
        console.console().print(table([c.title for c in columns], cells, right={c.title for c in columns if c.right}))
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
