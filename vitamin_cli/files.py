"""Writing files safely, and the folder where vitamin keeps what it computed.

"memo" is vitamin's own cache of results it can compute again (validated zoo files, audit counts): it lives in
`$XDG_CACHE_HOME/vitamin` and is never the Hugging Face cache, which `vitamin_cli.hubcache` handles.
"""

from __future__ import annotations

import os
from pathlib import Path


def memo_dir() -> Path:
    """vitamin's own cache folder: $XDG_CACHE_HOME/vitamin, else ~/.cache/vitamin."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vitamin"


def read_memo(path: Path, limit: int = 1 << 30) -> bytes | None:
    """The bytes of a memo entry, or None when there is none to trust: missing, not a regular file (a FIFO
    would block an open forever, so the file is opened without blocking and checked before it is read), larger
    than `limit`, or unreadable. The caller validates what it gets and rebuilds the entry when it fails."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write a whole file or nothing: a temporary file in the same folder, then a rename over `path`.

    The rename replaces `path` itself, never what a symlink at `path` points to. The new file gets `mode`, or
    else the permissions a plain `open()` would give it (the user's umask), so that a shared folder stays
    shared."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask() if mode is None else mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(path: Path, text: str) -> None:
    """Write a file the user named (`-o FILE`, a zoo file to pin), whole or not at all: where a link at `path`
    points, as a shell redirection would. A folder or a place that cannot be written is a usage error."""
    import stat

    from vitamin_cli.errors import UsageError

    check_writable(path)
    target = path.resolve()
    mode = None
    if target.is_file():  # a file rewritten keeps its permissions; one the user may not write is refused
        if not os.access(target, os.W_OK):
            raise UsageError(f"cannot write {path}: it is read-only", hint="make it writable first, or choose another")
        mode = stat.S_IMODE(target.stat().st_mode)
    try:
        write_atomic(target, text, mode)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}", hint="choose another file") from None


def check_writable(path: Path) -> None:
    """Fail now, before the work, if `path` names a folder or lies in a folder that is a file."""
    from vitamin_cli.errors import UsageError

    target = path.resolve()
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder", hint="name a file, e.g. results.json")
    if target.exists() and not target.is_file():
        raise UsageError(f"cannot write {path}: it is not a regular file (a device or a pipe)", hint="name a file")
    parent = next((p for p in (target.parent, *target.parent.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"cannot write {path}: {parent} is a file, not a folder")


def umask() -> int:
    """The process's umask (reading it means setting it: it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
