"""The webdataset layout of the Hub's task repos (shared/EVAL.md), and of `wds:PATH`: `classnames.txt`,
`zeroshot_classification_templates.txt`, `test/nshards.txt` and `test/0.tar ... test/N-1.tar`, each tar holding
samples by key: an image, `cls` (the label) and, for WILDS and fairness tasks, `npy` (a metadata array, never
unpickled).

A tar is read as webdataset (1.0.2) reads it: only regular files, the names it skips skipped (`__meta__`,
`__x__/...`); a member's key is its FULL name up to the first dot of its base name (`cat/0001.b.jpg`: key
`cat/0001`, extension `b.jpg`, lower-cased), a name with no dot in its base name or nothing before it skipped;
the consecutive members of one key are a sample, never across shards. The image is the first present of `webp`,
`png`, `jpg`, `jpeg`, as CLIP_benchmark takes it. What webdataset would refuse or read wrongly is a DataError
naming the shard and the key: an extension twice in a sample, a key whose members are not next to each other
(read as two samples), an extension naming one of webdataset's own fields, a sample without an image; so is a
member over MAX_MEMBER_BYTES, before it is read."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable, Container, Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitamin_cli.errors import UsageError
from vitamin_cli.eval.data import (
    MAX_IMAGE_BYTES,
    DataError,
    Sample,
    TaskData,
    batches,
    check_templates,
    decode,
    default_templates,
    fetcher,
    lines,
    size_text,
)
from vitamin_cli.eval.tasks import Task, fingerprint

CLASSNAMES = "classnames.txt"
TEMPLATES = "zeroshot_classification_templates.txt"
NSHARDS = "test/nshards.txt"
MAX_SHARDS = 100_000
# The image of a sample: the first present of these, as CLIP_benchmark's `.to_tuple(["webp", "png", "jpg", "jpeg"],
# "cls")` takes it (DataComp's evaluation reads the tasks with CLIP_benchmark).
WDS_IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg")
WANTED = frozenset({*WDS_IMAGE_EXTENSIONS, "cls", "npy"})  # the members read; a sample's others are skipped
# A member's bytes are read whole (a sample's parts are the members of one key, so a sample holds at most a
# few of them); a larger member is refused before it is read, naming it and this bound (an image's).
MAX_MEMBER_BYTES = MAX_IMAGE_BYTES
# webdataset's `base_plus_ext`: the key (the full name, folders included, up to the first dot of the base
# name) and the extension (the rest); a name it does not match is skipped.
KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
SKIPPED = re.compile(r"__[^/]*__($|/)")  # webdataset's tar_file_iterator skips these names (its `skip_meta`)
# The fields webdataset adds to each sample: a member with one of these extensions raises there, or is
# overwritten, or (`__bad__`) drops the sample without a word.
RESERVED_EXTENSIONS = frozenset({"__key__", "__url__", "__local_path__", "__bad__"})


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
        count = f"{len(classnames)} class{'es' * (len(classnames) != 1)}"
        raise DataError(f"{task.key}: {CLASSNAMES} names {count}; zero-shot needs at least 2")
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
    """The samples of these shards, in order (`records`): each key's image, `cls` and `npy` members. A shard
    that is cut short, or that webdataset would refuse or read wrongly, a sample without an image, without a
    class number below `classes`, or (`with_metadata`) without a metadata row of `columns` numbers (of any
    length when None), is a DataError naming the shard and the sample."""
    for shard in shards:
        try:
            _plain(shard)
            with tarfile.open(shard, mode="r|") as tar:  # a plain tar, as the layout says: sizes are on-disk
                yield from _grouped(tar, shard, transform, with_metadata, classes, columns)
        except (tarfile.TarError, OSError) as err:
            raise DataError(f"{shard} is not a readable tar file: {err}") from None
        except DataError as err:
            raise DataError(f"{shard}: {err.message}", hint=err.hint) from None


def _grouped(
    tar: tarfile.TarFile,
    shard: Path,
    transform: Callable[[Any], Any],
    with_metadata: bool,
    classes: int,
    columns: int | None,
) -> Iterator[Sample]:
    for key, parts in records(tar, wanted=WANTED):
        yield _sample(key, parts, transform, with_metadata, classes, columns)
    _ends_well(shard, tar.offset)


def _plain(shard: Path) -> None:
    """A shard compressed (gzip, bzip2, xz) is refused by name: read as a plain tar it would be garbage."""
    with shard.open("rb") as file:
        start = file.read(6)
    for magic, kind in ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ", "xz")):
        if start.startswith(magic):
            raise DataError(f"is {kind}-compressed; the layout's shards are plain tars",
                            hint=f"decompress it (`{kind} -d`) and name it .tar")  # fmt: skip


def _ends_well(shard: Path, offset: int) -> None:
    """Everything after the last member (`offset`, where tarfile stopped) must be the end-of-archive blocks and
    zeros: tarfile also stops without a word at a damaged header, or between two tars written one after the
    other, and every sample after it would be lost."""
    with shard.open("rb") as file:
        file.seek(offset)
        zeros = 0
        while chunk := file.read(1 << 20):
            if chunk.count(0) != len(chunk):
                at = offset + zeros + next(i for i, byte in enumerate(chunk) if byte)
                raise DataError(f"its members stop at byte {offset:,}, where a damaged header or a second tar "
                                f"begins (byte {at:,} is not zero); the samples after it would be lost",
                                hint="write the shard again")  # fmt: skip
            zeros += len(chunk)
    if zeros < 2 * tarfile.BLOCKSIZE:
        raise DataError("cut short: it ends without a tar's end-of-archive blocks")


def records(tar: tarfile.TarFile, wanted: Container[str] | None = None) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The samples of one open tar as webdataset groups them, each as its key and its members' bytes by
    (lower-cased) extension (only those of the `wanted` extensions are read, the others kept as b""). What
    webdataset would refuse or split is a DataError naming the key: an extension twice in a sample, an
    extension webdataset keeps for its own fields, a key whose members are not next to each other; so is a
    member over MAX_MEMBER_BYTES (before it is read) or cut short."""
    seen: set[str] = set()  # the keys of this tar so far: one coming back would be a second sample
    key: str | None = None
    parts: dict[str, bytes] = {}
    for member in tar:
        tar.members = []  # type: ignore[attr-defined]  # as webdataset does: the headers read are not kept
        named = _key_and_extension(member)
        if named is None:
            continue
        if named[0] != key:
            if key is not None:
                yield key, parts
            key, parts = _new_key(named[0], seen), {}
        extension = _new_extension(key, named[1], parts, member.name)
        parts[extension] = _read(tar, member) if wanted is None or extension in wanted else b""
    if key is not None:
        yield key, parts


