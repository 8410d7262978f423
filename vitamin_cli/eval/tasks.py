"""The evaluation tasks: DataComp's 40 as data (`tasks.yaml`, bundled and validated like zoo.yaml), the
suites behind the zoo's five accuracy columns, and a user's own data (`folder:PATH`, `wds:PATH`).

    tasks.load().get("vtab/cifar100")
    tasks.load().suite("vtab")           # the 13 tasks whose mean is the zoo's VTAB column
    tasks.load().resolve(["folder:~/pets"], [])
"""

from __future__ import annotations

import functools
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
KINDS = ("classification", "wilds", "fairness", "retrieval", "winogavil", "folder")
EVALUATED = ("classification", "wilds", "fairness", "folder")  # retrieval and WinoGAViL: not yet
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

    key: str  # DataComp's key (`vtab/cifar100`), or `folder:PATH` / `wds:PATH`
    name: str
    kind: str
    metric: str | None  # the main metric; None for the tasks that have none
    groups: tuple[str, ...]  # the zoo columns (suites) it counts towards
    repo: str | None  # a Hugging Face dataset repo; None for local data
    examples: int | None = None
    classes: int | None = None
    path: Path | None = None  # local data

    @property
    def evaluated(self) -> bool:
        """Whether vitamin can evaluate this task yet."""
        return self.kind in EVALUATED

    @property
    def why_not(self) -> str:
        return (
            f"{self.name} ({self.key}) comes in the Hugging Face datasets format, which vitamin does not read yet; "
            "the columns that include it are marked incomplete"
        )


@dataclass(frozen=True)
class Registry:
    tasks: tuple[Task, ...]

    def get(self, key: str) -> Task:
        """A task by key (`imagenet1k`, `vtab/cifar100`), or local data by `folder:PATH` or `wds:PATH`."""
        if key.startswith(("folder:", "wds:")):
            return local_task(key)
        found = {t.key.lower(): t for t in self.tasks}.get(key.strip().lower())
        if found is None:
            shown = key if len(key) <= 80 else key[:60] + "..."
            hint = suggest(key[:200], [t.key for t in self.tasks])
            if hint.startswith("run `vitamin ls`"):
                hint = "`vitamin eval --help` lists the suites; the keys are DataComp's (docs/eval.md)"
            raise UsageError(f"unknown task '{shown}'", hint=hint)
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
        chosen: dict[str, Task] = {}
        for task in [*(self.get(k) for k in task_keys), *(t for s in suites for t in self.suite(s))]:
            chosen.setdefault(task.key, task)
        return list(chosen.values())


def local_task(spec: str) -> Task:
    """`folder:PATH` (one sub-folder of images per class) or `wds:PATH` (the webdataset layout of a Hub task)."""
    kind, _, raw = spec.partition(":")
    path = Path(raw).expanduser()
    if not raw or not path.is_dir():
        raise UsageError(f"{spec[:120]}: no such folder", hint=f"give {kind}:PATH, PATH a folder of your data")
    path = path.resolve()
    if kind == "folder":
        classes = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        if len(classes) < 2:
            raise UsageError(
                f"{path} has {len(classes)} class folder{'s' if len(classes) != 1 else ''}: zero-shot "
                "classification needs at least 2",
                hint="make one sub-folder per class, named after it (`_` reads as a space), holding its images",
            )
        if not any(f.suffix.lower() in IMAGE_SUFFIXES for c in classes for f in c.iterdir()):
            raise UsageError(f"{path} holds no images in its class folders", hint=f"images end in {IMAGE_SUFFIXES}")
        return Task(f"folder:{path}", path.name, "folder", "acc1", (), None, classes=len(classes), path=path)
    for needed in ("classnames.txt", "test/nshards.txt"):
        if not (path / needed).is_file():
            raise UsageError(f"{path} is not in the webdataset layout: no {needed}", hint="docs/eval.md shows it")
    return Task(f"wds:{path}", path.name, "classification", "acc1", (), None, path=path)


def bundled_path() -> Path:
    return Path(__file__).with_name("tasks.yaml")


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


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "key": line,
    "name": line,
    "kind": choice(KINDS[:-1]),
    "metric": choice((*MAIN_METRICS, None)),
    "groups": _groups,
    "repo": hub_name(ids.repo_problem),
    "examples": optional(positive_int),
    "classes": optional(positive_int),
}


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
            fields = self.mapping(item, None, required=tuple(_CHECKS), optional=())
            values = self.checked(_CHECKS, fields, "", "task")
            task = Task(**values)
            if any(t.key == task.key for t in tasks):
                raise self.fail(fields["key"], "key", f"task '{task.key}' appears twice")
            if ("avg38" in task.groups) != (task.metric is not None):
                raise self.fail(fields["groups"], "groups", "avg38 holds exactly the tasks with a main metric")
            tasks.append(task)
        return Registry(tuple(tasks))


def fingerprint(root: Path, files: Iterable[Path], classnames: Iterable[str] = ()) -> str:
    """A local data folder's revision: a hash of the files a task reads (names, sizes and modification times,
    through any links) and its class names."""
    import hashlib

    digest = hashlib.sha256("\0".join(classnames).encode() + b"\n")
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
