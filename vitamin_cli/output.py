"""Where output goes: what the command was asked for (data, tables, views) on stdout; progress, hints and
errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from vitamin_cli.errors import VitaminError


def console() -> Console:
    """A console on stdout, for what the command was asked to show."""
    from rich.console import Console

    return Console(highlight=False)


def err_console() -> Console:
    """A console on stderr, for progress, hints and errors."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def write_text(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def report_error(err: VitaminError) -> None:
    """An error as the user sees it: `error: ...` and, when there is one, `hint: ...`, on stderr."""
    print(f"error: {err.message}", file=sys.stderr)
    if err.hint:
        print(f"hint: {err.hint}", file=sys.stderr)


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


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
