"""An evaluation task's data, whatever its layout: what every layout module (`vitamin_cli/eval/layouts/`)
shares: the `TaskData` it gives, its text files read safely, images read from files or zips and decoded in
DataLoader workers, and the fetching of a Hub task's files as `vitamin pull` fetches checkpoints (resumable,
hashed, confined, offline-capable), recorded as `task:KEY`, every file at one commit.

Only `vitamin eval` and `vitamin pull --task` import this module, so it imports torch and numpy at the top
(pyproject.toml exempts it from the rule that keeps them out of light commands).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.eval.tasks import Task

MAX_TEXT_BYTES = 64 * 2**20  # class names, templates, nshards.txt, a retrieval task's CSV
# An image's bytes (a file, a zip or tar member) and its decoded size (PIL's own bound on pixels, enforced
# rather than warned about): larger is refused before it is read or decoded, naming the image and the bound.
MAX_IMAGE_BYTES = 64 * 2**20
MAX_IMAGE_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS: about 268 MB of RGB


class DataError(VitaminError):
    """A task's data that cannot be used as it is (exit code 1)."""


# Where an image's bytes are: a file, or a member of a zip (the zip's path and the member's name).
ImageSource = Path | tuple[Path, str]


def read_image(source: ImageSource) -> bytes | None:
    """An image's bytes, from its file or its zip (kept open per process); None when they cannot be read. One
    over MAX_IMAGE_BYTES, or an encrypted or oddly compressed zip member, is a DataError naming it."""
    import zipfile

    try:
        if isinstance(source, Path):
            with source.open("rb") as file:
                return _bounded(file, os.fstat(file.fileno()).st_size, str(source))
        archive, member = source
        info = open_zip(archive).getinfo(member)
        check_member(archive, info)
        with open_zip(archive).open(info) as stream:
            return _bounded(stream, info.file_size, f"{archive.name}: member {member!r}")
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError):
        return None


def _bounded(stream: Any, size: int, what: str) -> bytes:
    """At most MAX_IMAGE_BYTES of a stream that says it holds `size` bytes; more is a DataError."""
    if size <= MAX_IMAGE_BYTES:
        data: bytes = stream.read(MAX_IMAGE_BYTES + 1)
        if len(data) <= MAX_IMAGE_BYTES:
            return data
        size = max(size, len(data))
    raise too_large(what, size)


def too_large(what: str, size: int) -> DataError:
    return DataError(f"{what} is {size_text(size)}, over the {size_text(MAX_IMAGE_BYTES)} an image may be; refused")


def size_text(count: int) -> str:
    """A size as a bound's message says it: `1.6 GiB`, `64 MiB`, `101 bytes`."""
    if count >= 2**30:
        return f"{count / 2**30:.1f} GiB"
    return f"{count / 2**20:.0f} MiB" if count >= 2**20 else f"{count} bytes"


def check_member(archive: Path, info: Any) -> None:
    """A zip member vitamin can read as an image: not encrypted, compressed as zipfile can read, of at most
    MAX_IMAGE_BYTES once inflated (a zip bomb is refused before a byte of it is inflated)."""
    import zipfile

    where = f"{archive.name}: member {info.filename[:200]!r}"
    if info.flag_bits & 0x1:
        raise DataError(f"{where} is encrypted; vitamin reads no passwords", hint="zip the images without one")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        raise DataError(f"{where} is compressed with method {info.compress_type}, which Python cannot read",
                        hint="zip the images again with deflate")  # fmt: skip
    if info.file_size > MAX_IMAGE_BYTES:
        raise too_large(where, info.file_size)


def source_name(source: ImageSource) -> str:
    """An image as a message names it: its path, or its zip's name and the member."""
    return repr(str(source)) if isinstance(source, Path) else f"{source[0].name}: member {source[1]!r}"


OPEN_ZIPS = 8
_zips: dict[tuple[int, Path], Any] = {}


def open_zip(path: Path) -> Any:
    """A zip kept open by the process that reads it: a DataLoader worker forked from a process that had it open
    opens its own (a shared file offset would mix the two processes' reads). At most OPEN_ZIPS stay open: a
    process that reads many tasks' zips (a sweep, a test suite) closes the oldest rather than run out of files."""
    import zipfile

    key = (os.getpid(), path)
    if key not in _zips:
        for old in [k for k in _zips if k[0] != key[0]]:
            del _zips[old]  # the parent's, inherited by a fork: not ours to close, never read here
        while len(_zips) >= OPEN_ZIPS:
            _zips.pop(next(iter(_zips))).close()
        _zips[key] = zipfile.ZipFile(path)
    return _zips[key]


