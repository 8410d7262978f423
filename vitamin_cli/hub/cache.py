"""Where pulled files live: the standard Hugging Face cache (the hub cache), and vitamin's manifest beside it.

The layout is huggingface_hub's own (`models--org--name/{blobs,snapshots,refs}`), so open_clip, timm and
`hf cache` see what `vitamin pull` fetched. The manifest (`<cache>.vitamin-manifest.json`, next to the cache
folder rather than in it, where the cache scanner would take it for a broken repo) records each file vitamin
pulled: for which model (or task), from which repo, commit and file, its blob and its sha256.

The cache is shared with other tools and users, so:
- every path vitamin writes, links or deletes is computed from the cache root and checked (`confined`) to
  stay inside it once symlinks are resolved; names from the manifest, `refs/` files and the server are
  checked against the Hub's rules (`ids`) before they become paths; files are never opened for writing
  through a symlink;
- `remove` deletes only what no other entry uses (decided by repo, commit, file and blob, across every
  entry of the manifest and every snapshot link in the repo), and only links and blobs vitamin made.

Nothing here imports huggingface_hub: `vitamin ls --pulled` and `vitamin cache` stay light.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.files import umask, write_atomic
from vitamin_cli.hub import ids

PARTIAL_SUFFIX = ".vitamin-partial"
MANIFEST_VERSION = 2
REPO_TYPES = ("model", "dataset")


class CacheError(VitaminError):
    """The cache cannot be used as asked: a file that cannot be written, a path that leads out (exit 1)."""


def hub_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder huggingface_hub uses: --cache-dir, $HF_HUB_CACHE, $HF_HOME/hub, or the default;
    made absolute, since paths are computed from it.

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
    root = chosen.expanduser().absolute()
    if root.parent == root:
        raise UsageError(
            f"{root} cannot be a cache folder: vitamin keeps its manifest beside the cache, in its parent",
            hint="use a folder of its own, e.g. --cache-dir ~/hf-cache",
        )
    return root


def cache_failure(err: OSError, doing: str) -> CacheError:
    """An OSError met while using the cache, as a message that says what to do."""
    where = err.filename or "the cache"
    if err.errno in (errno.EACCES, errno.EPERM):
        return CacheError(
            f"cannot {doing}: permission denied on {where}",
            hint="point --cache-dir (or HF_HUB_CACHE) at a folder you may write, or ask its owner for access",
        )
    if err.errno == errno.EROFS:
        return CacheError(
            f"cannot {doing}: {where} is on a read-only file system",
            hint="point --cache-dir (or HF_HUB_CACHE) at a writable folder",
        )
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return CacheError(f"cannot {doing}: the disk holding {where} is full", hint="free some space and run it again")
    if err.errno == errno.ELOOP:
        return CacheError(
            f"cannot {doing}: {where} is a symbolic link, and vitamin never writes through links in the cache",
            hint="move the link away if you did not put it there on purpose",
        )
    return CacheError(f"cannot {doing}: {where}: {err.strerror or err}")


def confined(root: Path, path: Path) -> Path:
    """`path`, once checked to lie inside the cache root (or be vitamin's manifest or its lock beside it) after
    every symlink in its folders is resolved. The last part may itself be a link: vitamin replaces or unlinks a
    link, never writes through one."""
    real_root = root.resolve()
    real_parent = path.parent.resolve()
    beside = real_parent == root.parent.resolve() and path.name.startswith(root.name + ".vitamin-manifest")
    if not beside and real_parent != real_root and real_root not in real_parent.parents:
        raise CacheError(
            f"{path} leads out of the cache {root} (to {real_parent}); vitamin does not touch it",
            hint="a folder inside the cache is a link to somewhere else: move it away, or use another --cache-dir",
        )
    return path


def open_for_append(path: Path) -> int:
    """A file descriptor appending to `path`, created with the user's umask; never through a symlink."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)


def lock_mode() -> int:
    """Lock files as the user's umask allows, so that a group-shared cache stays usable by the group."""
    return 0o666 & ~umask()


@dataclass(frozen=True)
class RepoCache:
    """Paths of one repo in a Hugging Face cache folder; every name is checked before it becomes a path."""

    root: Path  # the cache folder
    repo: str
    repo_type: str = "model"  # or "dataset"

    def __post_init__(self) -> None:
        problem = ids.repo_problem(self.repo)
        if problem is not None or self.repo_type not in REPO_TYPES:
            raise CacheError(f"{self.repo!r} is not a repo id vitamin can cache: {problem or self.repo_type}")

    @property
    def folder(self) -> Path:
        return self.root / (f"{self.repo_type}s--" + self.repo.replace("/", "--"))

    def blob(self, etag: str) -> Path:
        return self.folder / "blobs" / _checked(etag, ids.is_etag(etag), "ETag")

    def partial(self, etag: str) -> Path:
        return self.folder / "blobs" / (_checked(etag, ids.is_etag(etag), "ETag") + PARTIAL_SUFFIX)

    def snapshot(self, commit: str, filename: str) -> Path:
        _checked(filename, ids.filename_problem(filename) is None, "file name")
        return self.folder / "snapshots" / _checked(commit, ids.is_commit(commit), "commit") / filename

    def ref(self, revision: str) -> Path:
        return self.folder / "refs" / _checked(revision, ids.revision_problem(revision) is None, "revision")

    def lock(self, etag: str) -> Path:
        """The lock file huggingface_hub itself takes for this blob, so that we exclude its downloads too."""
        return self.root / ".locks" / self.folder.name / (_checked(etag, ids.is_etag(etag), "ETag") + ".lock")

    def commit_for(self, revision: str) -> str | None:
        """The commit a revision (a branch, a tag or a commit) points at in this cache, if known. A `refs/` file
        is data: what it holds is used only if it is a commit id."""
        if ids.is_commit(revision):
            return revision
        try:
            ref = self.ref(revision)
            text = ref.read_text(encoding="ascii", errors="replace").strip() if ref.is_file() else ""
        except (OSError, CacheError):
            return None
        return text if ids.is_commit(text) else None

    def link(self, commit: str, filename: str, etag: str, revision: str) -> Path:
        """Link snapshots/<commit>/<filename> to the blob and refs/<revision> to the commit, as huggingface_hub does."""
        snapshot = confined(self.root, self.snapshot(commit, filename))
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(self.blob(etag), snapshot.parent)
        if not (snapshot.is_symlink() and os.readlink(snapshot) == target):
            tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.link")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            os.replace(tmp, snapshot)  # replaces a link or file at `snapshot`, never what it points to
        if revision != commit and self.commit_for(revision) != commit:
            write_atomic(confined(self.root, self.ref(revision)), commit)
        return snapshot

    def cached_file(self, revision: str, filename: str) -> tuple[str, Path, str | None] | None:
        """(commit, snapshot, ETag) of a file any tool put in this cache at `revision`: None when there is no
        snapshot of it; the ETag None when the snapshot is not a link to a plain blob file of this repo (then
        vitamin does not vouch for it)."""
        commit = self.commit_for(revision)
        snapshot = self.snapshot(commit, filename) if commit else None
        if commit is None or snapshot is None or not (snapshot.is_symlink() or snapshot.exists()):
            return None
        etag = Path(os.readlink(snapshot)).name if snapshot.is_symlink() else ""
        if not ids.is_etag(etag):
            return commit, snapshot, None
        blob = self.blob(etag)
        try:  # the link's folder, and so what it leads to, inside the cache, not just its text
            confined(self.root, snapshot)
            confined(self.root, blob)
        except CacheError:
            return commit, snapshot, None
        linked = os.path.abspath(snapshot.parent / os.readlink(snapshot)) == os.path.abspath(blob)
        if not linked or blob.is_symlink() or not blob.is_file() or snapshot.resolve() != blob.resolve():
            return commit, snapshot, None
        return commit, snapshot, etag

    def links_to(self, blob: Path) -> list[Path]:
        """Snapshot links in this repo (made by any tool) that point at `blob`."""
        found = []
        for path in (self.folder / "snapshots").glob("**/*"):
            if path.is_symlink() and os.path.abspath(path.parent / os.readlink(path)) == os.path.abspath(blob):
                found.append(path)
        return found


def _checked(name: str, ok: bool, what: str) -> str:
    if not ok:
        raise CacheError(f"{name[:80]!r} is not a {what} the Hub would send; vitamin does not make it a path")
    return name


# ---------------------------------------------------------------------------------------------------
# The manifest


@dataclass(frozen=True)
class Pulled:
    """One manifest entry: a file vitamin pulled and hashed, for one model (or task)."""

    name: str  # the model's canonical name (or the task's key)
    repo: str
    repo_type: str
    revision: str  # the commit
    filename: str
    size_bytes: int
    sha256: str
    etag: str  # the blob's name in the cache
    pulled_at: str  # ISO 8601, UTC: when vitamin pulled the file, or found it
    # Found in the cache, put there by another tool (open_clip, timm, `hf download`): vitamin uses and checks
    # it, but `vitamin rm` leaves it in place. Its sha256 is then the blob's name, until `vitamin verify`.
    adopted: bool = False

    def repo_cache(self, root: Path) -> RepoCache:
        return RepoCache(root, self.repo, self.repo_type)

    def snapshot(self, root: Path) -> Path:
        """Where huggingface_hub, open_clip and timm find the file: computed, never read from the manifest."""
        return self.repo_cache(root).snapshot(self.revision, self.filename)

    def blob(self, root: Path) -> Path:
        return self.repo_cache(root).blob(self.etag)

    def same_file(self, other: Pulled) -> bool:
        return (self.repo_type, self.repo, self.revision, self.filename) == (
            other.repo_type,
            other.repo,
            other.revision,
            other.filename,
        )

    def same_blob(self, other: Pulled) -> bool:
        return (self.repo_type, self.repo, self.etag) == (other.repo_type, other.repo, other.etag)

    def to_json(self, root: Path) -> dict[str, Any]:
        """The entry as `vitamin cache --json` shows it, with its snapshot path and whether it is on disk."""
        snapshot = self.snapshot(root)
        return {**asdict(self), "path": str(snapshot), "present": snapshot.exists()}


@dataclass
class Manifest:
    """The manifest's entries, and what was wrong with the file (entries left out, never acted on)."""

    entries: list[Pulled] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, name: str) -> list[Pulled]:
        return [e for e in self.entries if e.name == name]

    def add(self, entry: Pulled) -> None:
        """Record an entry, replacing the one of the same name and file."""
        self.entries = [e for e in self.entries if not (e.name == entry.name and e.same_file(entry))]
        self.entries.append(entry)


