"""The Hub (or a mirror) as a server: what it says a file is, how long vitamin waits on it, and what its
failures mean.

huggingface_hub resolves a file (endpoint, token, revision, redirects, its ETag: an LFS file's sha256 or a
plain file's git blob id) and provides the HTTP client. Each request waits at most HF_HUB_DOWNLOAD_TIMEOUT
seconds for bytes (HF_HUB_ETAG_TIMEOUT for the metadata); a failure is tried again ATTEMPTS times in all,
pausing 1, 2, 4 and 8 s (scaled by VITAMIN_RETRY_WAIT), the count starting over whenever bytes arrive; and each
file has one wall-clock deadline (VITAMIN_PULL_DEADLINE, or 2 minutes plus the time the file takes at 512
KiB/s), so that a server sending a byte now and then cannot hold a pull forever (docs/checkpoints.md).

A failure is named for what failed: an HTTP status is the server's (`HTTP 503 from HOST`), told apart from the
network (`cannot reach HOST`) and from the disk (`hub.cache.cache_failure`). No URL is shown with its
credentials (`errors.scrub`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vitamin_cli import report
from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.hub import ids

ATTEMPTS = 5  # tries of one request without a byte of progress
FIRST_WAIT_S = 1.0  # the first pause between tries, doubled each time; $VITAMIN_RETRY_WAIT changes it
DEADLINE_BASE_S = 120.0
DEADLINE_RATE = 512 * 1024  # bytes per second a file must average, beyond the base, to meet its deadline
LIBRARY = "vitamin"
NOTICE_S = 3.0  # a server silent this long (no answer, or only failures) is named on stderr while tries go on
# A file of at least two parts is fetched as byte ranges of PART_BYTES over up to CONNECTIONS connections at
# once; a smaller one in one stream. A far CDN caps each stream well below the link (about 6 MB/s): 8 streams
# give room above the 5 that beating one stream 4 times needs.
CONNECTIONS = 8
PART_BYTES = 16 * 2**20
MAX_SECONDS = 10**6  # about 11 days: longer than any wait could mean, and within what clocks can add


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
        check_endpoint()
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


def check_endpoint() -> None:
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


def check_revision(revision: str | None) -> None:
    """A --revision the Hub would not accept (`../..`, a newline, a NUL) is a usage error, before any request."""
    problem = ids.revision_problem(revision) if revision is not None else None
    if problem is not None:
        raise UsageError(f"--revision {str(revision)[:80]!r}: {problem}", hint="give a branch, tag or commit")


@dataclass(frozen=True)
class HubFile:
    """One file of a Hub repo, with what is known of it beforehand (the pins of a zoo file)."""

    repo: str
    filename: str
    revision: str = "main"
    repo_type: str = "model"
    sha256: str | None = None
    size_bytes: int | None = None

    def problem(self) -> str | None:
        """Why these names cannot be asked for (checked before any request), or None."""
        return ids.filename_problem(self.filename) or ids.revision_problem(self.revision)


@dataclass(frozen=True)
class Remote:
    """What the server says a file is, and where its bytes are."""

    commit: str
    etag: str  # an LFS file's sha256, or a plain file's git blob id
    size: int
    url: str  # where the bytes are: the Hub, or the CDN it redirects to


def endpoint() -> str | None:
    """HF_ENDPOINT as it is now (huggingface_hub reads it once, when first imported)."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or None


