"""The one owner of vitamin's state in the hub cache: the one place every command asks what is there, pulls a
file, or removes one, and the only user of the manifest (`manifest.py`, which alone reads and writes it).

Files are kept for owners (`owners.py`: a zoo model, or a task). Another tool's file (open_clip, timm, `hf
download`) is found by looking, each time, and recorded only when a pull takes it (`adopted`).

- Looking (`records`, `pulled`, `checkpoint`, `partials`) writes nothing into the shared cache, nor the
  manifest. What is at each file's path is read once, by `RepoCache.look`, so every command gives one answer;
  a folder leading out of the cache is the same error (`hub.cache.outside`) wherever it is met.
- A file's identity is its bytes: `checkpoint` hands out a sha256 true of the bytes on disk now (`identity.py`),
  and a pull says `cached` only of a blob whose bytes are its ETag.
- Changing (`pull`, `remove`) happens under huggingface_hub's lock of the blob, then the manifest's lock;
  `remove` deletes only what no other entry and no other tool's snapshot uses, and never a partial file a
  running pull holds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vitamin_cli.checkpoints import identity
from vitamin_cli.checkpoints.manifest import Manifest, Record, Started, manifest_path, now, read, updating, warning
from vitamin_cli.checkpoints.owners import ModelOwner, Owner, TaskOwner
from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.hub import ids
from vitamin_cli.hub.cache import (
    GONE,
    OUTSIDE,
    PRESENT,
    UNLINKED,
    CacheError,
    RepoCache,
    cache_failure,
    confined,
    delete,
    hub_dir,
    kind_of,
    leftovers,
    lock_mode,
    partial_downloads,
    points_at,
    tidy,
)
from vitamin_cli.hub.hashing import FileChanged, Hashed, stat_key

__all__ = ["FIX_HINT", "Damaged", "Fetched", "NotPulled", "Partial", "Record", "Removal", "Store", "leading_out"]

if TYPE_CHECKING:  # the server and the downloader are loaded by the calls that pull, not by those that look
    from vitamin_cli.hub.download import ProgressCallback
    from vitamin_cli.hub.remote import HubFile, Network, Remote

PLAIN_FILE_BYTES = 10 * 2**20  # a file kept in git rather than LFS is at most this large on the Hub
FIX_HINT = "`vitamin verify --fix` downloads it again"


class NotPulled(UsageError):
    """A released model whose checkpoint is not in the cache (exit 2)."""


class Damaged(VitaminError):
    """A file in the cache whose bytes are not what was pulled (exit 1)."""


class _Owner(Protocol):
    """What pulling needs of an owner: the name it is recorded under, and what its messages call a file."""

    @property
    def name(self) -> str: ...

    def label_for(self, filename: str) -> str: ...


@dataclass(frozen=True)
class _Named:
    """A file's owner known by its recorded name alone (a model of another zoo file, say)."""

    name: str

    def label_for(self, filename: str) -> str:
        return self.name


@dataclass(frozen=True)
class Fetched:
    """A file present and checked in the cache, and how it got there: downloaded, resumed, restarted or cached."""

    record: Record
    status: str

    def path(self, root: Path) -> Path:
        return self.record.path(root)


@dataclass(frozen=True)
class Partial:
    """An interrupted download in the cache, and whose it is."""

    repo: str
    repo_type: str
    path: Path
    size_bytes: int  # on disk
    names: tuple[str, ...]  # the owners it was started for (none: vitamin has no record of it)
    stale: bool  # its file has since been pulled at another ETag: `vitamin rm` of its owner removes it


@dataclass
class Removal:
    """What `remove` deleted, and what it kept and why."""

    deleted: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)  # snapshot files of the same repos that no entry records
    freed_bytes: int = 0
    dry_run: bool = False  # nothing is deleted: `deleted` is what would be
    before: list[Path] = field(default_factory=list)  # in a dry run, what the names before this one would delete

    def gone(self, path: Path) -> bool:
        """Whether the path is deleted, or in a dry run would be by now."""
        return path in self.deleted or path in self.before


def leading_out(records: Iterable[Record]) -> list[CacheError]:
    """The folders these records' paths lead out of the cache through, each once (several files may share one):
    the message every command gives about them."""
    found: dict[str, CacheError] = {}
    for record in records:
        if record.problem is not None:
            found.setdefault(record.problem.message, record.problem)
    return list(found.values())


def _note(message: str) -> None:
    from vitamin_cli import report

    report.note(message)


