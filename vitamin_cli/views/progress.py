"""Progress on stderr, shown only when stderr is a terminal: bars for bytes (`vitamin pull`'s, one per file and
one for them all), and the one live table that bench and eval grow as results come in, with a line under it
saying what the work in progress is doing (bench's tower: warm-up, each timed run) and for how long."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vitamin_cli.console import err_console, human_bytes
from vitamin_cli.views.sink import Cell, table

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, Task


def transfer_progress(transient: bool) -> Progress:
    """A rich progress display for bytes (done, rate, time left) on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *byte_columns(),
        TimeRemainingColumn(),
        console=err_console(),
        transient=transient,
    )


def byte_columns() -> tuple[ProgressColumn, ProgressColumn]:
    """A bar's bytes (done/total) and speed, written as `console.human_bytes` writes a size (binary units:
    MiB, MiB/s), so that a file's bar and the summary after it give one number for it; rich's own columns
    write decimal units (MB), or binary ones with other rules ("bytes", "1,000.0 KiB"). A task with a `speed`
    field (PullBars' bar of all files) shows that speed rather than rich's."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Bytes(ProgressColumn):
        def render(self, task: Task) -> Text:
            done = human_bytes(int(task.completed))
            shown = done if task.total is None else f"{done}/{human_bytes(int(task.total))}"
            return Text(shown, style="progress.download")

    class Speed(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.fields["speed"] if "speed" in task.fields else task.finished_speed or task.speed
            return Text(f"{human_bytes(int(speed))}/s" if speed else "?", style="progress.data.speed")

    return Bytes(), Speed()


class PullBars:
    """`vitamin pull`'s bars on stderr, while the block runs: one per file, which appears when the file's
    download starts (a cached file draws none) and stays when it ends, with the file's own speed (all its
    connections together); and below them, once a second file has started, one for them all ("N files"): the
    bytes this pull fetches (not those an earlier, interrupted pull left on disk), at the speed of the files
    still coming. `file(label)` is one file's callback (bytes done, total bytes), which any thread may call."""

    REFRESH_S = 0.1  # a bar takes a new value at most this often (and always its last): rich averages its speed
    # over the values of the last 30 s, and keeps 1000 of them

    def __init__(self) -> None:
        self.bars = _pull_progress()
        self.lock = threading.Lock()
        self.files: list[_FileBar] = []
        self.overall: Any = None  # the TaskID of the bar of all files, once there are two
        self.overall_at = 0.0
        self.began = 0.0  # when the first file started
        self.ended = 0.0  # when the last byte of a file last arrived

    def __enter__(self) -> PullBars:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:  # the values the last updates held back, drawn once more as the bars stop
            for bar in self.files:
                self.bars.update(bar.task, completed=bar.done, total=bar.total)
            self._overall(time.monotonic(), force=True)
        self.bars.stop()

    def file(self, label: str) -> Callable[[int, int], None]:
        """The callback of one file's download, which draws its bar from the first call on."""
        mine: list[_FileBar] = []

        def update(done: int, total: int) -> None:
            now = time.monotonic()
            with self.lock:
                if not mine:
                    task = self.bars.add_task(label, total=total, completed=done)  # a resumed file: no jump in speed
                    mine.append(_FileBar(task, start=done, done=done, total=total, shown_at=now))
                    self.began = self.began or now
                    self.ended = now if done >= total else self.ended
                    self.files.append(mine[0])
                    self._overall(now, force=True)
                    return
                bar = mine[0]
                if 0 < done < bar.done:  # an older count, from another connection of the file, arriving late
                    return
                bar.done, bar.total = done, total
                if done >= total:
                    self.ended = now
                if done >= total or now - bar.shown_at >= self.REFRESH_S:
                    bar.shown_at = now
                    self.bars.update(bar.task, completed=done, total=total)
                self._overall(now)

        return update

    def _overall(self, now: float, force: bool = False) -> None:
        """The bar of all files, under the lock. Its speed is the sum of the speeds of the files still coming,
        and its time what is left at that speed; once none is coming, the average and the time they took."""
        if len(self.files) < 2 or not (force or now - self.overall_at >= self.REFRESH_S):
            return
        self.overall_at = now
        total = sum(max(0, bar.total - bar.start) for bar in self.files)
        done = sum(max(0, min(bar.done, bar.total) - bar.start) for bar in self.files)
        coming = {bar.task for bar in self.files if bar.done < bar.total}
        if coming:
            speed: float | None = sum(task.speed or 0.0 for task in self.bars.tasks if task.id in coming) or None
            seconds = (total - done) / speed if speed else None
        else:
            took = max(self.ended, self.began) - self.began
            speed, seconds = (done / took if took > 0 else None), took
        fields = {"description": f"{len(self.files)} files", "speed": speed, "seconds": seconds}
        if self.overall is None:
            self.overall = self.bars.add_task(total=total, completed=done, **fields)
            self.bars.below = self.overall
        else:
            self.bars.update(self.overall, total=total, completed=done, **fields)


