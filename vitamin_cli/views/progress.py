"""Progress on stderr, shown only when stderr is a terminal: bars for bytes, and the one live table that bench
and eval grow as results come in."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from vitamin_cli.console import err_console
from vitamin_cli.views.sink import Cell, table

if TYPE_CHECKING:
    from rich.progress import Progress


def transfer_progress(transient: bool) -> Progress:
    """A rich progress display for bytes (done, rate, time left) on stderr."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        transient=transient,
    )


@contextmanager
def byte_progress(label: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None] | None]:
    """A bar over `total` bytes on stderr, when stderr is a terminal; yields the callback that advances it."""
    if not enabled or not sys.stderr.isatty() or total <= 0:
        yield None
        return
    with transfer_progress(transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda count: progress.advance(task, count)


class LiveTable:
    """A table on stderr that grows as rows finish, with the row in progress below them; it is drawn while the
    block runs (when `enabled` and stderr is a terminal) and gone when it ends, leaving stdout to the result."""

    REFRESH_S = 0.25

    def __init__(self, titles: Sequence[str], right: Collection[str], enabled: bool = True) -> None:
        self.titles, self.right = titles, right
        self.enabled = enabled and sys.stderr.isatty()
        self.rows: list[Sequence[Cell]] = []
        self.current: Sequence[Cell] | None = None
        self.live: Any = None
        self.shown = 0.0

    def __enter__(self) -> LiveTable:
        if self.enabled:
            from rich.live import Live

            self.live = Live(self._table(), console=err_console(), transient=True, refresh_per_second=4)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def _table(self) -> Any:
        return table(self.titles, [*self.rows, *([self.current] if self.current else [])], right=self.right)

    def add(self, row: Sequence[Cell]) -> None:
        """A finished row, which stays."""
        self.current = None
        self.rows.append(row)
        if self.live is not None:
            self.live.update(self._table())

    def update(self, row: Sequence[Cell]) -> None:
        """The row in progress, redrawn at most four times a second."""
        if self.live is None or time.monotonic() - self.shown < self.REFRESH_S:
            return
        self.shown = time.monotonic()
        self.current = row
        self.live.update(self._table())
