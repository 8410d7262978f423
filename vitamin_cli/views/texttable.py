"""Tables as text, fitted to the width they are printed at: every table vitamin prints goes through here.

On a terminal a table fits its width. Where its natural width is too wide, in this order: cells fold between
words; long cells take their short form (a path from `~` or from the cache, a hash's prefix), and paths fold
at their slashes; the columns of lowest priority are hidden, and a note under the table names them and says
how to choose columns (`--columns`); only a table whose every kept column still cannot fit breaks words. So a
model's name or a number is never split at the widths a terminal has (60 columns and up). Into a pipe or a
file there is no width to fit (`width=None`): rows are at their natural width, whole.

rich's Table is not used: it measures and wraps every cell, which costs more than the rest of `vitamin ls`
together (about 70 ms for the 61 rows, plus 40 ms to import rich.console). Styles become ANSI codes only on a
colour terminal; `sink.table` gives the same lines to rich, for the consoles and live tables that need it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from vitamin_cli.errors import UsageError

_ANSI = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


@dataclass(frozen=True)
class Spec:
    """A column: its title (a "\\n" makes a two-line heading), its justification, its priority (0: always shown;
    where columns must go, the highest number goes first, then the rightmost), its key for `--columns`, and
    whether its cells are paths (which may fold after a slash); its title folds after a slash or a hyphen too,
    unless it is a name (`named`: a model's, in a table of models side by side)."""

    title: str
    right: bool = False
    priority: int = 0
    key: str = ""
    path: bool = False
    named: bool = False

    @property
    def name(self) -> str:
        return self.key or key_of(self.title)


def key_of(title: str) -> str:
    """A column's key made of its title: "Images/s" -> "images_s", "Params M\\nimg+txt" -> "params_m_img_txt"."""
    return re.sub(r"[^0-9a-z%]+", "_", title.lower()).strip("_").replace("%", "pct") or "note"


FOLD_LINES = 4  # the most lines a cell folds over before the table rather hides a column

# A cell: its text; or its text and a style (space-separated names of _ANSI, or ""); or both and a short form,
# shown instead where the table is too wide for the text (a path from `~`, a hash's prefix).
Cell = str | tuple[str, str] | tuple[str, str, str]
# A row is a list of cells, a group title, or None for an empty line.
Row = list[Cell] | str | None
# A line as printed: pieces of text, each with its style.
Line = list[tuple[str, str]]


def cell_width(text: str) -> int:
    """The columns `text` takes on a terminal: 2 for a wide (East Asian) character, 0 for a combining one."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _parts(cell: Cell) -> tuple[str, str, str | None]:
    if isinstance(cell, str):
        return cell, "", None
    if len(cell) == 2:
        return cell[0], cell[1], None
    return cell[0], cell[1], cell[2]


_PIECES = {
    "words": r"\S+",
    "path": r"[^\s/]*/+|[^\s/]+",  # a path's parts, each with its slash
    "heading": r"[^\s/-]*[/-]+|[^\s/-]+",  # a heading's parts: "ms/" "batch", "Warm-" "up s"
}


def _words(text: str, path: bool | str) -> list[str]:
    """The pieces a fold keeps whole: words between spaces; a path's parts or a heading's parts too."""
    kind = path if isinstance(path, str) else "path" if path else "words"
    return re.findall(_PIECES[kind], text)


@dataclass
class _Layout:
    shown: list[int]
    widths: list[int]
    gap: int
    short: bool  # cells take their short form
    broken: bool  # words may break (nothing else fitted)


class TextTable:
    def __init__(self, columns: Sequence[Spec | str], right: Iterable[int | str] = (), choosable: bool = False) -> None:
        """`columns` as Specs, or titles with `right` naming the right-justified ones (by index or title);
        `choosable` when the command takes `--columns`, which the note on hidden columns then offers."""
        self.choosable = choosable
        marked = set(right)
        self.specs = [
            c if isinstance(c, Spec) else Spec(c, right=i in marked or c in marked) for i, c in enumerate(columns)
        ]
        self.rows: list[Row] = []

    def add_row(self, cells: Sequence[Cell]) -> None:
        self.rows.append(list(cells))

    def add_title(self, text: str) -> None:
        self.rows.append(text)

    def add_gap(self) -> None:
        self.rows.append(None)

    def keep(self, keys: Iterable[str]) -> None:
        """Never hide the columns of these keys (the ones a listing is sorted or chosen by)."""
        wanted = set(keys)
        self.specs = [replace(s, priority=0) if s.name in wanted else s for s in self.specs]

    def choose(self, keys: Sequence[str]) -> None:
        """Keep only the columns of these keys, in this order (`--columns a,b,c`)."""
        order = chosen_indices([s.name for s in self.specs], keys)
        self.specs = [self.specs[i] for i in order]
        self.rows = [[row[i] for i in order] if isinstance(row, list) else row for row in self.rows]

    # -----------------------------------------------------------------------------------------------
    # fitting

    def _texts(self, index: int, short: bool) -> list[str]:
        """The column's cells as they would be shown, its title first."""
        texts = [self.specs[index].title]
        for row in self.rows:
            if isinstance(row, list) and index < len(row):
                text, _, brief = _parts(row[index])
                texts.append(brief if short and brief is not None else text)
        return texts

    def _sizes(self, index: int, short: bool) -> tuple[int, int]:
        """The column's natural width (its longest line) and the least it folds to without breaking a word."""
        texts = self._texts(index, short)
        natural = max((cell_width(line) for t in texts for line in t.splitlines()), default=0)
        folds_paths = short and self.specs[index].path
        floor = max(
            (
                cell_width(w)
                for i, t in enumerate(texts)
                for w in _words(t, self._title_folds(index) if i == 0 else folds_paths)
            ),
            default=0,
        )
        return natural, floor

    def _title_folds(self, index: int) -> str:
        return "words" if self.specs[index].named else "heading"

    def layout(self, room: int | None) -> _Layout:
        everything = list(range(len(self.specs)))
        if room is None:
            return _Layout(everything, [self._sizes(i, False)[0] for i in everything], 2, short=False, broken=False)
        has_short = any(
            isinstance(row, list) and any(_parts(c)[2] is not None for c in row) for row in self.rows
        ) or any(s.path for s in self.specs)
        optional = sorted(
            (i for i in everything if self.specs[i].priority > 0), key=lambda i: (-self.specs[i].priority, -i)
        )
        sizes = {short: [self._sizes(i, short) for i in everything] for short in {False, has_short}}

        def fit(hidden: list[int], fold: str) -> _Layout | None:
            return _fit([i for i in everything if i not in hidden], sizes, has_short, room, fold)

        # a cell folded over more than FOLD_LINES lines reads worse than a column hidden: that is tried first
        for fold in ("few lines", "words"):
            for dropped in range(len(optional) + 1):
                hidden = optional[:dropped]
                found = fit(hidden, fold)
                if found is None:
                    continue
                for column in reversed(hidden):  # one hidden before may fit again beside those hidden after it
                    again = fit([h for h in hidden if h != column], fold)
                    if again is not None:
                        hidden, found = [h for h in hidden if h != column], again
                return found
        shown = [i for i in everything if i not in optional]
        room_left = room - (len(shown) - 1)
        natural = [sizes[has_short][i][0] for i in shown]
        whole = _narrowed(natural, [sizes[has_short][i][1] for i in shown], room_left)  # the words' widths first
        return _Layout(shown, _narrowed(whole, [1] * len(shown), room_left), 1, has_short, True)

    # -----------------------------------------------------------------------------------------------
    # drawing

    def lines(self, width: int | None, rule: str = "") -> tuple[list[Line], str | None]:
        """The table's lines fitted to `width` (None: natural width), with a rule under the heading when `rule` is
        given; and the note that says which columns were hidden, if any were."""
        fit = self.layout(width)
        widths = fit.widths
        heading = [self._fold(fit, self.specs[i].title, p, self._title_folds(i)) for p, i in enumerate(fit.shown)]
        depth = max((len(h) for h in heading), default=1)
        heading = [[""] * (depth - len(h)) + h for h in heading]
        out = [self._line([(h[d], "bold") for h in heading], fit, widths) for d in range(depth)]
        if rule:
            out.append([(rule * (sum(widths) + fit.gap * (len(widths) - 1)), "")])
        for row in self.rows:
            if row is None:
                out.append([])
            elif isinstance(row, str):
                out += [[(line, "bold cyan")] for line in (_fold(row, width, False, True) if width else [row])]
            else:
                out += self._row_lines(row, fit, widths)
        return out, self._note(fit, width)

    def _fold(self, fit: _Layout, text: str, position: int, path: bool | str) -> list[str]:
        return _fold(text, max(fit.widths[position], 1), path=path, broken=fit.broken)

    def _row_lines(self, row: list[Cell], fit: _Layout, widths: list[int]) -> list[Line]:
        cells = []
        for position, i in enumerate(fit.shown):
            text, style, brief = _parts(row[i]) if i < len(row) else ("", "", None)
            shown = brief if fit.short and brief is not None else text
            cells.append((self._fold(fit, shown, position, fit.short and self.specs[i].path), style))
        height = max(len(texts) for texts, _ in cells)
        return [
            self._line([(texts[d] if d < len(texts) else "", style) for texts, style in cells], fit, widths)
            for d in range(height)
        ]

    def _note(self, fit: _Layout, width: int | None) -> str | None:
        hidden = [i for i in range(len(self.specs)) if i not in fit.shown]
        if not hidden:
            return None
        titles = ", ".join(self.specs[i].title.replace("\n", " ") for i in hidden)
        if not self.choosable:
            return f"hidden to fit {width} columns: {titles} (a wider terminal shows them)"
        keys = ", ".join(s.name for s in self.specs)
        return f"hidden to fit {width} columns: {titles} (--columns KEY,... chooses from {keys})"

    def _line(self, cells: list[tuple[str, str]], fit: _Layout, widths: list[int]) -> Line:
        """Cells justified to their columns, joined by `gap` spaces, with no trailing spaces."""
        parts: Line = []
        last = len(cells) - 1
        for position, (text, style) in enumerate(cells):
            pad = widths[position] - cell_width(text)
            if self.specs[fit.shown[position]].right:
                parts += [(" " * pad, ""), (text, style)]
            elif position < last:
                parts += [(text, style), (" " * pad, "")]
            else:
                parts.append((text, style))
            if position < last:
                parts.append((" " * fit.gap, ""))
        while parts and not parts[-1][0].strip():
            parts.pop()
        if parts:
            text, style = parts[-1]
            parts[-1] = (text.rstrip(), style)
        return parts

    def render(self, color: bool, width: int | None, rule: str = "─") -> str:
        """The table as text, with ANSI styles when `color`, and the note on hidden columns under it."""
        out, note = self.lines(width, rule)
        text = "\n".join("".join(_paint(t, s, color) for t, s in line) for line in out) + "\n"
        if note:
            text += (
                "\n".join(_paint(line, "dim", color) for line in _fold(note, width or len(note), False, True)) + "\n"
            )
        return text


def _fit(
    shown: list[int], sizes: dict[bool, list[tuple[int, int]]], has_short: bool, room: int, fold: str
) -> _Layout | None:
    """A layout of these columns that fits `room`: at their natural widths, else folded (down to the width of
    their longest words, or with `fold` "few lines" to no more than FOLD_LINES lines a cell), in their full
    text before their short forms, with gaps of 2 before 1; None if none fits."""
    for short in dict.fromkeys((False, has_short)):
        for gap in (2, 1):
            room_left = room - gap * (len(shown) - 1)
            natural = [sizes[short][i][0] for i in shown]
            if sum(natural) <= room_left:
                return _Layout(shown, natural, gap, short, False)
            floors = [sizes[short][i][1] for i in shown]
            if fold == "few lines":
                floors = [max(f, -(-n // FOLD_LINES)) for f, n in zip(floors, natural, strict=True)]
            if sum(floors) <= room_left:
                return _Layout(shown, _narrowed(natural, floors, room_left), gap, short, False)
    return None


def columns_asked(value: str) -> list[str]:
    """`--columns a,b,c` as keys: split at commas, spaces trimmed, case ignored."""
    return [key.strip().lower() for key in value.split(",") if key.strip()]


def chosen_indices(names: Sequence[str], keys: Sequence[str]) -> list[int]:
    """The positions of the columns `keys` names, in their order; a key no column has is a usage error."""
    unknown = [k for k in keys if k not in names]
    if unknown or not keys:
        raise UsageError(
            f"--columns: no column {unknown[0]!r} in this table" if unknown else "--columns: name at least one column",
            hint="this table's columns are " + ",".join(names),
        )
    return [names.index(k) for k in dict.fromkeys(keys)]


def _narrowed(natural: list[int], floors: list[int], room: int) -> list[int]:
    """Widths that fit `room`: the widest column narrowed first, each down to its floor at most."""
    widths = list(natural)
    while sum(widths) > room:
        narrower = [i for i, w in enumerate(widths) if w > floors[i]]
        if not narrower:
            break
        widest = max(narrower, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def fold(text: str, width: int, path: bool = False) -> list[str]:
    """`text` over lines of at most `width` columns, broken at spaces (and after a path's slashes); a word wider
    than the line stays whole."""
    return _fold(text, width, path, broken=False)


def _fold(text: str, width: int, path: bool | str, broken: bool) -> list[str]:
    """`text` over lines of at most `width` columns, broken at spaces (and after a path's slashes); a word wider
    than the line is broken (after a slash or hyphen where it has one) only when `broken`, else left whole."""
    lines: list[str] = []
    for given in text.splitlines() or [""]:
        if cell_width(given) <= width:
            lines.append(given)
            continue
        line = ""
        for word in given.split():
            for n, piece in enumerate(_words(word, path)):
                joined = line + piece if n or not line else f"{line} {piece}"
                if cell_width(joined) <= width:
                    line = joined
                    continue
                if line:
                    lines.append(line)
                line = _cut(piece, width, lines) if broken else piece
        lines.append(line)
    return lines


def _cut(word: str, width: int, lines: list[str]) -> str:
    """A word wider than the line, placed after its slashes or hyphens where it has them, else cut: the full
    lines appended to `lines`, the last one returned (still open)."""
    line = ""
    for piece in re.findall(r"[^/-]*[/-]+|[^/-]+", word):
        if line and cell_width(line + piece) > width:
            lines.append(line)
            line = ""
        while cell_width(line + piece) > width:
            room = max(width - cell_width(line), 1)
            lines.append(line + piece[:room])
            line, piece = "", piece[room:]
        line += piece
    return line


def short_path(path: object, root: object = None) -> str:
    """A path as a narrow table shows it: from `root` (the cache: `models--org--name/...`, a snapshot's commit
    cut to 10 characters and marked `…`, as the Revision column shows it) when it is inside, else from `~` when
    it is in the home folder, else whole."""
    text = str(path)
    for base, shown in ((root, ""), (os.path.expanduser("~"), "~/")):
        if base is not None and str(base) not in ("", "/"):
            prefix = str(base).rstrip("/") + "/"
            if text.startswith(prefix):
                inside = shown + text[len(prefix) :]
                return re.sub(r"(/snapshots/[0-9a-f]{10})[0-9a-f]{30}/", r"\1…/", inside) if base is root else inside
    return text


def rule_char() -> str:
    """A box-drawing line where stdout's encoding holds it (UTF-8), else a plain one (cp1252, latin-1)."""
    try:
        "─".encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "-"
    return "─"


def _paint(text: str, style: str, color: bool) -> str:
    if not color or not style or not text.strip():
        return text
    codes = ";".join(_ANSI[name] for name in style.split() if name in _ANSI)
    return f"\x1b[{codes}m{text}\x1b[0m" if codes else text


def use_color(stream: TextIO = sys.stdout) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set or TERM=dumb (https://no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def terminal_width() -> int:
    return shutil.get_terminal_size((80, 24)).columns
