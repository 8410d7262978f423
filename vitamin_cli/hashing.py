"""sha256 of large files, fast: big reads into one reused buffer, and one thread per file.

hashlib releases the GIL while it hashes a large buffer, so threads hash several files on several cores;
one file is bound by one core's sha256 speed (the same OpenSSL code `openssl dgst -sha256` runs).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BUFFER_BYTES = 8 * 1024 * 1024


def sha256_file(path: str | os.PathLike[str], on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(BUFFER_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while True:
            count = f.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            if on_bytes is not None:
                on_bytes(count)
    return digest.hexdigest()


def sha256_files(
    paths: Sequence[Path], workers: int | None = None, on_bytes: Callable[[int], None] | None = None
) -> list[str | OSError]:
    """The sha256 of each file, in order; a file that cannot be read gives its OSError instead."""

    def one(path: Path) -> str | OSError:
        try:
            return sha256_file(path, on_bytes)
        except OSError as err:
            return err

    workers = workers or min(len(paths), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, paths))
