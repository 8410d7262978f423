"""WinoGAViL, as DataComp evaluates it (`eval_utils/wino_eval.py`, shared/EVAL.md): each instance's cue becomes
a prompt ("A cue" / "An cue"), encoded by the text tower and normalised; its candidate images are encoded and
normalised; the k candidates most similar to the prompt are picked, k the number of true associations, and
scored by the Jaccard index against the true ones (`vitamin_cli.eval.metrics`), in percent.

Each distinct image is encoded once (the layout's loader gives them so), however many instances show it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from vitamin_cli.errors import VitaminError
from vitamin_cli.eval.zeroshot import EvalSettings, Progress, image_features, text_features

if TYPE_CHECKING:
    from vitamin_cli.eval.data import ImageSource, TaskData
    from vitamin_cli.eval.results import TaskResult


def measure(
    result: TaskResult,
    loaded: tuple[Any, Any, Any],
    data: TaskData,
    settings: EvalSettings,
    progress: Progress | None,
) -> None:
    """The image tower on every distinct candidate, the text tower on every prompt, each instance scored."""
    from vitamin_cli.eval import metrics

    model, preprocess, tokenizer = loaded
    key = data.task.key
    begin = time.perf_counter()
    images, missing = image_features(model, preprocess, data, settings, progress)
    image_s = time.perf_counter() - begin
    result.undecodable = len(missing)
    if missing:
        source = data.images[missing[0]][0]
        row = next(n for n, x in enumerate(data.instances, 1) if source in x.candidates)
        raise VitaminError(
            f"{key}: {len(missing)} of {len(data.images)} candidate images do not decode, {_name(source)} first "
            f"(a candidate in row {row} of the annotations); the instances that show it cannot be scored"
        )
    prompts = list(dict.fromkeys(metrics.winogavil_prompt(x.cue) for x in data.instances))
    encoded = text_features(model, tokenizer, prompts, settings, data).numpy()
    texts = dict(zip(prompts, encoded, strict=True))
    index = {source: i for source, i in data.images}
    stacked = images.numpy()
    similarities = [
        stacked[[index[c] for c in x.candidates]] @ texts[metrics.winogavil_prompt(x.cue)] for x in data.instances
    ]
    result.metrics = metrics.winogavil(
        similarities, [x.true for x in data.instances]
    )  # sizes with no instance: left out
    result.samples = len(data.instances)
    result.seconds = time.perf_counter() - begin
    result.images_per_s = len(data.images) / image_s if image_s else None
    result.main = result.metrics.get(data.task.metric) if data.task.metric else None


def _name(source: ImageSource) -> str:
    if isinstance(source, tuple):
        archive, member = source
        return f"{member!r} of {archive}"
    return str(source)
