"""Zero-shot evaluation of a model on a task, as DataComp evaluates (shared/EVAL.md, docs/eval.md).

The model's own open_clip preprocessing; a zero-shot classifier from the task's class names and templates
(each template filled, encoded, normalised; their mean normalised), computed once per result key (weights,
architecture, task data, class names, templates, dtype, device kind) and kept in vitamin's memo; images
decoded in DataLoader workers; logits 100 × normalised image embedding @ classifier; the task's metrics
(`vitamin_cli.eval.metrics`), in percent.

`kinds.run_task` is one model on one task (its kind's module measures it); `vitamin_cli.eval.sweep` runs it
for many, here or on Ray.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli import interrupts
from vitamin_cli.eval.results import TaskResult
from vitamin_cli.models.device import default_dtype

if TYPE_CHECKING:
    from vitamin_cli.eval.data import TaskData

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
    """The weights a model is evaluated with: a pulled checkpoint or the user's own file, and its sha256, true of
    its bytes when it was checked (`key`: what is cheap to check of the file then)."""

    path: Path
    sha256: str
    key: tuple[int, ...] = ()

    def changed(self) -> bool:
        """Whether the file is not as it was when its sha256 was checked (written to since, or replaced)."""
        from vitamin_cli.checkpoints import identity

        try:
            return bool(self.key) and identity.key_of(self.path) != self.key
        except OSError:
            return True


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


class Encoder:
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


def autocast(settings: EvalSettings) -> Any:
    """The autocast of `--dtype` on the device (none for fp32, as DataComp's runs)."""
    import torch

    from vitamin_cli.models.device import torch_dtype

    kind = settings.device.split(":")[0]
    return torch.autocast(kind, dtype=torch_dtype(settings.dtype), enabled=settings.dtype != "fp32")


def image_features(
    model: Any, preprocess: Any, data: TaskData, settings: EvalSettings, progress: Progress | None
) -> tuple[Any, list[int]]:
    """Every image of the task through the image tower, normalised, in the order of `data.images` (a retrieval
    or WinoGAViL task labels each image with its position), and the positions of those that did not decode
    (then no features). Embeddings that are not finite or collapsed fail the task (`Embeddings`)."""
    import torch

    from vitamin_cli.eval import layouts

    encode, checked = Encoder(model, settings), Embeddings(data.task.key, "image", settings)
    found: dict[int, Any] = {}
    done, begin = 0, time.perf_counter()
    for images, labels, _, undecodable in layouts.loader(data, preprocess, settings.start_batch, settings.workers):
        interrupts.check()  # starting the loader's workers can swallow a Ctrl-C
        if len(labels):
            with torch.inference_mode(), autocast(settings):
                features = encode(images.to(settings.device, non_blocking=True))
            found.update(zip(labels.tolist(), checked.add(features).cpu(), strict=True))
        done += len(labels) + undecodable
        if progress is not None:
            progress(done, len(data.images), time.perf_counter() - begin)
    checked.done()
    missing = [label for _, label in data.images if label not in found]
    if missing:
        return None, missing
    return torch.stack([found[label] for _, label in data.images]), []


def text_features(model: Any, tokenizer: Any, texts: list[str], settings: EvalSettings, data: TaskData) -> Any:
    """Texts through the text tower, normalised, in order, in batches of the eval's batch size. Embeddings that
    are not finite or collapsed fail the task (`Embeddings`)."""
    import torch

    batch, checked = settings.start_batch, Embeddings(data.task.key, "text", settings)
    parts = []
    for start in range(0, len(texts), batch):
        interrupts.check()
        tokens = tokenizer(texts[start : start + batch]).to(settings.device)
        with torch.inference_mode(), autocast(settings):
            encoded = model.encode_text(tokens)
        parts.append(checked.add(encoded).cpu())
    checked.done()
    return torch.cat(parts)


class Embeddings:
    """One tower's embeddings over a whole task, checked as they come: every row finite and of a norm above
    zero, and, once the task is done, not every row the same vector (a collapsed tower gives every input one
    embedding, and the metrics then rank by position: chance, reported as a number). The rows are compared
    over the whole task, never per batch, where a last batch of one row is trivially all equal."""

    ZERO_NORM = 1e-6  # no CLIP embedding is this short; the norm of a collapsed one is 0
    SAME = 1e-4  # the largest difference between two normalised rows still counted as the same vector

    def __init__(self, task: str, tower: str, settings: EvalSettings) -> None:
        self.task, self.tower, self.dtype = task, tower, settings.dtype
        self.first: Any = None
        self.rows, self.apart = 0, 0.0

    def add(self, features: Any) -> Any:
        """A batch of embeddings, checked, normalised (float32, on the device they were computed on)."""
        import torch

        features = features.float()
        norms = features.norm(dim=-1)
        normalised = features / norms.clamp_min(self.ZERO_NORM).unsqueeze(-1)
        if self.first is None:
            self.first = normalised[0]
        # One transfer from the device for all three: every value and norm finite (a norm of finite values can
        # overflow), the shortest row, the farthest apart from the task's first row
        finite, shortest, apart = torch.stack(
            [torch.isfinite(norms).all().float(), norms.min(), (normalised - self.first).abs().max()]
        ).tolist()
        if not finite:
            self._fail("are not finite (NaN or inf)")
        if shortest <= self.ZERO_NORM:
            self._fail("are zero (a vector of norm 0)")
        self.rows, self.apart = self.rows + len(features), max(self.apart, apart)
        return normalised

    def done(self) -> None:
        """The whole task seen: every row the same vector fails it."""
        if self.rows > 1 and self.apart <= self.SAME:
            self._fail(f"are all the same vector over the task's {self.rows} {self.tower}s: the tower collapsed, "
                       f"or the {self.tower}s are all alike")  # fmt: skip

    def _fail(self, what: str) -> None:
        from vitamin_cli.errors import VitaminError

        hint = (
            f"try `--dtype fp32`: the model's numbers may not fit in {self.dtype}"
            if self.dtype != "fp32"
            else "check the weights (`vitamin verify` for a pulled checkpoint) and, if they all look alike, the data"
        )
        raise VitaminError(f"{self.task}: the {self.tower} tower's embeddings in {self.dtype} {what}", hint=hint)
