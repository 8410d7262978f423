"""The zoo's checkpoints in the hub cache: pulling a model's file (hashed, resumable, recorded in the manifest
under the model's name) and finding the one pulled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UsageError
from vitamin_cli.hub.cache import Pulled, read_manifest
from vitamin_cli.hub.fetch import HubFile, Network, ProgressCallback, fetch, record_for
from vitamin_cli.zoo import Model


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


def checkpoint_path(model: Model, hub_root: Path) -> Path:
    """The pulled file of a model (the one pulled last, if several revisions are); a model that is not pulled is
    an error naming `vitamin pull`. Only a file of the model's weights as the zoo gives them now counts: after
    an edit of its repo, file name, pinned revision or sha256, a file pulled before is not its checkpoint."""
    if model.weights is None:
        raise UsageError(f"{model.name} has no public checkpoint", hint="`vitamin ls --released` lists those that do")
    recorded = [e for e in read_manifest(hub_root).of(model.name) if e.snapshot(hub_root).exists()]
    present = [e for e in recorded if is_current(model, e)]
    if not present:
        w = model.weights
        why = f" (the file pulled before is not {w.repo}/{w.filename} as the zoo gives it now)" if recorded else ""
        raise UsageError(f"{model.name} is not pulled{why}", hint=f"run `vitamin pull {model.name}` first")
    return max(present, key=lambda e: e.pulled_at).snapshot(hub_root)


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


def pulled_names(hub_root: Path, models: Iterable[Model]) -> set[str]:
    """Names of these models whose current checkpoint (`is_current`) is pulled into this cache."""
    manifest = read_manifest(hub_root)
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
