"""Fetch files from the Hugging Face Hub into its standard cache: resumable, hashed, never half-there.

huggingface_hub resolves a file (endpoint, token, revision, redirects, its ETag: an LFS file's sha256 or a
plain file's git blob id) and provides the HTTP client; vitamin streams the bytes itself so that a partial
file survives across runs. They go to `blobs/<etag>.vitamin-partial`, which a later run continues with a
ranged request, and become `blobs/<etag>` (the name huggingface_hub gives a finished blob) only once complete
and checked. Under huggingface_hub's own lock for that blob, two pulls of one file download it once.

Time is bounded: each request waits at most HF_HUB_DOWNLOAD_TIMEOUT seconds for bytes (HF_HUB_ETAG_TIMEOUT
for the metadata); a failure is tried again ATTEMPTS times in all, pausing 1, 2, 4 and 8 s (scaled by
VITAMIN_RETRY_WAIT), and the count starts over whenever bytes arrive; and each file has one wall-clock
deadline (VITAMIN_PULL_DEADLINE, or 2 minutes plus the time the file takes at 512 KiB/s), so that a server
sending a byte now and then cannot hold a pull forever (docs/checkpoints.md).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from vitamin_cli import interrupts
from vitamin_cli.console import human_bytes
from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.hub import ids
from vitamin_cli.hub.cache import (
    CacheError,
    Pulled,
    RepoCache,
    cache_failure,
    confined,
    lock_mode,
    open_for_append,
    prefix_of,
    present_bytes,
    ranges_record,
    read_manifest,
    read_record,
    updating_manifest,
)
from vitamin_cli.hub.hashing import BUFFER_BYTES, content_id, sha256_file
from vitamin_cli.hub.ids import is_commit, is_sha256

ATTEMPTS = 5  # tries of one request without a byte of progress
FIRST_WAIT_S = 1.0  # the first pause between tries, doubled each time; $VITAMIN_RETRY_WAIT changes it
DEADLINE_BASE_S = 120.0
DEADLINE_RATE = 512 * 1024  # bytes per second a file must average, beyond the base, to meet its deadline
LIBRARY = "vitamin"
NOTICE_S = 3.0  # a server silent this long (no answer, or only failures) is named on stderr while tries go on
# A file of at least two parts is fetched as byte ranges of PART_BYTES over up to CONNECTIONS connections at
# once; a smaller one in one stream. A far CDN caps each stream well below the link (about 6 MB/s): 8 streams
# give room above the 5 that beating one stream 4 times needs. Parts are small enough that the connections
# finish together, large enough that each request's latency is paid rarely; a kill costs at most the last
# MiB (RECORD_EVERY) of each connection, whatever the part size.
CONNECTIONS = 8
PART_BYTES = 16 * 2**20

ProgressCallback = Callable[[int, int], None]  # (bytes done, total bytes)


class PullError(VitaminError):
    """A file could not be fetched or did not check out (exit code 1)."""


@dataclass(frozen=True)
class Network:
    """How long vitamin waits on the network, from the environment (docs/checkpoints.md)."""

    read_timeout_s: float = 10.0  # HF_HUB_DOWNLOAD_TIMEOUT: seconds without a byte
    metadata_timeout_s: float = 10.0  # HF_HUB_ETAG_TIMEOUT
    first_wait_s: float = FIRST_WAIT_S  # VITAMIN_RETRY_WAIT
    deadline_s: float | None = None  # VITAMIN_PULL_DEADLINE: seconds per file; None: from its size
    connections: int = CONNECTIONS  # VITAMIN_CONNECTIONS (or pull --connections): ranges of one file at once
    part_bytes: int = PART_BYTES  # VITAMIN_PART_MB: a range's size; a file of two parts or more is ranged

    @classmethod
    def from_environment(cls) -> Network:
        """The settings, each variable checked; huggingface_hub itself fails to import on a bad timeout or
        endpoint."""
        _check_endpoint()
        return cls(
            read_timeout_s=_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10.0, whole=True),
            metadata_timeout_s=_seconds("HF_HUB_ETAG_TIMEOUT", 10.0, whole=True),
            first_wait_s=_seconds("VITAMIN_RETRY_WAIT", FIRST_WAIT_S, zero_ok=True),
            deadline_s=_seconds("VITAMIN_PULL_DEADLINE", None),
            connections=_count("VITAMIN_CONNECTIONS", CONNECTIONS),
            part_bytes=_count("VITAMIN_PART_MB", PART_BYTES // 2**20, most=1024) * 2**20,
        )

    def deadline_for(self, size: int) -> float:
        return self.deadline_s if self.deadline_s is not None else DEADLINE_BASE_S + size / DEADLINE_RATE


def _count(variable: str, default: int, most: int = 64) -> int:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= most):
        raise UsageError(
            f"{variable}={text[:40]!r} is not a whole number from 1 to {most}",
            hint=f"set {variable} to a number such as {default}, or unset it",
        )
    return int(text)


MAX_SECONDS = 10**6  # about 11 days: longer than any wait could mean, and within what clocks can add


def _seconds(variable: str, default: float | None, whole: bool = False, zero_ok: bool = False) -> Any:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
        if not (value >= 0 if zero_ok else value > 0) or not value <= MAX_SECONDS:  # NaN fails both
            raise ValueError
    except ValueError:
        kind = "whole number of seconds" if whole else "number of seconds"
        raise UsageError(
            f"{variable}={text[:40]!r} is not a {'' if zero_ok else 'positive '}{kind} up to {MAX_SECONDS:,}",
            hint=f"set {variable} to a number such as {int(default or 10)}, or unset it",
        ) from None
    return value


def _check_endpoint() -> None:
    """HF_ENDPOINT must be an http(s) URL: huggingface_hub parses it when imported, and a bad one crashes it."""
    from urllib.parse import urlsplit

    text = os.environ.get("HF_ENDPOINT")
    if text is None:
        return
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port out of range
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and text == text.strip()
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(
            f"HF_ENDPOINT={text[:80]!r} is not an http(s) URL",
            hint="set it to the Hub or a mirror, e.g. https://huggingface.co or http://127.0.0.1:8090, or unset it",
        )


@dataclass(frozen=True)
class HubFile:
    """One file of a Hub repo, with what is known of it beforehand (the pins of a zoo file)."""

    repo: str
    filename: str
    revision: str = "main"
    repo_type: str = "model"
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass
class Fetched:
    """A file present and checked in the cache."""

    commit: str
    etag: str
    size_bytes: int
    sha256: str
    path: Path  # the snapshot path, where huggingface_hub, open_clip and timm find the file
    status: str  # downloaded, resumed or cached


def check_revision(revision: str | None) -> None:
    """A --revision the Hub would not accept (`../..`, a newline, a NUL) is a usage error, before any request."""
    problem = ids.revision_problem(revision) if revision is not None else None
    if problem is not None:
        raise UsageError(f"--revision {str(revision)[:80]!r}: {problem}", hint="give a branch, tag or commit")


def fetch(
    wanted: HubFile,
    hub_root: Path,
    *,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    label: str | None = None,
    on_present: Callable[[RepoCache, Fetched], None] | None = None,
    network: Network | None = None,
    force: bool = False,
) -> Fetched:
    """Make one file present and intact in the cache (downloading, resuming or finding it); `on_present` runs
    under the blob's lock once it is, so that a pull waiting for the lock finds what it recorded.

    Every name is checked before any byte moves, and every path before it is written. `force` downloads
    the file again and puts it in place of a blob of the same name (a damaged one) only once it checks out."""
    network = network or Network.from_environment()
    label = label or f"{wanted.repo}/{wanted.filename}"
    repo = RepoCache(hub_root, wanted.repo, wanted.repo_type)
    for problem in (ids.filename_problem(wanted.filename), ids.revision_problem(wanted.revision)):
        if problem is not None:
            raise UsageError(f"{label}: {problem}")

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        fetched = _from_cache_offline(wanted, repo, label)
        if on_present is not None:
            try:
                on_present(repo, fetched)  # recorded as found (adopted) unless vitamin pulled it before
            except (CacheError, OSError):
                pass  # a cache this user may not write: the file is there and checked, used unrecorded
        return fetched
    meta = metadata(wanted, token, network, label)
    _check_against_pins(wanted, meta.etag, meta.size, label)
    try:
        return _fetch_locked(wanted, repo, meta, token, progress, network, label, on_present, force)
    except OSError as err:
        raise cache_failure(err, f"write {label} into the cache {hub_root}") from err


def _fetch_locked(
    wanted: HubFile,
    repo: RepoCache,
    meta: Any,
    token: str | bool | None,
    progress: ProgressCallback | None,
    network: Network,
    label: str,
    on_present: Callable[[RepoCache, Fetched], None] | None,
    force: bool,
) -> Fetched:
    from filelock import FileLock

    commit, etag, size = meta.commit_hash, meta.etag, meta.size
    lock = confined(repo.root, repo.lock(etag))
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), mode=lock_mode()):
        blob = confined(repo.root, repo.blob(etag))
        cached = None
        if not force and blob.is_file() and not blob.is_symlink() and blob.stat().st_size == size:
            cached = _known_sha256(repo, etag) or hash_existing(blob, etag)
        if cached is not None:
            status, sha256 = "cached", cached
        else:  # absent, or damaged: downloaded anew, and put in its place only once the new copy checks out
            status, sha256 = _download(repo, meta.location, etag, size, token, progress, network, label)
        _check_pin(wanted, sha256, repo, blob, status, label)
        path = repo.link(commit, wanted.filename, etag, wanted.revision)
        fetched = Fetched(commit, etag, size, sha256, path, status)
        if on_present is not None:
            try:
                on_present(repo, fetched)
            except CacheError:
                if status != "cached":
                    _back_to_partial(repo, etag, path)
                raise
    return fetched


def _back_to_partial(repo: RepoCache, etag: str, snapshot: Path) -> None:
    """Undo a download that could not be recorded (a full disk, say): the blob becomes a partial download
    again, which the next pull finishes without fetching a byte, and its snapshot link goes. Nothing then looks
    complete that the manifest does not list, and nothing downloaded is lost."""
    from vitamin_cli.hub.cache import Removal, tidy

    blob = repo.blob(etag)
    if snapshot.is_symlink() and not any(p != snapshot for p in repo.links_to(blob)):
        snapshot.unlink()
        os.replace(blob, repo.partial(etag))
        tidy(repo.root, repo, snapshot.relative_to(repo.folder / "snapshots").parts[0], Removal())


def metadata(wanted: HubFile, token: str | bool | None, network: Network, label: str) -> Any:
    """The Hub's commit, ETag, size and download URL of a file."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from vitamin_cli.extras import version

    # HF_ENDPOINT as it is now: huggingface_hub reads it once, when first imported
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or None
    url = hf_hub_url(
        wanted.repo, wanted.filename, repo_type=wanted.repo_type, revision=wanted.revision, endpoint=endpoint
    )

    deadline = time.monotonic() + network.deadline_for(0)

    def head() -> Any:
        return get_hf_file_metadata(
            url,
            token=token,
            timeout=max(0.1, min(network.metadata_timeout_s, deadline - time.monotonic())),  # never past the deadline
            library_name=LIBRARY,
            library_version=version(),
            endpoint=endpoint,
        )

    failures: list[Exception] = []
    notice = threading.Timer(NOTICE_S, _still_trying, (url, label, failures))
    notice.daemon = True
    notice.start()
    try:
        meta = _with_retries(head, network, deadline=deadline, failed=failures.append)
    except Exception as err:  # noqa: BLE001 - every failure of the lookup becomes one clear message
        raise PullError(*_explain(err, wanted, url, label)) from err
    finally:
        notice.cancel()
    if not meta.etag or meta.size is None or not meta.commit_hash:
        raise PullError(f"{label}: the server gave no commit, ETag or size for {url}")
    # Both become file names in the cache: accept only the hex digests a Hub sends, never a path.
    if not is_commit(meta.commit_hash) or not (is_sha256(meta.etag) or is_commit(meta.etag)):
        raise PullError(
            f"{label}: the server sent an unusable commit {meta.commit_hash!r} or ETag {meta.etag!r} for {url}",
            hint="check HF_ENDPOINT: it should be the Hub or a faithful mirror",
        )
    return meta


