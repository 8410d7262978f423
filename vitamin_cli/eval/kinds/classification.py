"""Zero-shot classification, as DataComp evaluates it (shared/EVAL.md): a classifier from the task's class
names and templates (each template filled, encoded, normalised; their mean normalised), computed once per
result key and kept in vitamin's memo; logits 100 × normalised image embedding @ classifier; the task's metrics
(`vitamin_cli.eval.metrics`: the classification ones, and WILDS' and fairness' by group), in percent."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli import interrupts
from vitamin_cli.errors import VitaminError
from vitamin_cli.eval.zeroshot import Embeddings, Encoder, EvalSettings, Progress, autocast

if TYPE_CHECKING:
    from vitamin_cli.eval.data import TaskData
    from vitamin_cli.eval.results import TaskResult

CLASSIFIER_VERSION = 2  # bump when the way classifiers are built changes, to drop kept ones


def measure(
    result: TaskResult,
    loaded: tuple[Any, Any, Any],
    data: TaskData,
    settings: EvalSettings,
    progress: Progress | None,
) -> None:
    """Zero-shot classification: the classifier from the class names and templates (kept in the memo), the
    image tower on the task's images, the task's metrics."""
    import numpy as np
    import torch

    from vitamin_cli.eval import layouts, metrics

    model, preprocess, tokenizer = loaded
    start = time.perf_counter()
    weights, result.classifier_cached = classifier(model, tokenizer, data, settings, result)
    result.classifier_s = time.perf_counter() - start
    top_k = min(5, len(data.classnames))
    tops, labels, metadata = [], [], []
    total = len(data.images) or (data.task.examples or 0)
    begin = time.perf_counter()
    encode, checked = Encoder(model, settings), Embeddings(data.task.key, "image", settings)
    for images, batch_labels, batch_metadata, undecodable in layouts.loader(
        data, preprocess, settings.start_batch, settings.workers
    ):
        interrupts.check()  # starting the loader's workers can swallow a Ctrl-C
        result.undecodable += undecodable
        if len(batch_labels):
            with torch.inference_mode(), autocast(settings):
                features = encode(images.to(settings.device, non_blocking=True))
            logits = 100 * checked.add(features) @ weights
            tops.append(logits.topk(top_k, dim=-1).indices.cpu().numpy())
            labels.append(batch_labels.numpy())
            if batch_metadata is not None:
                metadata.append(batch_metadata)
        result.samples += len(batch_labels)
        if progress is not None:
            progress(result.samples + result.undecodable, total, time.perf_counter() - begin)
    checked.done()
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


def classifier(
    model: Any, tokenizer: Any, data: TaskData, settings: EvalSettings, result: TaskResult
) -> tuple[Any, bool]:
    """The zero-shot classifier (embed_dim × classes), and whether it came from the memo. The memo is keyed by
    all it depends on (`result`'s key: weights, architecture, class names, templates, dtype, device kind) and
    by how classifiers are built; an entry is used only when its recorded key and digest match and its columns
    are finite unit vectors, else it is built again."""
    import torch
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    from vitamin_cli.files import memo_dir

    identity = json.dumps([CLASSIFIER_VERSION, *result.key_parts()[1:]])
    key = hashlib.sha256(identity.encode()).hexdigest()[:32]
    path = memo_dir() / "classifiers" / f"{key}.pt"
    kept = _kept_classifier(path, identity, len(data.classnames))
    if kept is not None:
        return kept.to(settings.device), True
    templates = [functools.partial(_fill, template) for template in data.templates]
    checked = _CheckedText(model, Embeddings(data.task.key, "text", settings))
    with torch.inference_mode(), autocast(settings):
        weights = build_zero_shot_classifier(
            checked, tokenizer, data.classnames, templates, num_classes_per_batch=10, device=settings.device
        ).float()
    checked.embeddings.done()
    _keep_classifier(path, identity, weights)
    return weights, False


class _CheckedText:
    """The model as open_clip's classifier builder sees it: its text tower, each batch of embeddings checked
    (`Embeddings`) before the builder averages them, where a zero or collapsed one would no longer show."""

    def __init__(self, model: Any, embeddings: Embeddings) -> None:
        self.model, self.embeddings = model, embeddings

    def encode_text(self, texts: Any, normalize: bool = False) -> Any:
        encoded = self.model.encode_text(texts)
        return self.embeddings.add(encoded) if normalize else encoded


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
