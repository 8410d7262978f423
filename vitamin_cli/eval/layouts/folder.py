"""Your own images, `folder:PATH`: one sub-folder per class, named after it (`_` reads as a space), images
inside."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UsageError
from vitamin_cli.eval.data import Images, TaskData, batches, default_templates
from vitamin_cli.eval.tasks import IMAGE_SUFFIXES, Task, fingerprint, label_of


def check_local(task: Task) -> None:
    assert task.path is not None
    classes = _class_folders(task.path)
    if len(classes) < 2:
        raise UsageError(
            f"{task.path} has {len(classes)} class folder{'s' if len(classes) != 1 else ''}: zero-shot "
            "classification needs at least 2",
            hint="make one sub-folder per class, named after it (`_` reads as a space), holding its images",
        )
    if not any(f.suffix.lower() in IMAGE_SUFFIXES for c in classes for f in c.iterdir()):
        raise UsageError(f"{task.path} holds no images in its class folders", hint=f"images end in {IMAGE_SUFFIXES}")


def fetch(task: Task, hub_root: Path, **_: Any) -> tuple[str, dict[str, Path]]:
    raise UsageError(f"{task.key} is a folder of your own, not a task on the Hub")


def prepare(
    task: Task,
    hub_root: Path,
    override: list[str] | None,
    templates_file: Path | None,
    network: Any = None,
    progress: Any = None,
) -> TaskData:
    assert task.path is not None
    folders = _class_folders(task.path)
    images = [
        (image, label)
        for label, folder in enumerate(folders)
        for image in sorted(folder.iterdir())
        if image.suffix.lower() in IMAGE_SUFFIXES and image.is_file()
    ]
    templates = override if override is not None else default_templates()
    source = str(templates_file) if override is not None else "default"
    classnames = [label_of(f.name) for f in folders]
    revision = fingerprint(task.path, [image for image, _ in images], classnames)
    return TaskData(task, classnames, templates, source, revision, images=list(images))


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    return batches(Images(data.images, transform), batch_size, workers)


def _class_folders(path: Path) -> list[Path]:
    return [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
