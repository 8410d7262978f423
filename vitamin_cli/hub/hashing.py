"""sha256 of large files: read in large slices (hashlib releases the GIL on each), one thread per file.

The file is read, not memory-mapped: a mapped file truncated while it is hashed kills the process with SIGBUS,
and a checkpoint can be rewritten under vitamin by the training script or tool that uses it. A file whose size
or modification time changes while it is read, or whose length is not what was read, is reported as changed
(`FileChanged`) rather than given a hash of no file that ever existed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitamin_cli.errors import VitaminError
from vitamin_cli.hub.ids import is_sha256

BUFFER_BYTES = 8 * 1024 * 1024


class FileChanged(VitaminError):
    """A file was written to, truncated or replaced while it was being read (exit code 1)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(
            f"{path} changed while being read (something wrote to it, truncated or replaced it meanwhile)",
            hint="run it again once nothing writes to the file",
        )


def stat_key(info: os.stat_result) -> tuple[int, int, int, int, int]:
    """What is cheap to check of a file and changes when it is written: size, mtime_ns, ctime_ns, inode, device."""
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev


@dataclass(frozen=True)
class Hashed:
    sha256: str
    key: tuple[int, int, int, int, int]  # `stat_key` of the file as it was read
    git: str | None = None  # git's blob id of the content, when asked for


def sha256_file(path: str | os.PathLike[str], on_bytes: Callable[[int], None] | None = None) -> str:
    """The sha256 of a file's bytes; FileChanged when it changes while being read."""
    return hash_file(path, on_bytes).sha256


def hash_file(path: str | os.PathLike[str], on_bytes: Callable[[int], None] | None = None, git: bool = False) -> Hashed:
    """The sha256 of a file's bytes (and git's blob id of them), with the file's `stat_key` as it was read;
    FileChanged when it changes while being read."""
    digest = hashlib.sha256()
    buffer = bytearray(BUFFER_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        before = os.fstat(file.fileno())
        blob = hashlib.sha1(b"blob %d\0" % before.st_size, usedforsecurity=False) if git else None
        read = 0
        while count := file.readinto(buffer):
            digest.update(view[:count])
            if blob is not None:
                blob.update(view[:count])
            read += count
            if on_bytes is not None:
                on_bytes(count)
        after = os.fstat(file.fileno())
    if read != before.st_size or stat_key(after) != stat_key(before):
        raise FileChanged(path)
    return Hashed(digest.hexdigest(), stat_key(after), blob.hexdigest() if blob is not None else None)


def hash_files(
    paths: Sequence[Path], on_bytes: Callable[[int], None] | None = None, git: Sequence[bool] = ()
) -> list[Hashed | OSError | FileChanged]:
    """Each file hashed (with git's blob id where `git` says so), one thread per file up to the cores; a file
    that cannot be read gives its OSError instead, one that changed while read its FileChanged."""
    from concurrent.futures import ThreadPoolExecutor

    def one(path: Path, blob_id: bool) -> Hashed | OSError | FileChanged:
        try:
            return hash_file(path, on_bytes, git=blob_id)
        except (OSError, FileChanged) as err:
            return err

    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1) or 1) as pool:
        return list(pool.map(one, paths, list(git) or [False] * len(paths)))


def git_blob_id(path: str | os.PathLike[str]) -> str:
    """git's object id of a file's content (`git hash-object`): the ETag the Hub gives a file not in LFS."""
    return str(hash_file(path, git=True).git)


def content_id(etag: str, sha256: str, path: str | os.PathLike[str]) -> str:
    """What a file's ETag should be, given its sha256: the sha256 itself for an LFS file (a 64-hex ETag), or
    git's blob id of the content for a plain file (a 40-hex ETag)."""
    return sha256 if is_sha256(etag) else git_blob_id(path)
