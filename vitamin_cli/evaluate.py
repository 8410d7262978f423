"""Zero-shot evaluation of a model on a task, as DataComp evaluates (shared/EVAL.md, docs/eval.md).

The model's own open_clip preprocessing; a zero-shot classifier from the task's class names and templates
(each template filled, encoded, normalised; their mean normalised), computed once per checkpoint, task, data
revision, templates and dtype and kept in vitamin's memo; images decoded in DataLoader workers; logits
100 × normalised image embedding @ classifier; the task's metrics (`vitamin_cli.metrics`), in percent.

`run_task` is the unit of work: one model on one task, a plain function of plain data, which a sweep runs in
this process or (issue 12) anywhere else.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli import interrupts
from vitamin_cli.errors import VitaminError
from vitamin_cli.results_file import TaskResult

if TYPE_CHECKING:
    from vitamin_cli.evaldata import TaskData

CLASSIFIER_VERSION = 1  # bump when the way classifiers are built changes, to drop kept ones

Progress = Callable[[int, int, float], None]  # (images done, images in all or 0 if unknown, seconds so far)


@dataclass(frozen=True)
class Settings:
    device: str = "cpu"
    dtype: str = "fp32"  # fp32: no autocast (DataComp's runs); bf16 or fp16: autocast to it
    batch_size: int | None = None  # None: as large as fits, from the device's default down
    workers: int = 1  # DataLoader worker processes decoding images

    @property
    def start_batch(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 256 if self.device.startswith("cuda") else 64


@dataclass(frozen=True)
class Checkpoint:
    """The weights a model is evaluated with: a pulled checkpoint or the user's own file."""

    path: Path
    sha256: str


def run_task(
    zoo_path: Path,
    model_name: str,
    checkpoint: Checkpoint,
    data: TaskData,
    settings: Settings,
    progress: Progress | None = None,
) -> TaskResult:
    """Evaluate one model on one task; failures of the data or the model are recorded, not raised."""
    task = data.task
    result = TaskResult(
        model=model_name,
        checkpoint_sha256=checkpoint.sha256,
        task=task.key,
        task_name=task.name,
        data_revision=data.revision,
        templates=data.templates_source,
        templates_sha256=data.templates_sha256,
        dtype=settings.dtype,
        device=settings.device,
        main_metric=task.metric,
    )
    try:
        _measure(result, zoo_path, model_name, checkpoint, data, settings, progress)
    except VitaminError as err:
        result.status, result.error = "failed", err.message
    return result


def _measure(
    result: TaskResult,
    zoo_path: Path,
    model_name: str,
    checkpoint: Checkpoint,
    data: TaskData,
    settings: Settings,
    progress: Progress | None,
) -> None:
    import numpy as np
    import torch

    from vitamin_cli import evaldata, metrics, precision

    model, preprocess, tokenizer = _loaded(zoo_path, model_name, checkpoint.path, settings.device)
    start = time.perf_counter()
    weights, result.classifier_cached = classifier(model, tokenizer, checkpoint, data, settings)
    result.classifier_s = time.perf_counter() - start
    autocast = settings.dtype != "fp32"
    top_k = min(5, len(data.classnames))
    tops, labels, metadata = [], [], []
    total = len(data.images) or (data.task.examples or 0)
    begin = time.perf_counter()
    encode = _Encoder(model, settings)
    for images, batch_labels, batch_metadata, undecodable in evaldata.loader(
        data, preprocess, settings.start_batch, settings.workers
    ):
        interrupts.check()  # starting the loader's workers can swallow a Ctrl-C
        result.undecodable += undecodable
        if len(batch_labels):
            with (
                torch.inference_mode(),
                torch.autocast(
                    settings.device.split(":")[0], dtype=precision.torch_dtype(settings.dtype), enabled=autocast
                ),
            ):
                features = encode(images.to(settings.device, non_blocking=True))
            logits = 100 * torch.nn.functional.normalize(features.float(), dim=-1) @ weights
            tops.append(logits.topk(top_k, dim=-1).indices.cpu().numpy())
            labels.append(batch_labels.numpy())
            if batch_metadata is not None:
                metadata.append(batch_metadata)
        result.samples += len(batch_labels)
        if progress is not None:
            progress(result.samples + result.undecodable, total, time.perf_counter() - begin)
    result.seconds = time.perf_counter() - begin
    result.images_per_s = result.samples / result.seconds if result.seconds else None
    if not result.samples:
        raise VitaminError(f"{data.task.key}: no image could be read ({result.undecodable} did not decode)")
    found_labels = np.concatenate(labels)  # each below the number of classes: the reader checks
    found = metrics.classification(
        data.task.kind,
        data.task.key,
        np.concatenate(tops),
        found_labels,
        np.concatenate(metadata) if metadata else None,
    )
    result.metrics = {k: v for k, v in found.items() if np.isfinite(v)}  # NaN: no group to measure; left out
    result.main = result.metrics.get(data.task.metric) if data.task.metric else None


