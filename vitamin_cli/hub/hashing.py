"""sha256 of large files, fast: the file is mapped into memory and hashed in large slices, one thread per file.

Mapping avoids copying every byte through a read buffer (which costs `openssl dgst`, with its small reads,
a good share of its time). hashlib releases the GIL while it hashes a large slice, so threads hash several
files on several cores; one file is bound by one core's sha256 speed.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vitamin_cli.hub.ids import is_sha256

BUFFER_BYTES = 8 * 1024 * 1024
SLICE_BYTES = 64 * 1024 * 1024


def sha256_file(path: str | os.PathLike[str], on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return digest.hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            mapped.madvise(mmap.MADV_SEQUENTIAL)
            with memoryview(mapped) as view:
                for start in range(0, size, SLICE_BYTES):
                    piece = view[start : start + SLICE_BYTES]
                    digest.update(piece)
                    piece.release()
                    if on_bytes is not None:
                        on_bytes(min(SLICE_BYTES, size - start))
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


def git_blob_id(path: str | os.PathLike[str]) -> str:
    """git's object id of a file's content (`git hash-object`): the ETag the Hub gives a file not in LFS."""
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as f:
        digest.update(b"blob %d\0" % os.fstat(f.fileno()).st_size)
        while chunk := f.read(BUFFER_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def content_id(etag: str, sha256: str, path: str | os.PathLike[str]) -> str:
    """What a file's ETag should be, given its sha256: the sha256 itself for an LFS file (a 64-hex ETag), or
    git's blob id of the content for a plain file (a 40-hex ETag)."""
    return sha256 if is_sha256(etag) else git_blob_id(path)
