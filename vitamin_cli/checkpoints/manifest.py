"""vitamin's manifest of a hub cache (`<cache>.vitamin-manifest.json`): its records, read, validated and written.

Beside the cache folder rather than in it (where the cache scanner would take it for a broken repo), it records
each file vitamin pulled, for its owner (a model's name, or `task:KEY`): repo, commit, file, blob, sha256, and
whether another tool put it there (`adopted`); and each download under way, so that `rm` and a later pull know
its partial file whatever ETag it was for. Paths are computed from these, never read from it. What it holds is
data vitamin checks like user input (`_ENTRY_CHECKS`); what it cannot use is reported and never acted on.

This module is the only code that reads or writes the file, and `checkpoints/store.py` its only user
(import-linter holds both): every other part of vitamin asks the store.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vitamin_cli.files import write_atomic
from vitamin_cli.hub import ids
from vitamin_cli.hub.cache import PRESENT, CacheError, RepoCache, cache_failure, confined, lock_mode

MANIFEST_VERSION = 2


@dataclass(frozen=True)
class Record:
    """A file in the cache kept for an owner: what the manifest says of it (or what was found there), and what
    is at its path now (`state`: hub.cache's PRESENT, GONE, OUTSIDE or UNLINKED)."""

    name: str  # the owner's name: a model's canonical name, or `task:KEY`
    repo: str
    repo_type: str
    revision: str  # the commit
    filename: str
    size_bytes: int
    sha256: str  # "" when unknown (a file found where vitamin cannot look: OUTSIDE)
    etag: str  # the blob's name in the cache ("" when unknown)
    pulled_at: str  # ISO 8601, UTC: when vitamin pulled the file, or found it
    # Put in the cache by another tool (open_clip, timm, `hf download`): vitamin uses and checks it, but
    # `vitamin rm` leaves it in place. Its sha256 is then the blob's name, until its bytes are hashed.
    adopted: bool = False
    state: str = field(default=PRESENT, compare=False)
    recorded: bool = field(default=True, compare=False)  # in the manifest; False: found by looking, just now
    problem: CacheError | None = field(default=None, compare=False, repr=False)

    @property
    def present(self) -> bool:
        """Whether the file is there as recorded: a link to its own blob, a plain file of the cache."""
        return self.state == PRESENT

    def repo_cache(self, root: Path) -> RepoCache:
        return RepoCache(root, self.repo, self.repo_type)

    def path(self, root: Path) -> Path:
        """Where huggingface_hub, open_clip and timm find the file: computed, never read from the manifest."""
        return self.repo_cache(root).snapshot(self.revision, self.filename)

    def blob(self, root: Path) -> Path:
        return self.repo_cache(root).blob(self.etag)

    def same_file(self, other: Record) -> bool:
        mine = (self.repo_type, self.repo, self.revision, self.filename)
        return mine == (other.repo_type, other.repo, other.revision, other.filename)

    def same_blob(self, other: Record) -> bool:
        return (self.repo_type, self.repo, self.etag) == (other.repo_type, other.repo, other.etag)

    def saved(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _ENTRY_CHECKS} | {"adopted": self.adopted}

    def to_json(self, root: Path) -> dict[str, Any]:
        """The record as `vitamin cache --json` shows it: its path, whether it is on disk, and its state."""
        saved = self.saved() | {"sha256": self.sha256 or None, "etag": self.etag or None}
        return saved | {"path": str(self.path(root)), "present": self.present, "state": self.state}


@dataclass(frozen=True)
class Started:
    """A download under way (or interrupted) for an owner: which file and ETag its partial file is."""

    name: str
    repo: str
    repo_type: str
    filename: str
    etag: str
    started_at: str


@dataclass
class Manifest:
    """The manifest's files and downloads, and what was wrong with the file (entries left out, never acted on)."""

    entries: list[Record] = field(default_factory=list)
    started: list[Started] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, name: str) -> list[Record]:
        return [e for e in self.entries if e.name == name]

    def add(self, entry: Record) -> None:
        """Record an entry, replacing the one of the same name and file."""
        self.entries = [e for e in self.entries if not (e.name == entry.name and e.same_file(entry))]
        self.entries.append(entry)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def warning(message: str, hint: str | None = None) -> None:
    """`report.warn`, imported only when there is something to say (logging costs `vitamin ls --pulled` a
    few percent of its start)."""
    from vitamin_cli import report

    report.warn(message, hint)


def manifest_path(root: Path) -> Path:
    return root.with_name(root.name + ".vitamin-manifest.json")


def read(root: Path, warn: bool = True) -> Manifest:
    """The manifest; an absent one is empty. A file vitamin did not write as it reads it (garbage, wrong
    types, names the Hub would not send) is reported and its bad entries are left out."""
    path = manifest_path(root)
    manifest = Manifest()
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return manifest
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: nested deeper than JSON's parser goes
        manifest.problems.append(f"cannot read it ({getattr(err, 'strerror', None) or str(err)[:100]})")
        data = None
    if data is not None:
        _parse(data, manifest)
    if warn and manifest.problems:
        shown = "; ".join(manifest.problems[:3]) + ("; ..." if len(manifest.problems) > 3 else "")
        warning(f"ignoring what vitamin cannot use in {path}: {shown}")
    return manifest


