"""The names the Hugging Face Hub accepts, checked before any of them becomes part of a path.

Repo ids, revisions, file names, commits and ETags come from zoo files, the command line, the server's
headers, `refs/` files and vitamin's manifest. Each one ends up as a folder or file name in the cache, so each
is checked here against the Hub's own rules (ASCII only where the Hub is ASCII only, `\\Z` rather than `$`, so
that a trailing newline is never accepted). A name that passes cannot climb out of the folder it is joined to.
"""

from __future__ import annotations

import re

_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REPO_RE = re.compile(rf"{_REPO_PART}/{_REPO_PART}\Z")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}\Z")
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
# A git ref name, limited to the characters Hub branches and tags use (`main`, `v1.0`, `refs/pr/1`).
_REF_PART_RE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*\Z")
REPO_ID_MAX = 96  # the Hub's limit
NAME_MAX_BYTES = 255  # one path component, on every file system the cache lives on
PATH_MAX_BYTES = 1024


def is_commit(text: object) -> bool:
    return isinstance(text, str) and bool(_COMMIT_RE.match(text))


def is_sha256(text: object) -> bool:
    return isinstance(text, str) and bool(_SHA256_RE.match(text))


def is_etag(text: object) -> bool:
    """An ETag the cache can name a blob after: an LFS file's sha256, or a plain file's git blob id."""
    return is_sha256(text) or is_commit(text)


def repo_problem(repo: object) -> str | None:
    """Why a repo id is not one the Hub accepts (`org/name`), or None when it is."""
    if not isinstance(repo, str) or not _REPO_RE.match(repo):
        return "expected a Hugging Face repo id like 'org/name' (ASCII letters, digits, '-', '_' and '.')"
    if "--" in repo or ".." in repo:
        return "'--' and '..' are not allowed in a Hugging Face repo id"
    if len(repo) > REPO_ID_MAX:
        return f"a Hugging Face repo id has at most {REPO_ID_MAX} characters"
    if repo.endswith(".git"):
        return "a Hugging Face repo id does not end in '.git'"
    return None


def revision_problem(revision: object) -> str | None:
    """Why a revision is not a branch, tag or commit name the Hub accepts, or None when it is."""
    if not isinstance(revision, str) or not revision:
        return "expected a branch, tag or commit"
    if len(revision.encode()) > NAME_MAX_BYTES:
        return f"a revision has at most {NAME_MAX_BYTES} bytes"
    for part in revision.split("/"):
        if not _REF_PART_RE.match(part) or part.endswith(".lock") or ".." in part:
            return (
                "a revision is a branch, tag or commit: ASCII letters, digits and '. _ + -', parts joined by '/', "
                "no part empty, starting with '.', containing '..' or ending in '.lock'"
            )
    return None


def filename_problem(filename: object) -> str | None:
    """Why a file name is not a relative path inside a repo, or None when it is."""
    if not isinstance(filename, str) or not filename:
        return "expected a file path inside the repo"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in filename):
        return "a file path has no control characters (NUL, newline, ...)"
    if filename.startswith("/") or "\\" in filename:
        return "expected a relative file path inside the repo, without '\\' or a leading '/'"
    parts = filename.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "expected a relative file path inside the repo, without empty, '.' or '..' parts"
    if any(len(part.encode()) > NAME_MAX_BYTES for part in parts):
        return f"each part of a file path has at most {NAME_MAX_BYTES} bytes"
    if len(filename.encode()) > PATH_MAX_BYTES:
        return f"a file path has at most {PATH_MAX_BYTES} bytes"
    return None