def resolve(wanted: HubFile, token: str | bool | None, network: Network, label: str) -> Remote:
    """The server's commit, ETag, size and download URL of a file, checked: hex names only (they become file
    names), and the commit asked for when a commit was asked for."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from vitamin_cli.extras import version

    url = hf_hub_url(
        wanted.repo, wanted.filename, repo_type=wanted.repo_type, revision=wanted.revision, endpoint=endpoint()
    )
    deadline = time.monotonic() + network.deadline_for(0)

    def head() -> Any:
        return get_hf_file_metadata(
            url,
            token=token,
            timeout=max(0.1, min(network.metadata_timeout_s, deadline - time.monotonic())),  # never past the deadline
            library_name=LIBRARY,
            library_version=version(),
            endpoint=endpoint(),
        )

    failures: list[Exception] = []
    notice = threading.Timer(NOTICE_S, _still_trying, (url, label, failures))
    notice.daemon = True
    notice.start()
    try:
        meta = with_retries(head, network, deadline=deadline, failed=failures.append)
    except Exception as err:  # noqa: BLE001 - every failure of the lookup becomes one clear message
        raise failure(err, wanted, url, label) from err
    finally:
        notice.cancel()
    return _checked_answer(meta, wanted, url, label)


def _checked_answer(meta: Any, wanted: HubFile, url: str, label: str) -> Remote:
    if not meta.etag or meta.size is None or not meta.commit_hash:
        raise PullError(f"{label}: {host_of(url)} gave no commit, ETag or size for {wanted.repo}/{wanted.filename}")
    # Both become file names in the cache: accept only the hex digests a Hub sends, never a path.
    if not ids.is_commit(meta.commit_hash) or not ids.is_etag(meta.etag):
        raise PullError(
            f"{label}: {host_of(url)} sent an unusable commit {str(meta.commit_hash)[:80]!r} or ETag "
            f"{str(meta.etag)[:80]!r} for {wanted.repo}/{wanted.filename}",
            hint="check HF_ENDPOINT: it should be the Hub or a faithful mirror",
        )
    if ids.is_commit(wanted.revision) and meta.commit_hash != wanted.revision:
        raise PullError(
            f"{label}: asked {host_of(url)} for {wanted.repo} at commit {wanted.revision}, it answered with commit "
            f"{meta.commit_hash}; nothing was written",
            hint="the server does not honour pinned commits: use the Hub or a faithful mirror (HF_ENDPOINT), or pin "
            "the commit it serves",
        )
    return Remote(meta.commit_hash, meta.etag, int(meta.size), meta.location or url)


def host_of(url: str) -> str:
    """host[:port] of a URL, without the credentials a URL may carry."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "the server"
    try:
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return host


def origin(url: str) -> tuple[str, str]:
    """(scheme, host[:port]) of a URL: what decides whether the token goes with a request."""
    from urllib.parse import urlsplit

    return urlsplit(url).scheme, host_of(url).lower()


_noticed: set[str] = set()
_noticed_lock = threading.Lock()


def _still_trying(url: str, label: str, failures: list[Exception]) -> None:
    """Say, once per server, that it has not answered after NOTICE_S seconds while the tries go on."""
    host = host_of(url)
    with _noticed_lock:
        if host in _noticed:
            return
        _noticed.add(host)
    why = f" ({describe(failures[-1])})" if failures else ""
    report.warn(
        f"{label}: no answer from {host} after {NOTICE_S:g} s{why}; still trying. Without a network, "
        "HF_HUB_OFFLINE=1 uses what is cached already."
    )


