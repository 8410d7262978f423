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
    check_member,
    csv_rows,
    fetch_named,
    string_list,
    zip_files,
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
    lines: dict[ImageSource, int] = {}
    for number, name, texts in rows:
        source = find(name)
        if source is None:
            raise DataError(f"{table.name}, line {number}: image {name[:120]!r} is not in {images.name}")
        if source in lines:
            raise DataError(f"{table.name}: rows name the same image, {name[:120]!r}, on lines {lines[source]} and "
                            f"{number}", hint="give each image one row, with all its captions")  # fmt: skip
        lines[source] = number
        sources.append((source, len(sources)))
        captions.append(texts)
    if len(sources) < 2:
        raise DataError(f"{table.name} holds {len(sources)} image{'s' * (len(sources) != 1)}; retrieval needs at "
                        "least 2")  # fmt: skip
    return TaskData(task, [], [], "none", revision, images=sources, captions=captions)


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    """Batches of the images in order; each image's label is its position (its captions' index)."""
    return batches(Images(data.images, transform), batch_size, workers)


def read_rows(table: Path) -> list[tuple[int, str, list[str]]]:
    """(line, file name, captions) of each row of a retrieval CSV; a missing column or cell, or a caption list that is
    not a non-empty list of strings, is a DataError naming the line."""
    rows = []
    for line, row in csv_rows(table, COLUMNS):
        name, raw = row.get("filename"), row.get("raw")
        where = f"{table.name}, line {line}"
        if not name or raw is None:
            missing = "filename" if not name else "raw"
            raise DataError(f"{where} has no {missing} cell", hint=f"give every row a {missing}, as the header says")
        captions = string_list(raw)
        if captions is None:
            raise DataError(f"{where}: the captions are not a list of strings ({raw[:80]!r})",
                            hint='write them as a list, e.g. ["a dog.", "a dog running."]')  # fmt: skip
        rows.append((line, name, captions))
    return rows


def finder(
    files: dict[str, ImageSource], where: str, *, also: dict[str, str] | None = None
) -> Callable[[str], ImageSource | None]:
    """`find(name)`: the image a CSV row names, among `files` (by their path relative to the images' folder).
    A name with a `/` is that relative path (or, through `also`, another path of the same file); a bare name is
    a base name, which must then be unique; a name leading outside the folder is refused."""
    by_base: dict[str, list[str]] = {}
    for path in files:
        by_base.setdefault(PurePosixPath(path).name, []).append(path)
    also = also or {}

    def find(wanted: str) -> ImageSource | None:
        wanted = wanted.replace("\\", "/")  # a name written on Windows
        path = PurePosixPath(wanted)
        if path.is_absolute() or ".." in path.parts:
            raise DataError(f"image {wanted[:120]!r} leads outside {where}; refused")
        if "/" in wanted:
            exact = path.as_posix()
            return files.get(exact) or files.get(also.get(exact, ""))
        found = by_base.get(path.name, [])
        if len(found) > 1:
            raise DataError(f"{where}: image {wanted[:120]!r} matches both {found[0]!r} and {found[1]!r}",
                            hint="name the image by its path in the CSV, e.g. " + repr(found[0]))  # fmt: skip
        return files[found[0]] if found else None

    return find


def _zip_finder(archive: Path) -> Callable[[str], ImageSource | None]:
    """Images among the zip's files, by path from the zip's top folder when all its files are under one (as
    the Hub's zips keep them), else from the zip's root; a member a row names is checked before anything runs
    (zip_files refuses one that leads outside; check_member an encrypted one or a bomb)."""
    infos = zip_files(archive)
    names = sorted(name for name in infos if not name.startswith("__MACOSX/"))
    paths = {name: name.replace("\\", "/") for name in names}  # a zip made on Windows may hold `top\\a.png`
    tops = {path.split("/")[0] for path in paths.values()}
    top = f"{tops.pop()}/" if len(tops) == 1 and all("/" in path for path in paths.values()) else ""
    files: dict[str, ImageSource] = {path[len(top) :]: (archive, name) for name, path in paths.items()}
    find = finder(files, archive.name, also={path: path[len(top) :] for path in paths.values()} if top else None)

    def checked(wanted: str) -> ImageSource | None:
        found = find(wanted)
        if isinstance(found, tuple):
            check_member(archive, infos[found[1]])
        return found

    return checked


def _folder_finder(folder: Path) -> Callable[[str], ImageSource | None]:
    return finder({p.relative_to(folder).as_posix(): p for p in _image_files(folder)}, folder.name)


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