_noticed: set[str] = set()
_noticed_lock = threading.Lock()


def _still_trying(url: str, label: str, failures: list[Exception]) -> None:
    """Say, once per server, that it has not answered after NOTICE_S seconds while the tries go on."""
    _, host = _origin(url)
    with _noticed_lock:
        if host in _noticed:
            return
        _noticed.add(host)
    why = f" ({type(failures[-1]).__name__}: {str(failures[-1])[:120]})" if failures else ""
    print(
        f"{label}: no answer from {host} after {NOTICE_S:g} s{why}; still trying. "
        "Without a network, HF_HUB_OFFLINE=1 uses what is cached already.",
        file=sys.stderr,
        flush=True,
    )


def _explain(err: Exception, wanted: HubFile, url: str, label: str) -> tuple[str, str | None]:
    """A failed metadata lookup as a message and a hint (never including the token)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, GatedRepoError) or status == 403:
        return (
            f"{label}: access to {wanted.repo} is refused ({status or 'gated'})",
            "the repo is gated or private: accept its terms on the Hub and set HF_TOKEN to a token that may read it",
        )
    if status == 401:  # the Hub's answer for a private repo, and for one that does not exist
        return (
            f"{label}: the server refused {wanted.repo}/{wanted.filename} without valid credentials (401)",
            "the repo may be private or gated: set HF_TOKEN to a token that may read it; or the repo id may be "
            "wrong: check it on the Hub",
        )
    if isinstance(err, RevisionNotFoundError):
        return f"{label}: revision not found in {wanted.repo}: {url}", "check --revision or zoo.yaml's pin"
    if isinstance(err, (RepositoryNotFoundError, EntryNotFoundError)) or status == 404:
        return (
            f"{label}: {wanted.repo}/{wanted.filename} was not found ({status or 404})",
            "the repo or file may be gone, or private: set HF_TOKEN if you should have access",
        )
    if isinstance(err, OfflineModeIsEnabled):
        return f"{label}: offline mode is on and the file is not cached", "unset HF_HUB_OFFLINE to download"
    return (
        f"{label}: cannot reach {url}: {type(err).__name__}: {err}",
        "check the network, or HF_ENDPOINT if you use a mirror; without a network, HF_HUB_OFFLINE=1 uses the "
        "files already in the cache",
    )


def _retryable(err: Exception) -> bool:
    """A failure that another try may not meet: the network, a timeout, a server error or a rate limit."""
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import httpx  # type: ignore[attr-defined]

    if isinstance(err, HfHubHTTPError):
        status = getattr(err.response, "status_code", None)
        return status is not None and (status >= 500 or status in (408, 429))
    return isinstance(err, (httpx.TransportError, _ShortRead))


def _with_retries(
    call: Callable[[], Any],
    network: Network,
    deadline: float,
    progressed: Callable[[], bool] | None = None,
    failed: Callable[[Exception], None] | None = None,
) -> Any:
    """Try `call` up to ATTEMPTS times while its failures are retryable, pausing longer each time, never past
    the deadline; re-raise the last failure. A failed try after which `progressed()` is true (bytes arrived)
    starts the count and the pauses over; `failed` hears of each failure."""
    wait = network.first_wait_s
    failures = 0
    while True:
        try:
            return call()
        except Exception as err:  # noqa: BLE001 - sorted by _retryable
            if failed is not None:
                failed(err)
            if progressed is not None and progressed():
                failures, wait = 0, network.first_wait_s
            failures += 1
            if failures >= ATTEMPTS or not _retryable(err) or time.monotonic() + wait > deadline:
                raise
        time.sleep(wait)
        wait *= 2


def _check_against_pins(wanted: HubFile, etag: str, size: int, label: str) -> None:
    if wanted.sha256 and is_sha256(etag) and etag != wanted.sha256:
        raise PullError(
            f"{label}: the Hub's {wanted.repo}/{wanted.filename} has sha256 {etag}, zoo.yaml pins {wanted.sha256}",
            hint="the file changed upstream; pin a revision in zoo.yaml, or `vitamin pin` it again",
        )
    if wanted.size_bytes and size != wanted.size_bytes:
        raise PullError(f"{label}: the Hub's file has {size} bytes, zoo.yaml pins {wanted.size_bytes}")


def _known_sha256(repo: RepoCache, etag: str) -> str | None:
    """The sha256 the manifest recorded when vitamin pulled and hashed this very blob (a file found in the cache
    is recorded by its name, unhashed: it is hashed here)."""
    for entry in read_manifest(repo.root, warn=False).entries:
        if (entry.repo_type, entry.repo, entry.etag) == (repo.repo_type, repo.repo, etag) and not entry.adopted:
            return entry.sha256
    return None


def hash_existing(blob: Path, etag: str) -> str | None:
    """The sha256 of a blob that something else put in the cache, or None when its content does not match its
    ETag (a damaged blob, which the caller downloads anew; nothing is deleted here)."""
    actual = sha256_file(blob)
    return actual if content_id(etag, actual, blob) == etag else None


class _ShortRead(Exception):
    """The server ended the body before the whole file arrived: the next try continues from there."""


def _download(
    repo: RepoCache,
    url: str,
    etag: str,
    size: int,
    token: str | bool | None,
    progress: ProgressCallback | None,
    network: Network,
    label: str,
) -> tuple[str, str]:
    """Fetch the blob into its partial file, resuming what is there; returns (status, sha256)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    from vitamin_cli.extras import version

    partial = confined(repo.root, repo.partial(etag))
    if partial.is_symlink():  # checked before it is measured or continued: stat() would follow it
        raise cache_failure(OSError(errno.ELOOP, "symbolic link", str(partial)), f"download {label}")
    partial.parent.mkdir(parents=True, exist_ok=True)
    # huggingface_hub's cache scanner expects every repo folder to have one, even while a file is on its way
    confined(repo.root, repo.folder / "snapshots" / "x").parent.mkdir(exist_ok=True)
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
    headers = build_hf_headers(token=token, library_name=LIBRARY, library_version=version())
    if _origin(url) != _origin(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT):
        # the file is served from elsewhere (a CDN, a presigned bucket URL): the token stays with the Hub
        headers.pop("authorization", None)
    resumed = have > 0 or ranges_record(partial).exists()
    deadline = time.monotonic() + network.deadline_for(size)
    if size >= 2 * network.part_bytes and network.connections > 1:
        try:
            actual = _download_ranges(partial, url, headers, size, progress, network, deadline, label)
        except _NoRanges:  # no ranges served, or one stream fills the link: one stream, from the bytes there
            actual = _download_stream(partial, url, headers, size, progress, network, deadline, label)
    else:
        actual = _download_stream(partial, url, headers, size, progress, network, deadline, label)
    got = content_id(etag, actual, partial)
    if got != etag:
        partial.unlink()
        kind = "sha256" if is_sha256(etag) else "git blob id"
        raise PullError(
            f"{label}: {kind} mismatch: expected {etag} (the Hub's ETag), got {got}; removed the file",
            hint="run the pull again; if it repeats, the server or a proxy is corrupting the file",
        )
    os.replace(partial, confined(repo.root, repo.blob(etag)))  # a link at the blob's name is replaced, not followed
    return ("resumed" if resumed else "downloaded"), actual


