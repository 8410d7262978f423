"""A small fixed-layout text table for `vitamin ls`.

rich's Table measures and wraps every cell, which costs more than the rest of `vitamin ls` together
(about 70 ms for the 61 rows here, plus 40 ms to import rich.console). This table needs neither: cells are
short and never wrap, so widths are simply the longest cell. Styles become ANSI codes only when the output
is a colour terminal.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TextIO

_ANSI = {"bold": "1", "dim": "2", "green": "32", "cyan": "36"}

# A cell is its text and a style: space-separated names of _ANSI, or "".
Cell = tuple[str, str]
# A row is a list of cells, a group title, or None for an empty line.
Row = list[Cell] | str | None


class TextTable:
    def __init__(self, titles: list[str], right: set[int]) -> None:
        self.titles = titles  # a "\n" in a title makes a two-line header
        self.right = right  # indices of right-justified columns
        self.rows: list[Row] = []

    def add_row(self, cells: list[Cell]) -> None:
        self.rows.append(cells)

    def add_title(self, text: str) -> None:
        self.rows.append(text)

    def add_gap(self) -> None:
        self.rows.append(None)

    def render(self, color: bool, width: int, rule: str = "─") -> str:
        header = [title.split("\n") for title in self.titles]
        depth = max(len(lines) for lines in header)
        header = [[""] * (depth - len(lines)) + lines for lines in header]
        widths = self._widths(header)
        gap = 2 if sum(widths) + 2 * (len(widths) - 1) <= width else 1
        out = [self._line([(lines[i], "bold") for lines in header], widths, gap, color) for i in range(depth)]
        out.append(rule * (sum(widths) + gap * (len(widths) - 1)))
        for row in self.rows:
            if row is None:
                out.append("")
            elif isinstance(row, str):
                out.append(_paint(row, "bold cyan", color))
            else:
                out.append(self._line(row, widths, gap, color))
        return "\n".join(out) + "\n"

    def _widths(self, header: list[list[str]]) -> list[int]:
        """Each column's width: its longest header line or cell."""
        widths = [max(len(line) for line in lines) for lines in header]
        for row in self.rows:
            if isinstance(row, list):
                for index, (text, _) in enumerate(row):
                    widths[index] = max(widths[index], len(text))
        return widths

    def _line(self, cells: list[Cell], widths: list[int], gap: int, color: bool) -> str:
        """A row's cells justified to their columns' widths and joined by `gap` spaces, with no trailing spaces."""
        parts = []
        last = len(cells) - 1
        for index, (text, style) in enumerate(cells):
            if index in self.right:
                text = text.rjust(widths[index])
            elif index < last:
                text = text.ljust(widths[index])
            parts.append(_paint(text, style, color))
        return (" " * gap).join(parts).rstrip()


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
    codes = ";".join(_ANSI[name] for name in style.split())
    return f"\x1b[{codes}m{text}\x1b[0m"


def use_color(stream: TextIO = sys.stdout) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set or TERM=dumb (https://no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def terminal_width() -> int:
    return shutil.get_terminal_size((80, 24)).columns
