"""The zoo's checkpoints in the hub cache, model by model: pulling one (through the store, which hashes, resumes
and records it), the checkpoint a command uses (pulled on first use where asked), and a plain copy of one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitamin_cli import report
from vitamin_cli.checkpoints.owners import ModelOwner
from vitamin_cli.checkpoints.store import NotPulled, Record, Store
from vitamin_cli.errors import UsageError
from vitamin_cli.hub.download import ProgressCallback
from vitamin_cli.hub.hashing import sha256_file
from vitamin_cli.hub.remote import Network, PullError, check_revision
from vitamin_cli.zoo import Model

__all__ = [
    "Network",
    "PullError",
    "PullResult",
    "check_local_dir",
    "check_revision",
    "checkpoint",
    "copy_to",
    "ensure_checkpoint",
    "network_settings",
    "pull",
    "pulled_models",
]


def network_settings(connections: int | None = None) -> Network:
    """How long to wait on the network and how many connections to use, from the environment (a bad setting is
    a usage error, before anything is tried); `connections` as `pull --connections` gives it."""
    import dataclasses

    network = Network.from_environment()
    return network if connections is None else dataclasses.replace(network, connections=connections)


@dataclass
class PullResult:
    """What `vitamin pull` did for one model (or task); `vitamin pull --json` prints these fields."""

    name: str
    repo: str | None = None
    revision: str | None = None  # the commit
    filename: str | None = None
    path: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    status: str = "failed"  # downloaded, resumed, restarted, cached, unreleased or failed
    error: str | None = None
    local_path: str | None = None  # the plain copy `pull --local-dir` wrote

    def to_json(self) -> dict[str, Any]:
        keys = ("name", "repo", "revision", "filename", "path", "size_bytes", "sha256", "status", "error", "local_path")
        return {key: getattr(self, key) for key in keys}


def pull(
    model: Model,
    store: Store,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    progress: ProgressCallback | None = None,
    network: Network | None = None,
) -> PullResult:
    """Make the model's checkpoint present and intact in the cache, and record it; raise a VitaminError when
    that fails."""
    if model.weights is None:
        return PullResult(name=model.name, status="unreleased", error=model.weights_note)
    owner = ModelOwner(model)
    fetched = store.pull(owner, owner.wanted(revision), token=token, progress=progress, network=network)
    record = fetched.record
    return PullResult(
        name=model.name,
        repo=record.repo,
        revision=record.revision,
        filename=record.filename,
        path=str(record.path(store.root)),
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        status=fetched.status,
    )


def checkpoint(model: Model, store: Store) -> Record:
    """The model's checkpoint in the cache, its sha256 true of its bytes now (`Store.checkpoint`)."""
    if model.weights is None:
        raise UsageError(f"{model.name} has no public checkpoint", hint="`vitamin ls --released` lists those that do")
    return store.checkpoint(ModelOwner(model))


def ensure_checkpoint(model: Model, store: Store, network: Network | None = None) -> Record:
    """The model's checkpoint, pulled now when it is not in the cache, as open_clip and timm fetch weights on
    first use. Offline (HF_HUB_OFFLINE), or with the Hub out of reach, the pull's error says so."""
    try:
        return checkpoint(model, store)
    except NotPulled:
        pass
    assert model.weights is not None  # checkpoint raised NotPulled: the model is released
    report.note(f"{model.name}: not in the cache {store.root}; pulling {model.weights.repo}")
    pull(model, store, network=network)
    return checkpoint(model, store)


def pulled_models(models: Iterable[Model], store: Store) -> list[Model]:
    """The released models among these whose checkpoint is pulled into this cache (none: a usage error)."""
    released = [m for m in models if m.released]
    pulled = store.pulled(ModelOwner(m) for m in released)
    found = [m for m in released if m.name in pulled]
    if not found:
        raise UsageError("--weights measures pulled checkpoints, and none is pulled", hint="`vitamin pull NAME` first")
    return found


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


def check_local_dir(folder: Path, store: Store) -> None:
    """A --local-dir that can take the copy, checked before anything is downloaded: outside the cache (a copy
    there would replace the cache's own links), and a folder this user may write."""
    import os

    inside = folder.resolve()
    cache = store.root.resolve()
    if inside == cache or cache in inside.parents:
        raise UsageError(
            f"--local-dir {folder} is inside the cache {store.root}",
            hint="give a folder outside it; the cache keeps its own links to the file, which a copy must not replace",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--local-dir {folder}: cannot make it a folder: {err.strerror or err}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--local-dir {folder}: this user may not write into it", hint="give a folder you may write")
