"""Where output goes: what the command was asked for (data, tables, views) on stdout; progress, hints and
errors on stderr. A failed write to stdout is one message, an error is `error:` and `hint:` lines, and
`VITAMIN_DEBUG=1` adds the chain of exceptions behind it. How rows become tables, JSON, CSV or markdown is
`vitamin_cli.views`'s job."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

DEBUG_ENV = "VITAMIN_DEBUG"


def console() -> Console:
    """A console on stdout, for what the command was asked to show."""
    from rich.console import Console

    return Console(highlight=False)


def err_console() -> Console:
    """A console on stderr, for progress, hints and errors."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


class OutputError(Exception):
    """stdout could not take what the command wrote: a full disk, a closed pipe (`vitamin ls | head -1`)."""

    def __init__(self, err: OSError) -> None:
        super().__init__(err.strerror or str(err))
        self.broken_pipe = isinstance(err, BrokenPipeError)


class GuardedStream:
    """stdout as the commands see it: a failed write becomes an OutputError (one message, not a traceback),
    and a character the stream's encoding cannot hold is replaced (a cp1252 console, `PYTHONIOENCODING`)
    instead of failing the whole command."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            try:
                return int(self.stream.write(text))
            except UnicodeEncodeError:
                encoding = self.stream.encoding or "ascii"
                return int(self.stream.write(text.encode(encoding, "replace").decode(encoding)))
        except OSError as err:
            raise OutputError(err) from err

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as err:
            raise OutputError(err) from err

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ... as the stream has them
        return getattr(self.stream, name)


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def write_text(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def report_error(err: BaseException) -> None:
    """An error as the user sees it: `error: ...` and, when there is one, `hint: ...`, on stderr; with
    VITAMIN_DEBUG=1, the whole chain of exceptions behind it as well."""
    message = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
    print(f"error: {message}", file=sys.stderr)
    hint = getattr(err, "hint", None)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    if debugging():
        print_chain(err)


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def print_chain(err: BaseException) -> None:
    """The traceback of `err` and of every exception behind it, including the context that `raise ... from None`
    hides, on stderr."""
    import traceback

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__suppress_context__ = False
        current = current.__cause__ or current.__context__
    traceback.print_exception(err, file=sys.stderr)


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
