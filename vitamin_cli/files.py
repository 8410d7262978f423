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


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing: a temporary file in the same folder, then a rename over `path`.

    The rename replaces `path` itself, never what a symlink at `path` points to. The new file gets the
    permissions a plain `open()` would give it (the user's umask), so that a shared folder stays shared."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
