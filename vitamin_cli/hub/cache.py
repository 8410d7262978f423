"""The hub cache's layout: huggingface_hub's own (`models--org--name/{blobs,snapshots,refs}`), so open_clip, timm
and `hf cache` see what vitamin puts there, and vitamin sees what they put there.

This module knows paths, not owners: which files are vitamin's is `vitamin_cli.checkpoints.store`'s record. The
cache is shared with other tools and users, so:
- every path vitamin writes, links or deletes is computed from the cache root and checked (`outside`,
  `confined`) to stay inside it once symlinks are resolved; names from refs files, the server and vitamin's
  records are checked against the Hub's rules (`ids`) before they become paths; files are never opened for
  writing through a symlink;
- what is at a file's snapshot path is read in one place (`RepoCache.look`), so that every command gives the
  same answer about it, a folder on its way that leads out of the cache included.

Nothing here imports huggingface_hub: `vitamin ls --pulled` and `vitamin cache` stay light.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.files import read_memo, umask, write_atomic
from vitamin_cli.hub import ids

PARTIAL_SUFFIX = ".vitamin-partial"
REPO_TYPES = ("model", "dataset")
OUTSIDE_HINT = (
    "a folder inside the cache is a link to somewhere else: move it back into the cache, or use another --cache-dir"
)


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
    """An OSError met while using the cache, as a message that says which disk or file, and what to do."""
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


def outside(root: Path, path: Path) -> CacheError | None:
    """The error for the first folder on the way from the cache root to `path` that leads out of the cache once
    its links are resolved (None when none does): the same message, naming the same folder, whatever asks."""
    real_root = os.path.realpath(root)
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return CacheError(f"{path} is not in the cache {root}; vitamin does not touch it", hint=OUTSIDE_HINT)
    if _within(os.path.realpath(path.parent), real_root):
        return None  # the usual answer, in one look: the folder holding it resolves inside the cache
    folder = root
    for part in parts:
        folder = folder / part
        real = os.path.realpath(folder)
        if not _within(real, real_root):
            return CacheError(f"{folder} leads out of the cache {root} (to {real}); vitamin does not touch it",
                              hint=OUTSIDE_HINT)  # fmt: skip
    return None


def _within(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def confined(root: Path, path: Path) -> Path:
    """`path`, once checked to lie inside the cache root (or be vitamin's manifest or its lock beside it) after
    every symlink in its folders is resolved. The last part may itself be a link: vitamin replaces or unlinks a
    link, never writes through one."""
    beside = path.parent.resolve() == root.parent.resolve() and path.name.startswith(root.name + ".vitamin-manifest")
    problem = None if beside else outside(root, path)
    if problem is not None:
        raise problem
    return path


def points_at(link: Path, target: Path) -> bool:
    """Whether `link` is a symlink whose text leads to `target`: read, never followed."""
    return link.is_symlink() and os.path.abspath(link.parent / os.readlink(link)) == os.path.abspath(target)


def lock_mode() -> int:
    """Lock files as the user's umask allows, so that a group-shared cache stays usable by the group."""
    return 0o666 & ~umask()


# What a snapshot path holds, as every command reports it.
PRESENT = "present"  # a link to a plain blob file of the repo
GONE = "gone"  # nothing there, or a link whose blob is gone
OUTSIDE = "leads out"  # a folder on its way leads out of the cache
UNLINKED = "not a link to its blob"  # a file, or a link to something else than a blob of the repo


@dataclass(frozen=True)
class Look:
    """What is at one file's snapshot path in the cache: its `state`, and the blob it links to when present."""

    commit: str
    snapshot: Path
    state: str  # PRESENT, GONE, OUTSIDE or UNLINKED
    etag: str | None = None  # the blob of the repo it links to (PRESENT; GONE when that blob is gone)
    problem: CacheError | None = None  # when OUTSIDE: the folder on its way that leads out of the cache


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

    def look(self, commit: str, filename: str) -> Look:
        """What is at the snapshot path of a file at a commit; read only, never followed out of the cache."""
        snapshot = self.snapshot(commit, filename)
        problem = outside(self.root, snapshot) or outside(self.root, self.folder / "blobs" / "x")
        if problem is not None:
            return Look(commit, snapshot, OUTSIDE, problem=problem)
        if not snapshot.is_symlink():
            return Look(commit, snapshot, UNLINKED if snapshot.exists() else GONE)
        etag = Path(os.readlink(snapshot)).name
        blob = self.blob(etag) if ids.is_etag(etag) else None
        if blob is None or not points_at(snapshot, blob):
            return Look(commit, snapshot, UNLINKED)  # a link to something else, there or not
        if blob.is_symlink() or not blob.is_file():
            return Look(commit, snapshot, UNLINKED if blob.is_symlink() or blob.exists() else GONE, etag)
        return Look(commit, snapshot, PRESENT, etag)

    def look_at(self, revision: str, filename: str) -> Look | None:
        """`look` at the commit a revision points at in this cache; None when no commit is known for it."""
        commit = self.commit_for(revision)
        return self.look(commit, filename) if commit is not None else None

    def newest_commit(self, filename: str) -> str | None:
        """The commit of the newest snapshot of this file in the repo (a file fetched at a commit: no ref)."""
        snapshots = self.folder / "snapshots"
        try:
            found = sorted(
                (p.parent.lstat().st_mtime, p.relative_to(snapshots).parts[0]) for p in snapshots.glob(f"*/{filename}")
            )
        except OSError:
            return None
        return found[-1][1] if found else None

    def link(self, commit: str, filename: str, etag: str, revision: str) -> Path:
        """Link snapshots/<commit>/<filename> to the blob and refs/<revision> to the commit, as huggingface_hub does."""
        snapshot = confined(self.root, self.snapshot(commit, filename))
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(self.blob(etag), snapshot.parent)
        if snapshot.is_dir() and not snapshot.is_symlink():
            raise _not_a_file(snapshot, "the link to the file's blob")
        if not (snapshot.is_symlink() and os.readlink(snapshot) == target):
            tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.link")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            try:
                os.replace(tmp, snapshot)  # replaces a link or file at `snapshot`, never what it points to
            finally:
                tmp.unlink(missing_ok=True)
        if revision != commit and self.commit_for(revision) != commit:
            write_atomic(confined(self.root, self.ref(revision)), commit)
        return snapshot

    def links_to(self, blob: Path) -> list[Path]:
        """Snapshot links in this repo (made by any tool) that point at `blob`."""
        found = []
        for path in (self.folder / "snapshots").glob("**/*"):
            if points_at(path, blob):
                found.append(path)
        return found

    def partial_path(self, etag: str) -> Path:
        """The partial download of a blob, checked to be a plain file or nothing: a link there is refused (never
        measured or written through), and so is a pipe or a folder (opened, a pipe would block forever)."""
        partial = confined(self.root, self.partial(etag))
        try:
            info = os.lstat(partial)
        except FileNotFoundError:
            return partial
        except OSError as err:
            raise cache_failure(err, f"use {partial}") from err
        if stat.S_ISLNK(info.st_mode):
            raise cache_failure(OSError(errno.ELOOP, "symbolic link", str(partial)), f"use {partial}")
        if not stat.S_ISREG(info.st_mode):
            raise _not_a_file(partial, f"the partial download of {self.repo}")
        if info.st_nlink > 1:  # written, it would change the file of the same bytes under its other name too
            raise _not_a_file(partial, f"the partial download of {self.repo}", "a file with other names (hard links)")
        return partial


def kind_of(path: Path) -> str:
    """What a path that should be a plain file is instead, in words."""
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode):
        return "a folder"
    if stat.S_ISFIFO(info.st_mode):
        return "a pipe"
    return "a file" if stat.S_ISREG(info.st_mode) else "a special file"