def manifest_path(root: Path) -> Path:
    return root.with_name(root.name + ".vitamin-manifest.json")


def read_manifest(root: Path, warn: bool = True) -> Manifest:
    """The manifest of a cache; an absent one is empty. A file vitamin did not write as it reads it (garbage,
    wrong types, names the Hub would not send) is reported on stderr and its bad entries are left out."""
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
        version = data.get("version") if isinstance(data, dict) else None
        rows = data.get("models") if version == 1 else data.get("files") if version == MANIFEST_VERSION else None
        if not isinstance(rows, list):
            manifest.problems.append(f"not a manifest vitamin wrote (version {version!r})")
            rows = []
        for index, row in enumerate(rows):
            entry, problem = _entry(row, version == 1)
            if entry is not None:
                manifest.entries.append(entry)
            else:
                manifest.problems.append(f"entry {index + 1}: {problem}")
    if warn and manifest.problems:
        shown = "; ".join(manifest.problems[:3]) + ("; ..." if len(manifest.problems) > 3 else "")
        print(f"warning: ignoring what vitamin cannot use in {path}: {shown}", file=sys.stderr)
    return manifest


_ENTRY_CHECKS: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: isinstance(v, str) and 0 < len(v) <= 200 and v.isprintable(),
    "repo": lambda v: ids.repo_problem(v) is None,
    "repo_type": lambda v: v in REPO_TYPES,
    "revision": ids.is_commit,
    "filename": lambda v: ids.filename_problem(v) is None,
    "size_bytes": lambda v: type(v) is int and 0 <= v < 2**63,
    "sha256": ids.is_sha256,
    "etag": ids.is_etag,
    "pulled_at": lambda v: isinstance(v, str) and len(v) <= 64,
}


