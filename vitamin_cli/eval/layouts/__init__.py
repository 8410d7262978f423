"""How a task's data is stored: one module per layout, named by the task's `layout` in tasks.yaml (or by the
prefix of your own data), each with the same functions:

- `check_local(task) -> Task`: your own folder (`folder:PATH`, `wds:PATH`, `retrieval:PATH`) checked before
  anything runs; a usage error says what is missing;
- `fetch(task, hub_root, *, network, progress, everything) -> (commit, paths)`: a Hub task's files, through
  the machinery of `vitamin pull`, all at one commit;
- `prepare(task, hub_root, templates, templates_file, network, progress) -> TaskData`: the task's data on local
  disk, read and checked;
- `loader(data, transform, batch_size, workers)`: batches of its images (`data.batches`).

A new layout is a new module here and a name in `tasks.LAYOUTS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from vitamin_cli.checkpoints.pull import PullResult
    from vitamin_cli.eval.data import TaskData
    from vitamin_cli.eval.tasks import Task


class Layout(Protocol):
    def check_local(self, task: Task) -> None: ...

    def fetch(
        self, task: Task, hub_root: Path, *, network: Any = None, progress: Any = None, everything: bool = True
    ) -> tuple[str, dict[str, Path]]: ...

    def prepare(
        self,
        task: Task,
        hub_root: Path,
        override: list[str] | None,
        templates_file: Path | None,
        network: Any = None,
        progress: Any = None,
    ) -> TaskData: ...

    def loader(
        self, data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int
    ) -> Iterator[Any]: ...


def module(layout: str) -> Layout:
    """The module of a layout (tasks.LAYOUTS)."""
    from vitamin_cli.eval.tasks import LAYOUTS

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}")
    return cast(Layout, importlib.import_module(f"vitamin_cli.eval.layouts.{layout}"))


def check_local(task: Task) -> None:
    """Your own data (`folder:PATH`, `wds:PATH`, `retrieval:PATH`) checked before anything runs."""
    if task.path is not None:
        module(task.layout).check_local(task)


def fetch(
    task: Task,
    hub_root: Path,
    *,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
    everything: bool = True,
) -> tuple[str, dict[str, Path]]:
    """Make a Hub task's files present in the cache, recorded in the manifest under `task:<key>`; returns the
    commit and each file's snapshot path. Without `everything`, only its small files."""
    assert task.repo is not None
    return module(task.layout).fetch(task, hub_root, network=network, progress=progress, everything=everything)


def pull(
    task: Task,
    hub_root: Path,
    *,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> PullResult:
    """`vitamin pull --task KEY` as a library call: a Hub task's files present and recorded, as one result for
    the task (its files summed; `downloaded` when any file was). Local data is a usage error."""
    from vitamin_cli.checkpoints.owners import TaskOwner
    from vitamin_cli.checkpoints.pull import PullResult
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.errors import UsageError

    if task.repo is None:
        raise UsageError(f"{task.key} is data of your own, on this disk: there is nothing to pull",
                         hint="`vitamin eval --task` reads it where it is")  # fmt: skip
    store, owner = Store(hub_root), TaskOwner(task.key, task.repo)
    before = {r.etag for r in store.records([owner], warn=False) if r.name == owner.name}
    commit, paths = fetch(task, hub_root, network=network, progress=progress)
    records = [r for r in store.records([owner], warn=False) if r.name == owner.name and r.revision == commit]
    return PullResult(
        name=owner.name,
        repo=task.repo,
        revision=commit,
        filename=f"{len(paths)} files",
        path=str(next(iter(paths.values())).parent),
        size_bytes=sum(r.size_bytes for r in records),
        status="downloaded" if {r.etag for r in records} - before else "cached",
    )


def prepare(
    task: Task,
    hub_root: Path,
    templates_file: Path | None = None,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> TaskData:
    """The task's data on local disk (its files fetched first for a Hub task), by its layout's module."""
    from vitamin_cli.eval.data import read_templates

    override = read_templates(templates_file) if templates_file is not None else None
    return module(task.layout).prepare(task, hub_root, override, templates_file, network, progress)


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    """Batches (images, labels, metadata, undecodable count) of the task's images, decoded in `workers`
    worker processes, by its layout's module."""
    return module(data.task.layout).loader(data, transform, batch_size, workers)
