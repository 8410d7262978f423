"""The webdataset layout of the Hub's task repos (shared/EVAL.md), and of `wds:PATH`: `classnames.txt`,
`zeroshot_classification_templates.txt`, `test/nshards.txt` and `test/0.tar ... test/N-1.tar`, each tar holding
samples by key: an image (`jpg`, `png`, `webp`, ...), `cls` (the label) and, for WILDS and fairness tasks,
`npy` (a metadata array, never unpickled)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitamin_cli.errors import UsageError
from vitamin_cli.eval.data import (
    DataError,
    Sample,
    TaskData,
    batches,
    check_templates,
    decode,
    default_templates,
    fetcher,
    lines,
)
from vitamin_cli.eval.tasks import Task, fingerprint

CLASSNAMES = "classnames.txt"
TEMPLATES = "zeroshot_classification_templates.txt"
NSHARDS = "test/nshards.txt"
MAX_SHARDS = 100_000
WDS_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def check_local(task: Task) -> None:
    assert task.path is not None
    for needed in (CLASSNAMES, NSHARDS):
        if not (task.path / needed).is_file():
            raise UsageError(f"{task.path} is not in the webdataset layout: no {needed}", hint="docs/eval.md shows it")


def fetch(
    task: Task,
    hub_root: Path,
    *,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
    everything: bool = True,
) -> tuple[str, dict[str, Path]]:
    one = fetcher(task, hub_root, network, progress)
    first = one(CLASSNAMES, "main")
    commit = first.commit
    paths = {CLASSNAMES: first.path}
    for name in (TEMPLATES, NSHARDS):
        paths[name] = one(name, commit).path
    if everything:
        for shard in range(shard_count(paths[NSHARDS])):
            name = f"test/{shard}.tar"
            paths[name] = one(name, commit).path
    return commit, paths


def prepare(
    task: Task,
    hub_root: Path,
    override: list[str] | None,
    templates_file: Path | None,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> TaskData:
    """The task's class names, templates, revision and shards, fetching what a Hub task needs."""
    if task.repo is not None:
        revision, paths = fetch(task, hub_root, network=network, progress=progress)
        root_files = {name: paths[name] for name in (CLASSNAMES, TEMPLATES, NSHARDS)}
        shards = [paths[f"test/{i}.tar"] for i in range(shard_count(root_files[NSHARDS]))]
    else:
        assert task.path is not None
        root_files = {name: task.path / name for name in (CLASSNAMES, TEMPLATES, NSHARDS)}
        shards = [task.path / f"test/{i}.tar" for i in range(shard_count(root_files[NSHARDS]))]
        missing = [s for s in shards if not s.is_file()]
        if missing:
            raise UsageError(f"{task.path}: {len(missing)} shards are missing, {missing[0]} first")
        revision = fingerprint(task.path, [*root_files.values(), *shards])
    classnames = lines(root_files[CLASSNAMES])
    if len(classnames) < 2:
        raise DataError(f"{task.key}: {CLASSNAMES} names {len(classnames)} classes; zero-shot needs at least 2")
    if override is not None:
        templates, source = override, str(templates_file)
    elif root_files[TEMPLATES].is_file():
        templates, source = check_templates(lines(root_files[TEMPLATES]), f"{task.key}: {TEMPLATES}"), "task"
    else:
        templates, source = default_templates(), "default"
    return TaskData(task, classnames, templates, source, revision, shards=shards)


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    """Batches of the shards' samples, the shards split among the workers."""
    with_metadata = data.task.kind in ("wilds", "fairness")
    classes = len(data.classnames)
    columns = _metadata_columns(data.shards, classes) if with_metadata else None
    dataset = Shards(data.shards, transform, with_metadata, classes, columns)
    return batches(dataset, batch_size, min(workers, len(data.shards)))


def shard_count(path: Path) -> int:
    text = "\n".join(lines(path))
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_SHARDS:
        raise DataError(f"{path} should hold the number of shards, not {text[:40]!r}")
    return int(text)


def wds_samples(
    shards: list[Path],
    transform: Callable[[Any], Any],
    with_metadata: bool,
    classes: int,
    columns: int | None = None,
) -> Generator[Sample, None, None]:
    """The samples of these shards, in order: each key's image, `cls` and `npy` members. A shard that is cut
    short, a sample without a class number below `classes`, or (`with_metadata`) without a metadata row of
    `columns` numbers (of any length when None), is a DataError naming the shard and the sample."""
    for shard in shards:
        try:
            with tarfile.open(shard, mode="r|") as tar:  # a plain tar, as the layout says: sizes are on-disk
                yield from _grouped(tar, shard.stat().st_size, transform, with_metadata, classes, columns)
        except (tarfile.TarError, OSError) as err:
            raise DataError(f"{shard} is not a readable tar file: {err}") from None
        except DataError as err:
            raise DataError(f"{shard}: {err.message}") from None