def _entry(row: Any, version_1: bool) -> tuple[Pulled | None, str | None]:
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
    return Pulled(**{key: row[key] for key in _ENTRY_CHECKS}, adopted=adopted), None


@contextmanager
def updating_manifest(root: Path) -> Iterator[Manifest]:
    """Read, change and write back the manifest under a lock, so that concurrent pulls lose no entry; a
    manifest whose entries did not change is not written again. An unreadable file is kept aside
    (`.unreadable`), never overwritten unseen."""
    from filelock import FileLock

    path = manifest_path(root)
    lock = FileLock(str(confined(root, path.with_name(path.name + ".lock"))), mode=lock_mode())
    try:
        lock.acquire()
    except OSError as err:
        raise cache_failure(err, f"lock the manifest {path}") from err
    try:
        manifest = read_manifest(root)
        before = list(manifest.entries)
        yield manifest
        if manifest.entries == before and not manifest.problems:
            return
        if manifest.problems and path.exists():
            _saved_aside(path)  # only now, as the new one is written: a change that failed leaves it in place
        payload = {
            "version": MANIFEST_VERSION,
            "files": [asdict(e) for e in sorted(manifest.entries, key=lambda e: (e.name, e.pulled_at))],
        }
        try:
            write_atomic(path, json.dumps(payload, indent=2) + "\n")
        except OSError as err:  # the old manifest is still whole: it never claims a file that is not there
            raise cache_failure(err, f"update the manifest {path}") from err
    finally:
        lock.release()


