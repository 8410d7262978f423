"""What a task measures: one module per kind, named by the task's `kind` in tasks.yaml (wilds and fairness are
classification with their own metrics), each with

    measure(result, loaded, data, settings, progress) -> None

filling `result` (its samples, metrics and main metric) from the model `loaded` as (model, preprocess,
tokenizer) on the task's `data` (`vitamin_cli.eval.data.TaskData`, from the task's layout). A failure of the
data or the model raises a VitaminError, which `run_task` below records. A new kind is a new module here and
a name in `tasks.KINDS`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from vitamin_cli.eval.data import TaskData
    from vitamin_cli.eval.results import TaskResult
    from vitamin_cli.eval.zeroshot import Checkpoint, EvalSettings, Progress


class Kind(Protocol):
    def measure(
        self,
        result: TaskResult,
        loaded: tuple[Any, Any, Any],
        data: TaskData,
        settings: EvalSettings,
        progress: Progress | None,
    ) -> None: ...


# Kinds measured by the module of another kind.
SAME_AS = {"wilds": "classification", "fairness": "classification"}


def module(kind: str) -> Kind:
    """The module that measures a kind of task (tasks.KINDS)."""
    from vitamin_cli.eval.tasks import KINDS

    if kind not in KINDS:
        raise ValueError(f"unknown kind of task {kind!r}")
    return cast(Kind, importlib.import_module(f"vitamin_cli.eval.kinds.{SAME_AS.get(kind, kind)}"))


def run_task(
    model_name: str,
    loaded: tuple[Any, Any, Any],
    checkpoint: Checkpoint,
    data: TaskData,
    settings: EvalSettings,
    progress: Progress | None = None,
    *,
    architecture: str,
) -> TaskResult:
    """Evaluate one model, `loaded` as (model, preprocess, tokenizer) and built from the architecture of this
    fingerprint (`models.arch.fingerprint`), on one task, by its kind's module; failures of the data or the
    model are recorded, not raised."""
    from vitamin_cli.errors import VitaminError
    from vitamin_cli.eval.zeroshot import started

    result = started(model_name, checkpoint, architecture, data, settings)
    try:
        module(data.task.kind).measure(result, loaded, data, settings, progress)
    except VitaminError as err:
        result.status, result.error = "failed", err.one_line()
    return result
