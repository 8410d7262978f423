"""Zero-shot evaluation of a model on a task, as DataComp evaluates (shared/EVAL.md, docs/eval.md).

The model's own open_clip preprocessing; a zero-shot classifier from the task's class names and templates
(each template filled, encoded, normalised; their mean normalised), computed once per result key (weights,
architecture, task data, class names, templates, dtype, device kind) and kept in vitamin's memo; images
decoded in DataLoader workers; logits 100 × normalised image embedding @ classifier; the task's metrics
(`vitamin_cli.eval.metrics`), in percent.

`run_task` is one model on one task; `vitamin_cli.eval.sweep` runs it for many, here or on Ray.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli import interrupts
from vitamin_cli.errors import VitaminError
from vitamin_cli.eval.results import TaskResult
from vitamin_cli.models.device import default_dtype

if TYPE_CHECKING:
    from vitamin_cli.eval.data import TaskData

CLASSIFIER_VERSION = 2  # bump when the way classifiers are built changes, to drop kept ones

Progress = Callable[[int, int, float], None]  # (images done, images in all or 0 if unknown, seconds so far)


@dataclass(frozen=True)
class EvalSettings:
    """How `vitamin eval` runs a model; `default_settings` gives a device's defaults."""

    device: str = "cpu"
    dtype: str = "fp32"  # fp32: no autocast (DataComp's runs); bf16 or fp16: autocast to it
    batch_size: int | None = None  # None: as large as fits, from the device's default down
    workers: int = 1  # DataLoader worker processes decoding images

    @property
    def start_batch(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 256 if self.device.startswith("cuda") else 64


def default_settings(device: str, **given: Any) -> EvalSettings:
    """The defaults of `vitamin eval` for a device (its dtype, its decoding workers), with what the user gave
    on top."""
    from vitamin_cli.eval.data import default_workers

    base = EvalSettings(device=device, dtype=default_dtype(device), workers=default_workers(device))
    return replace(base, **{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class Checkpoint:
    """The weights a model is evaluated with: a pulled checkpoint or the user's own file."""

    path: Path
    sha256: str


def classnames_sha256(classnames: list[str]) -> str:
    return hashlib.sha256("\n".join(classnames).encode()).hexdigest()


def started(
    model_name: str, checkpoint: Checkpoint, architecture: str, data: TaskData, settings: EvalSettings
) -> TaskResult:
    """A result with everything it depends on filled in and nothing measured yet: its key is final."""
    task = data.task
    return TaskResult(
        model=model_name,
        checkpoint_sha256=checkpoint.sha256,
        task=task.key,
        task_name=task.name,
        data_revision=data.revision,
        templates=data.templates_source,
        templates_sha256=data.templates_sha256,
        dtype=settings.dtype,
        device=settings.device,
        architecture_sha256=architecture,
        classnames_sha256=classnames_sha256(data.classnames),
        main_metric=task.metric,
    )


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
    fingerprint (`models.arch.fingerprint`), on one task; failures of the data or the model are recorded, not
    raised."""
    result = started(model_name, checkpoint, architecture, data, settings)
    try:
        _measure(result, loaded, checkpoint, data, settings, progress)
    except VitaminError as err:
        result.status, result.error = "failed", err.message
    return result


def _measure(
    result: TaskResult,
    loaded: tuple[Any, Any, Any],
    checkpoint: Checkpoint,
    data: TaskData,
    settings: EvalSettings,
    progress: Progress | None,
) -> None:
    import numpy as np
    import torch

    from vitamin_cli.eval import data as task_data
    from vitamin_cli.eval import metrics
    from vitamin_cli.models.device import torch_dtype

    model, preprocess, tokenizer = loaded
    start = time.perf_counter()
    weights, result.classifier_cached = classifier(model, tokenizer, checkpoint, data, settings, result)
    result.classifier_s = time.perf_counter() - start
    autocast = settings.dtype != "fp32"
    top_k = min(5, len(data.classnames))
    tops, labels, metadata = [], [], []
    total = len(data.images) or (data.task.examples or 0)
    begin = time.perf_counter()
    encode = _Encoder(model, settings)
    for images, batch_labels, batch_metadata, undecodable in task_data.loader(
        data, preprocess, settings.start_batch, settings.workers
    ):
        interrupts.check()  # starting the loader's workers can swallow a Ctrl-C
        result.undecodable += undecodable
        if len(batch_labels):
            with (
                torch.inference_mode(),
                torch.autocast(settings.device.split(":")[0], dtype=torch_dtype(settings.dtype), enabled=autocast),
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
    """The image tower on batches; when the device runs out of memory, the piece it runs at once backs off
    (`vitamin_cli.models.batching`) and stays at the size that fit."""

    def __init__(self, model: Any, settings: EvalSettings) -> None:
        self.model, self.piece = model, settings.start_batch
        self.backs_off = settings.batch_size is None

    def __call__(self, images: Any) -> Any:
        from vitamin_cli.models.batching import with_backoff

        if not self.backs_off:
            return self._in_pieces(images, self.piece)
        features, self.piece = with_backoff(lambda piece: self._in_pieces(images, piece), self.piece)
        return features

    def _in_pieces(self, images: Any, piece: int) -> Any:
        import torch

        return torch.cat([self.model.encode_image(part) for part in images.split(piece)])


def classifier(
    model: Any, tokenizer: Any, checkpoint: Checkpoint, data: TaskData, settings: EvalSettings, result: TaskResult
) -> tuple[Any, bool]:
    """The zero-shot classifier (embed_dim × classes), and whether it came from the memo. The memo is keyed by
    all it depends on (`result`'s key: weights, architecture, class names, templates, dtype, device kind) and
    by how classifiers are built; an entry is used only when its recorded key and digest match and its columns
    are finite unit vectors, else it is built again."""
    import torch
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    from vitamin_cli.files import memo_dir
    from vitamin_cli.models.device import torch_dtype

    identity = json.dumps([CLASSIFIER_VERSION, *result.key()[1:]])
    key = hashlib.sha256(identity.encode()).hexdigest()[:32]
    path = memo_dir() / "classifiers" / f"{key}.pt"
    kept = _kept_classifier(path, identity, len(data.classnames))
    if kept is not None:
        return kept.to(settings.device), True
    templates = [functools.partial(_fill, template) for template in data.templates]
    with (
        torch.inference_mode(),
        torch.autocast(
            settings.device.split(":")[0], dtype=torch_dtype(settings.dtype), enabled=settings.dtype != "fp32"
        ),
    ):
        weights = build_zero_shot_classifier(
            model, tokenizer, data.classnames, templates, num_classes_per_batch=10, device=settings.device
        ).float()
    if not bool(torch.isfinite(weights).all()):
        raise VitaminError(f"{data.task.key}: the text tower's embeddings are not finite (NaN or inf)")
    _keep_classifier(path, identity, weights)
    return weights, False


def _digest(identity: str, weights: Any) -> str:
    return hashlib.sha256(identity.encode() + weights.contiguous().numpy().tobytes()).hexdigest()


def _kept_classifier(path: Path, identity: str, classes: int) -> Any:
    """The classifier kept at `path`, or None when there is none to trust (missing, not a regular file,
    damaged, of another key, of the wrong shape, not finite, columns not unit vectors)."""
    import io

    import torch

    from vitamin_cli.files import read_memo

    data = read_memo(path, limit=1 << 30)
    if data is None:
        return None
    try:
        kept = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any damage to a memo entry means: build it again
        return None
    if not (isinstance(kept, dict) and kept.get("identity") == identity):
        return None
    weights = kept.get("weights")
    if not (
        isinstance(weights, torch.Tensor)
        and weights.layout == torch.strided
        and weights.dtype == torch.float32
        and weights.dim() == 2
        and weights.shape[1] == classes
        and kept.get("digest") == _digest(identity, weights)
        and bool(torch.isfinite(weights).all())
        and bool(torch.allclose(weights.norm(dim=0), torch.ones(classes), atol=1e-3))
    ):
        return None
    return weights


def _keep_classifier(path: Path, identity: str, weights: Any) -> None:
    """Best effort: a memo that cannot be written only costs the next run its speed."""
    import os
    import tempfile

    import torch

    cpu = weights.detach().cpu().contiguous()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".classifier-", suffix=".tmp")
        os.close(fd)
        torch.save({"identity": identity, "weights": cpu, "digest": _digest(identity, cpu)}, tmp)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _fill(template: str, classname: str) -> str:
    return template.replace("{c}", classname)
