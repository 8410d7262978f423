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

    check_writable(path)  # a file the user may not write is refused here
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else None  # a file rewritten keeps its mode
    try:
        write_atomic(target, text, mode)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}", hint="choose another file") from None


def check_writable(path: Path) -> None:
    """Fail now, before the work, on what would fail only when the results are written: `path` a folder, a
    device or a pipe, a file this user may not write, a name too long for its file system, or a place whose
    folder is missing, is a file or may not be written in. Each is a usage error (exit code 2)."""
    from vitamin_cli.errors import UsageError

    try:
        _check_writable(path)
    except (OSError, RuntimeError) as err:  # RuntimeError: links that lead round in a loop
        raise UsageError(f"cannot write {path}: {getattr(err, 'strerror', None) or err}") from None


def _check_writable(path: Path) -> None:
    import shlex

    from vitamin_cli.errors import UsageError

    target = path.resolve()
    folder = target.parent
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):  # a folder that is not there (said below), a system that does not say
        longest = 255
    if len(os.fsencode(target.name)) > longest:
        raise UsageError(f"cannot write {str(path)[:80]}...: the file name is longer than {longest} bytes")
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder", hint="name a file, e.g. results.json")
    if target.exists() and not target.is_file():
        raise UsageError(f"cannot write {path}: it is not a regular file (a device or a pipe)", hint="name a file")
    if not folder.is_dir():
        blocking = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise UsageError(f"cannot write {path}: {blocking} is a file, not a folder")
        raise UsageError(
            f"cannot write {path}: there is no folder {folder}",
            hint=f"create the folder first (mkdir -p {shlex.quote(str(folder))}), or name a file in one that exists",
        )
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"cannot write {path}: it is read-only", hint="make it writable first, or choose another")
    if not target.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: this user may not write in {folder}", hint="choose another folder")


def umask() -> int:
    """The process's umask (reading it means setting it: it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