def _saved_aside(path: Path) -> None:
    aside = path.with_name(path.name + ".unreadable")
    try:
        os.replace(path, aside)
    except OSError as err:
        raise cache_failure(err, f"keep the unreadable manifest {path} aside") from err
    print(f"warning: kept the old manifest as {aside}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------
# Removing what one name alone uses


@dataclass
class Removal:
    """What `remove` deleted, and what it kept and why."""

    deleted: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)  # snapshot files of the same repos that no entry records
    freed_bytes: int = 0


def remove(root: Path, name: str) -> Removal:
    """Delete the files of every manifest entry of `name` that nothing else uses: the snapshot link unless
    another entry names the same repo, commit and file; the blob unless another entry or any snapshot link
    in the repo still uses it; its partial download; refs and folders that this leaves dangling or empty. A file
    another tool put in the cache (an adopted entry) is not vitamin's to delete: it stays, and so does its entry.

    Only links that point at their blob and blobs that are plain files are vitamin's to delete; anything else
    is kept and reported. A manifest with entries vitamin cannot read deletes nothing: what they name might be
    shared. Runs under each blob's lock and then the manifest's (the order `vitamin pull` takes them in), so
    that it never pulls a file from under a running pull."""
    from contextlib import ExitStack

    from filelock import FileLock

    removal = Removal()
    first = read_manifest(root, warn=False).of(name)
    locks = sorted({confined(root, e.repo_cache(root).lock(e.etag)) for e in first})
    with ExitStack() as held:
        try:
            for lock in locks:
                lock.parent.mkdir(parents=True, exist_ok=True)
                held.enter_context(FileLock(str(lock), mode=lock_mode()))
        except OSError as err:
            raise cache_failure(err, f"lock the files of {name}") from err
        with updating_manifest(root) as manifest:
            if manifest.problems:
                raise CacheError(
                    f"nothing deleted: the manifest {manifest_path(root)} has entries vitamin cannot read, and the "
                    f"files they name may be shared with {name}",
                    hint="repair or delete those entries (the warning above names them), then run `vitamin rm` again",
                )
            locked = [e for e in manifest.of(name) if e.repo_cache(root).lock(e.etag) in locks and not e.adopted]
            others = [e for e in manifest.entries if e not in locked]
            try:
                for entry in locked:
                    _remove_entry(root, entry, others, removal)
            except OSError as err:
                raise cache_failure(err, f"delete the files of {name}") from err
            manifest.entries = others
            recorded = {e.snapshot(root) for e in others}
            for folder in {e.repo_cache(root).folder for e in locked}:
                for path in sorted((folder / "snapshots").glob("**/*")):
                    if (path.is_symlink() or path.is_file()) and path not in recorded:
                        removal.others.append(path)
    return removal


def _remove_entry(root: Path, entry: Pulled, others: list[Pulled], removal: Removal) -> None:
    repo = entry.repo_cache(root)
    blob = confined(root, repo.blob(entry.etag))
    snapshot = confined(root, repo.snapshot(entry.revision, entry.filename))
    sharing = [o.name for o in others if o.same_file(entry)]
    if sharing:
        removal.kept.append((snapshot, f"also pulled for {', '.join(sorted(set(sharing)))}"))
    elif snapshot.is_symlink() and os.path.abspath(snapshot.parent / os.readlink(snapshot)) == os.path.abspath(blob):
        _unlink(snapshot, removal)
    elif snapshot.exists() or snapshot.is_symlink():
        removal.kept.append((snapshot, "not a link to its blob: another tool made or changed it"))
    users = sorted({o.name for o in others if o.same_blob(entry)})
    links = repo.links_to(blob)
    if users:
        removal.kept.append((blob, f"also used by {', '.join(users)}"))
    elif links:
        removal.kept.append((blob, f"still linked from {links[0].relative_to(repo.folder)}"))
    elif blob.is_file() and not blob.is_symlink():
        removal.freed_bytes += blob.stat().st_size
        _unlink(blob, removal)
        partial = confined(root, repo.partial(entry.etag))
        record = ranges_record(partial)  # an interrupted pull's bytes, its ranges' record, and a record half-made
        for leftover in (partial, record, record.with_name(record.name + ".tmp")):
            if leftover.is_file() and not leftover.is_symlink():
                _unlink(leftover, removal)
    elif blob.is_symlink():
        removal.kept.append((blob, "a link, not a blob vitamin wrote"))
    tidy(root, repo, entry.revision, removal)


