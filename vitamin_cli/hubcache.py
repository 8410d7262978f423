"""Where pulled checkpoints live: the standard Hugging Face cache, and vitamin's manifest beside it.

The layout is huggingface_hub's own (`models--org--name/{blobs,snapshots,refs}`), so open_clip and timm find
what `vitamin pull` fetched. The manifest (`<cache>.vitamin-manifest.json`, next to the cache folder rather
than in it, where `hf cache scan` would take it for a broken repo) records what was pulled and its sha256.

Nothing here imports huggingface_hub: `vitamin ls --pulled` and `vitamin cache` stay light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vitamin_cli.errors import VitaminError
from vitamin_cli.files import write_atomic
from vitamin_cli.hubids import is_commit

PARTIAL_SUFFIX = ".vitamin-partial"


def hub_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder huggingface_hub uses: --cache-dir, $HF_HUB_CACHE, $HF_HOME/hub, or the default;
    made absolute, since the manifest records paths in it.

    This mirrors `huggingface_hub.constants.HF_HUB_CACHE` (tests/test_cache_paths.py compares the two)
    without importing huggingface_hub.
    """
    if cache_dir is not None:
        chosen = Path(cache_dir)
    elif os.environ.get("HF_HUB_CACHE"):
        chosen = Path(os.environ["HF_HUB_CACHE"])
    elif os.environ.get("HUGGINGFACE_HUB_CACHE"):
        chosen = Path(os.environ["HUGGINGFACE_HUB_CACHE"])
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = Path(os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")) / "hub"
    return chosen.expanduser().absolute()


@dataclass(frozen=True)
class RepoCache:
    """Paths of one repo in a Hugging Face cache folder."""

    root: Path  # the cache folder
    repo: str
    repo_type: str = "model"  # or "dataset"

    @property
    def folder(self) -> Path:
        return self.root / (f"{self.repo_type}s--" + self.repo.replace("/", "--"))

    def blob(self, etag: str) -> Path:
        return self.folder / "blobs" / etag

    def partial(self, etag: str) -> Path:
        return self.folder / "blobs" / (etag + PARTIAL_SUFFIX)

    def snapshot(self, commit: str, filename: str) -> Path:
        return self.folder / "snapshots" / commit / filename

    def ref(self, revision: str) -> Path:
        return self.folder / "refs" / revision

    def lock(self, etag: str) -> Path:
        """The lock file huggingface_hub itself takes for this blob, so that we exclude its downloads too."""
        return self.root / ".locks" / self.folder.name / (etag + ".lock")

    def commit_for(self, revision: str) -> str | None:
        """The commit a revision (a branch, a tag or a commit) points at in this cache, if known."""
        if is_commit(revision):
            return revision
        try:
            return self.ref(revision).read_text().strip() or None
        except OSError:
            return None

    def link(self, commit: str, filename: str, etag: str, revision: str) -> Path:
        """Link snapshots/<commit>/<filename> to the blob and refs/<revision> to the commit, as huggingface_hub does."""
        snapshot = self.snapshot(commit, filename)
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(self.blob(etag), snapshot.parent)
        if not (snapshot.is_symlink() and os.readlink(snapshot) == target):
            tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.link")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            os.replace(tmp, snapshot)
        if revision != commit:
            ref = self.ref(revision)
            ref.parent.mkdir(parents=True, exist_ok=True)
            if not ref.exists() or ref.read_text().strip() != commit:
                write_atomic(ref, commit)
        return snapshot


# ---------------------------------------------------------------------------------------------------
# The manifest


@dataclass(frozen=True)
class Pulled:
    """One manifest entry: a model's checkpoint as it was pulled and hashed."""

    name: str
    repo: str
    revision: str  # the commit
    filename: str
    size_bytes: int
    sha256: str
    etag: str  # the blob's name in the cache
    path: str  # the snapshot path open_clip and timm resolve
    pulled_at: str  # ISO 8601, UTC


def manifest_path(cache_root: Path) -> Path:
    return cache_root.with_name(cache_root.name + ".vitamin-manifest.json")


def read_manifest(cache_root: Path) -> dict[str, Pulled]:
    """Pulled models by name; an absent manifest is an empty one."""
    path = manifest_path(cache_root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise VitaminError(
            f"cannot read the manifest {path}: {err}",
            hint="move it away; `vitamin pull` then records models again as it finds them in the cache",
        ) from None
    try:
        return {entry["name"]: Pulled(**entry) for entry in data["models"]}
    except (KeyError, TypeError) as err:
        raise VitaminError(f"the manifest {path} is not one vitamin wrote: {err}") from None


@contextmanager
def updating_manifest(cache_root: Path) -> Iterator[dict[str, Pulled]]:
    """Read, change and write back the manifest under a lock, so that concurrent pulls lose no entry."""
    from filelock import FileLock

    path = manifest_path(cache_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        entries = read_manifest(cache_root)
        yield entries
        payload: dict[str, Any] = {
            "version": 1,
            "models": [asdict(e) for e in sorted(entries.values(), key=lambda e: e.name)],
        }
        write_atomic(path, json.dumps(payload, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------
# What is on disk


def remove(cache_root: Path, entry: Pulled) -> list[Path]:
    """Delete one pulled checkpoint: its snapshot link, its blob (unless another snapshot still links to it),
    its partial download, folders left empty and refs to snapshots that are gone. Returns what was removed.

    Runs under the blob's lock, so that it never pulls a file from under a running `vitamin pull`."""
    from filelock import FileLock

    repo = RepoCache(cache_root, entry.repo)
    removed: list[Path] = []
    repo.lock(entry.etag).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(repo.lock(entry.etag))):
        with updating_manifest(cache_root) as entries:
            entries.pop(entry.name, None)
        snapshot = Path(entry.path)
        if snapshot.is_symlink() or snapshot.exists():
            snapshot.unlink()
            removed.append(snapshot)
        blob = repo.blob(entry.etag)
        snapshots = repo.folder / "snapshots"
        still_linked = any(link.is_symlink() and link.resolve() == blob.resolve() for link in snapshots.rglob("*"))
        for path in (blob, repo.partial(entry.etag)):
            if path.exists() and not (path == blob and still_linked):
                path.unlink()
                removed.append(path)
        _remove_empty_folders(snapshots)
        refs = repo.folder / "refs"
        for ref in [r for r in refs.rglob("*") if r.is_file()]:  # refs/pr/1 and the like are nested
            if not (snapshots / ref.read_text().strip()).exists():
                ref.unlink()
                removed.append(ref)
        _remove_empty_folders(refs)
        _remove_empty_folders(repo.folder / "blobs")
        _remove_empty_folders(repo.folder)
    return removed


def _remove_empty_folders(top: Path) -> None:
    """Remove the folders below `top`, and `top`, that are (or become) empty; deepest first."""
    for folder in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@dataclass(frozen=True)
class PartialDownload:
    repo: str
    path: Path
    size_bytes: int


def partial_downloads(cache_root: Path) -> list[PartialDownload]:
    """Interrupted pulls that the next `vitamin pull` of the same model will continue."""
    found = []
    for path in sorted(cache_root.glob(f"models--*/blobs/*{PARTIAL_SUFFIX}")):
        repo = path.parent.parent.name.removeprefix("models--").replace("--", "/", 1)
        found.append(PartialDownload(repo, path, path.stat().st_size))
    return found
