"""The evaluation tasks: DataComp's 40 as data (`tasks.yaml`, bundled and validated like zoo.yaml), the
suites behind the zoo's five accuracy columns, and a user's own data (`folder:PATH`, `wds:PATH`,
`retrieval:PATH`).

    tasks.load().get("vtab/cifar100")
    tasks.load().suite("vtab")           # the 13 tasks whose mean is the zoo's VTAB column
    tasks.load().resolve(["folder:~/pets"], [])
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vitamin_cli.errors import UsageError
from vitamin_cli.hub import ids
from vitamin_cli.yamlschema import Problem, Reader, choice, hub_name, line, optional, positive_int
from vitamin_cli.zoo import METRICS, suggest

SUITES = METRICS  # imagenet, avg38, dist_shift, vtab, retrieval: each a zoo column
# What a task measures: a module of vitamin_cli/eval/kinds/ each (wilds and fairness: classification with their
# own metrics). How its data is stored: a module of vitamin_cli/eval/layouts/ each.
KINDS = ("classification", "wilds", "fairness", "retrieval", "winogavil")
LAYOUTS = ("wds", "folder", "csvzip", "winogavil")
# Your own data: `PREFIX:PATH` -> (kind, layout).
LOCAL = {"folder": ("classification", "folder"), "wds": ("classification", "wds"), "retrieval": ("retrieval", "csvzip")}
# Keys of tasks DataComp has replaced; results under them are read but never counted in a column.
RETIRED = {
    "retrieval/flickr30k": "the whole Flickr30k (31,014 images), which DataComp replaced on 2023-05-15 by the "
    "1,000-image test split the zoo's numbers are on (retrieval/flickr_1k_test_image_text_retrieval)",
}
MAIN_METRICS = (
    "acc1",
    "mean_per_class_recall",
    "f1_macro",
    "acc_worst_region",
    "acc_top5_worst_group",
    "acc_worst_group",
    "mean_recall@1",
    "jaccard_score_10-12",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True)
class Task:
    """One evaluation task."""

    key: str  # DataComp's key (`vtab/cifar100`), or `folder:PATH` / `wds:PATH` / `retrieval:PATH`
    name: str
    kind: str  # KINDS: what is measured
    layout: str  # LAYOUTS: how the data is stored
    metric: str | None  # the main metric; None for the tasks that have none
    groups: tuple[str, ...]  # the zoo columns (suites) it counts towards
    repo: str | None  # a Hugging Face dataset repo; None for local data
    examples: int | None = None
    classes: int | None = None
    files: tuple[str, ...] = ()  # a Hub task's data files, where its layout does not fix their names
    path: Path | None = None  # local data


@dataclass(frozen=True)
class Registry:
    tasks: tuple[Task, ...]

    def get(self, key: str) -> Task:
        """A task by key (`imagenet1k`, `vtab/cifar100`), or local data by `folder:PATH`, `wds:PATH` or
        `retrieval:PATH`."""
        if key.partition(":")[0] in LOCAL and ":" in key:
            return local_task(key)
        found = {t.key.lower(): t for t in self.tasks}.get(key.strip().lower())
        if found is None:
            shown = key if len(key) <= 80 else key[:60] + "..."
            raise UsageError(f"unknown task '{shown}'", hint=_unknown_task_hint(key, [t.key for t in self.tasks]))
        return found

    def suite(self, name: str) -> list[Task]:
        """The tasks behind a zoo column, in the registry's order."""
        if name not in SUITES:
            hint = suggest(name[:200], list(SUITES), otherwise=f"the suites are {', '.join(SUITES)}")
            raise UsageError(f"unknown suite {name[:80]!r}", hint=hint)
        return [t for t in self.tasks if name in t.groups]

    def resolve(self, task_keys: Sequence[str], suites: Sequence[str]) -> list[Task]:
        """The tasks asked for, each once, in the order given (suites after single tasks); ImageNet 1k when
        nothing is asked for."""
        if not task_keys and not suites:
            return [self.get("imagenet1k")]
        keys = {t.key.lower() for t in self.tasks}
        for name in suites:
            if name not in SUITES and name.strip().lower() in keys:  # a task given as a suite
                raise UsageError(f"unknown suite {name[:80]!r}", hint=f"{name} is a task: give --task {name}")
        chosen: dict[str, Task] = {}
        for task in [*(self.get(k) for k in task_keys), *(t for s in suites for t in self.suite(s))]:
            chosen.setdefault(task.key, task)
        return list(chosen.values())