@dataclass
class _FileBar:
    task: Any  # its TaskID
    start: int  # the bytes on disk when it started (from an earlier pull)
    done: int
    total: int
    shown_at: float  # when its bar last took a value


def _pull_progress() -> Any:
    """A rich Progress for PullBars: the bar of all files (the task with a `seconds` field, whose speed and time
    PullBars computes: rich's own start over whenever a total changes) drawn below the others, which rich would
    draw in the order they were added; a file's bar given the time it took once done; names shown as they are,
    never read as markup."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Time(TimeRemainingColumn):
        def render(self, task: Any) -> Text:
            if "seconds" not in task.fields:
                return super().render(task)
            seconds = task.fields["seconds"]
            style = "progress.elapsed" if task.finished else "progress.remaining"
            if seconds is None:
                return Text("-:--:--", style=style)
            minutes, whole = divmod(int(seconds), 60)
            hours, minutes = divmod(minutes, 60)
            return Text(f"{hours:d}:{minutes:02d}:{whole:02d}", style=style)

    class Bars(Progress):
        below: Any = None

        def get_renderables(self) -> Any:
            tasks = self.tasks
            yield self.make_tasks_table(
                [t for t in tasks if t.id != self.below] + [t for t in tasks if t.id == self.below]
            )

    return Bars(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        *byte_columns(),
        Time(elapsed_when_finished=True),
        console=err_console(),
        transient=False,
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
    """A table on stderr that grows as rows finish, with the row in progress below them and a status line under
    it all; it is drawn while the block runs (when `enabled` and stderr is a terminal) and gone when it ends,
    leaving stdout to the result."""

    REFRESH_S = 0.25

    def __init__(self, titles: Sequence[str], right: Collection[str], enabled: bool = True) -> None:
        self.titles, self.right = titles, right
        self.enabled = enabled and sys.stderr.isatty()
        self.rows: list[Sequence[Cell]] = []
        self.current: Sequence[Cell] | None = None
        self.doing: tuple[str, float] | None = None  # the status line and when its work began (time.monotonic)
        self.live: Any = None
        self.shown = 0.0

    def __enter__(self) -> LiveTable:
        if self.enabled:
            from rich.live import Live

            # redrawn four times a second from what is there then, so that the status line's clock moves
            self.live = Live(console=err_console(), transient=True, refresh_per_second=4, get_renderable=self._view)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def _table(self) -> Any:
        return table(self.titles, [*self.rows, *([self.current] if self.current else [])], right=self.right)

    def _view(self) -> Any:
        """The table, and under it the status line with the time since its work began."""
        doing = self.doing
        if doing is None:
            return self._table()
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        text, since = doing
        line = Table.grid(padding=(0, 2))
        line.add_column(no_wrap=True, overflow="ellipsis")  # a long line loses its end, never the clock
        line.add_column(no_wrap=True, style="progress.elapsed")
        line.add_row(Text(text), _clock(time.monotonic() - since))  # a name is never read as markup
        return Group(self._table(), line)

    def add(self, row: Sequence[Cell]) -> None:
        """A finished row, which stays (drawn by the next redraw); the status line goes with the work it described."""
        self.current, self.doing = None, None
        self.rows.append(row)

    def update(self, row: Sequence[Cell]) -> None:
        """The row in progress, redrawn at most four times a second."""
        if self.live is None or time.monotonic() - self.shown < self.REFRESH_S:
            return
        self.shown = time.monotonic()
        self.current = row

    def status(self, text: str, since: float) -> None:
        """What the work in progress is doing, on a line under the table with the time since `since` (a
        time.monotonic()); it stays until the next status or the next finished row. Cheap: the line is drawn by
        the next of the four redraws a second, not here."""
        if self.live is not None:
            self.doing = (text, since)


def _clock(seconds: float) -> str:
    """0:07, 12:34, 1:02:03."""
    minutes, whole = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{whole:02d}" if hours else f"{minutes}:{whole:02d}"
