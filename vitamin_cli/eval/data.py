"""An evaluation task's data: fetched from the Hub into its cache (as `vitamin pull` fetches checkpoints:
resumable, hashed, confined, offline-capable), or read from a local folder; and read in DataLoader workers.

A Hub task is a dataset repo in the webdataset layout (shared/EVAL.md): `classnames.txt`,
`zeroshot_classification_templates.txt`, `test/nshards.txt` and `test/0.tar ... test/N-1.tar`, each tar holding
samples by key: an image (`jpg`, `png`, `webp`, ...), `cls` (the label) and, for WILDS and fairness tasks, `npy`
(a metadata array). Every file is fetched at the commit the first one resolved to, so a task's data is one
revision.

Only `vitamin eval` and `vitamin pull --task` import this module, so it imports torch and numpy at the top
(pyproject.toml exempts it from the rule that keeps them out of light commands).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.eval.tasks import IMAGE_SUFFIXES, Task, fingerprint, label_of

CLASSNAMES = "classnames.txt"
TEMPLATES = "zeroshot_classification_templates.txt"
NSHARDS = "test/nshards.txt"
MAX_SHARDS = 100_000
MAX_TEXT_BYTES = 64 * 2**20  # class names, templates, nshards.txt
WDS_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


class DataError(VitaminError):
    """A task's data that cannot be used as it is (exit code 1)."""


@dataclass
class TaskData:
    """What an evaluation of one task needs, on local disk."""

    task: Task
    classnames: list[str]
    templates: list[str]  # each with `{c}` where the class name goes
    templates_source: str  # "task", "default" or the --templates file
    revision: str  # the dataset's commit, or a fingerprint of a local folder's files
    shards: list[Path] = field(default_factory=list)  # webdataset tars
    images: list[tuple[Path, int]] = field(default_factory=list)  # a folder task's (image, label)

    @property
    def templates_sha256(self) -> str:
        return hashlib.sha256("\n".join(self.templates).encode()).hexdigest()


def fetch(
    task: Task,
    hub_root: Path,
    *,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
    everything: bool = True,
) -> tuple[str, dict[str, Path]]:
    """Make a Hub task's files present in the cache, recorded in the manifest under `task:<key>`; returns the
    commit and each file's snapshot path. Without `everything`, only the small text files."""
    from vitamin_cli.hub.fetch import HubFile, record_for
    from vitamin_cli.hub.fetch import fetch as fetch_file

    assert task.repo is not None
    record = record_for(f"task:{task.key}")

    def one(filename: str, revision: str) -> Any:
        wanted = HubFile(task.repo or "", filename, revision, repo_type="dataset")
        bar = progress(f"{task.key}: {filename}") if progress is not None else None
        return fetch_file(
            wanted, hub_root, label=f"{task.key}: {filename}", on_present=record, network=network, progress=bar
        )

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
    templates_file: Path | None = None,
    network: Any = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> TaskData:
    """The task's class names, templates, revision and files, fetching what a Hub task needs."""
    override = read_templates(templates_file) if templates_file is not None else None
    if task.kind == "folder":
        assert task.path is not None
        return _folder_data(task, override, templates_file)
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
    classnames = _lines(root_files[CLASSNAMES])
    if len(classnames) < 2:
        raise DataError(f"{task.key}: {CLASSNAMES} names {len(classnames)} classes; zero-shot needs at least 2")
    if override is not None:
        templates, source = override, str(templates_file)
    elif root_files[TEMPLATES].is_file():
        templates, source = check_templates(_lines(root_files[TEMPLATES]), f"{task.key}: {TEMPLATES}"), "task"
    else:
        templates, source = default_templates(), "default"
    return TaskData(task, classnames, templates, source, revision, shards=shards)


def _folder_data(task: Task, override: list[str] | None, templates_file: Path | None) -> TaskData:
    assert task.path is not None
    folders = [p for p in sorted(task.path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
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
    return TaskData(task, classnames, templates, source, revision, images=images)


def shard_count(path: Path) -> int:
    text = "\n".join(_lines(path))
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_SHARDS:
        raise DataError(f"{path} should hold the number of shards, not {text[:40]!r}")
    return int(text)


def _lines(path: Path) -> list[str]:
    if not path.is_file():  # a folder, a pipe or a device is never read
        raise UsageError(f"{path} is not a regular file")
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise DataError(f"{path} is larger than a text file of a task can be ({MAX_TEXT_BYTES // 2**20} MiB)")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # bytes: text mode would also end a line at a lone "\r"
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start})", hint="save it as UTF-8") from None
    # Lines end at "\n" alone (a CRLF line's "\r" is stripped with the spaces): str.splitlines() would also
    # end one at U+2028, U+0085, a form feed or a vertical tab inside a class name, and shift every later label.
    return [line.strip() for line in text.split("\n") if line.strip()]


