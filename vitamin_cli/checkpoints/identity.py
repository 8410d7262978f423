"""A file's identity is its bytes: its sha256, remembered with what is cheap to check, so that it is hashed once.

When vitamin hashes a file it records, in the user's own memo (`$XDG_CACHE_HOME/vitamin/identity/`, never the
shared hub cache, which may be read-only or another user's), the file's size, mtime_ns, ctime_ns, inode and
device with the sha256 (and git's blob id, for a plain file whose ETag is one). Where any of them differs at
the next use, or nothing is recorded, the file is hashed again before anything is keyed by its sha256. A file
changed less than RACY_S before it was hashed is not remembered: a write in the same clock tick would keep its
times (git's rule for racily clean files).

What this cannot see is a change that keeps every one of those (bit rot on the disk): `vitamin verify` reads
every byte to find that.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from vitamin_cli.files import memo_dir, read_memo, write_atomic
from vitamin_cli.hub.hashing import Hashed, hash_file, stat_key
from vitamin_cli.hub.ids import is_sha256

RACY_S = 2.0


def _entry_path(path: Path) -> Path:
    real = os.path.realpath(path)
    return memo_dir() / "identity" / (hashlib.sha256(os.fsencode(real)).hexdigest()[:40] + ".json")


def _recalled(path: Path) -> dict[str, Any] | None:
    """What was remembered of the file as it is now, or None (nothing remembered, or the file changed since)."""
    data = read_memo(_entry_path(path), limit=4096)
    try:
        entry = json.loads(data) if data is not None else None
        if isinstance(entry, dict) and entry.get("stat") == list(stat_key(os.stat(path))):
            return entry if is_sha256(entry.get("sha256")) else None
    except (ValueError, OSError):
        pass
    return None


def remember(path: Path, hashed: Hashed, wrote_it: bool = False) -> None:
    """Record what the file hashed to, with its stat as it was read; nothing when it had just changed (racy:
    unless vitamin wrote it, under the blob's lock), or when the memo cannot be written (a read-only home: the
    file is hashed again next time)."""
    _, mtime_ns, ctime_ns, _, _ = hashed.key
    if not wrote_it and max(mtime_ns, ctime_ns) > time.time_ns() - RACY_S * 1e9:
        return
    entry = {"path": os.path.realpath(path), "stat": list(hashed.key), "sha256": hashed.sha256, "git": hashed.git}
    try:
        write_atomic(_entry_path(path), json.dumps(entry))
    except OSError:
        pass


def key_of(path: Path) -> tuple[int, ...]:
    """What is cheap to check of a file now (size, times, inode, device): compared after a file is used, it says
    whether the bytes used were the bytes hashed."""
    return stat_key(os.stat(path))


def sha256_of(path: Path) -> str:
    """The sha256 of the file's bytes now: remembered if nothing cheap to check has changed, else hashed (and
    remembered). Raises OSError, or hashing's FileChanged when it changes while being read."""
    entry = _recalled(path)
    if entry is not None:
        return str(entry["sha256"])
    hashed = hash_file(path)
    remember(path, hashed)
    return hashed.sha256


def verified(path: Path, etag: str) -> tuple[str, bool]:
    """(sha256, whether the content is its ETag): an LFS file's ETag is its sha256, a plain file's its git blob
    id. Remembered or hashed as `sha256_of`."""
    entry = _recalled(path)
    if entry is None or (not is_sha256(etag) and not entry.get("git")):
        hashed = hash_file(path, git=not is_sha256(etag))
        remember(path, hashed)
        entry = {"sha256": hashed.sha256, "git": hashed.git}
    sha256 = str(entry["sha256"])
    return sha256, (sha256 if is_sha256(etag) else entry["git"]) == etag
