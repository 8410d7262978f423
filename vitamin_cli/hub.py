"""Fetch checkpoints from the Hugging Face Hub into its standard cache: resumable, hashed, never half-there.

huggingface_hub resolves the file (endpoint, token, revision, redirects, its LFS sha256) and streams it with
`http_get`; what it does not do is keep a partial file across runs. So the bytes go to
`blobs/<sha256>.vitamin-partial`, which a later run continues with a ranged request, and become
`blobs/<sha256>` (the name huggingface_hub gives a finished blob) only once complete and hashed.
Under huggingface_hub's own lock for that blob, two pulls of one file download it once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from vitamin_cli.cache import (
    Pulled,
    RepoCache,
    hub_cache_dir,
    is_commit,
    is_sha256,
    read_manifest,
    updating_manifest,
)
from vitamin_cli.errors import VitaminError
from vitamin_cli.hashing import BUFFER_BYTES, sha256_file
from vitamin_cli.output import human_bytes
from vitamin_cli.zoo import Model

# Attempts at one file, and the first pause between them (doubled each time); $VITAMIN_RETRY_WAIT changes it.
ATTEMPTS = 5
FIRST_WAIT_S = 1.0
RESUME_GRAIN = 1024 * 1024

ProgressCallback = Callable[[int, int], None]  # (bytes done, total bytes)


class PullError(VitaminError):
    """A checkpoint could not be fetched or did not check out (exit code 1)."""


@dataclass
class PullResult:
    """What `vitamin pull` did for one model; `vitamin pull --json` prints these fields."""

    name: str
    repo: str | None = None
    revision: str | None = None  # the commit
    filename: str | None = None
    path: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    status: str = "failed"  # downloaded, resumed, cached, unreleased or failed
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        keys = ("name", "repo", "revision", "filename", "path", "size_bytes", "sha256", "status", "error")
        return {key: getattr(self, key) for key in keys}


def pull(
    model: Model,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
) -> PullResult:
    """Make the model's checkpoint present and intact in the cache; raise PullError when that fails."""
    if model.weights is None:
        return PullResult(name=model.name, status="unreleased", error=model.weights_note)
    weights = model.weights
    revision = revision or weights.revision or "main"
    repo = RepoCache(hub_cache_dir(cache_dir), weights.repo)

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return _from_cache_offline(model, repo, revision)
    meta = metadata(model, revision, token)
    commit, etag, size = meta.commit_hash, meta.etag, meta.size
    _check_against_pins(model, etag, size)
    result = PullResult(name=model.name, repo=weights.repo, revision=commit, filename=weights.filename, size_bytes=size)
    from filelock import FileLock

    lock = repo.lock(etag)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        blob = repo.blob(etag)
        if blob.exists() and blob.stat().st_size == size:
            result.sha256 = _known_sha256(repo.root, model, etag) or _hash_existing(blob, etag)
            result.status = "cached"
        else:
            result.status, result.sha256 = _download(model, repo, meta.location, etag, size, token, progress)
        _check_hash(model, etag, result.sha256, blob)
        result.path = str(repo.link(commit, weights.filename, etag, revision))
        _record(repo.root, result, etag)  # still under the lock: a waiting pull then finds the record
    return result