def read_templates(path: Path) -> list[str]:
    """A --templates file: one template per line, `{c}` where the class name goes."""
    try:
        lines = _lines(path)
    except OSError as err:
        raise UsageError(f"cannot read --templates {path}: {err.strerror}") from None
    except DataError as err:
        raise UsageError(f"--templates: {err.message}", hint=err.hint) from None
    return check_templates(lines, f"--templates {path}")


def check_templates(lines: list[str], where: str) -> list[str]:
    if not lines:
        raise UsageError(f"{where} holds no templates", hint="one per line, e.g. `a photo of a {c}.`")
    for number, line in enumerate(lines, 1):
        if "{c}" not in line:
            raise UsageError(
                f"{where}: template {number} ({line[:60]!r}) has no {{c}}",
                hint="write {c} where the class name goes, e.g. `a photo of a {c}.`",
            )
    return lines


def default_templates() -> list[str]:
    """open_clip's 80 ImageNet templates (OpenAI's), with `{c}` for the class name."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return [template("{c}") for template in OPENAI_IMAGENET_TEMPLATES]


# ---------------------------------------------------------------------------------------------------
# Reading images in DataLoader workers


@dataclass
class Sample:
    image: Any  # the preprocessed tensor, or None when the image does not decode
    label: int
    metadata: Any = None  # a WILDS or fairness task's metadata array


def decode(data: bytes, transform: Callable[[Any], Any]) -> Any:
    """An image's bytes through the model's preprocessing; None when they are not an image PIL can read."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return transform(image.convert("RGB"))
    except Exception:  # noqa: BLE001 - a broken image is counted and reported, never a crash
        return None


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


def loader(data: TaskData, transform: Callable[[Any], Any], batch_size: int, workers: int) -> Iterator[Any]:
    """Batches (images, labels, metadata, undecodable count); images are decoded in `workers` worker
    processes, shards split among them."""
    with_metadata = data.task.kind in ("wilds", "fairness")
    if data.images:
        dataset: Any = _FolderImages(data.images, transform)
    else:
        classes = len(data.classnames)
        columns = _metadata_columns(data.shards, classes) if with_metadata else None
        dataset = Shards(data.shards, transform, with_metadata, classes, columns)
        workers = min(workers, len(data.shards))
    batches = iter(
        torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=_collate,
            worker_init_fn=_one_thread,
            persistent_workers=False,
        )
    )
    try:
        yield from batches
    except DataError as err:  # from a worker, torch puts the worker's traceback into the message
        raise DataError(_worker_message(err.message)) from None
    finally:
        # The workers stop now (torch's own shutdown, which its finalizer calls): a task that fails leaves the
        # loader in a reference cycle, and the collector's shutdown of it stalls a later step for 5 s.
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def _worker_message(message: str) -> str:
    """A worker's error as it was raised there: the last line of the traceback torch wraps it in."""
    if "Original Traceback" not in message:
        return message
    last = message.rstrip().split("\n")[-1]
    return last.partition(": ")[2] or last


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers each keep to one core; the model has the rest


def _collate(samples: list[Sample]) -> tuple[Any, Any, Any, int]:
    good = [s for s in samples if s.image is not None]
    images = torch.stack([s.image for s in good]) if good else torch.empty(0)
    labels = torch.tensor([s.label for s in good], dtype=torch.long)
    metadata = np.stack([s.metadata for s in good]) if good and good[0].metadata is not None else None
    return images, labels, metadata, len(samples) - len(good)


class _FolderImages:
    """A folder task's images, as a map-style dataset."""

    def __init__(self, images: list[tuple[Path, int]], transform: Callable[[Any], Any]) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        path, label = self.images[index]
        try:
            data = path.read_bytes()
        except OSError:
            return Sample(None, label)
        return Sample(decode(data, self.transform), label)


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


def default_workers(device: str) -> int:
    """Decoding processes: on a GPU, every core but one (the model's feeder); on the CPU, half the cores, since
    the model itself needs the rest (on 2 cores: 1 worker keeps eval at 0.95x the bench's images/s, 2 at 0.75x)."""
    cores = os.cpu_count() or 1
    return max(1, min(16, cores - 1)) if device.startswith("cuda") else max(1, cores // 2)