def _download_stream(
    partial: Path,
    url: str,
    headers: dict[str, str],
    size: int,
    progress: ProgressCallback | None,
    network: Network,
    deadline: float,
    label: str,
) -> str:
    """One stream appending to the partial file from where it ends, hashing as the bytes arrive; the sha256."""
    if ranges_record(partial).exists():  # ranges of a ranged pull: only their first run without a gap counts
        partial_prefix(partial)
    writer = _PartialWriter(partial, size, progress)
    last = [writer.done]

    def progressed() -> bool:
        moved, last[0] = writer.done > last[0], writer.done
        return moved

    try:
        if writer.done < size:  # a partial file already whole (its pull could not be recorded) needs no request
            _with_retries(
                lambda: writer.fetch(url, headers, network.read_timeout_s, deadline), network, deadline, progressed
            )
    except Exception as err:  # noqa: BLE001
        writer.close()
        raise PullError(*_explain_download(err, writer.done, writer.path, size, label)) from err
    writer.close()
    if writer.done != size or partial.stat().st_size != size:
        partial.unlink(missing_ok=True)
        raise PullError(f"{label}: got {writer.done} bytes, expected {size}; removed the partial file")
    return writer.digest.hexdigest()


class _NoRanges(Exception):
    """A file is better fetched in one stream: the server answered a range with the whole file (200), or one
    connection alone fills the link."""


