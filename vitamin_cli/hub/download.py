"""The downloader: one function (`download`) that puts a verified file at a path, resumable and time-bounded.

Why not `hf_hub_download`: its download is one stream per file, restarted or resumed by file length only, and
the Hub's fast path (Xet) is not what mirrors speak (olah, hf-mirror style mirrors, a lab's own). On those,
byte ranges over several connections are what makes a pull fast, as hf-mirror's own `hfd` script does with
aria2; and a partial file must survive a kill with every byte it had. huggingface_hub still does everything
else: the metadata, the endpoint, the token, the HTTP session and its errors (`hub.remote`).

The bytes go to a partial file (the caller names it: `blobs/<etag>.vitamin-partial`), written at their offsets
by one writer (`_Parts`) whatever the number of connections: the file is cut into parts; a file smaller than
two parts (or fetched over one connection) is one part, which is one stream. Which bytes of each part are on
disk is recorded beside the file (`.ranges`) when there are several parts, so that a kill at any moment loses
at most the last MiB of each connection. The file is hashed as its bytes arrive in order (a stream's are), the
rest once complete; it takes its final name only once its hash is the ETag.

The first request goes alone: a server that ignores Range answers it with the whole file (200), which is then
read as one stream from its first byte, without opening another connection (status `restarted` when bytes
were on disk that it could not continue). When ranges are served and the first connection does not fill the
link on its own, the others start; when it does (a near server, an uncapped link), it goes on alone, the rest
of the file as one stream. No range is ever asked past the file's end: bytes beyond what was asked are never
written, and a part that is complete is never asked for again.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitamin_cli import interrupts
from vitamin_cli.console import human_bytes
from vitamin_cli.errors import VitaminError
from vitamin_cli.hub.cache import CacheError, cache_failure, prefix_of, present_bytes, ranges_record, read_record
from vitamin_cli.hub.hashing import content_id
from vitamin_cli.hub.ids import is_sha256
from vitamin_cli.hub.remote import (
    CONNECTIONS,
    LIBRARY,
    HubFile,
    Incomplete,
    Network,
    PullError,
    Remote,
    endpoint,
    failure,
    origin,
    status_of,
    with_retries,
)

ProgressCallback = Callable[[int, int], None]  # (bytes done, total bytes)

# One connection first: when its first PROBE_BYTES come faster than FAST_STREAM bytes per second (a near
# server, an uncapped link), the others would only share the same link and the same two cores: it goes on
# alone. Otherwise (a CDN capping each stream) the other connections start, PROBE_S later at the most.
PROBE_BYTES = 4 * 2**20
PROBE_S = 0.5
FAST_STREAM = 64 * 10**6
READ_BYTES = 8 * 2**20  # what is read back from disk at once to hash the bytes that did not arrive in order

# Connections of every download in this process together (several files pulled at once share them).
_SLOTS = threading.BoundedSemaphore(2 * CONNECTIONS)


@dataclass(frozen=True)
class Downloaded:
    status: str  # downloaded, resumed (bytes on disk continued) or restarted (the server would not continue them)
    sha256: str


def download(
    wanted: HubFile,
    remote: Remote,
    partial: Path,
    target: Path,
    *,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    network: Network,
    label: str,
) -> Downloaded:
    """Put the file's bytes at `target`, verified: fetched into `partial` (continuing what an interrupted download
    left there), hashed, checked against the ETag, then renamed into place (a link at `target` is replaced,
    never followed). The caller holds the blob's lock and has checked both paths."""
    size = remote.size
    have = _start(partial, size, label)
    headers = _headers(token, remote.url)
    deadline = time.monotonic() + network.deadline_for(size)
    split = network.part_bytes if network.connections > 1 and size >= 2 * network.part_bytes else size
    try:
        parts = _Parts(partial, size, progress, split)
    except OSError as err:
        raise _explain(err, have, partial, size, wanted, remote.url, label) from err
    try:
        _fetch_all(parts, remote.url, headers, network, deadline)
        if parts.missing():
            raise Incomplete("the server sent less than the whole file")
    except Exception as err:  # noqa: BLE001 - every failure becomes one message naming what failed
        raise _explain(err, parts.done, partial, size, wanted, remote.url, label) from err
    finally:
        parts.close()  # what arrived is on disk and in the record, whatever stopped the download
    sha256 = parts.sha256()
    got = content_id(remote.etag, sha256, partial)
    if got != remote.etag:
        partial.unlink()
        kind = "sha256" if is_sha256(remote.etag) else "git blob id"
        blame = (
            "the bytes an interrupted pull left on disk may be what was damaged"
            if have
            else "if it repeats, the server or a proxy is corrupting the file"
        )
        raise PullError(
            f"{label}: {kind} mismatch: expected {remote.etag} (the Hub's ETag), got {got}; removed the file",
            hint=f"run the pull again; {blame}",
        )
    ranges_record(partial).unlink(missing_ok=True)
    os.replace(partial, target)
    status = "restarted" if parts.restarted else "resumed" if have else "downloaded"
    return Downloaded(status, sha256)


