"""Who a file in the hub cache is kept for: a zoo model (its checkpoint) or an evaluation task (its data files).

The store (`checkpoints/store.py`) records files by their owner's `name`, built here and nowhere else: a
model's canonical name, or `task:KEY`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vitamin_cli.hub.remote import HubFile
    from vitamin_cli.zoo import Model

TASK_PREFIX = "task:"


@dataclass(frozen=True)
class ModelOwner:
    """A model of the zoo: its one checkpoint file, as zoo.yaml gives its weights now."""

    model: Model

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def label(self) -> str:
        return self.model.name

    def label_for(self, filename: str) -> str:
        return self.model.name

    @property
    def repo_type(self) -> str:
        return "model"

    def wanted(self, revision: str | None = None) -> HubFile:
        """The checkpoint to fetch: at `revision`, else the pinned one, else main; with the zoo's pins."""
        from vitamin_cli.hub.remote import HubFile

        w = self.model.weights
        assert w is not None, f"{self.name} has no public checkpoint"
        return HubFile(w.repo, w.filename, revision or w.revision or "main", sha256=w.sha256, size_bytes=w.size_bytes)

    def is_current(self, repo: str, repo_type: str, filename: str, commit: str, sha256: str) -> bool:
        """Whether a file is the model's checkpoint as the zoo gives it now: the same repo and file, and the pinned
        revision and sha256 where the zoo pins them."""
        w = self.model.weights
        return (
            w is not None
            and repo_type == "model"
            and (repo, filename) == (w.repo, w.filename)
            and w.revision in (None, commit)
            and w.sha256 in (None, sha256)
        )


@dataclass(frozen=True)
class TaskOwner:
    """An evaluation task of a Hub dataset repo: the files its layout fetches, at one commit."""

    key: str
    repo: str

    @property
    def name(self) -> str:
        return self.name_of(self.key)

    @staticmethod
    def name_of(key: str) -> str:
        """The name a task's files are recorded under: `task:KEY`."""
        return TASK_PREFIX + key

    @property
    def label(self) -> str:
        return self.key

    def label_for(self, filename: str) -> str:
        return f"{self.key}: {filename}"

    @property
    def repo_type(self) -> str:
        return "dataset"

    def wanted(self, filename: str, revision: str) -> HubFile:
        from vitamin_cli.hub.remote import HubFile

        return HubFile(self.repo, filename, revision, repo_type="dataset")


Owner = ModelOwner | TaskOwner


def task_key(name: str) -> str | None:
    """The task key of an owner's name (`task:KEY`), or None for a model's name."""
    return name[len(TASK_PREFIX) :] if name.startswith(TASK_PREFIX) else None


def pull_command(name: str) -> str:
    """The command that pulls an owner's files, by its name: `vitamin pull NAME` or `vitamin pull --task KEY`."""
    import shlex

    key = task_key(name)
    return f"vitamin pull --task {shlex.quote(key)}" if key is not None else f"vitamin pull {shlex.quote(name)}"