class Store:
    """vitamin's files in one hub cache (`--cache-dir`, else huggingface_hub's own)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.root = hub_dir(cache_dir)

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.root)

    # -----------------------------------------------------------------------------------------------
    # Looking: nothing is written

    def records(self, owners: Iterable[Owner] = (), *, everything: bool = False, warn: bool = True) -> list[Record]:
        """What the manifest records for these owners (every owner's, with `everything`), and each model's
        checkpoint as another tool left it in the cache, each with what is at its path now. A file another
        tool deleted or relinked since it was recorded as found is left out: it was never vitamin's to report."""
        owners = list(owners)
        manifest = read(self.root, warn)
        names = {o.name for o in owners}
        found = []
        for entry in manifest.entries:
            if everything or entry.name in names:
                looked = self._looked(entry)
                if not (looked.adopted and looked.state != PRESENT):
                    found.append(looked)
        for owner in owners:
            if isinstance(owner, ModelOwner):
                found += self._found(owner, manifest, found)
        return found

    def recorded_names(self) -> set[str]:
        """The owners the manifest records files or downloads for."""
        return {e.name for e in read(self.root, warn=False).entries} | self.downloading()

    def downloading(self) -> set[str]:
        """The owners with a download recorded as started and not finished (interrupted, or running now)."""
        return {s.name for s in read(self.root, warn=False).started}

    def pulled(self, owners: Iterable[ModelOwner]) -> set[str]:
        """Names of these models whose current checkpoint is in the cache; a model's file behind a folder that
        leads out of the cache is not, and is reported."""
        return set(self.pulled_paths(owners))

    def pulled_paths(self, owners: Iterable[ModelOwner]) -> dict[str, Path]:
        """The path of each of these models' current checkpoint that is in the cache (the one pulled or found
        last, of several revisions), by name; a model's file behind a folder that leads out of the cache is not,
        and is reported."""
        owners = list(owners)
        by_name = {o.name: o for o in owners}
        records = self.records(owners)
        present = sorted(
            (r for r in records if r.state == PRESENT and _current(by_name[r.name], r)), key=lambda r: r.pulled_at
        )
        paths = {r.name: r.path(self.root) for r in present}
        self._report_outside([r for r in records if r.name not in paths])
        return paths

    def checkpoint(self, owner: ModelOwner) -> Record:
        """The model's checkpoint as it is on disk now (the one pulled or found last, of several revisions), its
        sha256 that of its bytes: hashed again where anything cheap to check changed since it was last hashed.
        Not there: NotPulled naming `vitamin pull`; its bytes not what was pulled: Damaged, naming `verify --fix`."""
        mine = [r for r in self.records([owner], warn=False) if r.name == owner.name]
        present = [r for r in mine if r.state == PRESENT and _current(owner, r)]
        if not present:
            raise self._why_not(owner, mine)
        record = max(enumerate(present), key=lambda item: (item[1].pulled_at, item[0]))[1]
        blob = record.blob(self.root)
        try:
            sha256, matches = identity.verified(blob, record.etag)
        except OSError as err:
            raise cache_failure(err, f"read {blob}") from err
        if not matches or sha256 != record.sha256 or not _current(owner, dataclasses.replace(record, sha256=sha256)):
            raise Damaged(
                f"{owner.label}: {record.path(self.root)} is not the file that was pulled: its sha256 is {sha256}, "
                f"recorded {record.sha256}",
                hint=FIX_HINT,
            )
        return record

    def partials(self) -> list[Partial]:
        """Interrupted downloads in the cache, with the owners they were started for and whether they are stale."""
        manifest = read(self.root, warn=False)
        listed = []
        for found in partial_downloads(self.root):
            started = [s for s in manifest.started if (s.repo_type, s.repo, s.etag) == (found.repo_type, found.repo,
                                                                                          found.etag)]  # fmt: skip
            stale = bool(started) and all(_superseded(manifest, s) for s in started)
            names = tuple(sorted({s.name for s in started}))
            listed.append(Partial(found.repo, found.repo_type, found.path, found.size_bytes, names, stale))
        return listed

    def _looked(self, entry: Record) -> Record:
        """A manifest entry with what is at its path now (a link to another blob than its own is UNLINKED)."""
        look = entry.repo_cache(self.root).look(entry.revision, entry.filename)
        state = UNLINKED if look.etag is not None and look.etag != entry.etag else look.state
        return dataclasses.replace(entry, state=state, problem=look.problem)

    def _found(self, owner: ModelOwner, manifest: Manifest, recorded: list[Record]) -> list[Record]:
        """The model's checkpoint as another tool left it in the cache, unless vitamin's own present record
        already answers; one record, or none."""
        mine = [r for r in recorded if r.name == owner.name and r.state == PRESENT and _current(owner, r)]
        if any(not r.adopted for r in mine):
            return []  # what vitamin pulled is the answer until `vitamin rm`
        found = self._find(owner, manifest)
        if found is None or any(r.name == owner.name and r.same_file(found) for r in recorded):
            return []  # that path is recorded already, and answered for as it is
        return [found]

    def _find(self, owner: ModelOwner, manifest: Manifest) -> Record | None:
        """The model's file where another tool would leave it (the pinned revision; else main, or the newest
        commit fetched when no branch was) as a record; None when absent, not a link to a plain blob, or not the
        file the zoo pins. An LFS file's blob is named by its sha256, which stands for its hash until its bytes
        are used; a small file kept in git is hashed. A blob some entry says vitamin downloaded stays vitamin's."""
        w = owner.model.weights
        if w is None:
            return None
        try:
            repo = RepoCache(self.root, w.repo)
            look = repo.look_at(_where(repo, w.revision, w.filename), w.filename)
        except CacheError:
            return None
        if look is None or look.state not in (PRESENT, OUTSIDE):
            return None
        base = Record(owner.name, w.repo, "model", look.commit, w.filename, 0, "", "", now(), True, recorded=False)
        if look.state == OUTSIDE:
            return dataclasses.replace(base, state=OUTSIDE, problem=look.problem)
        assert look.etag is not None
        sha256 = self._sha256_of_found(repo.blob(look.etag), look.etag)
        if sha256 is None:
            return None
        size = repo.blob(look.etag).stat().st_size
        entry = dataclasses.replace(base, size_bytes=size, sha256=sha256, etag=look.etag)
        ours = _vitamins(manifest, entry)
        if not _current(owner, entry) or w.size_bytes not in (None, size):
            return None
        return dataclasses.replace(entry, adopted=not ours)

    def _sha256_of_found(self, blob: Path, etag: str) -> str | None:
        if ids.is_sha256(etag):
            return etag
        try:
            if blob.stat().st_size > PLAIN_FILE_BYTES:
                return None
            sha256, matches = identity.verified(blob, etag)
        except (OSError, FileChanged):
            return None
        return sha256 if matches else None

    def _why_not(self, owner: ModelOwner, mine: list[Record]) -> VitaminError:
        """Why a model has no checkpoint to use: a folder leading out, a damaged layout, or not pulled."""
        for record in mine:
            if record.state == OUTSIDE and record.problem is not None:
                return record.problem
        for record in mine:
            if record.state == UNLINKED and _current(owner, record):
                return Damaged(f"{owner.label}: {record.path(self.root)} is not the link to its blob that vitamin made",
                               hint=FIX_HINT)  # fmt: skip
        w = owner.model.weights
        assert w is not None
        why = f" (the file pulled before is not {w.repo}/{w.filename} as the zoo gives it now)" if mine else ""
        gone = [r for r in mine if r.state == GONE and not r.adopted and _current(owner, r)]
        if gone:
            why = " (its file was deleted outside vitamin)"
        return NotPulled(f"{owner.label} is not pulled{why}", hint=f"run `vitamin pull {owner.label}` first")

    def _report_outside(self, records: list[Record]) -> None:
        for problem in leading_out(records):
            warning(problem.message, problem.hint)

    # -----------------------------------------------------------------------------------------------
    # Pulling

    def pull(
        self,
        owner: _Owner,
        wanted: HubFile,
        *,
        token: str | bool | None = None,
        progress: ProgressCallback | None = None,
        network: Network | None = None,
        force: bool = False,
    ) -> Fetched:
        """Make one file present and intact in the cache for its owner (downloading, resuming or finding it) and
        record it. A file present and intact, linked as asked, is `cached` without a write (a read-only cache
        works). `force` downloads it again and puts it in place of the blob only once it checks out."""
        from huggingface_hub import constants

        from vitamin_cli.hub.remote import Network, resolve

        network = network or Network.from_environment()
        label = owner.label_for(wanted.filename)
        problem = wanted.problem()
        if problem is not None:
            raise UsageError(f"{label}: {problem}")
        repo = RepoCache(self.root, wanted.repo, wanted.repo_type)
        if constants.HF_HUB_OFFLINE:
            return self._from_cache_offline(owner, repo, wanted)
        remote = resolve(wanted, token, network, label)
        _check_against_pins(wanted, remote.etag, remote.size, label)
        look = repo.look(remote.commit, wanted.filename)
        if look.problem is not None:
            raise look.problem
        if not force:
            cached = self._already_there(owner, repo, wanted, remote, look.etag)
            if cached is not None:
                return cached
        try:
            return self._fetch_locked(owner, repo, wanted, remote, token, progress, network, force)
        except OSError as err:
            raise cache_failure(err, f"write {label} into the cache {self.root}") from err

    def refetch(self, record: Record, network: Network) -> Fetched:
        """Download a recorded file again, exactly as it was pulled (its commit and sha256), under its owner's
        name, and put it in place of what is there once it checks out (`vitamin verify --fix`)."""
        from vitamin_cli.hub.remote import HubFile

        wanted = HubFile(record.repo, record.filename, record.revision, record.repo_type, sha256=record.sha256)
        return self.pull(_Named(record.name), wanted, network=network, force=True)

    def _already_there(
        self, owner: _Owner, repo: RepoCache, wanted: HubFile, remote: Remote, linked: str | None
    ) -> Fetched | None:
        """The file, `cached`, when it is present at the commit the server named, linked from the revision asked
        for, and its bytes are its ETag: nothing to write, so a read-only cache answers too. Under the blob's lock
        where it can be taken, so that an `rm` running now is waited for, never answered `cached` as it deletes."""
        ref_ok = ids.is_commit(wanted.revision) or repo.commit_for(wanted.revision) == remote.commit
        if linked != remote.etag or not ref_ok:
            return None
        with self._locked_if_writable(repo, remote.etag):
            if repo.look(remote.commit, wanted.filename).etag != remote.etag:
                return None  # deleted or relinked while the lock was waited for
            sha256 = _intact(repo.blob(remote.etag), remote)
            if sha256 is None:
                return None
            _check_pin(wanted, sha256, repo, repo.blob(remote.etag), "cached", owner.label_for(wanted.filename))
            record = self._record_for(owner, repo, remote.commit, wanted.filename, remote.etag, remote.size, sha256)
            self._record_if_possible(record, "cached")
        return Fetched(record, "cached")

    @contextmanager
    def _locked_if_writable(self, repo: RepoCache, etag: str) -> Iterator[None]:
        """The blob's lock, held; or nothing where it cannot be made (a read-only cache, which nobody changes)."""
        from filelock import FileLock

        lock = FileLock(str(confined(self.root, repo.lock(etag))), mode=lock_mode())
        try:
            Path(lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except OSError:
            yield
            return
        try:
            yield
        finally:
            lock.release()

    def _fetch_locked(
        self,
        owner: _Owner,
        repo: RepoCache,
        wanted: HubFile,
        remote: Remote,
        token: str | bool | None,
        progress: ProgressCallback | None,
        network: Network,
        force: bool,
    ) -> Fetched:
        from filelock import FileLock

        from vitamin_cli.hub.download import download

        label = owner.label_for(wanted.filename)
        lock = confined(self.root, repo.lock(remote.etag))
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock), mode=lock_mode()):
            blob = confined(self.root, repo.blob(remote.etag))
            sha256 = None if force else _intact(blob, remote)
            status = "cached"
            if sha256 is None and not force and blob.is_file() and not blob.is_symlink():
                _note(f"{label}: {blob} is damaged; downloading it again")
            if sha256 is None:  # absent, or damaged: downloaded anew, put in its place only once it checks out
                partial = repo.partial_path(remote.etag)
                # huggingface_hub's cache scanner expects every repo folder to have one, even while a file comes
                confined(self.root, repo.folder / "snapshots" / "x").parent.mkdir(parents=True, exist_ok=True)
                started = self._started(owner, wanted, remote)
                try:
                    done = download(wanted, remote, partial, blob, token=token, progress=progress, network=network,
                                    label=label)  # fmt: skip
                except Exception:
                    if not partial.exists():  # failed, with nothing kept: no download to remember
                        self._forget(started)
                    raise
                status, sha256 = done.status, done.sha256
                identity.remember(blob, Hashed(sha256, stat_key(blob.stat())), wrote_it=True)
            _check_pin(wanted, sha256, repo, blob, status, label)
            record = self._record_for(owner, repo, remote.commit, wanted.filename, remote.etag, remote.size, sha256)
            try:
                _make_way(repo, record.path(self.root), remote.etag, label)
                repo.link(remote.commit, wanted.filename, remote.etag, wanted.revision)
                self._record(record, status)
            except (CacheError, OSError):
                if status != "cached":
                    _back_to_partial(repo, remote.etag, record.path(self.root))
                raise
        return Fetched(record, status)

    def _from_cache_offline(self, owner: _Owner, repo: RepoCache, wanted: HubFile) -> Fetched:
        from vitamin_cli.hub.remote import PullError

        label = owner.label_for(wanted.filename)
        revision = wanted.revision if wanted.revision != "main" else _where(repo, None, wanted.filename)
        look = repo.look_at(revision, wanted.filename)
        if look is None or look.state == GONE:
            raise PullError(
                f"{label}: offline (HF_HUB_OFFLINE is set) and not in the cache {self.root}",
                hint="unset HF_HUB_OFFLINE to download it, or point --cache-dir / HF_HUB_CACHE at a cache that has it",
            )
        if look.problem is not None:
            raise look.problem
        if look.state != PRESENT or look.etag is None:
            raise Damaged(f"{label}: {look.snapshot} does not link to a blob of the cache; vitamin does not vouch "
                          "for it", hint="pull it again with the network on")  # fmt: skip
        blob = repo.blob(look.etag)
        try:
            sha256, matches = identity.verified(blob, look.etag)
        except OSError as err:
            raise cache_failure(err, f"read {blob}") from err
        if not matches:
            raise Damaged(f"{label}: {blob} is damaged: its content does not match its ETag {look.etag}",
                          hint=FIX_HINT + ", with the network on")  # fmt: skip
        size = blob.stat().st_size
        _check_against_pins(wanted, look.etag, size, label)
        _check_pin(wanted, sha256, repo, blob, "cached", label)
        record = self._record_for(owner, repo, look.commit, wanted.filename, look.etag, size, sha256)
        self._record_if_possible(record, "cached")
        return Fetched(record, "cached")

    def _record_for(
        self, owner: _Owner, repo: RepoCache, commit: str, filename: str, etag: str, size: int, sha256: str
    ) -> Record:
        return Record(owner.name, repo.repo, repo.repo_type, commit, filename, size, sha256, etag, now())

    def _record(self, record: Record, status: str) -> None:
        """Record a file for its owner: an entry for the same file that is already there as it is stays as it
        was; a file that was in the cache already, and that no entry of vitamin's own pulls names, was put there
        by another tool: it is recorded as found (adopted). Its download's record goes, and so do the partial
        files of other ETags of the same file that it supersedes (unless a running pull holds one)."""
        with updating(self.root) as manifest:
            adopted = status == "cached" and not _vitamins(manifest, record)
            manifest.started = [s for s in manifest.started if not _same_download(s, record)]
            self._drop_superseded(manifest, record)
            same = [e for e in manifest.of(record.name) if e.same_file(record)]
            if same and (same[0].sha256, same[0].etag) == (record.sha256, record.etag):
                return
            manifest.add(dataclasses.replace(record, adopted=adopted))

    def _record_if_possible(self, record: Record, status: str) -> None:
        """Record a file found present; a cache (or manifest) this user may not write is used unrecorded."""
        try:
            self._record(record, status)
        except (CacheError, OSError):
            pass

    def _started(self, owner: _Owner, wanted: HubFile, remote: Remote) -> Started:
        """Note a download before its first byte, so that its partial file is known as the owner's."""
        started = Started(owner.name, wanted.repo, wanted.repo_type, wanted.filename, remote.etag, now())
        try:
            with updating(self.root) as manifest:
                if not any(_same_owner_start(s, started) for s in manifest.started):
                    manifest.started.append(started)
        except CacheError:
            pass  # the download can go on; only `rm` would not know the partial file as the owner's
        return started

    def _forget(self, started: Started) -> None:
        try:
            with updating(self.root) as manifest:
                manifest.started = [s for s in manifest.started if not _same_owner_start(s, started)]
        except CacheError:
            pass

    def _drop_superseded(self, manifest: Manifest, record: Record) -> None:
        """Delete the partial files of the same owner and file at other ETags, unless a running pull holds one."""
        for started in [s for s in manifest.started if _superseded_by(s, record)]:
            if any(s.name != started.name and _same_start(s, started) for s in manifest.started):
                manifest.started.remove(started)  # the same bytes another owner's download still wants
                continue
            repo = RepoCache(self.root, started.repo, started.repo_type)
            if self._delete_partial(repo, started.etag, Removal()) is None:
                manifest.started.remove(started)

    # -----------------------------------------------------------------------------------------------
    # Removing

    def remove(self, name: str) -> Removal:
        """Delete the files recorded for an owner that nothing else uses: the snapshot link unless another entry
        names the same repo, commit and file; the blob unless another entry or any snapshot link in the repo
        still uses it; its partial downloads of every ETag (not one a running pull holds); refs and folders this
        leaves dangling or empty. A file another tool put in the cache (adopted) stays, and so does its entry.

        Only links that point at their blob and blobs that are plain files are vitamin's to delete; anything
        else is kept and reported. A manifest with entries vitamin cannot read deletes nothing: what they name
        might be shared. Runs under each blob's lock and then the manifest's (the order a pull takes them in)."""
        from contextlib import ExitStack

        from filelock import FileLock

        removal = Removal()
        first = read(self.root, warn=False).of(name)
        locks = self._locks(first)
        with ExitStack() as held:
            try:
                for lock in locks:
                    lock.parent.mkdir(parents=True, exist_ok=True)
                    held.enter_context(FileLock(str(lock), mode=lock_mode()))
            except OSError as err:
                raise cache_failure(err, f"lock the files of {name}") from err
            with updating(self.root) as manifest:
                self._remove_locked(name, manifest, locks, removal)
        return removal

    def rehearse(self, names: Iterable[str]) -> Iterator[tuple[str, Removal]]:
        """What `remove` of each name, one after the other, would delete and keep: the same steps on the cache as
        the names before would leave it, deleting, locking and writing nothing. Where `remove` would wait for a
        pull running now of the name's own files, it says what `remove` would do once that pull is done."""
        manifest = read(self.root)
        gone: list[Path] = []
        for name in names:
            locks = self._locks(manifest.of(name))
            removal = Removal(dry_run=True, before=list(gone))
            self._remove_locked(name, manifest, locks, removal)
            gone += removal.deleted
            yield name, removal

    def _locks(self, entries: Iterable[Record]) -> list[Path]:
        """The blob locks of these entries, each once, in the order a pull takes them."""
        return sorted({confined(self.root, e.repo_cache(self.root).lock(e.etag)) for e in entries})

    def _remove_locked(self, name: str, manifest: Manifest, locks: list[Path], removal: Removal) -> None:
        if manifest.problems:
            raise CacheError(
                f"nothing deleted: the manifest {self.manifest_path} has entries vitamin cannot read, and the files "
                f"they name may be shared with {name}",
                hint="repair or delete those entries (the warning above names them), then run `vitamin rm` again",
            )
        locked = [e for e in manifest.of(name) if confined(self.root, e.repo_cache(self.root).lock(e.etag)) in locks
                  and not e.adopted]  # fmt: skip
        others = [e for e in manifest.entries if e not in locked]
        try:
            for entry in locked:
                self._remove_entry(entry, others, removal)
        except OSError as err:
            raise cache_failure(err, f"delete the files of {name}") from err
        manifest.entries = others
        self._remove_started(name, manifest, locks, removal)
        recorded = {e.path(self.root) for e in others}
        for folder in {e.repo_cache(self.root).folder for e in locked}:
            for path in sorted((folder / "snapshots").glob("**/*")):
                if (path.is_symlink() or path.is_file()) and path not in recorded and not removal.gone(path):
                    removal.others.append(path)

    def _remove_entry(self, entry: Record, others: list[Record], removal: Removal) -> None:
        repo = entry.repo_cache(self.root)
        blob = confined(self.root, repo.blob(entry.etag))
        snapshot = confined(self.root, entry.path(self.root))
        sharing = sorted({o.name for o in others if o.same_file(entry)})
        if sharing:
            removal.kept.append((snapshot, f"also pulled for {', '.join(sharing)}"))
        elif points_at(snapshot, blob):
            _deleted(self.root, snapshot, removal)  # the link vitamin made, whatever is at its blob's name now
        elif snapshot.exists() or snapshot.is_symlink():
            removal.kept.append((snapshot, "not a link to its blob: another tool made or changed it"))
        self._remove_blob(repo, entry, others, blob, removal)
        removal.deleted += tidy(
            repo, entry.revision, gone=removal.before + removal.deleted if removal.dry_run else None
        )

    def _remove_blob(self, repo: RepoCache, entry: Record, others: list[Record], blob: Path, removal: Removal) -> None:
        users = sorted({o.name for o in others if o.same_blob(entry)})
        links = [link for link in repo.links_to(blob) if not removal.gone(link)]
        if users:
            removal.kept.append((blob, f"also used by {', '.join(users)}"))
        elif links:
            removal.kept.append((blob, f"still linked from {links[0].relative_to(repo.folder)}"))
        elif blob.is_file() and not blob.is_symlink():
            removal.freed_bytes += blob.stat().st_size
            _deleted(self.root, blob, removal)
            for leftover in leftovers(repo.partial(entry.etag)):
                if leftover.is_file() and not leftover.is_symlink():
                    _deleted(self.root, leftover, removal)
        elif blob.is_symlink():
            removal.kept.append((blob, "a link, not a blob vitamin wrote"))

    def _remove_started(self, name: str, manifest: Manifest, held: list[Path], removal: Removal) -> None:
        """The owner's partial downloads of every ETag, unless another owner's download or a running pull
        holds one."""
        for started in [s for s in manifest.started if s.name == name]:
            repo = RepoCache(self.root, started.repo, started.repo_type)
            sharing = sorted({s.name for s in manifest.started if s.name != name and _same_start(s, started)})
            if sharing:
                removal.kept.append((repo.partial(started.etag), f"also being pulled for {', '.join(sharing)}"))
                manifest.started.remove(started)
                continue
            locked = confined(self.root, repo.lock(started.etag)) in held
            busy = self._delete_partial(repo, started.etag, removal, locked, manifest)
            if busy is not None:
                removal.kept.append((busy, "a pull running now is downloading it"))
            else:
                manifest.started.remove(started)

    def _delete_partial(
        self, repo: RepoCache, etag: str, removal: Removal, locked: bool = False, manifest: Manifest | None = None
    ) -> Path | None:
        """Delete a partial download's files if no running pull holds its lock (`locked`: this process holds it);
        the partial's path when a pull does. With the manifest, also the blob of a download that finished but
        was never recorded (stopped by a kill or a crash just before), unless something uses or links to it."""
        from filelock import FileLock, Timeout

        partial = repo.partial(etag)
        path = confined(self.root, repo.lock(etag))
        locked = locked or (removal.dry_run and not path.exists())  # a dry run makes no lock file
        lock = FileLock(str(path), mode=lock_mode())
        try:
            if not locked:
                lock.acquire(timeout=0)
        except (Timeout, OSError):  # held by a pull running now, or a lock that cannot be taken: not touched
            return partial
        try:
            for leftover in leftovers(partial):
                if leftover.is_file() and not leftover.is_symlink():
                    _deleted(self.root, leftover, removal)
            if (partial.exists() or partial.is_symlink()) and not removal.gone(partial):
                removal.kept.append((partial, f"{kind_of(partial)}, not a partial file vitamin wrote: remove it"))
            if manifest is not None:
                self._remove_unrecorded(repo, etag, manifest, removal)
        finally:
            if not locked:
                lock.release()
        return None

    def _remove_unrecorded(self, repo: RepoCache, etag: str, manifest: Manifest, removal: Removal) -> None:
        blob = confined(self.root, repo.blob(etag))
        if blob.is_symlink() or not blob.is_file():
            return
        if any((e.repo_type, e.repo, e.etag) == (repo.repo_type, repo.repo, etag) for e in manifest.entries):
            return  # recorded: what a pull and an entry's own removal answer for
        links = [link for link in repo.links_to(blob) if not removal.gone(link)]
        if links:
            removal.kept.append((blob, f"still linked from {links[0].relative_to(repo.folder)}"))
            return
        removal.freed_bytes += blob.stat().st_size
        _deleted(self.root, blob, removal)

    # -----------------------------------------------------------------------------------------------
    # The manifest itself: read, validated, written