def metadata(model: Model, revision: str, token: str | bool | None) -> Any:
    """The Hub's commit, ETag (the LFS sha256), size and download URL of the model's checkpoint."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    assert model.weights is not None
    # HF_ENDPOINT as it is now: huggingface_hub reads it once, when first imported
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or None
    url = hf_hub_url(model.weights.repo, model.weights.filename, revision=revision, endpoint=endpoint)
    try:
        meta = _with_retries(lambda: get_hf_file_metadata(url, token=token, endpoint=endpoint), f"{model.name}: {url}")
    except PullError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure of the lookup becomes one clear message
        raise PullError(*_explain(err, model, url)) from None
    if not meta.etag or meta.size is None or not meta.commit_hash:
        raise PullError(f"{model.name}: the server gave no commit, ETag or size for {url}")
    # Both become file names in the cache: accept only the hex digests a Hub sends, never a path.
    if not is_commit(meta.commit_hash) or not (is_sha256(meta.etag) or is_commit(meta.etag)):
        raise PullError(
            f"{model.name}: the server sent an unusable commit {meta.commit_hash!r} or ETag {meta.etag!r} for {url}",
            hint="check HF_ENDPOINT: it should be the Hub or a faithful mirror",
        )
    return meta


def _explain(err: Exception, model: Model, url: str) -> tuple[str, str | None]:
    """A failed metadata lookup as a message and a hint (never including the token)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    assert model.weights is not None
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, GatedRepoError) or status == 403:
        return (
            f"{model.name}: access to {model.weights.repo} is refused ({status or 'gated'})",
            "the repo is gated or private: accept its terms on the Hub and set HF_TOKEN to a token that may read it",
        )
    if isinstance(err, RevisionNotFoundError):
        return (
            f"{model.name}: revision not found in {model.weights.repo}: {url}",
            "check --revision or zoo.yaml's pin",
        )
    if isinstance(err, (RepositoryNotFoundError, EntryNotFoundError)) or status in (401, 404):
        return (
            f"{model.name}: {model.weights.repo}/{model.weights.filename} was not found ({status or 404})",
            "the repo or file may be gone, or private: set HF_TOKEN if you should have access",
        )
    if isinstance(err, OfflineModeIsEnabled):
        return (f"{model.name}: offline mode is on and the file is not cached", "unset HF_HUB_OFFLINE to download")
    return (
        f"{model.name}: cannot reach {url}: {type(err).__name__}: {err}",
        "check the network, or HF_ENDPOINT if you use a mirror",
    )


def _retryable(err: Exception) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError):
        status = getattr(err.response, "status_code", None)
        return status is not None and (status >= 500 or status in (408, 429))
    return isinstance(err, OSError) or type(err).__module__.startswith(("httpx", "httpcore"))


def _with_retries(call: Callable[[], Any], what: str) -> Any:
    """Retry connection failures, timeouts and 5xx with exponential backoff; re-raise the last error."""
    wait = float(os.environ.get("VITAMIN_RETRY_WAIT", FIRST_WAIT_S))
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except Exception as err:  # noqa: BLE001 - sorted by _retryable
            if attempt == ATTEMPTS or not _retryable(err):
                raise
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


def _check_against_pins(model: Model, etag: str, size: int) -> None:
    assert model.weights is not None
    pin = model.weights
    if pin.sha256 and is_sha256(etag) and etag != pin.sha256:
        raise PullError(
            f"{model.name}: the Hub's {pin.repo}/{pin.filename} has sha256 {etag}, zoo.yaml pins {pin.sha256}",
            hint="the file changed upstream; pin a revision in zoo.yaml, or `vitamin pin` it again",
        )
    if pin.size_bytes and size != pin.size_bytes:
        raise PullError(f"{model.name}: the Hub's file has {size} bytes, zoo.yaml pins {pin.size_bytes}")


def _known_sha256(root: Path, model: Model, etag: str) -> str | None:
    """The sha256 the manifest recorded when this very blob was pulled and hashed."""
    entry = read_manifest(root).get(model.name)
    return entry.sha256 if entry is not None and entry.etag == etag else None


def _hash_existing(blob: Path, etag: str) -> str:
    """Hash a blob that something else put in the cache; a corrupt one is removed."""
    actual = sha256_file(blob)
    if is_sha256(etag) and actual != etag:
        blob.unlink()
        raise PullError(
            f"{blob} is corrupt: sha256 {actual}, expected {etag}; removed it",
            hint="run the pull again to download it anew",
        )
    return actual


class _HashingWriter:
    """A file that hashes and counts what huggingface_hub's http_get writes, restarting when it rewinds."""

    def __init__(self, file: IO[bytes], digest: Any, done: int, total: int, progress: ProgressCallback | None) -> None:
        self.file, self.digest, self.done, self.total, self.progress = file, digest, done, total, progress

    def write(self, data: bytes) -> int:
        self.file.write(data)
        self.digest.update(data)
        self.done += len(data)
        if self.progress is not None:
            self.progress(self.done, self.total)
        return len(data)

    def tell(self) -> int:
        return self.file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        """http_get rewinds and truncates when a server answers a ranged request with the whole file."""
        position = self.file.truncate(size)
        if position == 0:
            self.digest = hashlib.sha256()
            self.done = 0
        return position


