"""WinoGAViL's plain files on the Hub (`nlphuji/winogavil`, shared/EVAL.md), read without the repo's loading
script: the two files tasks.yaml names, an annotations CSV (one row per instance: `cue`; `candidates` and
`associations`, each a list literal of image names; optionally `num_associations` and `num_candidates`) and a
zip of the images, kept under a folder in it. A candidate's name is matched to the member of the zip with that
base name, with or without an image extension.

The loader gives each distinct candidate image once, labelled by its index in `TaskData.images`: the same
images come back in many instances, and the kind (`kinds/winogavil.py`) scores every instance from those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
from vitamin_cli.eval.tasks import Task

REQUIRED = ("cue", "candidates", "associations")


@dataclass(frozen=True)
class Instance:
    """One WinoGAViL instance: the cue, its candidate images, and the indices (into `candidates`) of the ones
    associated with the cue."""

    cue: str
    candidates: list[ImageSource]
    true: list[int]


def check_local(task: Task) -> None:
    raise UsageError(f"{task.key} is read from the Hub only", hint="give --task misc/winogavil")


def fetch(
    task: Task,
    hub_root: Path,
    *,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
    everything: bool = True,
) -> tuple[str, dict[str, Path]]:
    """The annotations, then the zip of images at the commit the annotations resolved to (`everything`)."""
    _files(task)
    return fetch_named(task, hub_root, network, progress, everything)


def prepare(
    task: Task,
    hub_root: Path,
    override: list[str] | None,
    templates_file: Path | None,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> TaskData:
    """The instances, fetching the two files first. Templates play no part: the prompt is DataComp's
    (`metrics.winogavil_prompt`), so a --templates file is not used here."""
    if task.repo is None:
        raise UsageError(f"{task.key} is read from the Hub only", hint="give --task misc/winogavil")
    annotations, images = _files(task)
    revision, paths = fetch(task, hub_root, network=network, progress=progress)
    return read(task, paths[annotations], paths[images], revision)


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    """Each distinct candidate image once, labelled by its index in `data.images`."""
    return batches(Images(data.images, transform), batch_size, workers)


def read(task: Task, annotations: Path, images: Path, revision: str) -> TaskData:
    """The task's data from its annotations CSV and its zip of images: every instance, and every distinct
    candidate image (`images`, labelled by index) in the order the instances first name them."""
    members = zip_members(images)
    instances: list[Instance] = []
    for row, (cue, candidates, associations) in enumerate(_rows(annotations), 1):
        sources: list[ImageSource] = []
        for name in candidates:
            found = members.get(name)
            if found is None:
                example = next(iter(sorted({m for ms in members.values() for m in ms})), None)
                holds = f"; it holds e.g. {example!r}" if example else "; it holds no images"
                raise DataError(f"{annotations} row {row}: candidate {name!r} is not in {images}{holds}")
            if len(found) > 1:
                both = f"{found[0]!r} and {found[1]!r}"
                raise DataError(f"{annotations} row {row}: candidate {name!r} matches both {both} in {images}")
            sources.append((images, found[0]))
        instances.append(Instance(cue, sources, [candidates.index(a) for a in associations]))
    if not instances:
        raise DataError(f"{annotations} holds no instances")
    distinct = list(dict.fromkeys(source for instance in instances for source in instance.candidates))
    return TaskData(
        task, [], [], "none", revision, images=[(s, i) for i, s in enumerate(distinct)], instances=instances
    )


def _files(task: Task) -> tuple[str, str]:
    if len(task.files) != 2:
        raise DataError(
            f"{task.key}: the winogavil layout reads two files, the annotations CSV and the zip of images; "
            f"tasks.yaml names {list(task.files)}"
        )
    return task.files[0], task.files[1]


def _rows(path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """Each instance of the annotations CSV as (cue, candidates, associations), checked."""
    for row, (_, record) in enumerate(csv_rows(path, REQUIRED), 1):
        yield _instance(record, f"{path.name} row {row}")


def _instance(record: dict[str, Any], where: str) -> tuple[str, list[str], list[str]]:
    cue = record.get("cue")
    if not isinstance(cue, str) or not cue.strip():
        raise DataError(f"{where} has no cue")
    candidates = _names(record.get("candidates"), "candidates", where)
    associations = _names(record.get("associations"), "associations", where)
    if len(set(candidates)) != len(candidates):
        raise DataError(f"{where}: its candidates name an image twice")
    if not associations or len(set(associations)) != len(associations):
        raise DataError(f"{where}: its associations must name one or more of its candidates, each once")
    stray = next((a for a in associations if a not in candidates), None)
    if stray is not None:
        raise DataError(f"{where}: association {stray[:80]!r} is not one of its candidates")
    for column, count in (("num_associations", len(associations)), ("num_candidates", len(candidates))):
        given = record.get(column)
        if given not in (None, "") and given.strip() != str(count):
            raise DataError(f"{where}: {column} is {given[:20]!r}, but the list has {count}")
    return cue, candidates, associations


def _names(cell: Any, column: str, where: str) -> list[str]:
    """A cell holding a list of image names (`data.string_list`)."""
    value = string_list(cell)
    if value is None:
        shown = repr(cell[:80]) if isinstance(cell, str) else "nothing"
        raise DataError(f"{where}: {column} is {shown}, not a list of image names")
    return value