def _start(partial: Path, size: int, label: str) -> int:
    """The bytes on disk to continue from (a partial file longer than the file is dropped), once the disk is
    checked to have room for the rest."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = present_bytes(partial)
    if have > size or (partial.exists() and partial.stat().st_size > size):
        partial.unlink()
        ranges_record(partial).unlink(missing_ok=True)
        have = 0
    free = shutil.disk_usage(partial.parent).free
    if free < size - have:
        raise PullError(
            f"{label}: not enough free disk in {partial.parent}: "
            f"needs {human_bytes(size - have)} more, has {human_bytes(free)}",
            hint="free some space, or pull into another folder with --cache-dir",
        )
    return have


def _headers(token: str | bool | None, url: str) -> dict[str, str]:
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    from vitamin_cli.extras import version

    headers: dict[str, str] = build_hf_headers(token=token, library_name=LIBRARY, library_version=version())
    if origin(url) != origin(endpoint() or constants.ENDPOINT):
        # the file is served from elsewhere (a CDN, a presigned bucket URL): the token stays with the Hub
        headers.pop("authorization", None)
    return headers


class DeadlineExceeded(Exception):
    """A file took longer than its deadline."""


class _NoRanges(Exception):
    """The server answered a range with the whole file while other connections were running."""


class _Parts:
    """A partial file written at the offsets of its parts ([start, end, have]), by one connection or several;
    its record rewritten as bytes arrive when there are several parts; hashed as bytes arrive in order."""

    RECORD_EVERY = 2**20  # bytes of a part between rewrites of the record

    def __init__(self, partial: Path, size: int, progress: ProgressCallback | None, part_bytes: int) -> None:
        self.partial, self.size, self.progress = partial, size, progress
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.answered = threading.Event()  # the first answer came: whether ranges are served is known
        self.alone = threading.Event()  # one connection fills the link: it goes on alone
        self.restarted = False
        self.parts = read_record(partial, size) or _split(_length(partial, size), size, part_bytes)
        self.fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)  # the user's umask applies
        if len(self.parts) == 1:  # one stream: its bytes are the file's first ones, no record needed
            os.ftruncate(self.fd, self.parts[0][2])
            ranges_record(partial).unlink(missing_ok=True)
        self.digest = hashlib.sha256()
        self.hashed = 0
        self._hash_from_disk(prefix_of(self.parts))
        self.save()
        if progress is not None:
            progress(self.done, size)

    @property
    def done(self) -> int:
        return sum(have for _, _, have in self.parts)

    def missing(self) -> list[list[int]]:
        return [part for part in self.parts if part[2] < part[1] - part[0]]

    def save(self) -> None:
        """The record, replaced whole (a reader never sees half of one), when there are several parts. Not
        synced to disk each time: it guards against a killed process, whose writes the system keeps; `close`
        syncs data and record."""
        import json

        with self.lock:
            if len(self.parts) < 2:
                return
            text = json.dumps({"size": self.size, "parts": self.parts})
            record = ranges_record(self.partial)
            fresh = record.with_name(record.name + ".tmp")
            fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(fresh, record)

    def fetch(self, part: list[int], url: str, headers: dict[str, str], read_timeout_s: float, deadline: float) -> None:
        """One request for what the part still lacks (none when it lacks nothing); every byte checked against
        what was asked for, and none written past it."""
        from huggingface_hub import get_session, hf_raise_for_status

        if not any(p is part for p in self.parts):  # the file started over as one stream since this was asked
            part = self.parts[0]
        if part[2] >= part[1] - part[0] or self.stop.is_set():
            return
        asked = dict(headers)
        first, last = part[0] + part[2], part[1] - 1
        if len(self.parts) == 1 and first > 0:  # a stream continued: the rest of the file
            asked["Range"] = f"bytes={first}-"
        elif len(self.parts) > 1:
            asked["Range"] = f"bytes={first}-{last}"
        with _SLOTS, get_session().stream("GET", url, headers=asked, timeout=read_timeout_s) as response:
            hf_raise_for_status(response)
            if "Range" in asked and response.status_code == 200:
                part = self._whole_file_instead()
            elif "Range" in asked:
                expected = f"bytes {first}-{last}/{self.size}"
                if response.status_code != 206 or response.headers.get("content-range", "").strip() != expected:
                    got = response.headers.get("content-range")
                    raise Incomplete(f"asked for {expected}, the server answered {response.status_code} {got!r}")
            self.answered.set()
            self._read(part, response, deadline)
        self.save()
        if part[2] < part[1] - part[0] and not self.stop.is_set():
            raise Incomplete(
                f"the server sent {human_bytes(part[2])} of the {human_bytes(part[1] - part[0])} asked for"
            )

    def _read(self, part: list[int], response: Any, deadline: float) -> None:
        unsaved = 0
        for chunk in response.iter_bytes():  # as they arrive: a cut loses nothing that came before it
            interrupts.check()
            if self.stop.is_set():
                return
            room = part[1] - part[0] - part[2]
            self.write(part, chunk[:room])
            if len(chunk) >= room:  # the part is complete: more than was asked is never written
                return
            unsaved += len(chunk)
            if unsaved >= self.RECORD_EVERY:
                self.save()
                unsaved = 0
            if time.monotonic() > deadline:
                raise DeadlineExceeded()

    def _whole_file_instead(self) -> list[int]:
        """The server ignored the range and is sending the whole file: it becomes the one part, from byte 0,
        when no other connection is running (the first answer); otherwise every connection stops first."""
        if self.answered.is_set():
            raise _NoRanges()
        self.restart()
        return self.parts[0]

    def as_one_stream(self) -> bool:
        """Make the rest of the file one part, fetched as one stream (no more requests per part, no record),
        when the bytes on disk run from the start without a gap; whether it did."""
        with self.lock:
            if len(self.parts) < 2 or prefix_of(self.parts) != self.done:
                return False
            self.parts = [[0, self.size, self.done]]
        ranges_record(self.partial).unlink(missing_ok=True)
        return True

    def restart(self) -> None:
        """Start over from the first byte, as one stream: what was on disk is dropped."""
        with self.lock:
            self.restarted = self.restarted or self.done > 0
            self.parts = [[0, self.size, 0]]
            os.ftruncate(self.fd, 0)
            self.digest, self.hashed = hashlib.sha256(), 0
        ranges_record(self.partial).unlink(missing_ok=True)
        if self.progress is not None:
            self.progress(0, self.size)

    def write(self, part: list[int], chunk: bytes) -> None:
        offset = part[0] + part[2]
        os.pwrite(self.fd, chunk, offset)
        with self.lock:  # the file's count as one, in order: what the progress bar shows
            part[2] += len(chunk)
            if offset == self.hashed:  # the next bytes of the file in order: hashed now, never read back
                self.digest.update(chunk)
                self.hashed += len(chunk)
            if self.progress is not None:
                self.progress(self.done, self.size)

    def _hash_from_disk(self, end: int) -> None:
        while self.hashed < end:
            chunk = os.pread(self.fd, min(READ_BYTES, end - self.hashed), self.hashed)
            if not chunk:
                raise Incomplete(f"{self.partial} is shorter than its record says")
            self.digest.update(chunk)
            self.hashed += len(chunk)

    def sha256(self) -> str:
        """The sha256 of the whole file, once complete and closed: the bytes not hashed as they came are read
        back."""
        self.fd = os.open(self.partial, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            self._hash_from_disk(self.size)
        finally:
            os.close(self.fd)
            self.fd = -1
        return self.digest.hexdigest()

    def close(self) -> None:
        """Flush what arrived to disk, for a later pull to continue from; a partial file with nothing in it goes."""
        if self.fd < 0:
            return
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        if self.done == 0:
            for leftover in (self.partial, ranges_record(self.partial)):
                leftover.unlink(missing_ok=True)
            return
        self.save()
        if len(self.parts) > 1:
            fd = os.open(ranges_record(self.partial), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _length(partial: Path, size: int) -> int:
    """The bytes of a partial file without a record: a stream's, from its first byte."""
    try:
        return min(partial.stat().st_size, size)
    except FileNotFoundError:
        return 0