def status_of(err: BaseException) -> int | None:
    """The HTTP status of a failed request, if the server answered."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def describe(err: BaseException) -> str:
    """A failure in words, never a class name: an HTTP status, a network failure, or what vitamin found wrong."""
    from huggingface_hub.utils import httpx  # type: ignore[attr-defined]

    status = status_of(err)
    if status is not None:
        return f"HTTP {status}"
    if isinstance(err, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(err, httpx.RemoteProtocolError):
        return "the server broke off its answer"
    if isinstance(err, httpx.TransportError):
        return f"the connection failed ({str(err)[:120] or 'no reason given'})"
    return str(err)[:200] or "an unexpected failure"


def failure(err: Exception, wanted: HubFile, url: str, label: str, got: str = "") -> VitaminError:
    """A failed request as one message and hint: the server's HTTP status, the network, or offline mode. `got`
    says how far a download came ("after 3 MiB of 24 MiB")."""
    from huggingface_hub.errors import OfflineModeIsEnabled, RevisionNotFoundError

    status = status_of(err)
    failed_url = _url_of(err) or url
    host = host_of(failed_url)
    if isinstance(err, VitaminError):
        return err
    if isinstance(err, RevisionNotFoundError):
        return PullError(
            f"{label}: HTTP {status or 404} from {host}: revision {wanted.revision} not found in {wanted.repo}",
            hint="check --revision or zoo.yaml's pin",
        )
    if status is not None:
        return _http_failure(status, host, wanted, label, got, elsewhere=origin(failed_url)[1] != origin(url)[1])
    if isinstance(err, OfflineModeIsEnabled):
        return PullError(f"{label}: offline mode is on and the file is not cached", hint="unset HF_HUB_OFFLINE")
    if got:  # the server was reached, and its answer broke off
        return PullError(
            f"{label}: download failed{got}: {describe(err)}",
            hint="run the same pull again: it continues where this one stopped; if it repeats, check the network, "
            "or HF_ENDPOINT if you use a mirror",
        )
    return PullError(
        f"{label}: cannot reach {host}{got}: {describe(err)}",
        hint="check the network, or HF_ENDPOINT if you use a mirror; without a network, HF_HUB_OFFLINE=1 uses the "
        "files already in the cache",
    )


def _http_failure(status: int, host: str, wanted: HubFile, label: str, got: str, elsewhere: bool) -> PullError:
    """An HTTP status from the server as what it means for the user (the table in docs/checkpoints.md)."""
    file = f"{wanted.repo}/{wanted.filename}"
    head = f"{label}: HTTP {status} from {host}"
    again = "run the same pull again" + (": it continues where this one stopped" if got else "")
    if status == 401:
        return PullError(
            f"{head}: {file} needs credentials it was not given{got}",
            hint="the repo may be private or gated: set HF_TOKEN to a token that may read it; or the repo id may be "
            "wrong: check it on the Hub",
        )
    if status == 403:
        expired = "; a download link from another host may also have expired: " + again if elsewhere else ""
        return PullError(
            f"{head}: access to {file} is refused{got}",
            hint="the repo is gated or private: accept its terms on the Hub and set HF_TOKEN to a token that may read "
            "it" + expired,
        )
    if status in (404, 410):
        what = "was not found" if status == 404 else "is gone from the server"
        return PullError(
            f"{head}: {file} {what}{got}",
            hint="the repo or file may have been removed or renamed, or be private: check it on the Hub (or on the "
            "mirror HF_ENDPOINT names), and set HF_TOKEN if you should have access",
        )
    if status == 429:
        return PullError(
            f"{head}: too many requests{got}", hint=f"the server limits requests: wait a while, then {again}"
        )
    if status >= 500 or status == 408:
        return PullError(
            f"{head}: the server failed{got} (tried {ATTEMPTS} times)",
            hint=f"the server, or a proxy before it, is failing: {again} later",
        )
    return PullError(f"{head}{got}", hint="check HF_ENDPOINT: it should be the Hub or a faithful mirror")


def _url_of(err: BaseException) -> str | None:
    """The URL a failed request went to (after redirects: a CDN's, say), when the error knows it."""
    for holder in (getattr(err, "response", None), err):
        try:
            url = holder.request.url  # type: ignore[union-attr]
        except (AttributeError, RuntimeError):  # httpx raises RuntimeError for a request it was not given
            continue
        return str(url)
    return None


def retryable(err: Exception) -> bool:
    """A failure that another try may not meet: the network, a timeout, a server error or a rate limit, or an
    answer cut short or wrong (`Incomplete`)."""
    from huggingface_hub.utils import httpx  # type: ignore[attr-defined]

    status = status_of(err)
    if status is not None:
        return status >= 500 or status in (408, 429)
    return isinstance(err, (httpx.TransportError, Incomplete))


class Incomplete(Exception):
    """An answer the next try may mend: a body cut short, more than was asked, or the wrong range. Its message
    is for the user."""


def with_retries(
    call: Callable[[], Any],
    network: Network,
    deadline: float,
    progressed: Callable[[], bool] | None = None,
    failed: Callable[[Exception], None] | None = None,
) -> Any:
    """Try `call` up to ATTEMPTS times while its failures are retryable, pausing longer each time, never past
    the deadline; re-raise the last failure (or, when the last is the network's, the last HTTP status the server
    answered: what it said is more telling than the broken connection after it). A failed try after which
    `progressed()` is true (bytes arrived) starts the count and the pauses over; `failed` hears of each failure."""
    wait = network.first_wait_s
    failures = 0
    answered: Exception | None = None
    while True:
        try:
            return call()
        except Exception as err:  # noqa: BLE001 - sorted by retryable
            if failed is not None:
                failed(err)
            answered = err if status_of(err) is not None else answered
            if progressed is not None and progressed():
                failures, wait = 0, network.first_wait_s
            failures += 1
            if failures >= ATTEMPTS or not retryable(err) or time.monotonic() + wait > deadline:
                if answered is not None and status_of(err) is None and not isinstance(err, Incomplete):
                    raise answered from err
                raise
        time.sleep(wait)
        wait *= 2
