"""Results files: JSON lines that `vitamin bench -o` and `vitamin eval -o` append to and read back.

Each line is one JSON object; a line cut short by a kill or edited by hand is left out when read, and a
row becomes a dataclass only if it holds every field with its declared type. No torch here: reading
results is as light as `vitamin ls`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from vitamin_cli.errors import UsageError

T = TypeVar("T")

# A field of a result dataclass kept apart from its JSON object (and so from a results line).
APART = {"apart": True}


def read_text(path: Path, what: str) -> str:
    if path.is_dir():
        raise UsageError(f"cannot read {what} from {path}: it is a folder", hint="name the file itself")
    if not path.exists():
        raise UsageError(
            f"cannot read {what} from {path}: no such file", hint="check the path (a relative one starts here)"
        )
    if path.exists() and not path.is_file():
        raise UsageError(f"cannot read {what} from {path}: it is not a regular file (a device or a pipe)")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UsageError(f"cannot read {what} from {path}: {err.strerror}") from None


def records(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines text; a line that is not one (cut short by a kill, edited by hand) is
    left out. Lines end at "\n" alone (JSON reads a CRLF line's "\r" as space): U+2028 or U+0085 may stand
    inside a JSON string, where str.splitlines() would cut the line in two and lose it."""
    found = []
    for line in text.split("\n"):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def fits(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON has the type a dataclass field declares (finite numbers only)."""
    import math
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(fits(k, args[0]) and fits(v, args[1]) for k, v in value.items())
    return isinstance(value, hint)


def from_row(cls: type[T], row: Mapping[str, Any]) -> T | None:
    """The row as an instance of the dataclass `cls` if it holds every field with its declared type; else None
    (another tool's line, a hand edit, a wrong type)."""
    wanted = line_fields(cls)  # type: ignore[arg-type]
    if all(k in row and fits(row[k], hint) for k, hint in wanted.items()):
        return cls(**{k: row[k] for k in wanted})
    return None


@functools.lru_cache(maxsize=4)
def line_fields(cls: type) -> dict[str, Any]:
    """The fields of a dataclass that a results line carries, with their types (resolved once per class)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and not f.metadata.get("apart")}


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    """Add one JSON line to a results file (created with the user's umask), flushed to disk at once. A last
    line cut short by a kill gets its end first, so the new line stays readable."""
    import os

    line = json.dumps(record) + "\n"
    with open(path, "a+b") as out:
        if out.tell() > 0:
            out.seek(-1, os.SEEK_END)
            if out.read(1) != b"\n":
                line = "\n" + line
        out.write(line.encode("utf-8"))  # one write: lines of concurrent runs never interleave
        out.flush()
        os.fsync(out.fileno())


def check_appendable(path: Path, what: str, ours: Callable[[Mapping[str, Any]], bool]) -> None:
    """Refuse, before any work starts, a results file that lines appended to would spoil: one JSON document
    (what `--json` prints, and what `-o` wrote in older versions) or a file with no line `ours` (another
    command's results, another tool's file). The appended lines would make it read as nothing, and its old
    results would vanish from ls, plot and compare. New, empty and JSON-lines files of ours are fine."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    text = read_text(path, what)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    one_line = text.strip().count("\n") == 0
    if document is not None and not (one_line and isinstance(document, dict) and ours(document)):
        raise UsageError(
            f"{path} holds one JSON document, not {what} as JSON lines: appending would spoil it",
            hint="write to a new file with -o (ls, plot and compare read both kinds)",
        )
    if not any(ours(r) for r in records(text)):
        raise UsageError(
            f"{path} holds no {what}: appending to it would mix them with what it holds",
            hint="write to a new file with -o",
        )