@contextmanager
def updating(root: Path) -> Iterator[Manifest]:
    """Read, change and write back the manifest under a lock, so that concurrent pulls lose no entry; a
    manifest that did not change is not written again. An unreadable file is kept aside (`.unreadable`),
    never overwritten unseen."""
    from filelock import FileLock

    path = manifest_path(root)
    lock = FileLock(str(confined(root, path.with_name(path.name + ".lock"))), mode=lock_mode())
    try:
        lock.acquire()
    except OSError as err:
        raise cache_failure(err, f"lock the manifest {path}") from err
    try:
        manifest = read(root)
        before = (list(manifest.entries), list(manifest.started))
        yield manifest
        if (manifest.entries, manifest.started) == before and not manifest.problems:
            return
        if manifest.problems and path.exists():
            _saved_aside(path)  # only now, as the new one is written: a change that failed leaves it in place
        try:
            write_atomic(path, json.dumps(_payload(manifest), indent=2) + "\n")
        except OSError as err:  # the old manifest is still whole: it never claims a file that is not there
            raise cache_failure(err, f"update the manifest {path}") from err
    finally:
        lock.release()


def _payload(manifest: Manifest) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "files": [e.saved() for e in sorted(manifest.entries, key=lambda e: (e.name, e.pulled_at))],
    }
    if manifest.started:  # read by this vitamin; a vitamin before it reads "files" only
        payload["downloads"] = [dataclasses.asdict(s) for s in manifest.started]
    return payload


def _saved_aside(path: Path) -> None:
    aside = path.with_name(path.name + ".unreadable")
    try:
        os.replace(path, aside)
    except OSError as err:
        raise cache_failure(err, f"keep the unreadable manifest {path} aside") from err
    warning(f"kept the old manifest as {aside}")


_ENTRY_CHECKS: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: isinstance(v, str) and 0 < len(v) <= 200 and v.isprintable(),
    "repo": lambda v: ids.repo_problem(v) is None,
    "repo_type": lambda v: v in ("model", "dataset"),
    "revision": ids.is_commit,
    "filename": lambda v: ids.filename_problem(v) is None,
    "size_bytes": lambda v: type(v) is int and 0 <= v < 2**63,
    "sha256": ids.is_sha256,
    "etag": ids.is_etag,
    "pulled_at": lambda v: isinstance(v, str) and len(v) <= 64,
}
_STARTED_KEYS = ("name", "repo", "repo_type", "filename", "etag")


def _parse(data: Any, manifest: Manifest) -> None:
    version = data.get("version") if isinstance(data, dict) else None
    rows = data.get("models") if version == 1 else data.get("files") if version == MANIFEST_VERSION else None
    if not isinstance(rows, list):
        manifest.problems.append(f"not a manifest vitamin wrote (version {version!r})")
        return
    for index, row in enumerate(rows):
        entry, problem = _entry(row, version == 1)
        if entry is not None:
            manifest.entries.append(entry)
        else:
            manifest.problems.append(f"entry {index + 1}: {problem}")
    downloads = data.get("downloads", [])
    for index, row in enumerate(downloads if isinstance(downloads, list) else [None]):
        started = _started(row)
        if started is not None:
            manifest.started.append(started)
        else:
            manifest.problems.append(f"download {index + 1}: not one vitamin wrote")


def _entry(row: Any, version_1: bool) -> tuple[Record | None, str | None]:
    """An entry from its JSON object, every field checked; a version 1 entry (one per model, with a `path`
    that is now computed) is read as a model file."""
    if not isinstance(row, dict):
        return None, "not an object"
    if version_1:
        row = {**{k: v for k, v in row.items() if k != "path"}, "repo_type": "model"}
    for key, check in _ENTRY_CHECKS.items():
        if key not in row:
            return None, f"no {key}"
        if not check(row[key]):
            return None, f"bad {key} {str(row[key])[:60]!r}"
    adopted = row.get("adopted", False)
    if type(adopted) is not bool:
        return None, f"bad adopted {str(adopted)[:60]!r}"
    return Record(**{key: row[key] for key in _ENTRY_CHECKS}, adopted=adopted), None


def _started(row: Any) -> Started | None:
    if not isinstance(row, dict) or not all(_ENTRY_CHECKS[key](row.get(key)) for key in _STARTED_KEYS):
        return None
    at = row.get("started_at")
    if not isinstance(at, str) or not _ENTRY_CHECKS["pulled_at"](at):
        return None
    return Started(row["name"], row["repo"], row["repo_type"], row["filename"], row["etag"], at)
