"""Your own images, `folder:PATH`: one sub-folder per class, named after it (`_` reads as a space), images
inside, at any depth.

It reads the images torchvision's `ImageFolder` reads, in its order and with its labels: the classes are the
sub-folders in sorted order (linked folders too), labelled 0, 1, ... in that order; a class's images are the
files at any depth under its folder (through linked folders) whose lower-cased names end in one of
`IMG_EXTENSIONS`, the folders of a class in the sorted order of their paths, the files of a folder sorted by
name. Where it differs from `ImageFolder`:

- hidden names are skipped: a sub-folder whose name starts with `.` is no class, and a file or folder inside a
  class whose name starts with `.` (macOS's `._x.jpg`, `.thumbnails/`) is not read;
- a link back to the task's folder or to a folder the walk is already inside (a cycle) is not followed, so each
  folder on the way down is walked once (`ImageFolder` walks such a loop until the path grows too long);
- a folder that cannot be read fails the task naming it (`os.walk` skips it without a word);
- only regular files, once links are followed, are images: a broken link or a pipe named `x.jpg` is skipped
  (`ImageFolder` lists it, then fails on it or, for a pipe, waits forever when it opens it);
- a class folder without images is still a class (the classifier holds it, a model can predict it), where
  `ImageFolder` refuses the folder; the task needs 2 classes and an image in at least one of them;
- a class name is its folder's name with `_` read as a space; two folders whose names read the same once runs of
  spaces are one space, the ends are stripped, the text is in Unicode's composed form (NFC) and lower case (what
  open_clip's tokenizer does to a prompt), or a name that reads as blank, fail the task: the model could not
  tell those classes apart (`ImageFolder` takes any names, its labels are numbers).
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UsageError
from vitamin_cli.eval.data import DataError, Images, TaskData, batches, default_templates
from vitamin_cli.eval.tasks import Task, fingerprint, label_of

# torchvision.datasets.folder.IMG_EXTENSIONS (a test holds them equal)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

FolderId = tuple[int, int]  # (st_dev, st_ino) of a folder, through links


def check_local(task: Task) -> None:
    assert task.path is not None
    names = _class_names(task.path)
    if len(names) < 2:
        raise UsageError(
            f"{task.path} has {len(names)} class folder{'s' if len(names) != 1 else ''}: zero-shot "
            "classification needs at least 2",
            hint="make one sub-folder per class, named after it (`_` reads as a space), holding its images",
        )
    _check_class_names(task.path, names)
    if not any(files for name in names for _, files in _walk(task.path, name)):
        raise UsageError(
            f"{task.path} holds no images in its class folders",
            hint=f"images are the files in a class folder, at any depth, ending in {', '.join(IMG_EXTENSIONS)}",
        )


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
    names = _class_names(task.path)
    _check_class_names(task.path, names)
    images = [(image, label) for label, name in enumerate(names) for image in _images(task.path, name)]
    templates = override if override is not None else default_templates()
    source = str(templates_file) if override is not None else "default"
    classnames = [label_of(name) for name in names]
    revision = fingerprint(task.path, [image for image, _ in images], classnames)
    return TaskData(task, classnames, templates, source, revision, images=list(images))


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    return batches(Images(data.images, transform), batch_size, workers)


def _class_names(path: Path) -> list[str]:
    """The class folders' names, sorted, as `find_classes` has them (linked folders too), hidden ones left out."""
    with os.scandir(path) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and _is_dir(e))


def _check_class_names(path: Path, names: list[str]) -> None:
    """Refuse a class name that reads as blank, or two that the model would read as one."""
    seen: dict[str, str] = {}
    for name in names:
        read = _as_read(name)
        if not read:
            raise UsageError(f"{path}: class folder {name!r} reads as a blank class name", hint="rename it")
        if read in seen:
            first, second = _shown(seen[read], name)
            raise UsageError(
                f"{path}: class folders {first} and {second} both read as class {read!r}; the model could not tell "
                "them apart",
                hint="rename one of them",
            )
        seen[read] = name


def _shown(first: str, second: str) -> tuple[str, str]:
    """Two folder names, quoted; as escapes where they print alike (`é` composed or not)."""
    if unicodedata.normalize("NFC", first) == unicodedata.normalize("NFC", second):
        return ascii(first), ascii(second)
    return repr(first), repr(second)


def _as_read(name: str) -> str:
    """A class name as the model reads it: `_` as a space, runs of spaces as one, no spaces at the ends, composed
    Unicode (NFC), lower case."""
    return " ".join(unicodedata.normalize("NFC", label_of(name)).split()).lower()


def _images(root: Path, name: str) -> list[Path]:
    """A class's images, in `make_dataset`'s order: its folders sorted by path, each one's files by name."""
    folders = sorted(_walk(root, name))
    return [Path(os.path.join(folder, file)) for folder, files in folders for file in sorted(files)]


def _walk(root: Path, name: str) -> Iterator[tuple[str, list[str]]]:
    """Each folder under the class folder `name` (itself included, through links) with the names of its images;
    hidden names skipped, and a folder not entered again while inside it, nor the task's folder."""
    top = _folder_id(str(root))
    if top is None:
        return
    stack: list[tuple[str, frozenset[FolderId]]] = [(os.path.join(root, name), frozenset({top}))]
    while stack:
        folder, above = stack.pop()
        here = _folder_id(folder)
        if here is None or here in above:
            continue
        files, inside = [], above | {here}
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if _is_dir(entry):
                        stack.append((entry.path, inside))
                    elif entry.name.lower().endswith(IMG_EXTENSIONS) and _is_regular(entry):
                        files.append(entry.name)
        except OSError as err:  # `os.walk` would skip it: its images would be left out without a word
            raise DataError(f"{folder!r} cannot be read ({err.strerror})", hint="check its permissions") from None
        yield folder, files


def _folder_id(path: str) -> FolderId | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False