def _unknown_task_hint(key: str, keys: Sequence[str]) -> str:
    """What to give instead of an unknown task: a folder of your data with its prefix, a suite with --suite, or
    the keys closest to it; and where every key is listed."""
    name = key.strip()[:4096]
    listed = "`vitamin tasks` lists them"
    close = suggest(name[:200], keys, otherwise="")
    if name.lower() in SUITES:  # a suite given as a task (a folder of that name too: the suite is meant)
        return f"{name} is a suite: give --suite {name.lower()}" + (f"; or {close}" if close else "") + f" {listed}"
    for given in dict.fromkeys((name, name.partition(":")[2])):  # PATH, or `folders:PATH` and the like
        names = _folder_names(given)
        if names is not None:
            ways = [f"wds:{given} (the webdataset layout)"] if "classnames.txt" in names else []
            if any(n.lower().endswith(".csv") for n in names):
                ways.append(f"retrieval:{given} (a CSV of file names and captions beside the images)")
            ways.append(f"folder:{given} (one sub-folder of images per class)")
            return f"{given} is a folder: give --task " + ", or ".join(ways)
    return f"{close} {listed}" if close else f"{listed} (DataComp's keys, docs/eval.md)"


def _folder_names(given: str) -> list[str] | None:
    """What the folder `given` holds, when it is one."""
    try:
        path = Path(given).expanduser()
        return [p.name for p in path.iterdir()] if given and path.is_dir() else None
    except (OSError, RuntimeError, ValueError):  # RuntimeError: `~user` of no user
        return None


def local_task(spec: str) -> Task:
    """`folder:PATH` (one sub-folder of images per class), `wds:PATH` (the webdataset layout of a Hub task) or
    `retrieval:PATH` (a CSV of file names and captions beside a zip or a folder of the images); the layout's
    module checks what the folder holds (`layouts.check_local`)."""
    prefix, _, raw = spec.partition(":")
    path = Path(raw).expanduser()
    if not raw or not path.is_dir():
        raise UsageError(f"{spec[:120]}: no such folder", hint=f"give {prefix}:PATH, PATH a folder of your data")
    path = path.resolve()
    kind, layout = LOCAL[prefix]
    metric = "mean_recall@1" if kind == "retrieval" else "acc1"
    return Task(f"{prefix}:{path}", path.name, kind, layout, metric, (), None, path=path)


def bundled_path() -> Path:
    return Path(__file__).with_name("tasks.yaml")


def keys() -> list[str]:
    """The bundled tasks' keys, in order, read from the file's `- key:` lines without parsing or validating it:
    for shell completion, which must stay fast (`load()` validates the whole file)."""
    return re.findall(r"^  - key: *(\S+) *$", bundled_path().read_text(encoding="utf-8"), flags=re.MULTILINE)


@functools.lru_cache(maxsize=1)
def load() -> Registry:
    """The bundled task registry, validated."""
    path = bundled_path()
    return _Parser(str(path), path.read_bytes()).parse()


# ---------------------------------------------------------------------------------------------------
# Validation


def _groups(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(v not in SUITES for v in value) or len(set(value)) != len(value):
        raise Problem(f"expected a list of distinct suites from {', '.join(SUITES)}, got {value!r}")
    return tuple(value)


def _files(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(ids.filename_problem(v) for v in value):
        raise Problem(f"expected a list of file names in the repo, got {value!r}")
    return tuple(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "key": line,
    "name": line,
    "kind": choice(KINDS),
    "layout": choice(LAYOUTS),
    "metric": choice((*MAIN_METRICS, None)),
    "groups": _groups,
    "repo": hub_name(ids.repo_problem),
    "examples": optional(positive_int),
    "classes": optional(positive_int),
}
_OPTIONAL: dict[str, Callable[[Any], Any]] = {"files": _files}


class _Parser(Reader):
    def parse(self) -> Registry:
        top = self.mapping(self.root("'version' and 'tasks'"), None, required=("version", "tasks"), optional=())
        if self.value(top["version"], "version") != 1:
            raise self.fail(top["version"], "version", "expected 1")
        node = top["tasks"]
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, "tasks", "expected a non-empty list of tasks")
        tasks: list[Task] = []
        for item in node.value:
            fields = self.mapping(item, None, required=tuple(_CHECKS), optional=tuple(_OPTIONAL))
            values = self.checked({**_CHECKS, **_OPTIONAL}, fields, "", "task")
            task = Task(**values)
            if any(t.key == task.key for t in tasks):
                raise self.fail(fields["key"], "key", f"task '{task.key}' appears twice")
            if ("avg38" in task.groups) != (task.metric is not None):
                raise self.fail(fields["groups"], "groups", "avg38 holds exactly the tasks with a main metric")
            tasks.append(task)
        return Registry(tuple(tasks))


# The rules by which the layouts read local data; bumped when they change (2: keys, class folders and CSV names
# by full path), so that results saved under a revision of the old rules are measured again.
READER_RULES = 2


def fingerprint(root: Path, files: Iterable[Path], classnames: Iterable[str] = ()) -> str:
    """A local data folder's revision: a hash of the rules it is read by, the files a task reads (names, sizes
    and modification times, through any links) and its class names."""
    import hashlib

    digest = hashlib.sha256(f"rules {READER_RULES}\n".encode() + "\0".join(classnames).encode() + b"\n")
    for file in sorted(files):
        try:
            stat = file.stat()
        except OSError:
            continue  # a file that vanished: the reader reports it
        digest.update(f"{file.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "files-" + digest.hexdigest()[:16]


def label_of(folder_name: str) -> str:
    """A class name from its folder's name: `_` reads as a space."""
    return folder_name.replace("_", " ")