# ---------------------------------------------------------------------------------------------------
# Small rules


def _current(owner: Owner, record: Record) -> bool:
    """Whether a record is the owner's file as it is wanted now (a task's files: any it recorded)."""
    if isinstance(owner, TaskOwner):
        return True
    return owner.is_current(record.repo, record.repo_type, record.filename, record.revision, record.sha256)


def _where(repo: RepoCache, pinned: str | None, filename: str) -> str:
    """Where a file is in this cache: at its pinned revision; else at main, or at the newest commit fetched when
    main has no snapshot of it (a file fetched at a commit: no `refs/main`)."""
    if pinned is not None:
        return pinned
    at_main = repo.look_at("main", filename)
    if at_main is not None and at_main.state != GONE:
        return "main"
    return repo.newest_commit(filename) or "main"


def _intact(blob: Path, remote: Remote) -> str | None:
    """The sha256 of a blob already in the cache when its bytes are its ETag; None when absent or damaged."""
    try:
        if blob.is_symlink() or not blob.is_file() or blob.stat().st_size != remote.size:
            return None
        sha256, matches = identity.verified(blob, remote.etag)
    except (OSError, FileChanged):
        return None
    return sha256 if matches else None


def _vitamins(manifest: Manifest, record: Record) -> bool:
    """Whether vitamin downloaded this blob: an entry of its own pulls names it, or a download it started did
    (one that finished but was stopped, by a kill or a crash, before it was recorded)."""
    ours = any(e.same_blob(record) and not e.adopted for e in manifest.entries)
    return ours or any((s.repo_type, s.repo, s.etag) == (record.repo_type, record.repo, record.etag)
                       for s in manifest.started)  # fmt: skip


