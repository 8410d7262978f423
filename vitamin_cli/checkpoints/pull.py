"""The zoo's checkpoints in the hub cache: pulling a model's file (hashed, resumable, recorded in the manifest
under the model's name) and finding the one pulled."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UsageError
from vitamin_cli.hub.cache import CacheError, Manifest, Pulled, RepoCache, read_manifest, updating_manifest
from vitamin_cli.hub.fetch import HubFile, Network, ProgressCallback, PullError, fetch, hash_existing, record_for
from vitamin_cli.hub.hashing import sha256_file
from vitamin_cli.hub.ids import is_sha256
from vitamin_cli.zoo import Model, Weights


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
    local_path: str | None = None  # the plain copy `pull --local-dir` wrote

    def to_json(self) -> dict[str, Any]:
        keys = ("name", "repo", "revision", "filename", "path", "size_bytes", "sha256", "status", "error", "local_path")
        return {key: getattr(self, key) for key in keys}


def pull(
    model: Model,
    hub_root: Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    network: Network | None = None,
) -> PullResult:
    """Make the model's checkpoint present and intact in the cache, and record it in the manifest; raise
    PullError when that fails."""
    if model.weights is None:
        return PullResult(name=model.name, status="unreleased", error=model.weights_note)
    w = model.weights
    if revision is None and w.revision is None and offline():  # where another tool left it, as `with_found` sees
        try:
            revision = cached_revision(RepoCache(hub_root, w.repo), w)
        except CacheError:
            pass
    wanted = HubFile(w.repo, w.filename, revision or w.revision or "main", sha256=w.sha256, size_bytes=w.size_bytes)
    fetched = fetch(
        wanted,
        hub_root,
        token=token,
        progress=progress,
        label=model.name,
        on_present=record_for(model.name),
        network=network,
    )
    return PullResult(
        name=model.name,
        repo=w.repo,
        revision=fetched.commit,
        filename=w.filename,
        path=str(fetched.path),
        size_bytes=fetched.size_bytes,
        sha256=fetched.sha256,
        status=fetched.status,
    )


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


PLAIN_FILE_BYTES = 10 * 2**20  # a file kept in git rather than LFS is at most this large on the Hub


class NotPulled(UsageError):
    """A released model whose checkpoint is not in the cache (exit 2)."""


def copy_to(result: PullResult, folder: Path) -> Path:
    """A plain copy of a pulled file in `folder` (made if needed), under the file's name in its repo, as
    `hf download --local-dir` writes it, for tools that want a file rather than a cache link. The copy is
    hashed as it is written, under a temporary name, and takes its final name only once its sha256 is the
    pull's; a file of that content already there stays as it is, and a link there is replaced, never written
    through."""
    import hashlib
    import os

    assert result.path is not None and result.filename is not None and result.sha256 is not None
    target = folder / result.filename
    if target.is_file() and not target.is_symlink() and target.stat().st_size == result.size_bytes:
        if sha256_file(target) == result.sha256:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.vitamin-partial")  # one name: a killed copy's is replaced
    if temporary.is_symlink() or temporary.is_file():
        temporary.unlink()
    digest = hashlib.sha256()
    try:
        with open(result.path, "rb") as source, open(temporary, "xb") as copy:
            while chunk := source.read(2**20):
                digest.update(chunk)
                copy.write(chunk)
            copy.flush()
            os.fsync(copy.fileno())
        if digest.hexdigest() != result.sha256:
            raise PullError(
                f"{result.name}: the copy for {folder} hashed {digest.hexdigest()}, not {result.sha256}",
                hint="`vitamin verify` the cached file, then pull again",
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def check_local_dir(folder: Path, hub_root: Path) -> None:
    """A --local-dir that can take the copy, checked before anything is downloaded: outside the cache (a copy
    there would replace the cache's own links), and a folder this user may write."""
    import os

    inside = folder.resolve()
    cache = hub_root.resolve()
    if inside == cache or cache in inside.parents:
        raise UsageError(
            f"--local-dir {folder} is inside the cache {hub_root}",
            hint="give a folder outside it; the cache keeps its own links to the file, which a copy must not replace",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--local-dir {folder}: cannot make it a folder: {err.strerror or err}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--local-dir {folder}: this user may not write into it", hint="give a folder you may write")


def checkpoint_path(model: Model, hub_root: Path) -> Path:
    """The checkpoint of a model in the cache (the one pulled or found last, if several revisions are); a model
    that is not there is an error naming `vitamin pull`. Only a file of the model's weights as the zoo gives
    them now counts: after an edit of its repo, file name, pinned revision or sha256, a file pulled before is not
    its checkpoint. A file another tool put in the cache counts too (`with_found`)."""
    if model.weights is None:
        raise UsageError(f"{model.name} has no public checkpoint", hint="`vitamin ls --released` lists those that do")
    recorded = [e for e in with_found(hub_root, [model]).of(model.name) if e.snapshot(hub_root).exists()]
    present = [e for e in recorded if is_current(model, e)]
    if not present:
        w = model.weights
        why = f" (the file pulled before is not {w.repo}/{w.filename} as the zoo gives it now)" if recorded else ""
        raise NotPulled(f"{model.name} is not pulled{why}", hint=f"run `vitamin pull {model.name}` first")
    # the last pulled or found; of two at the same second, the one listed last (what was found just now)
    return max(enumerate(present), key=lambda item: (item[1].pulled_at, item[0]))[1].snapshot(hub_root)


def ensure_checkpoint(model: Model, hub_root: Path, network: Network | None = None) -> Path:
    """The model's checkpoint, pulled now when it is not in the cache, as open_clip and timm fetch weights on
    first use. Offline (HF_HUB_OFFLINE), or with the Hub out of reach, the pull's error says so."""
    try:
        return checkpoint_path(model, hub_root)
    except NotPulled:
        pass
    assert model.weights is not None  # checkpoint_path raised NotPulled: the model is released
    print(f"{model.name}: not in the cache {hub_root}; pulling {model.weights.repo}", file=sys.stderr)
    pull(model, hub_root, network=network)
    return checkpoint_path(model, hub_root)


def is_current(model: Model, entry: Pulled) -> bool:
    """Whether a manifest entry is the model's checkpoint as the zoo gives it now: the same repo and file, and
    the pinned revision and sha256 where the zoo pins them."""
    w = model.weights
    return (
        w is not None
        and entry.repo_type == "model"
        and (entry.repo, entry.filename) == (w.repo, w.filename)
        and w.revision in (None, entry.revision)
        and w.sha256 in (None, entry.sha256)
    )


def with_found(hub_root: Path, models: Iterable[Model], warn: bool = True) -> Manifest:
    """The manifest, with the checkpoint of each of these models that another tool put in the cache (open_clip,
    timm, `hf download`, a colleague) and that vitamin did not pull: found, it is recorded as adopted, so that
    every command gives the same answer. A found file is looked for again on each call (its tool may have moved
    main, relinked or deleted it), at the cost of a few stats per model, and a hash only for a small file kept
    in git. A cache whose manifest this user may not write is still read: what is found is used unrecorded."""
    manifest = read_manifest(hub_root, warn=warn)
    # a found file that its tool has since deleted or relinked was never vitamin's to report as gone or broken
    manifest.entries = [e for e in manifest.entries if not e.adopted or _still_there(e, hub_root)]
    found = []
    for model in models:
        present = [e for e in manifest.of(model.name) if is_current(model, e) and e.snapshot(hub_root).exists()]
        if any(not e.adopted for e in present):
            continue  # what vitamin pulled is the answer until `vitamin rm`
        entry = _found(model, hub_root, manifest)
        if entry is not None and not any(e.same_file(entry) and e.etag == entry.etag for e in present):
            found.append(entry)
    if found and not manifest.problems:
        try:
            with updating_manifest(hub_root) as saved:
                for entry in found:
                    if not any(e.same_file(entry) and e.etag == entry.etag for e in saved.of(entry.name)):
                        saved.add(entry)
        except (CacheError, OSError):
            pass  # seen now all the same; a run that may write records it
    manifest.entries += found
    return manifest


def _still_there(entry: Pulled, hub_root: Path) -> bool:
    try:
        hit = entry.repo_cache(hub_root).cached_file(entry.revision, entry.filename)
    except CacheError:
        return False
    return hit is not None and hit[2] == entry.etag


def _found(model: Model, hub_root: Path, manifest: Manifest) -> Pulled | None:
    """The model's checkpoint as another tool left it in the cache (at the pinned revision; else at main, or at
    the newest commit fetched when no branch was), as an entry; None when absent, not a link to a plain blob
    of the cache, or not the file the zoo pins. An LFS file's blob is named by its sha256, which stands for its
    hash until `vitamin verify` reads it; a file kept in git (never a checkpoint: the Hub keeps files over 10
    MB in LFS) is hashed, if small. A blob some entry says vitamin downloaded stays vitamin's (not adopted)."""
    w = model.weights
    if w is None:
        return None
    try:
        repo = RepoCache(hub_root, w.repo)
        hit = repo.cached_file(cached_revision(repo, w), w.filename)
        commit, _, etag = hit if hit is not None else ("", None, None)
        if etag is None:
            return None
        blob = repo.blob(etag)
        size = blob.stat().st_size
        if not is_sha256(etag) and size > PLAIN_FILE_BYTES:
            return None
        sha256 = etag if is_sha256(etag) else hash_existing(blob, etag)
    except (CacheError, OSError):
        return None
    if sha256 is None or w.size_bytes not in (None, size):  # a git file whose content is not its name
        return None
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entry = Pulled(model.name, w.repo, "model", commit, w.filename, size, sha256, etag, at)
    ours = any(e.same_blob(entry) and not e.adopted for e in manifest.entries)
    return dataclasses.replace(entry, adopted=not ours) if is_current(model, entry) else None


def cached_revision(repo: RepoCache, weights: Weights) -> str:
    """Where a model's file is in this cache: at its pinned revision; else at main, or at the newest commit
    fetched when main has no snapshot of it (a file fetched at a commit: no `refs/main`)."""
    if weights.revision is not None or repo.cached_file("main", weights.filename) is not None:
        return weights.revision or "main"
    return newest_commit(repo, weights.filename) or "main"


def newest_commit(repo: RepoCache, filename: str) -> str | None:
    """The commit of the newest snapshot of this file in the repo."""
    snapshots = repo.folder / "snapshots"
    try:
        found = sorted(
            (p.parent.lstat().st_mtime, p.relative_to(snapshots).parts[0]) for p in snapshots.glob(f"*/{filename}")
        )
    except OSError:
        return None
    return found[-1][1] if found else None


def pulled_names(hub_root: Path, models: Iterable[Model]) -> set[str]:
    """Names of these models whose current checkpoint (`is_current`) is in this cache."""
    models = list(models)
    manifest = with_found(hub_root, models)
    return {
        m.name for m in models if any(is_current(m, e) and e.snapshot(hub_root).exists() for e in manifest.of(m.name))
    }


def pulled_models(models: list[Model], hub_root: Path) -> list[Model]:
    """The released models among these whose checkpoint is pulled into this cache (none: a usage error)."""
    pulled = pulled_names(hub_root, models)
    found = [m for m in models if m.released and m.name in pulled]
    if not found:
        raise UsageError("--weights measures pulled checkpoints, and none is pulled", hint="`vitamin pull NAME` first")
    return found