def _grouped(
    tar: tarfile.TarFile,
    size: int,
    transform: Callable[[Any], Any],
    with_metadata: bool,
    classes: int,
    columns: int | None,
) -> Iterator[Sample]:
    current: str | None = None
    parts: dict[str, bytes] = {}
    for member in tar:
        if not member.isfile():
            continue
        key, _, extension = member.name.rpartition("/")[2].partition(".")
        stream = tar.extractfile(member)
        data = stream.read() if stream is not None else b""
        if len(data) != member.size:
            raise DataError(f"{member.name} is cut short ({len(data)} of {member.size} bytes)")
        if key != current and current is not None:
            yield _sample(current, parts, transform, with_metadata, classes, columns)
            parts = {}
        current = key
        parts[extension.lower()] = data
    if size < tar.offset + 2 * tarfile.BLOCKSIZE:  # the end-of-archive blocks start at tar.offset
        raise DataError("cut short: it ends without a tar's end-of-archive blocks")
    if current is not None:
        yield _sample(current, parts, transform, with_metadata, classes, columns)


def _sample(
    key: str,
    parts: dict[str, bytes],
    transform: Callable[[Any], Any],
    with_metadata: bool,
    classes: int,
    columns: int | None,
) -> Sample:
    text = parts.get("cls", b"").decode("ascii", errors="replace").strip()
    if not (text.isascii() and text.isdigit() and int(text) < classes):
        found = "no cls" if "cls" not in parts else f"cls {text[:20]!r}"
        raise DataError(f"sample {key[:80]!r} has {found}; a label is a class number from 0 to {classes - 1}")
    image = next((parts[e] for e in WDS_IMAGE_EXTENSIONS if e in parts), None)
    metadata = _metadata(key, parts, columns) if with_metadata else None
    return Sample(decode(image, transform) if image is not None else None, int(text), metadata)


def _metadata(key: str, parts: dict[str, bytes], columns: int | None) -> Any:
    """A WILDS or fairness sample's metadata: its `npy` member, one row of numbers (`columns` of them, when
    known), never unpickled. Anything else would stop the task with a traceback where the rows are stacked,
    or group the samples wrongly and give a wrong metric without a word."""
    sample = f"sample {key[:80]!r}"
    if "npy" not in parts:
        raise DataError(f"{sample} has no npy member: a WILDS or fairness task needs each sample's metadata")
    try:
        array = np.load(io.BytesIO(parts["npy"]), allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - untrusted bytes: an object array, a pickle, a cut header, garbage
        reason = str(err).split("\n")[0][:120] or type(err).__name__
        raise DataError(f"{sample} has an npy member that is not a plain NumPy array: {reason}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise DataError(f"{sample} has an npy member that is not a plain NumPy array")
    if array.dtype.kind not in "biuf":  # booleans, integers, floats: not text, objects, records or dates
        raise DataError(f"{sample} has metadata of dtype {array.dtype}; it must be numbers")
    if array.ndim != 1 or array.size == 0 or (columns is not None and array.shape != (columns,)):
        wanted = f"{columns} numbers, as the task's first sample has" if columns is not None else "at least 1 number"
        raise DataError(f"{sample} has metadata of shape {array.shape}; it must be one row of {wanted}")
    return array


def _metadata_columns(shards: list[Path], classes: int) -> int | None:
    """How many numbers the metadata row of the task's first sample holds, which every other sample's must
    hold too (read here, before the workers start, so that each of them checks against the same length)."""
    first = wds_samples(shards, lambda image: None, True, classes)
    try:
        sample = next(first, None)
    finally:
        first.close()
    return None if sample is None else len(sample.metadata)


class Shards(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """A webdataset task's shards, each worker reading every n-th shard."""

    def __init__(
        self,
        shards: list[Path],
        transform: Callable[[Any], Any],
        with_metadata: bool,
        classes: int,
        columns: int | None = None,
    ) -> None:
        self.shards, self.transform, self.with_metadata, self.classes = shards, transform, with_metadata, classes
        self.columns = columns

    def __iter__(self) -> Iterator[Sample]:
        info = torch.utils.data.get_worker_info()
        mine = self.shards if info is None else self.shards[info.id :: info.num_workers]
        return wds_samples(mine, self.transform, self.with_metadata, self.classes, self.columns)