def _same_download(started: Started, record: Record) -> bool:
    mine = (started.name, started.repo_type, started.repo, started.filename, started.etag)
    return mine == (record.name, record.repo_type, record.repo, record.filename, record.etag)


def _same_start(one: Started, other: Started) -> bool:
    return (one.repo_type, one.repo, one.etag) == (other.repo_type, other.repo, other.etag)


def _same_owner_start(one: Started, other: Started) -> bool:
    return one.name == other.name and _same_start(one, other)


def _superseded_by(started: Started, record: Record) -> bool:
    mine = (started.name, started.repo_type, started.repo, started.filename)
    return mine == (record.name, record.repo_type, record.repo, record.filename) and started.etag != record.etag


def _superseded(manifest: Manifest, started: Started) -> bool:
    return any(_superseded_by(started, e) and e.pulled_at >= started.started_at for e in manifest.entries)


def _check_against_pins(wanted: HubFile, etag: str, size: int, label: str) -> None:
    from vitamin_cli.hub.remote import PullError

    if wanted.sha256 and ids.is_sha256(etag) and etag != wanted.sha256:
        raise PullError(
            f"{label}: the Hub's {wanted.repo}/{wanted.filename} has sha256 {etag}, zoo.yaml pins {wanted.sha256}",
            hint="the file changed upstream; pin a revision in zoo.yaml, or `vitamin pin` it again",
        )
    if wanted.size_bytes and size != wanted.size_bytes:
        raise PullError(f"{label}: the Hub's file has {size} bytes, zoo.yaml pins {wanted.size_bytes}")