@dataclass(frozen=True)
class TaskFile:
    """A file of a Hub task in the cache: the commit it was fetched at, and its snapshot path."""

    commit: str
    path: Path


def fetcher(
    task: Task, hub_root: Path, network: Any, progress: Callable[[str], Callable[[int, int], None] | None] | None
) -> Callable[[str, str], TaskFile]:
    """`one(filename, revision)`: a file of a Hub task fetched like a checkpoint and recorded for the task."""
    from vitamin_cli.checkpoints.owners import TaskOwner
    from vitamin_cli.checkpoints.store import Store

    store = Store(hub_root)
    owner = TaskOwner(task.key, task.repo or "")

    def one(filename: str, revision: str) -> TaskFile:
        bar = progress(owner.label_for(filename)) if progress is not None else None
        fetched = store.pull(owner, owner.wanted(filename, revision), network=network, progress=bar)
        return TaskFile(fetched.record.revision, fetched.path(store.root))

    return one


def batches(dataset: Any, batch_size: int, workers: int) -> Iterator[Any]:
    """A dataset of `Sample`s in batches from `workers` DataLoader workers; a DataError raised in a worker is
    raised here with its own message, and the workers stop when the caller does."""
    loaded = iter(
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
        yield from loaded
    except DataError as err:  # from a worker, torch puts the worker's traceback into the message
        raise _worker_message(err) from None
    finally:
        # The workers stop now (torch's own shutdown, which its finalizer calls): a task that fails leaves the
        # loader in a reference cycle, and the collector's shutdown of it stalls a later step for 5 s.
        shutdown = getattr(loaded, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


class Images:
    """Images by source, as a map-style dataset of `Sample`s (a folder's, a zip's)."""

    def __init__(self, images: list[tuple[ImageSource, int]], transform: Callable[[Any], Any]) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        source, label = self.images[index]
        data = read_image(source)
        return Sample(None if data is None else decode(data, self.transform, source_name(source)), label)


@dataclass
class TaskData:
    """What an evaluation of one task needs, on local disk."""

    task: Task
    classnames: list[str]
    templates: list[str]  # each with `{c}` where the class name goes
    templates_source: str  # "task", "default" or the --templates file
    revision: str  # the dataset's commit, or a fingerprint of a local folder's files
    shards: list[Path] = field(default_factory=list)  # webdataset tars
    images: list[tuple[ImageSource, int]] = field(default_factory=list)  # (image, label, or the image's index)
    captions: list[list[str]] = field(default_factory=list)  # a retrieval task's captions of each image
    instances: list[Any] = field(default_factory=list)  # a WinoGAViL task's instances (layouts.winogavil)

    @property
    def templates_sha256(self) -> str:
        return hashlib.sha256("\n".join(self.templates).encode()).hexdigest()


def lines(path: Path) -> list[str]:
    if not path.is_file():  # a folder, a pipe or a device is never read
        what = "no such file" if not path.exists() else "not a regular file"
        raise UsageError(f"{path}: {what}", hint="give a text file, one entry per line")
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
        found = lines(path)
    except OSError as err:
        raise UsageError(f"cannot read --templates {path}: {err.strerror}") from None
    except DataError as err:
        raise UsageError(f"--templates: {err.message}", hint=err.hint) from None
    return check_templates(found, f"--templates {path}")


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


def decode(data: bytes, transform: Callable[[Any], Any], name: str = "an image") -> Any:
    """An image's bytes through the model's preprocessing; None when they are not an image PIL can read. One of
    more than MAX_IMAGE_PIXELS is a DataError naming it, refused before its pixels are decoded."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, not warned about
            with Image.open(io.BytesIO(data)) as image:
                pixels = image.width * image.height
                if pixels <= MAX_IMAGE_PIXELS:
                    return transform(image.convert("RGB"))
    except Image.DecompressionBombError as err:  # PIL's own refusal, above twice its bound: its size in pixels
        pixels = int(next(iter(re.findall(r"\((\d+) pixels\)", str(err))), MAX_IMAGE_PIXELS * 2 + 1))
    except Exception:  # noqa: BLE001 - a broken image is counted and reported, never a crash
        return None
    raise DataError(f"{name} is {pixels / 1e6:,.1f} million pixels, over the {MAX_IMAGE_PIXELS / 1e6:.1f} million "
                    "an image may be decoded at; refused")  # fmt: skip


def _worker_message(err: DataError) -> DataError:
    """A worker's error as it was raised there, its hint too: the end of the traceback torch wraps it in."""
    message, marker = err.message, "DataError: "
    if "Original Traceback" not in message or marker not in message:
        return err
    text = message[message.rindex(marker) + len(marker) :].rstrip()
    said, _, hint = text.rpartition("\nhint: ") if "\nhint: " in text else (text, "", "")
    return DataError(said, hint=hint or None)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers each keep to one core; the model has the rest


def _collate(samples: list[Sample]) -> tuple[Any, Any, Any, int]:
    good = [s for s in samples if s.image is not None]
    images = torch.stack([s.image for s in good]) if good else torch.empty(0)
    labels = torch.tensor([s.label for s in good], dtype=torch.long)
    metadata = np.stack([s.metadata for s in good]) if good and good[0].metadata is not None else None
    return images, labels, metadata, len(samples) - len(good)


def default_workers(device: str) -> int:
    """Decoding processes: on a GPU, every core but one (the model's feeder); on the CPU, half the cores, since
    the model itself needs the rest (on 2 cores: 1 worker keeps eval at 0.95x the bench's images/s, 2 at 0.75x)."""
    cores = os.cpu_count() or 1
    return max(1, min(16, cores - 1)) if device.startswith("cuda") else max(1, cores // 2)


def fetch_named(
    task: Task,
    hub_root: Path,
    network: Any,
    progress: Callable[[str], Callable[[int, int], None] | None] | None,
    everything: bool,
) -> tuple[str, dict[str, Path]]:
    """A Hub task's files as tasks.yaml names them (`files:`): the first at the repo's main, the others at the
    commit it resolved to (all of them with `everything`, else only the first)."""
    if len(task.files) < 2:
        raise DataError(f"{task.key}: tasks.yaml should name its data files (files: [TABLE, ZIP])")
    one = fetcher(task, hub_root, network, progress)
    first = one(task.files[0], "main")
    paths = {task.files[0]: first.path}
    for name in task.files[1:] if everything else ():
        paths[name] = one(name, first.commit).path
    return first.commit, paths


def zip_files(path: Path) -> dict[str, Any]:
    """A zip's files, their `ZipInfo`s by name, read afresh; a member whose path leads outside the zip's folder
    (absolute, `..`, a drive) is a DataError naming it. Images are read in place from the zip, never unpacked."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:  # read afresh: the kept one may be of the file before an edit
            infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
    except (OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{path.name} is not a readable zip file: {err}") from None
    for name in infos:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or re.fullmatch(r"[A-Za-z]:", parts[0]):
            raise DataError(f"{path.name}: member {name[:200]!r} leads outside the zip's folder; refused")
    return infos


def zip_members(path: Path) -> dict[str, list[str]]:
    """A zip's files (`zip_files`) by base name, and by base name without its extension for images (a name that
    two members share maps to both)."""
    found: dict[str, list[str]] = {}
    for name in zip_files(path):
        base = name.replace("\\", "/").rpartition("/")[2]
        stem, dot, extension = base.rpartition(".")
        image = dot and stem and f".{extension.lower()}" in (".jpg", ".jpeg", ".png", ".webp")
        for key in (base, stem) if image else (base,):
            found.setdefault(key, []).append(name)
    return found


def csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number in the file, row) of a CSV file that a task reads: UTF-8, at most MAX_TEXT_BYTES, with the
    `required` columns (a missing one is a DataError listing the columns the file has)."""
    import csv

    if not path.is_file():
        raise DataError(f"{path} is not a regular file")
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise DataError(f"{path.name} is larger than a task's CSV can be ({MAX_TEXT_BYTES // 2**20} MiB)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path.name} is not UTF-8 text (byte {err.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    line = 1
    try:
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            shown = ", ".join(columns[:20]) or "none"
            raise DataError(f"{path.name} has no {' or '.join(missing)} column (its columns: {shown})")
        for row in reader:
            line = reader.line_num  # the row's last line: blank lines and cells of several lines counted
            yield line, row
    except csv.Error as err:
        raise DataError(f"{path.name} is not a readable CSV after line {line}: {err}") from None


def string_list(cell: Any) -> list[str] | None:
    """A cell holding a non-empty list of non-empty strings, as a JSON or Python list literal (quotes of either
    kind); None for anything else. Never evaluated as code: `ast.literal_eval` reads literals only."""
    import ast
    import json

    text = cell.strip() if isinstance(cell, str) else ""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return value
    return None