def _not_a_file(path: Path, belongs: str, kind: str | None = None) -> CacheError:
    """The error for something else than vitamin's own file where `belongs` goes, with the command that
    removes it."""
    import shlex

    kind = kind or kind_of(path)
    remove = "rm -r" if kind == "a folder" else "rm"
    return CacheError(
        f"{path} is {kind}, where vitamin keeps {belongs}; vitamin does not write into it or delete it",
        hint=f"remove it ({remove} {shlex.quote(str(path))}) if nothing else needs it, and pull again",
    )


def _checked(name: str, ok: bool, what: str) -> str:
    if not ok:
        raise CacheError(f"{name[:80]!r} is not a {what} the Hub would send; vitamin does not make it a path")
    return name


# ---------------------------------------------------------------------------------------------------
# Deleting


def delete(root: Path, path: Path) -> bool:
    """Unlink a file or link inside the cache (never what a link points to); False when it was not there."""
    try:
        confined(root, path).unlink()
    except FileNotFoundError:
        return False
    except OSError as err:
        raise cache_failure(err, f"delete {path}") from err
    return True


def tidy(repo: RepoCache, commit: str, gone: Sequence[Path] | None = None) -> list[Path]:
    """Remove the folders a deletion emptied, refs to the commit once its snapshot is gone, and the repo folder
    once nothing is left in it, so that the cache scanner sees no dangling ref and no half repo; returns the
    refs deleted. With `gone` (a dry run: the files that would be deleted), only the refs that would be."""
    if gone is not None:
        left = [p for p in (repo.folder / "snapshots" / commit).glob("**/*") if p.is_symlink() or p.is_file()]
        if any(p not in gone for p in left):
            return []
        return _refs_to(repo, commit)
    deleted = []
    snapshots = repo.folder / "snapshots"
    commit_folder = snapshots / commit
    _remove_empty_folders(commit_folder, stop=snapshots)
    if not commit_folder.exists():
        deleted = [ref for ref in _refs_to(repo, commit) if delete(repo.root, ref)]
        _remove_empty_folders(repo.folder / "refs", stop=repo.folder)
    if not any(p.is_file() or p.is_symlink() for p in repo.folder.glob("**/*")):
        _remove_empty_folders(repo.folder, stop=repo.root)
    elif repo.folder.is_dir():
        (repo.folder / "snapshots").mkdir(exist_ok=True)  # the scanner reads a repo folder without one as broken
    return deleted


