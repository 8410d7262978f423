"""Zero-shot image-text retrieval, as CLIP_benchmark computes it and DataComp reports it (shared/EVAL.md):
every image and every caption embedded and normalised; recall@1, 5 and 10 both ways; the main metric
`mean_recall@1`, the mean of the two recall@1s (`vitamin_cli.eval.metrics.retrieval`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from vitamin_cli.errors import VitaminError
from vitamin_cli.eval.zeroshot import EvalSettings, Progress, image_features, text_features

if TYPE_CHECKING:
    from vitamin_cli.eval.data import TaskData
    from vitamin_cli.eval.results import TaskResult


def measure(
    result: TaskResult,
    loaded: tuple[Any, Any, Any],
    data: TaskData,
    settings: EvalSettings,
    progress: Progress | None,
) -> None:
    """Every image and caption of the task through the towers, then the recalls. An image that does not decode
    fails the task, naming it: leaving it out would change what every recall is a share of."""
    import torch

    from vitamin_cli.eval import metrics

    model, preprocess, tokenizer = loaded
    begin = time.perf_counter()
    images, missing = image_features(model, preprocess, data, settings, progress)
    if missing:
        result.undecodable = len(missing)
        source = data.images[missing[0]][0]
        where = source if not isinstance(source, tuple) else f"{source[0].name}: {source[1]}"
        raise VitaminError(f"{data.task.key}: {len(missing)} image(s) did not decode, {where} first")
    texts = [caption for captions in data.captions for caption in captions]
    image_of_text = torch.tensor([i for i, captions in enumerate(data.captions) for _ in captions])
    captions = text_features(model, tokenizer, texts, settings, data)
    result.seconds = time.perf_counter() - begin
    result.samples = len(data.images)
    result.images_per_s = (len(data.images) + len(texts)) / result.seconds if result.seconds else None
    # The best k found on the device the model ran on, as DataComp's runs did (ties may fall otherwise on the CPU).
    result.metrics = metrics.retrieval(images, captions, image_of_text, device=settings.device)
    result.main = result.metrics.get(data.task.metric) if data.task.metric else None