def _check_pin(wanted: HubFile, sha256: str, repo: RepoCache, blob: Path, status: str, label: str) -> None:
    """A file whose sha256 is not the zoo's pin is refused. The blob is deleted only if this pull just
    downloaded it and nothing links to it: a blob that was already in the cache belongs to whoever put it
    there (and is right for its ETag; it is the pin that disagrees)."""
    from vitamin_cli.hub.remote import PullError

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


def _make_way(repo: RepoCache, snapshot: Path, etag: str, label: str) -> None:
    """Before the snapshot path is linked to its blob: a file there is replaced only when its bytes are the
    file's (a copy); one of other bytes (someone's own weights, saved where open_clip found the checkpoint) is an
    error, never lost. A link to something else is replaced, and said."""
    if snapshot.is_symlink():
        if not points_at(snapshot, repo.blob(etag)):
            _note(f"{label}: {snapshot} linked to something else than its blob; linked it to its blob again")
        return
    if not snapshot.is_file():
        return  # nothing there, or a folder, which linking refuses
    try:
        _, matches = identity.verified(snapshot, etag)
    except (OSError, FileChanged) as err:
        raise CacheError(f"{label}: cannot read {snapshot}: {err}") from err
    if not matches:
        import shlex

        raise CacheError(
            f"{label}: {snapshot} is a file of its own, not the link to its blob, and its bytes are not the Hub's "
            "file; vitamin does not replace it",
            hint=f"move it away if it is yours (mv {shlex.quote(str(snapshot))} DEST), or delete it; then pull again",
        )


def _back_to_partial(repo: RepoCache, etag: str, snapshot: Path) -> None:
    """Undo a download that could not be recorded (a full disk, say): the blob becomes a partial download
    again, which the next pull finishes without fetching a byte, and its snapshot link goes. Nothing then looks
    complete that the manifest does not list, and nothing downloaded is lost."""
    blob = repo.blob(etag)
    if any(p != snapshot for p in repo.links_to(blob)):
        return  # another snapshot uses the blob: it stays
    if points_at(snapshot, blob):
        snapshot.unlink()
    os.replace(blob, repo.partial(etag))
    tidy(repo, snapshot.relative_to(repo.folder / "snapshots").parts[0])


def _deleted(root: Path, path: Path, removal: Removal) -> None:
    if removal.dry_run:
        if (path.exists() or path.is_symlink()) and not removal.gone(path):
            removal.deleted.append(confined(root, path))
    elif delete(root, path):
        removal.deleted.append(path)