def _refs_to(repo: RepoCache, commit: str) -> list[Path]:
    """The repo's refs (plain files) that name the commit."""
    refs = sorted((repo.folder / "refs").glob("**/*"))
    return [r for r in refs if r.is_file() and not r.is_symlink() and r.read_text(errors="replace").strip() == commit]


def _remove_empty_folders(top: Path, stop: Path) -> None:
    """Remove `top` and the folders in it that are (or become) empty, deepest first; never `stop` or above."""
    if not top.is_dir() or top.is_symlink():
        return
    for folder in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
        if folder != stop and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


# ---------------------------------------------------------------------------------------------------
# Partial downloads


def ranges_record(partial: Path) -> Path:
    """The record beside a partial file fetched as ranges: which bytes of each part are on disk."""
    return partial.with_name(partial.name + ".ranges")


def leftovers(partial: Path) -> list[Path]:
    """A partial download's files: its bytes, its ranges' record, and a record half-written."""
    record = ranges_record(partial)
    return [partial, record, record.with_name(record.name + ".tmp")]


def read_record(partial: Path, size: int | None = None) -> list[list[int]] | None:
    """The parts ([start, end, have]) of a ranged partial file (of this size, or of the size its record gives),
    or None when there is no record to trust (absent, damaged, of another size, parts that do not tile the file,
    or more than the file holds)."""
    import json

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
    return partial.stat().st_size if partial.is_file() and not partial.is_symlink() else 0


@dataclass(frozen=True)
class PartialDownload:
    repo: str
    repo_type: str
    etag: str
    path: Path
    size_bytes: int  # on disk


def partial_downloads(root: Path) -> list[PartialDownload]:
    """Interrupted downloads in the cache (vitamin's, by their name), with the bytes each holds."""
    found = []
    for path in sorted(root.glob(f"*s--*/blobs/*{PARTIAL_SUFFIX}")):
        kind, _, name = path.parent.parent.name.partition("s--")
        etag = path.name.removesuffix(PARTIAL_SUFFIX)
        if kind in REPO_TYPES and ids.is_etag(etag) and path.is_file() and not path.is_symlink():
            found.append(PartialDownload(name.replace("--", "/", 1), kind, etag, path, present_bytes(path)))
    return found