def _unlink(path: Path, removal: Removal) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as err:
        raise cache_failure(err, f"delete {path}") from err
    removal.deleted.append(path)


def tidy(root: Path, repo: RepoCache, commit: str, removal: Removal) -> None:
    """Remove the folders `remove` emptied, refs to the commit once its snapshot is gone, and the repo folder
    once nothing is left in it, so that the cache scanner sees no dangling ref and no half repo."""
    snapshots = repo.folder / "snapshots"
    commit_folder = snapshots / commit
    _remove_empty_folders(commit_folder, stop=snapshots)
    if not commit_folder.exists():
        for ref in sorted((repo.folder / "refs").glob("**/*")):
            if ref.is_file() and not ref.is_symlink() and ref.read_text(errors="replace").strip() == commit:
                _unlink(confined(root, ref), removal)
        _remove_empty_folders(repo.folder / "refs", stop=repo.folder)
    if not any(p.is_file() or p.is_symlink() for p in repo.folder.glob("**/*")):
        _remove_empty_folders(repo.folder, stop=root)
    elif repo.folder.is_dir():
        (repo.folder / "snapshots").mkdir(exist_ok=True)  # the scanner reads a repo folder without one as broken


def _remove_empty_folders(top: Path, stop: Path) -> None:
    """Remove `top` and the folders in it that are (or become) empty, deepest first; never `stop` or above."""
    if not top.is_dir() or top.is_symlink():
        return
    for folder in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
        if folder != stop and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


# ---------------------------------------------------------------------------------------------------
# What is on disk


def ranges_record(partial: Path) -> Path:
    """The record beside a partial file fetched as ranges: which bytes of each part are on disk."""
    return partial.with_name(partial.name + ".ranges")


def read_record(partial: Path, size: int | None = None) -> list[list[int]] | None:
    """The parts ([start, end, have]) of a ranged partial file (of this size, or of the size its record gives),
    or None when there is no record to trust (absent, damaged, of another size, parts that do not tile the file,
    or more than the file holds)."""
    import json

    from vitamin_cli.files import read_memo

    data = read_memo(ranges_record(partial), limit=2**20)
    try:
        record = json.loads(data) if data is not None else None
        wanted = record.get("size") if isinstance(record, dict) and size is None else size
        parts = (
            record["parts"]
            if isinstance(record, dict) and type(wanted) is int and record.get("size") == wanted
            else None
        )
        if not isinstance(parts, list) or not parts:
            return None
        edge = 0
        for part in parts:
            start, end, have = part
            if not all(type(v) is int for v in part) or start != edge or not 0 <= have <= end - start:
                return None
            edge = end
        on_disk = partial.stat().st_size if partial.is_file() else 0
        if edge != wanted or any(have and start + have > on_disk for start, _, have in parts):
            return None
        return [list(p) for p in parts]
    except (ValueError, TypeError, KeyError, OSError):
        return None


def prefix_of(parts: list[list[int]]) -> int:
    """The bytes on disk from the start of the file without a gap, by its parts ([start, end, have])."""
    edge = 0
    for start, end, have in parts:
        if start != edge:
            break
        edge = start + have
        if have < end - start:
            break
    return edge


def present_bytes(partial: Path) -> int:
    """The bytes of a partial download actually on disk: its ranges' when it is fetched as ranges (the file's
    length then runs past holes), else its length."""
    parts = read_record(partial)
    if parts is not None:
        return sum(have for _, _, have in parts)
    return partial.stat().st_size if partial.is_file() else 0


@dataclass(frozen=True)
class PartialDownload:
    repo: str
    repo_type: str
    path: Path
    size_bytes: int


def partial_downloads(root: Path) -> list[PartialDownload]:
    """Interrupted pulls that the next `vitamin pull` of the same file will continue."""
    found = []
    for path in sorted(root.glob(f"*s--*/blobs/*{PARTIAL_SUFFIX}")):
        kind, _, name = path.parent.parent.name.partition("s--")
        if kind in REPO_TYPES and path.is_file() and not path.is_symlink():
            found.append(PartialDownload(name.replace("--", "/", 1), kind, path, present_bytes(path)))
    return found
