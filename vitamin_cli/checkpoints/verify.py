"""Prove pulled checkpoints intact, offline: re-hash every file and compare it with what is on record; and
mend what is broken (`mend`, what `vitamin verify --fix` does).

Three records must agree with the file: the manifest's sha256 (hashed when it was pulled), the blob's name in
the cache (its ETag: an LFS file's sha256, or a plain file's git blob id), and zoo.yaml's pin when there is
one. Reading every byte, verify finds what the cheap checks of `identity.py` cannot (bit rot that keeps a
file's size and times); a file it finds intact is remembered as hashed. Nothing is unpickled here (`--deep`
loads the file: `vitamin_cli.models.loading.deep_check`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitamin_cli import report
from vitamin_cli.checkpoints import identity
from vitamin_cli.checkpoints.owners import ModelOwner, pull_command, task_key
from vitamin_cli.checkpoints.store import Record, Store
from vitamin_cli.errors import UnknownModelError, VitaminError
from vitamin_cli.hub.cache import GONE, OUTSIDE, PRESENT
from vitamin_cli.hub.hashing import FileChanged, Hashed, hash_files
from vitamin_cli.hub.ids import is_sha256
from vitamin_cli.hub.remote import Network
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
    hint: str | None = field(default=None, repr=False)  # what to do, when a new download would not mend it
    record: Record | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("damaged", "hint", "record")}

    def fail(self, status: str, problem: str, damaged: bool = True) -> None:
        if self.status != "missing":
            self.status = status
        self.problems.append(problem)
        self.damaged = self.damaged or damaged


def records_to_check(registry: Zoo, store: Store, names: Sequence[str] = (), warn: bool = True) -> list[Record]:
    """The records `verify` checks: those of the named models and tasks (default: every one recorded), and the
    checkpoints other tools put in the cache for released models."""
    owners = [ModelOwner(m) for m in registry.models if m.released]
    records = store.records(owners, everything=not names, warn=warn)
    if not names:
        return records
    wanted = {canonical_name(registry, store, n) for n in names}
    return [r for r in records if r.name in wanted]


def verify(
    registry: Zoo,
    store: Store,
    records: list[Record],
    names: Sequence[str] = (),
    on_bytes: Callable[[int], None] | None = None,
) -> list[Check]:
    """Check each record; a named model or task that has none is missing. Paths come from the cache root and
    the checked names of each record, never from anything recorded as a path."""
    checks: list[Check] = []
    targets: list[tuple[Check, Record, Path]] = []
    wanted = list(dict.fromkeys(canonical_name(registry, store, n) for n in names)) if names else []
    for name in wanted:
        if not any(r.name == name for r in records):
            hint = f"`{pull_command(name)}` fetches it"
            checks.append(Check(name, None, None, None, status="missing", problems=["not pulled"], hint=hint))
    for record in records:
        check = Check(record.name, str(record.path(store.root)), record.size_bytes, record.sha256 or None,
                      record=record)  # fmt: skip
        checks.append(check)
        blob = _blob_to_hash(store.root, record, check)
        if blob is not None:
            targets.append((check, record, blob))
    blobs = [blob for _, _, blob in targets]
    hashed = hash_files(blobs, on_bytes, git=[not is_sha256(blob.name) for blob in blobs])
    for (check, record, blob), digest in zip(targets, hashed, strict=True):
        _compare(registry, check, record, blob, digest)
    return checks


def _compare(registry: Zoo, check: Check, record: Record, blob: Path, digest: Hashed | OSError | FileChanged) -> None:
    if isinstance(digest, FileChanged):
        check.fail("corrupt", digest.message, damaged=False)
        check.hint = digest.hint
        return
    if isinstance(digest, OSError):
        check.fail("missing", f"cannot read {blob}: {digest.strerror}")
        return
    check.actual_sha256 = digest.sha256
    expected = {"manifest": record.sha256}
    pin = _pinned_sha256(registry, record)
    if pin:
        expected["zoo.yaml pin"] = pin
    named = is_sha256(record.etag) and record.etag == record.sha256  # an LFS blob: its name is the same record
    for source, sha in expected.items():
        if digest.sha256 != sha:
            where = "the manifest and its blob name" if source == "manifest" and named else f"the {source}"
            # a pin may be what is wrong: a new download would not mend that
            check.fail("corrupt", f"sha256 {digest.sha256} differs from {where} {sha}", source != "zoo.yaml pin")
    if not named and (digest.git if not is_sha256(record.etag) else digest.sha256) != record.etag:
        kind = "sha256" if is_sha256(record.etag) else "git blob id"
        check.fail("corrupt", f"the file's {kind} differs from its blob name {record.etag}")
    if check.status == "ok":
        identity.remember(blob, digest)


def canonical_name(registry: Zoo, store: Store, name: str) -> str:
    """A model of this zoo by any of its names, a task (`task:KEY`) or a name recorded in the cache (pulled with
    another zoo)."""
    if task_key(name) is not None:
        return name
    try:
        return registry.get(name).name
    except UnknownModelError:
        recorded = {n.lower(): n for n in store.recorded_names()}
        if name.lower() in recorded:
            return recorded[name.lower()]
        raise


def _blob_to_hash(root: Path, record: Record, check: Check) -> Path | None:
    """The record's blob, if its snapshot still links to it and it is a file of the cache; else why not."""
    snapshot = record.path(root)
    if record.state == OUTSIDE and record.problem is not None:
        check.fail("corrupt", record.problem.message, damaged=False)
        check.hint = record.problem.hint
        return None
    if record.state == GONE:
        gone = snapshot.is_symlink()
        check.fail("missing", f"its blob {record.blob(root)} is gone" if gone else
                   f"{snapshot} is gone: deleted outside vitamin (`hf cache rm`, say)")  # fmt: skip
        return None
    if record.state != PRESENT:
        check.fail("corrupt", f"{snapshot} is not the link to its blob {record.etag} that vitamin made")
        return None
    blob = record.blob(root)
    size = blob.stat().st_size
    if size != record.size_bytes:
        check.fail("corrupt", f"size {size} bytes, recorded {record.size_bytes}")
    return blob


def _pinned_sha256(registry: Zoo, record: Record) -> str | None:
    """zoo.yaml's pin of this very file (the model's repo and file), if it has one."""
    try:
        weights = registry.get(record.name).weights
    except UnknownModelError:  # pulled with another zoo file, or a task
        return None
    if weights is None or (weights.repo, weights.filename) != (record.repo, record.filename):
        return None
    return weights.sha256


def mend(checks: list[Check], store: Store, network: Network) -> list[str]:
    """Download again each file that is damaged or gone, at the commit it was pulled at, and put it in place
    once it hashes as recorded; returns the names it mended. Nothing is deleted first: a download that fails
    leaves the cache as it was. A file that only disagrees with a zoo.yaml pin, or that cannot be reached, is
    left as it is (and said so): a new download would not mend it."""
    mended: list[str] = []
    for check in checks:
        if check.status == "ok":
            continue
        record = check.record
        if record is None:
            report.warn(f"{check.name}: not pulled, so nothing to mend", hint=check.hint)
            continue
        if not check.damaged:
            report.warn(f"{check.name}: not downloading it again, the same file would come back", hint=check.hint)
            continue
        try:
            store.refetch(record, network)
        except VitaminError as err:
            report.warn(err.message, err.hint)
            continue
        if record.name not in mended:
            mended.append(record.name)
    return mended