def _key_and_extension(member: tarfile.TarInfo) -> tuple[str, str] | None:
    """A member's key and lower-cased extension, or None where webdataset skips the member."""
    name = member.name
    if not member.isreg() or ("/" not in name and name.startswith("__") and name.endswith("__")):
        return None
    match = None if SKIPPED.match(name) else KEY_AND_EXTENSION.match(name)
    return None if match is None else (match.group(1), match.group(2).lower())


def _new_key(key: str, seen: set[str]) -> str:
    if key in seen:
        raise DataError(
            f"sample {key[:80]!r}: its members are not next to each other (another sample's come between), so "
            "webdataset would read it as two samples; write each sample's members together"
        )
    seen.add(key)
    return key


def _new_extension(key: str, extension: str, parts: dict[str, bytes], name: str) -> str:
    if extension in RESERVED_EXTENSIONS:
        raise DataError(f"sample {key[:80]!r} has the member {name[:200]!r}: {extension!r} names a field webdataset "
                        "adds to each sample, so it would refuse or lose the sample")  # fmt: skip
    if extension in parts:
        raise DataError(f"sample {key[:80]!r} has two {extension!r} members ({name[:200]!r} is the second), "
                        "which webdataset refuses")  # fmt: skip
    return extension


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """A member's bytes: refused unread over MAX_MEMBER_BYTES, a DataError when they are cut short."""
    if member.size > MAX_MEMBER_BYTES:
        raise DataError(f"member {member.name[:200]!r} is {size_text(member.size)}, over the "
                        f"{size_text(MAX_MEMBER_BYTES)} a member may be; refused")  # fmt: skip
    stream = tar.extractfile(member)
    data = stream.read() if stream is not None else b""
    if len(data) != member.size:
        raise DataError(f"{member.name} is cut short ({len(data)} of {member.size} bytes)")
    return data


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
    if image is None:
        found = ", ".join(sorted(parts)[:8])[:200]
        raise DataError(f"sample {key[:80]!r} has no image: none of {', '.join(WDS_IMAGE_EXTENSIONS)} among its "
                        f"members ({found})")  # fmt: skip
    metadata = _metadata(key, parts, columns) if with_metadata else None
    return Sample(decode(image, transform, f"sample {key[:80]!r}"), int(text), metadata)


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