def partial_prefix(partial: Path) -> None:
    """Make a ranged partial file one that a single stream can continue: cut to the bytes present from its
    start, and drop its record."""
    size = partial.stat().st_size if partial.is_file() else 0
    prefix = prefix_of(read_record(partial) or [])
    if partial.is_file():
        with open(partial, "r+b") as f:
            f.truncate(min(prefix, size))
    ranges_record(partial).unlink(missing_ok=True)


# Connections of every ranged download in this process together (several files pulled at once share them).
_SLOTS = threading.BoundedSemaphore(2 * CONNECTIONS)


class _Ranges:
    """A partial file fetched as byte ranges at once, each written at its offset; its record (which bytes of
    each part are on disk) rewritten as they arrive, so that a kill at any moment loses nothing written."""

    RECORD_EVERY = 2**20  # bytes of a part between rewrites of the record

    def __init__(self, partial: Path, size: int, progress: ProgressCallback | None, part_bytes: int) -> None:
        self.partial, self.size, self.progress = partial, size, progress
        self.lock = threading.Lock()
        self.stop = threading.Event()
        parts = read_record(partial, size)
        if parts is None:  # no record: a stream's partial file (its bytes from the start), or none
            have = partial.stat().st_size if partial.is_file() and not partial.is_symlink() else 0
            have = min(have, size)
            step = part_bytes
            parts = [[0, have, have]] if have else []
            parts += [[start, min(start + step, size), 0] for start in range(have, size, step)]
        self.parts = parts
        self.fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)  # the user's umask applies
        self.save()

    @property
    def done(self) -> int:
        return sum(have for _, _, have in self.parts)

    def save(self) -> None:
        """The record, replaced whole (a reader never sees half of one). Not synced to disk each time: it
        guards against a killed process, whose writes the system keeps; `close` syncs data and record."""
        import json

        with self.lock:
            text = json.dumps({"size": self.size, "parts": self.parts})
            record = ranges_record(self.partial)
            fresh = record.with_name(record.name + ".tmp")
            fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(fresh, record)

    def prefix(self) -> int:
        """The bytes on disk from the start of the file without a gap."""
        with self.lock:
            return prefix_of(self.parts)

    def missing(self) -> list[list[int]]:
        return [part for part in self.parts if part[2] < part[1] - part[0]]

    def fetch(self, part: list[int], url: str, headers: dict[str, str], read_timeout_s: float, deadline: float) -> None:
        """One request for what the part still lacks; every byte checked against the range asked for."""
        from huggingface_hub import get_session, hf_raise_for_status

        start, end, _ = part
        first = start + part[2]
        asked = {**headers, "Range": f"bytes={first}-{end - 1}"}
        with _SLOTS, get_session().stream("GET", url, headers=asked, timeout=read_timeout_s) as response:
            hf_raise_for_status(response)
            if response.status_code == 200:
                raise _NoRanges()
            expected = f"bytes {first}-{end - 1}/{self.size}"
            if response.status_code != 206 or response.headers.get("content-range", "").strip() != expected:
                got = response.headers.get("content-range")
                raise _ShortRead(f"asked for {expected}, the server answered {response.status_code} {got!r}")
            unsaved = 0
            for chunk in response.iter_bytes():
                interrupts.check()
                if self.stop.is_set():
                    return
                room = end - (start + part[2])
                if len(chunk) > room:  # never written past the part's end: what fits is kept, the rest refused
                    chunk = chunk[:room]
                    self.write(part, chunk)
                    raise _ShortRead(f"the server sent more than the range {expected}")
                self.write(part, chunk)
                unsaved += len(chunk)
                if unsaved >= self.RECORD_EVERY:
                    self.save()
                    unsaved = 0
                if time.monotonic() > deadline:
                    raise _Deadline()
        self.save()
        if part[2] < end - start:
            raise _ShortRead(f"the server sent {part[2]} of the {end - start} bytes of {expected}")

    def write(self, part: list[int], chunk: bytes) -> None:
        os.pwrite(self.fd, chunk, part[0] + part[2])
        with self.lock:  # the file's count as one, in order: what the progress bar shows
            part[2] += len(chunk)
            if self.progress is not None:
                self.progress(self.done, self.size)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)
        self.save()
        fd = os.open(ranges_record(self.partial), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# One connection first: when its first PROBE_BYTES come faster than FAST_STREAM bytes per second (a near
# server, an uncapped link), the others would only share the same link and the same two cores: it goes on
# alone. Otherwise (a CDN capping each stream) the other connections start, PROBE_S later at the most.
PROBE_BYTES = 4 * 2**20
PROBE_S = 0.5
FAST_STREAM = 64 * 10**6


def _one_stream_fills_the_link(ranges: _Ranges, first: Any) -> bool:
    start, began = ranges.done, time.monotonic()
    while not first.done():
        elapsed = time.monotonic() - began
        if ranges.done - start >= PROBE_BYTES:
            return (ranges.done - start) / max(elapsed, 1e-6) >= FAST_STREAM
        if elapsed >= PROBE_S:
            return False
        time.sleep(0.01)
    return False


def _download_ranges(
    partial: Path,
    url: str,
    headers: dict[str, str],
    size: int,
    progress: ProgressCallback | None,
    network: Network,
    deadline: float,
    label: str,
) -> str:
    """The file as byte ranges over up to `network.connections` connections at once, continuing from what its
    record (or a stream's partial file) holds; the sha256 of the whole, hashed in one pass once it is complete.
    Raises _NoRanges when the server does not serve ranges."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    ranges = _Ranges(partial, size, progress, network.part_bytes)
    if progress is not None:
        progress(ranges.done, size)

    def one(part: list[int]) -> None:
        last = [part[2]]

        def progressed() -> bool:
            moved, last[0] = part[2] > last[0], part[2]
            return moved

        _with_retries(lambda: ranges.fetch(part, url, headers, network.read_timeout_s, deadline), network,
                      deadline, progressed)  # fmt: skip

    queue = ranges.missing()
    taking = threading.Lock()

    def worker() -> None:
        while not ranges.stop.is_set():
            with taking:
                if not queue:
                    return
                part = queue.pop(0)
            one(part)

    try:
        if queue:
            most = min(network.connections, len(queue))
            with ThreadPoolExecutor(max_workers=most) as pool:
                futures = [pool.submit(worker)]
                if most > 1 and _one_stream_fills_the_link(ranges, futures[0]):
                    if ranges.done == ranges.prefix():  # nothing but a run from the start: a stream does it
                        ranges.stop.set()
                        wait(futures)
                        raise _NoRanges()
                else:
                    futures += [pool.submit(worker) for _ in range(most - 1)]
                pending = set(futures)
                try:
                    while pending:
                        finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                        interrupts.check()
                        for future in finished:
                            future.result()  # the first failure stops the others
                finally:
                    ranges.stop.set()
    except _NoRanges:
        raise
    except Exception as err:  # noqa: BLE001
        raise PullError(*_explain_download(err, ranges.done, partial, size, label)) from err
    finally:
        ranges.close()  # what arrived is on disk and in the record, whatever stopped the pull
    if ranges.missing() or partial.stat().st_size != size:
        raise PullError(f"{label}: got {ranges.done} bytes, expected {size}", hint="run the same pull again")
    ranges_record(partial).unlink(missing_ok=True)
    return sha256_file(partial)


def _explain_download(err: Exception, done: int, path: Path, size: int, label: str) -> tuple[str, str | None]:
    import errno

    got = f"after {human_bytes(done)} of {human_bytes(size)}"
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status in (401, 403):
        return (
            f"{label}: the server refused the download ({status}) although it described the file",
            "the repo may be gated or private: accept its terms on the Hub and set HF_TOKEN to a token that may "
            "read it",
        )
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{label}: the disk is full {got}: {human_bytes(size - done)} more are needed",
            "free that much space and run the same pull again: it continues from the bytes already on disk",
        )
    if isinstance(err, (OSError, CacheError)):
        failure = err if isinstance(err, CacheError) else cache_failure(err, f"write {path}")
        return f"{label}: {failure.message}", failure.hint
    if isinstance(err, _Deadline):
        return (
            f"{label}: the download did not finish within its deadline ({got})",
            "run the same pull again: it continues from the bytes already on disk; "
            "VITAMIN_PULL_DEADLINE sets the seconds a file may take",
        )
    return (
        f"{label}: download failed {got}: {type(err).__name__}: {err}",
        "run the same pull again: it continues from the bytes already on disk",
    )


class _Deadline(Exception):
    """A file took longer than its deadline."""


class _PartialWriter:
    """The partial file of one blob: appends what the server sends, hashing and counting it."""

    def __init__(self, path: Path, size: int, progress: ProgressCallback | None) -> None:
        self.path = path
        self.size = size
        self.progress = progress
        self.digest = hashlib.sha256()
        self.done = 0
        self.deadline = float("inf")
        self.file: IO[bytes] | None = None
        if path.is_file():
            with open(path, "rb") as existing:
                while chunk := existing.read(BUFFER_BYTES):
                    self.digest.update(chunk)
                    self.done += len(chunk)
        if progress is not None:
            progress(self.done, size)

    def fetch(self, url: str, headers: dict[str, str], read_timeout_s: float, deadline: float) -> None:
        """One request for the bytes still missing."""
        from huggingface_hub import get_session, hf_raise_for_status

        self.deadline = deadline
        asked = dict(headers)
        if self.done:
            asked["Range"] = f"bytes={self.done}-"
        with get_session().stream("GET", url, headers=asked, timeout=read_timeout_s) as response:
            hf_raise_for_status(response)
            if self.done and response.status_code != 206:  # the server ignored the range: start over
                self.restart()
            for chunk in response.iter_bytes():  # as they arrive: a cut loses nothing that came before it
                interrupts.check()
                self.write(chunk)
                if time.monotonic() > deadline:
                    raise _Deadline()
        if self.done < self.size:
            raise _ShortRead(f"the server sent {self.done} of {self.size} bytes")

    def write(self, chunk: bytes) -> None:
        if self.file is None:
            self.file = os.fdopen(open_for_append(self.path), "ab")
        if self.done + len(chunk) > self.size:
            raise PullError(f"the server sent more than the {self.size} bytes it announced")
        self.file.write(chunk)
        self.digest.update(chunk)
        self.done += len(chunk)
        if self.progress is not None:
            self.progress(self.done, self.size)

    def restart(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self.path.unlink(missing_ok=True)
        self.digest = hashlib.sha256()
        self.done = 0

    def close(self) -> None:
        """Flush what arrived to disk (a later pull continues from it); an empty partial file is removed."""
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            self.file = None
        if self.path.exists() and self.path.stat().st_size == 0:
            self.path.unlink()


def _check_pin(wanted: HubFile, sha256: str, repo: RepoCache, blob: Path, status: str, label: str) -> None:
    """A file whose sha256 is not the zoo's pin is refused. The blob is deleted only if this pull just
    downloaded it and nothing links to it: a blob that was already in the cache belongs to whoever put it
    there (and is right for its ETag; it is the pin that disagrees)."""
    if not wanted.sha256 or sha256 == wanted.sha256:
        return
    removed = status != "cached" and not repo.links_to(blob)
    if removed:
        blob.unlink(missing_ok=True)
    raise PullError(
        f"{label}: sha256 mismatch: zoo.yaml pins {wanted.sha256}, the file has {sha256}"
        + ("; removed the download" if removed else "; the file stays in the cache as it is, unlinked for this model"),
        hint="the Hub's file is not the one the zoo pins: check the zoo entry's revision and sha256",
    )


def _from_cache_offline(wanted: HubFile, repo: RepoCache, label: str) -> Fetched:
    found = repo.cached_file(wanted.revision, wanted.filename)
    if found is None:
        raise PullError(
            f"{label}: offline (HF_HUB_OFFLINE is set) and not in the cache {repo.root}",
            hint="unset HF_HUB_OFFLINE to download it, or point --cache-dir / HF_HUB_CACHE at a cache that has it",
        )
    commit, path, etag = found
    if etag is None:
        raise PullError(
            f"{label}: {path} does not link to a blob of the cache; vitamin does not vouch for it",
            hint="pull it again with the network on",
        )
    blob = confined(repo.root, repo.blob(etag))
    sha256 = _known_sha256(repo, etag) or hash_existing(blob, etag)
    if sha256 is None:
        raise PullError(
            f"{label}: {blob} is damaged: its content does not match its ETag {etag}",
            hint="pull it again with the network on: the blob is replaced once a new copy checks out",
        )
    _check_against_pins(wanted, etag, blob.stat().st_size, label)
    _check_pin(wanted, sha256, repo, blob, "cached", label)
    return Fetched(commit, etag, blob.stat().st_size, sha256, path, "cached")


def record_for(name: str) -> Callable[[RepoCache, Fetched], None]:
    """Record a file in the manifest, for `name` (a model, or a task); an entry for the same file that is
    already there as it is stays as it was. A file that was in the cache already, and that no entry of
    vitamin's own pulls names, was put there by another tool: it is recorded as found (adopted)."""

    def record(repo: RepoCache, fetched: Fetched) -> None:
        filename = fetched.path.relative_to(repo.folder / "snapshots" / fetched.commit).as_posix()
        entry = Pulled(
            name=name,
            repo=repo.repo,
            repo_type=repo.repo_type,
            revision=fetched.commit,
            filename=filename,
            size_bytes=fetched.size_bytes,
            sha256=fetched.sha256,
            etag=fetched.etag,
            pulled_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        with updating_manifest(repo.root) as manifest:
            same = [e for e in manifest.of(name) if e.same_file(entry)]
            if same and (same[0].sha256, same[0].etag) == (entry.sha256, entry.etag):
                return
            ours = any(e.same_blob(entry) and not e.adopted for e in manifest.entries)
            found = fetched.status == "cached" and not ours
            manifest.add(dataclasses.replace(entry, adopted=found))

    return record


def _origin(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
