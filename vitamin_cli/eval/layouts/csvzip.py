"""Image-text pairs as the Hub's retrieval repos hold them (shared/EVAL.md), and as `retrieval:PATH`: a CSV with
one row per image, its `filename` and `raw` (its captions, a list literal in JSON or Python syntax), beside a
zip of the images (kept under a folder inside it) or, for your own data, a folder of them. Images are read in
place from the zip, never unpacked; only the two files the task names are fetched, never a repo's loading
script."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from vitamin_cli.errors import UsageError
from vitamin_cli.eval.data import (
    DataError,
    Images,
    ImageSource,
    TaskData,
    batches,
    csv_rows,
    fetch_named,
    string_list,
    zip_members,
)
from vitamin_cli.eval.tasks import IMAGE_SUFFIXES, Task, fingerprint

COLUMNS = ("filename", "raw")


def check_local(task: Task) -> None:
    assert task.path is not None
    _local_files(task.path)


def fetch(
    task: Task,
    hub_root: Path,
    *,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
    everything: bool = True,
) -> tuple[str, dict[str, Path]]:
    """The task's CSV, then its zip at the commit the CSV resolved to (`everything`)."""
    return fetch_named(task, hub_root, network, progress, everything)


def prepare(
    task: Task,
    hub_root: Path,
    override: list[str] | None,
    templates_file: Path | None,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> TaskData:
    """The task's images (by position) and each image's captions, every row's image found before anything
    is encoded."""
    if override is not None:
        raise UsageError(f"{task.key} is a retrieval task: --templates does not apply to it")
    if task.repo is not None:
        revision, paths = fetch(task, hub_root, network=network, progress=progress)
        table, images = paths[task.files[0]], paths[task.files[1]]
    else:
        assert task.path is not None
        table, images = _local_files(task.path)
        revision = fingerprint(task.path, [table, *([images] if images.is_file() else _image_files(images))])
    rows = read_rows(table)
    find = _zip_finder(images) if images.is_file() else _folder_finder(images)
    sources: list[tuple[ImageSource, int]] = []
    captions: list[list[str]] = []
    for number, (name, texts) in enumerate(rows, 2):  # line 1 is the header
        source = find(name)
        if source is None:
            raise DataError(f"{table.name}, line {number}: image {name[:120]!r} is not in {images.name}")
        sources.append((source, len(sources)))
        captions.append(texts)
    if len(sources) < 2:
        raise DataError(f"{table.name} holds {len(sources)} image; retrieval needs at least 2")
    return TaskData(task, [], [], "none", revision, images=sources, captions=captions)


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    """Batches of the images in order; each image's label is its position (its captions' index)."""
    return batches(Images(data.images, transform), batch_size, workers)


def read_rows(table: Path) -> list[tuple[str, list[str]]]:
    """(file name, captions) of each row of a retrieval CSV; a missing column, or a caption list that is not a
    non-empty list of strings, is a DataError naming the line."""
    rows = []
    for line, row in csv_rows(table, COLUMNS):
        captions = string_list(row["raw"])
        if captions is None:
            raise DataError(f"{table.name}, line {line}: the captions are not a list of strings ({row['raw'][:80]!r})")
        rows.append((row["filename"] or "", captions))
    return rows


def _zip_finder(archive: Path) -> Callable[[str], ImageSource | None]:
    """Images by base name among the zip's members (zip_members refuses one that leads outside)."""
    members = zip_members(archive)

    def find(wanted: str) -> ImageSource | None:
        found = members.get(PurePosixPath(wanted).name, [])
        if len(found) > 1:
            raise DataError(f"{archive.name}: image {wanted[:120]!r} matches both {found[0]!r} and {found[1]!r}")
        return (archive, found[0]) if found else None

    return find


def _folder_finder(folder: Path) -> Callable[[str], ImageSource | None]:
    files = {p.name: p for p in _image_files(folder)}
    return lambda wanted: files.get(PurePosixPath(wanted).name)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _local_files(path: Path) -> tuple[Path, Path]:
    """Your own pairs: the one CSV in the folder, and its images (the one zip beside it, else the folder)."""
    tables = sorted(path.glob("*.csv"))
    if len(tables) != 1:
        raise UsageError(
            f"{path} holds {len(tables)} CSV files; retrieval:PATH needs exactly one",
            hint="a CSV with `filename` and `raw` (a list of captions) columns, beside a zip or the images",
        )
    archives = sorted(path.glob("*.zip"))
    if len(archives) > 1:
        raise UsageError(f"{path} holds {len(archives)} zips; keep the one of the images")
    return tables[0], archives[0] if archives else path