class _Encoder:
    """The image tower on batches, halving the piece it runs at once when the device runs out of memory."""

    def __init__(self, model: Any, settings: Settings) -> None:
        self.model, self.piece = model, settings.start_batch
        self.backs_off = settings.batch_size is None

    def __call__(self, images: Any) -> Any:
        import torch

        from vitamin_cli.bench import is_batch_failure

        while True:
            try:
                return torch.cat([self.model.encode_image(part) for part in images.split(self.piece)])
            except Exception as err:
                if not self.backs_off or not is_batch_failure(err) or self.piece == 1:
                    raise
            self.piece = max(1, self.piece // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


@functools.lru_cache(maxsize=1)
def _loaded(zoo_path: Path, name: str, checkpoint: Path, device: str) -> tuple[Any, Any, Any]:
    """The model of the last task again, if the next task is on the same model: loading is the slow part."""
    from vitamin_cli import loading, zoo

    return loading.load(zoo.load(zoo_path), name, checkpoint=checkpoint, device=device, dtype="fp32")


def classifier(
    model: Any, tokenizer: Any, checkpoint: Checkpoint, data: TaskData, settings: Settings
) -> tuple[Any, bool]:
    """The zero-shot classifier (embed_dim × classes), and whether it came from the memo."""
    import torch
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    from vitamin_cli import precision
    from vitamin_cli.files import memo_dir

    identity = {
        "version": CLASSIFIER_VERSION,
        "checkpoint": checkpoint.sha256,
        "task": data.task.key,
        "revision": data.revision,
        "classnames": hashlib.sha256("\n".join(data.classnames).encode()).hexdigest(),
        "templates": data.templates_sha256,
        "dtype": settings.dtype,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    path = memo_dir() / "classifiers" / f"{key}.pt"
    try:
        kept = torch.load(path, map_location=settings.device, weights_only=True)
        if isinstance(kept, torch.Tensor) and kept.shape[1] == len(data.classnames):
            return kept.float(), True
    except (OSError, RuntimeError, EOFError, ValueError):
        pass
    templates = [functools.partial(_fill, template) for template in data.templates]
    with (
        torch.inference_mode(),
        torch.autocast(
            settings.device.split(":")[0], dtype=precision.torch_dtype(settings.dtype), enabled=settings.dtype != "fp32"
        ),
    ):
        weights = build_zero_shot_classifier(
            model, tokenizer, data.classnames, templates, num_classes_per_batch=10, device=settings.device
        ).float()
    try:
        import os
        import tempfile

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".classifier-", suffix=".tmp")
        os.close(fd)
        torch.save(weights.cpu(), tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # a memo that cannot be written only costs the next run its speed
    return weights, False


def _fill(template: str, classname: str) -> str:
    return template.replace("{c}", classname)


@dataclass(frozen=True)
class Job:
    """One model on one task, as plain data: `run_job` finds the data, the weights and the device where it
    runs (this process, or a Ray worker on another machine, with its own cache)."""

    zoo_path: Path
    model: str
    task: Any  # a vitamin_cli.tasks.Task
    settings: Settings
    checkpoint: Path | None = None  # the user's own weights; None: the pulled checkpoint
    templates: Path | None = None
    cache_dir: Path | None = None  # None: the cache of the machine it runs on
    done: frozenset[tuple[Any, ...]] = frozenset()  # result keys a rerun with -o FILE skips


def run_job(job: Job, progress: Progress | None = None) -> TaskResult:
    """Fetch the task's data and the model's weights (into this machine's cache), then `run_task`; a result
    with the key of one already saved comes back with status `done` and nothing measured."""
    result = TaskResult(job.model, None, job.task.key, job.task.name, main_metric=job.task.metric)
    try:
        data = _prepared(job.task, job.cache_dir, job.templates)
        weights = _weights(job)
    except VitaminError as err:
        result.status, result.error = "failed", err.message
        return result
    result.checkpoint_sha256, result.data_revision = weights.sha256, data.revision
    result.templates, result.templates_sha256, result.dtype = (
        data.templates_source,
        data.templates_sha256,
        job.settings.dtype,
    )
    if result.key() in job.done:
        result.status = "done"
        return result
    return run_task(job.zoo_path, job.model, weights, data, job.settings, progress)


@functools.lru_cache(maxsize=4)
def _prepared(task: Any, cache_dir: Path | None, templates: Path | None) -> TaskData:
    """A task's data, once per process: the next model on the same task reuses it."""
    from vitamin_cli import evaldata, hub
    from vitamin_cli.hubcache import hub_dir

    return evaldata.prepare(task, hub_dir(cache_dir), templates, hub.Network.from_environment())


def _weights(job: Job) -> Checkpoint:
    """The user's checkpoint, or the model's pulled one (pulled now into this machine's cache if missing)."""
    from vitamin_cli import hub, zoo
    from vitamin_cli.hashing import sha256_file
    from vitamin_cli.hubcache import hub_dir, read_manifest
    from vitamin_cli.loading import checkpoint_path

    if job.checkpoint is not None:
        if not job.checkpoint.is_file():
            raise VitaminError(f"--checkpoint {job.checkpoint}: no such file on {_host()}")
        return Checkpoint(job.checkpoint, _sha256(job.checkpoint))
    model = zoo.load(job.zoo_path).get(job.model)
    root = hub_dir(job.cache_dir)
    try:
        path = checkpoint_path(model, root)
    except VitaminError:
        hub.pull(model, root, network=hub.Network.from_environment())
        path = checkpoint_path(model, root)
    entries = [e for e in read_manifest(root, warn=False).of(model.name) if e.snapshot(root) == path]
    return Checkpoint(path, entries[0].sha256 if entries else sha256_file(path))


@functools.lru_cache(maxsize=8)
def _sha256(path: Path) -> str:
    from vitamin_cli.hashing import sha256_file

    return sha256_file(path)


def _host() -> str:
    import socket

    return socket.gethostname()
