"""Prove pulled checkpoints intact, offline: re-hash every file and compare it with what is on record.

Three records must agree with the file: the manifest's sha256 (hashed when it was pulled), the blob's name in
the cache (its ETag: an LFS file's sha256, or a plain file's git blob id), and zoo.yaml's pin when there is
one. Nothing is unpickled here (`--deep` loads the file: `vitamin_cli.models.loading.deep_check`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UnknownModelError
from vitamin_cli.hub.cache import CacheError, Manifest, Pulled, confined
from vitamin_cli.hub.hashing import content_id, sha256_files
from vitamin_cli.hub.ids import is_sha256
from vitamin_cli.zoo import Zoo


@dataclass
class Check:
    name: str
    path: str | None
    size_bytes: int | None
    expected_sha256: str | None
    actual_sha256: str | None = None
    status: str = "ok"  # ok, corrupt or missing
    problems: list[str] = field(default_factory=list)
    damaged: bool = field(default=False, repr=False)  # the file itself is bad or gone: a new download mends it
    entry: Pulled | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("damaged", "entry")}

    def fail(self, status: str, problem: str, damaged: bool = True) -> None:
        if self.status != "missing":
            self.status = status
        self.problems.append(problem)
        self.damaged = self.damaged or damaged


def verify(
    registry: Zoo,
    hub_root: Path,
    manifest: Manifest,
    names: Sequence[str] = (),
    on_bytes: Callable[[int], None] | None = None,
) -> list[Check]:
    """Check every file the manifest records for the named models (default: every file it records); a named
    model that was never pulled is missing. Paths come from the cache root and the checked names of each
    entry, never from anything recorded as a path."""
    checks: list[Check] = []
    targets: list[tuple[Check, Pulled, Path]] = []
    recorded = sorted({e.name for e in manifest.entries})
    wanted = list(dict.fromkeys(canonical_name(registry, manifest, n) for n in names)) if names else recorded
    for name in wanted:
        entries = manifest.of(name)
        if not entries:
            checks.append(Check(name, None, None, None, status="missing", problems=["not pulled"], damaged=True))
        for entry in entries:
            check = Check(name, str(entry.snapshot(hub_root)), entry.size_bytes, entry.sha256, entry=entry)
            checks.append(check)
            blob = _blob_to_hash(hub_root, entry, check)
            if blob is not None:
                targets.append((check, entry, blob))
    digests = sha256_files([blob for _, _, blob in targets], on_bytes=on_bytes)
    for (check, entry, blob), digest in zip(targets, digests, strict=True):
        if isinstance(digest, OSError):
            check.fail("missing", f"cannot read {blob}: {digest.strerror}")
            continue
        check.actual_sha256 = digest
        expected = {"manifest": entry.sha256}
        pin = _pinned_sha256(registry, entry)
        if pin:
            expected["zoo.yaml pin"] = pin
        named = is_sha256(entry.etag) and entry.etag == entry.sha256  # an LFS blob: its name is the same record
        for source, sha in expected.items():
            if digest != sha:
                where = "the manifest and its blob name" if source == "manifest" and named else f"the {source}"
                # a pin may be what is wrong: a new download would not mend that
                check.fail("corrupt", f"sha256 {digest} differs from {where} {sha}", source != "zoo.yaml pin")
        if not named and content_id(entry.etag, digest, blob) != entry.etag:
            kind = "sha256" if is_sha256(entry.etag) else "git blob id"
            check.fail("corrupt", f"the file's {kind} differs from its blob name {entry.etag}")
    return checks


def canonical_name(registry: Zoo, manifest: Manifest, name: str) -> str:
    """A model of this zoo by any of its names, or a name the manifest records (pulled with another zoo)."""
    try:
        return registry.get(name).name
    except UnknownModelError:
        recorded = {e.name.lower(): e.name for e in manifest.entries}
        if name.lower() in recorded:
            return recorded[name.lower()]
        raise


def _blob_to_hash(hub_root: Path, entry: Pulled, check: Check) -> Path | None:
    """The entry's blob, if its snapshot still links to it and it is a file of the cache; else why not."""
    snapshot = entry.snapshot(hub_root)
    blob = entry.blob(hub_root)
    try:
        confined(hub_root, snapshot)
        confined(hub_root, blob)
    except CacheError as err:
        check.fail("corrupt", err.message)
        return None
    if not snapshot.is_symlink() and not snapshot.exists():
        check.fail("missing", f"{snapshot} is gone: deleted outside vitamin (`hf cache rm`, say)")
        return None
    if not snapshot.is_symlink() or os.path.abspath(snapshot.parent / os.readlink(snapshot)) != os.path.abspath(blob):
        check.fail("corrupt", f"{snapshot} is not the link to its blob {blob.name} that vitamin made")
        return None
    if blob.is_symlink() or not blob.is_file():
        check.fail("missing", f"its blob {blob} is gone" if not blob.is_symlink() else f"its blob {blob} is a link")
        return None
    size = blob.stat().st_size
    if size != entry.size_bytes:
        check.fail("corrupt", f"size {size} bytes, recorded {entry.size_bytes}")
    return blob


def _pinned_sha256(registry: Zoo, entry: Pulled) -> str | None:
    """zoo.yaml's pin of this very file (the model's repo and file), if it has one."""
    try:
        weights = registry.get(entry.name).weights
    except UnknownModelError:  # pulled with another zoo file
        return None
    if weights is None or (weights.repo, weights.filename) != (entry.repo, entry.filename):
        return None
    return weights.sha256
