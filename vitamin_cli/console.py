"""Where output goes: what the command was asked for (data, tables, views) on stdout; progress, hints and
errors on stderr. A failed write to stdout is one message, an error is `error:` and `hint:` lines, and
`VITAMIN_DEBUG=1` adds the chain of exceptions behind it. How rows become tables, JSON, CSV or markdown is
`vitamin_cli.views`'s job.

Only vitamin's own output reaches stdout. While Ray runs in the process (or anything else that writes to it
from native code, child processes or threads of its own), `keep_stdout_apart()` sends all of that to stderr.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

DEBUG_ENV = "VITAMIN_DEBUG"

_kept: Any = None  # the real stdout while keep_stdout_apart() holds it


def stdout() -> Any:
    """The stream vitamin's own output goes to: sys.stdout, or the real stdout that `keep_stdout_apart()` keeps."""
    return _kept if _kept is not None else sys.stdout


def width(stream: Any = None) -> int | None:
    """The width what goes to the stream (stdout by default) must fit: the terminal's (COLUMNS where set), or
    None, into a pipe or a file, where rows keep their natural width whatever COLUMNS says (many shells and IDEs
    export it), so that no model's name is broken across lines for `grep` or `cut`."""
    import shutil

    if not _isatty(stdout() if stream is None else stream):
        return None
    return shutil.get_terminal_size((80, 24)).columns


def console() -> Console:
    """A console on stdout, for what the command was asked to show: at the terminal's width, or into a pipe or
    a file at no width at all (`width`): tables are printed at their natural width there."""
    from rich.console import Console

    stream = stdout()
    columns = width()
    if columns is None:
        return Console(file=_Trimmed(stream), highlight=False, width=NATURAL_WIDTH)  # type: ignore[arg-type]
    return Console(file=stream, highlight=False, width=columns)


class _Trimmed:
    """A pipe or file, written without the spaces rich pads a table's rows with up to the widest one: in a
    pager or `head`, padded lines wider than the terminal read as blank lines between the rows."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        import re

        self.stream.write(re.sub(r" +(?=\n)", "", text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return int(self.stream.fileno())


NATURAL_WIDTH = 100_000  # "as wide as it needs": wider than any table vitamin prints


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


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


class _MainThreadOnly:
    """sys.stdout while `keep_stdout_apart()` holds: what the main thread writes (vitamin, typer) goes to the real
    stdout, what any other thread writes (Ray's threads print worker errors there) to stderr."""

    def __init__(self, kept: Any) -> None:
        self.kept = kept

    def _target(self) -> Any:
        return self.kept if threading.current_thread() is threading.main_thread() else sys.stderr

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


@contextmanager
def keep_stdout_apart() -> Iterator[None]:
    """While the block runs, only vitamin's own output reaches stdout: file descriptor 1, which child processes
    inherit and native code writes to, is a copy of stderr, and so is sys.stdout in every thread but the main
    one; vitamin's output (`stdout()`, and sys.stdout in the main thread) goes on to the real stdout, kept on a
    descriptor of its own that no child process inherits. Ray's processes, its C++ logging and its Python
    threads all write to the stdout of the process that starts or joins it (runners.py)."""
    global _kept
    ours = sys.stdout
    ours.flush()
    try:
        real: int | None = os.dup(1)  # not inheritable: no child process gets it
    except OSError:  # nothing open as stdout
        real = None
    writer = _writer(real, like=ours) if real is not None and _fileno(ours) == 1 else None
    kept = GuardedStream(writer) if writer is not None else ours  # else a stream of its own (a test's capture)
    os.dup2(2, 1)
    _kept, sys.stdout = kept, _MainThreadOnly(kept)
    try:
        yield
    finally:
        _kept, sys.stdout = None, ours
        if real is None:
            os.close(1)
        else:
            os.dup2(real, 1)
            try:
                if writer is not None:
                    _close(writer, real)
            finally:
                os.close(real)


def _writer(fd: int, like: Any) -> io.TextIOWrapper:
    """A text stream on `fd` that encodes and buffers as the stream `like` does."""
    return io.TextIOWrapper(
        open(fd, "wb", closefd=False),  # closed with the text stream
        encoding=getattr(like, "encoding", None),
        errors=getattr(like, "errors", None),
        line_buffering=bool(getattr(like, "line_buffering", False)),
        write_through=bool(getattr(like, "write_through", False)),
    )


def _close(writer: io.TextIOWrapper, fd: int) -> None:
    """Flush and close `writer`, a stream on `fd`; what a failed write leaves in it goes nowhere, never into a
    file opened later under the same descriptor."""
    try:
        GuardedStream(writer).flush()
    except OutputError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
        raise
    finally:
        writer.close()


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


def write_json(data: Any) -> None:
    stdout().write(json.dumps(data, indent=2) + "\n")


def write_text(text: str) -> None:
    stdout().write(text if text.endswith("\n") else text + "\n")


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