def _download(
    model: Model,
    repo: RepoCache,
    url: str,
    etag: str,
    size: int,
    token: str | bool | None,
    progress: ProgressCallback | None,
) -> tuple[str, str]:
    """Fetch the blob into its partial file, resuming what is there; returns (status, sha256)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]
    from huggingface_hub.utils.tqdm import silent_tqdm

    # http_get hands over 10 MB at a time; a cut or a kill loses what has not been handed over yet, so
    # smaller pieces make resuming finer and the progress bar smoother, at no cost in speed.
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, RESUME_GRAIN)
    partial = repo.partial(etag)
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    if have > size:
        partial.unlink()
        have = 0
    free = shutil.disk_usage(partial.parent).free
    if free < size - have:
        raise PullError(
            f"{model.name}: not enough free disk in {partial.parent}: "
            f"needs {human_bytes(size - have)}, has {human_bytes(free)}",
            hint="free some space, or pull into another folder with --cache-dir",
        )
    digest = hashlib.sha256()
    if have:
        with open(partial, "rb") as existing:
            while chunk := existing.read(BUFFER_BYTES):
                digest.update(chunk)
    headers = build_hf_headers(token=token)
    if _origin(url) != _origin(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT):
        # the file is served from elsewhere (a CDN, a presigned bucket URL): the token stays with the Hub
        headers.pop("authorization", None)
    with open(partial, "ab") as out:
        writer = _HashingWriter(out, digest, have, size, progress)
        if progress is not None:
            progress(have, size)

        def fetch() -> None:
            http_get(
                url,
                writer,  # type: ignore[arg-type]
                resume_size=writer.done,
                headers=headers,
                expected_size=size,
                displayed_filename=model.weights.filename if model.weights else None,
                tqdm_class=silent_tqdm,
            )

        try:
            _with_retries(fetch, f"{model.name}: {url}")
        except Exception as err:  # noqa: BLE001
            raise PullError(
                f"{model.name}: download failed after {human_bytes(writer.done)} of {human_bytes(size)}: "
                f"{type(err).__name__}: {err}",
                hint="run the same pull again: it continues from the bytes already on disk",
            ) from None
        out.flush()
        os.fsync(out.fileno())
    actual = writer.digest.hexdigest()
    if writer.done != size or partial.stat().st_size != size:
        partial.unlink(missing_ok=True)
        raise PullError(f"{model.name}: got {writer.done} bytes, expected {size}; removed the partial file")
    if is_sha256(etag) and actual != etag:
        partial.unlink()
        raise PullError(
            f"{model.name}: sha256 mismatch: expected {etag} (the Hub's LFS hash), got {actual}; removed the file",
            hint="run the pull again; if it repeats, the server or a proxy is corrupting the file",
        )
    os.replace(partial, repo.blob(etag))
    return ("resumed" if have else "downloaded"), actual


def _check_hash(model: Model, etag: str, sha256: str | None, blob: Path) -> None:
    assert model.weights is not None and sha256 is not None
    pin = model.weights.sha256
    if pin and sha256 != pin:
        blob.unlink(missing_ok=True)
        raise PullError(f"{model.name}: sha256 mismatch: zoo.yaml pins {pin}, the file has {sha256}; removed it")


def _from_cache_offline(model: Model, repo: RepoCache, revision: str) -> PullResult:
    assert model.weights is not None
    commit = repo.commit_for(revision)
    entry = read_manifest(repo.root).get(model.name)
    path = repo.snapshot(commit, model.weights.filename) if commit else None
    if path is None or not path.exists():
        raise PullError(
            f"{model.name}: offline (HF_HUB_OFFLINE is set) and not in the cache {repo.root}",
            hint="unset HF_HUB_OFFLINE to download it, or point --cache-dir / HF_HUB_CACHE at a cache that has it",
        )
    size = path.stat().st_size
    sha = entry.sha256 if entry and entry.revision == commit else None
    return PullResult(
        name=model.name,
        repo=model.weights.repo,
        revision=commit,
        filename=model.weights.filename,
        path=str(path),
        size_bytes=size,
        sha256=sha,
        status="cached",
    )


def _record(root: Path, result: PullResult, etag: str) -> None:
    assert result.repo and result.revision and result.filename and result.path and result.sha256
    assert result.size_bytes is not None
    entry = Pulled(
        name=result.name,
        repo=result.repo,
        revision=result.revision,
        filename=result.filename,
        size_bytes=result.size_bytes,
        sha256=result.sha256,
        etag=etag,
        path=result.path,
        pulled_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    with updating_manifest(root) as entries:
        previous = entries.get(result.name)
        if previous is None or (previous.sha256, previous.revision, previous.path) != (
            entry.sha256,
            entry.revision,
            entry.path,
        ):
            entries[result.name] = entry


def _origin(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