def _split(have: int, size: int, part_bytes: int) -> list[list[int]]:
    """Parts of `part_bytes` after the `have` bytes on disk (one part: one stream)."""
    if part_bytes >= size:
        return [[0, size, have]]
    parts = [[0, have, have]] if have else []
    return parts + [[start, min(start + part_bytes, size), 0] for start in range(have, size, part_bytes)]


def _fetch_all(parts: _Parts, url: str, headers: dict[str, str], network: Network, deadline: float) -> None:
    """Every missing part, over up to `network.connections` connections: the first alone until the server has
    answered (and, when ranges are served, until it shows whether one connection fills the link)."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    queue = parts.missing()
    if not queue:
        return
    taking = threading.Lock()

    def worker() -> None:
        while not parts.stop.is_set():
            with taking:
                if not queue:
                    return
                part = queue.pop(0)
            _fetch_part(parts, part, url, headers, network, deadline)
            if parts.restarted or len(parts.parts) == 1:
                return  # the whole file came as one stream
            if parts.alone.is_set() and parts.as_one_stream():
                _fetch_part(parts, parts.parts[0], url, headers, network, deadline)
                return

    most = min(network.connections, len(queue))
    try:
        with ThreadPoolExecutor(max_workers=most) as pool:
            futures = [pool.submit(worker)]
            if most > 1 and _more_connections_help(parts, futures[0]):
                futures += [pool.submit(worker) for _ in range(most - 1)]
            else:
                parts.alone.set()
            _wait_for(futures, wait, FIRST_EXCEPTION, parts)
    except _NoRanges:
        parts.stop.clear()
        parts.restart()
        _fetch_part(parts, parts.parts[0], url, headers, network, deadline)


def _fetch_part(parts: _Parts, part: list[int], url: str, headers: dict[str, str], network: Network,
                deadline: float) -> None:  # fmt: skip
    """One part, tried again while bytes keep coming (`with_retries`)."""
    last = [parts.done]

    def progressed() -> bool:
        moved, last[0] = parts.done > last[0], parts.done
        return moved

    with_retries(lambda: parts.fetch(part, url, headers, network.read_timeout_s, deadline), network, deadline,
                 progressed)  # fmt: skip


def _wait_for(futures: list[Any], wait: Any, first_exception: Any, parts: _Parts) -> None:
    """Until every connection ends; the first failure stops the others and is raised."""
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=first_exception)
            interrupts.check()
            for future in finished:
                future.result()
    finally:
        parts.stop.set()


def _more_connections_help(parts: _Parts, first: Any) -> bool:
    """Whether to open the other connections: once the first answer shows that ranges are served, unless the
    first connection alone fills the link."""
    while not parts.answered.wait(0.01):
        if first.done():
            return False
    if parts.restarted or len(parts.parts) == 1:
        return False
    start, began = parts.done, time.monotonic()
    while not first.done():
        elapsed = time.monotonic() - began
        if parts.done - start >= PROBE_BYTES:
            return (parts.done - start) / max(elapsed, 1e-6) < FAST_STREAM
        if elapsed >= PROBE_S:
            return True
        time.sleep(0.01)
    return False


def _explain(err: Exception, done: int, path: Path, size: int, wanted: HubFile, url: str, label: str) -> VitaminError:
    """A failed download as one message: the server's, the network's, the disk's or the clock's."""
    got = _after(done, size)
    again = "run the same pull again: it continues from the bytes already on disk"
    if status_of(err) is not None:  # huggingface_hub's HTTP errors are OSErrors too: the server's, not the disk's
        return failure(err, wanted, url, label, got)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return PullError(
            f"{label}: the disk holding {path.parent} is full{got}: {human_bytes(size - done)} more are needed",
            hint="free that much space and " + again,
        )
    if isinstance(err, OSError) and not _is_network(err):
        problem = cache_failure(err, f"write {path}")
        return CacheError(f"{label}: {problem.message}", hint=problem.hint)
    if isinstance(err, DeadlineExceeded):
        return PullError(
            f"{label}: the download did not finish within its deadline{got}",
            hint=again + "; VITAMIN_PULL_DEADLINE sets the seconds a file may take",
        )
    if isinstance(err, Incomplete):
        return PullError(f"{label}: download failed{got}: {err}", hint=again)
    return failure(err, wanted, url, label, got)


def _after(done: int, size: int) -> str:
    """How far a download came, in words that never round a short file up to a whole one."""
    have, whole = human_bytes(done), human_bytes(size)
    if have == whole and done != size:
        have, whole = f"{done:,} bytes", f"{size:,}"
    return f" after {have} of {whole}"


def _is_network(err: OSError) -> bool:
    """An OSError from the connection rather than the disk (httpx's errors are not OSErrors; the socket's are)."""
    import socket

    return isinstance(err, (ConnectionError, socket.timeout, TimeoutError))
