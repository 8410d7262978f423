"""The main metrics of the zoo's evaluation tasks (DataComp's, shared/EVAL.md), in percent.

Classification's take plain arrays: `top` holds each sample's predicted classes, best first (top[:, 0] is the
top-1 prediction), `labels` the true classes. Groups are decided from metadata columns, as WILDS groups them:
worst-group metrics take the lowest value over the groups that have samples. Retrieval's take the embeddings,
WinoGAViL's the similarities, and break ties as their references do (CLIP_benchmark's torch.topk, DataComp's
np.argsort): tests/test_metrics.py holds them to those references value for value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# FMoW's metadata: [region, year, label]; WILDS names region 5 "Other", which the worst region leaves out.
FMOW_REGION_COLUMN = 0
FMOW_OTHER_REGION = 5
DOLLAR_STREET_INCOME_COLUMN = 0  # [income_ds, income_meta, region]: grouped by income_ds
GEODE_REGION_COLUMN = 0  # [region, country]


def acc(top: Any, labels: Any, k: int = 1) -> float:
    """Top-k accuracy: the share of samples whose class is among their k best predictions."""
    top, labels = np.asarray(top), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    return float(100 * (top[:, :k] == labels[:, None]).any(axis=1).mean())


def mean_per_class_recall(top: Any, labels: Any) -> float:
    """Balanced accuracy: the mean over the classes present in `labels` of the share of their samples predicted
    right (a class never predicted counts 0; a class absent from `labels` does not count)."""
    predicted, labels = np.asarray(top)[:, 0], np.asarray(labels)
    classes = np.unique(labels)
    recalls = [(predicted[labels == c] == c).mean() for c in classes]
    return float(100 * np.mean(recalls)) if recalls else float("nan")


def f1_macro(top: Any, labels: Any) -> float:
    """Macro F1 over the classes present in `labels` (WILDS' `F1(average="macro")`); a class never predicted
    has F1 0."""
    predicted, labels = np.asarray(top)[:, 0], np.asarray(labels)
    scores = []
    for c in np.unique(labels):
        true_positive = np.sum((predicted == c) & (labels == c))
        predicted_c, actual_c = np.sum(predicted == c), np.sum(labels == c)
        precision = true_positive / predicted_c if predicted_c else 0.0
        recall = true_positive / actual_c
        scores.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(100 * np.mean(scores)) if scores else float("nan")


def worst_group(top: Any, labels: Any, groups: Any, k: int = 1, leave_out: Sequence[int] = ()) -> float:
    """The lowest top-k accuracy over the groups (values of `groups`) that have samples, `leave_out` excepted."""
    top, labels, groups = np.asarray(top), np.asarray(labels), np.asarray(groups)
    values = [acc(top[groups == g], labels[groups == g], k) for g in np.unique(groups) if g not in leave_out]
    return float(min(values)) if values else float("nan")


def classification(kind: str, key: str, top: Any, labels: Any, metadata: Any = None) -> dict[str, float]:
    """The metrics of a classification task: acc1, acc5 (with 5 classes or more predicted), mean per-class
    recall, and the task's own main metric where it has one."""
    top = np.asarray(top)
    found = {"acc1": acc(top, labels), "mean_per_class_recall": mean_per_class_recall(top, labels)}
    if top.shape[1] >= 5:
        found["acc5"] = acc(top, labels, 5)
    if key == "wilds/iwildcam":
        found["f1_macro"] = f1_macro(top, labels)
    elif key == "wilds/fmow":
        regions = np.asarray(metadata)[:, FMOW_REGION_COLUMN]
        found["acc_worst_region"] = worst_group(top, labels, regions, leave_out=(FMOW_OTHER_REGION,))
    elif key == "fairness/dollar_street":
        incomes = np.asarray(metadata)[:, DOLLAR_STREET_INCOME_COLUMN]
        found["acc_top5_worst_group"] = worst_group(top, labels, incomes, k=5)
    elif key == "fairness/geode":
        found["acc_worst_group"] = worst_group(top, labels, np.asarray(metadata)[:, GEODE_REGION_COLUMN])
    return found


# ---------------------------------------------------------------------------------------------------
# Retrieval (CLIP_benchmark's recalls, DataComp's mean) and WinoGAViL (DataComp's Jaccard scores)

RECALL_AT = (1, 5, 10)
# Scores held at once while recalls are counted: 2**24 float32s, 64 MB. A smaller set (Flickr's 5,000 captions x
# 1,000 images, every test) is scored in one matrix product, CLIP_benchmark's own; MSCOCO's 25,000 x 5,000 in
# slices of captions (text->image) and of images (image->text).
SCORES_PER_SLICE = 1 << 24


def retrieval(image_embeddings: Any, text_embeddings: Any, image_of_text: Any, device: str = "cpu") -> dict[str, float]:
    """CLIP_benchmark's `image_retrieval_recall@k` (text->image: the share of captions whose image is among the k
    best-scoring images) and `text_retrieval_recall@k` (image->text: the share of images with one of their captions
    among the k best-scoring captions; an image without captions counts as a miss) for k in 1, 5, 10, and
    DataComp's `mean_recall@1`, their mean at k=1, all in percent.

    The embeddings (arrays or tensors, images x dim and captions x dim) come L2-normalised, as CLIP_benchmark's
    `F.normalize` leaves them; they are not normalised again. `image_of_text[t]` is the image caption t describes.
    Scores are CLIP_benchmark's float32 `texts @ images.T`, and the k best of each row are `torch.topk`'s on
    `device` (CLIP_benchmark's `device`, where it runs topk), so ties fall where they fall in CLIP_benchmark. A k
    above the number of images (captions) counts every image (caption) in, where CLIP_benchmark's topk raises."""
    import torch

    images, texts, owners = _retrieval_inputs(image_embeddings, text_embeddings, image_of_text)
    n_images, n_texts = images.shape[0], texts.shape[0]

    def best(scores: Any, k: int) -> Any:  # the k best columns of each row, as CLIP_benchmark's recall_at_k finds them
        return torch.topk(scores.to(device), min(k, scores.shape[1]), dim=1)[1].cpu()

    caption_hits = dict.fromkeys(RECALL_AT, 0)
    for rows in _slices(n_texts, SCORES_PER_SLICE // n_images):
        scores = texts[rows] @ images.T  # rows of CLIP_benchmark's scores
        for k in RECALL_AT:
            caption_hits[k] += int((best(scores, k) == owners[rows, None]).any(dim=1).sum())
    image_hits = dict.fromkeys(RECALL_AT, 0)
    for columns in _slices(n_images, SCORES_PER_SLICE // n_texts):
        scores = (texts @ images[columns].T).T  # rows of CLIP_benchmark's scores.T, in its memory layout
        mine = torch.arange(columns.start, columns.stop)[:, None]
        for k in RECALL_AT:
            image_hits[k] += int((owners[best(scores, k)] == mine).any(dim=1).sum())

    found: dict[str, float] = {}
    for k in RECALL_AT:
        found[f"image_retrieval_recall@{k}"] = 100 * caption_hits[k] / n_texts
        found[f"text_retrieval_recall@{k}"] = 100 * image_hits[k] / n_images
    found["mean_recall@1"] = 0.5 * (found["text_retrieval_recall@1"] + found["image_retrieval_recall@1"])
    return found


def _retrieval_inputs(image_embeddings: Any, text_embeddings: Any, image_of_text: Any) -> tuple[Any, Any, Any]:
    """`retrieval`'s arguments as CPU tensors (float32 embeddings, int64 images of the captions), checked to fit
    together; a mismatch raises ValueError."""
    import torch

    images = torch.as_tensor(image_embeddings).detach().to("cpu", torch.float32)
    texts = torch.as_tensor(text_embeddings).detach().to("cpu", torch.float32)
    owners = torch.as_tensor(np.asarray(image_of_text)).to(torch.int64)
    if images.ndim != 2 or texts.ndim != 2 or images.shape[1] != texts.shape[1]:
        raise ValueError(f"embeddings of images {tuple(images.shape)} and captions {tuple(texts.shape)} do not match")
    n_images, n_texts = images.shape[0], texts.shape[0]
    if n_images == 0 or n_texts == 0:
        raise ValueError("retrieval needs at least one image and one caption")
    if owners.shape != (n_texts,) or bool((owners < 0).any()) or bool((owners >= n_images).any()):
        raise ValueError(f"image_of_text must give each of the {n_texts} captions an image below {n_images}")
    return images, texts, owners


def _slices(count: int, most: int) -> list[slice]:
    """`range(count)` cut into slices of at most `most` (at least 1), of near-equal lengths."""
    parts = -(-count // max(1, most))
    bounds = [count * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def winogavil_prompt(cue: str) -> str:
    """DataComp's `get_clip_prompt`: the cue lower-cased, after "An " when its first character is a, e, i, o or u
    and "A " otherwise (a leading space counts as that character); an empty cue raises IndexError, as there."""
    cue = cue.lower()
    if not cue:
        raise IndexError("an empty WinoGAViL cue has no prompt (DataComp's get_clip_prompt fails on it too)")
    return f"An {cue}" if cue[0] in ("a", "e", "i", "o", "u") else f"A {cue}"


def winogavil(similarities: Sequence[Any], associations: Sequence[Any]) -> dict[str, float]:
    """DataComp's WinoGAViL scores, in percent. Per instance: its prompt's similarity to each candidate and its true
    associations (indices of candidates, or a boolean mask over them); `np.argsort(similarities)[-n:]` picks the
    candidates, n the number of true ones, and the Jaccard index of picked and true (sklearn's `jaccard_score`)
    scores it. Then the mean over every instance (`avg_jaccard_score`) and over those with 5, 6, 10, 12, at most 6
    and at least 10 candidates (`jaccard_score_5` ... `jaccard_score_10-12`); a key with no instance is left out
    (DataComp's is NaN).

    Ties fall as np.argsort's default sort leaves them, which depends on the array's dtype (and the CPU's SIMD
    sort): similarities are sorted in the dtype given, as DataComp sorts the logits its model returned."""
    if len(similarities) != len(associations):
        raise ValueError(f"{len(similarities)} rows of similarities for {len(associations)} sets of associations")
    scores, sizes = [], []
    for row, associated in zip(similarities, associations, strict=True):
        image_logits = np.asarray(row)
        if image_logits.ndim != 1 or len(image_logits) == 0:
            raise ValueError(f"an instance needs a row of candidate similarities, not an array of {image_logits.shape}")
        n_images = len(image_logits)
        y_true = _association_mask(associated, n_images)
        # DataComp's lines: with no true association, [-0:] picks every candidate (and the score is 0).
        topk_indices = np.argsort(image_logits)[-y_true.sum() :]
        y_pred = np.isin(np.arange(n_images), topk_indices)
        # Picked or true is never empty (one candidate at least), so sklearn's zero_division never applies.
        scores.append(np.sum(y_true & y_pred) / np.sum(y_true | y_pred))
        sizes.append(n_images)
    all_scores, all_groups = np.array(scores, dtype=np.float64), np.array(sizes)
    groups = {
        "avg_jaccard_score": np.ones(len(all_groups), dtype=bool),
        "jaccard_score_5": all_groups == 5,
        "jaccard_score_6": all_groups == 6,
        "jaccard_score_10": all_groups == 10,
        "jaccard_score_12": all_groups == 12,
        "jaccard_score_5-6": all_groups <= 6,
        "jaccard_score_10-12": all_groups >= 10,
    }
    return {key: float(100 * all_scores[chosen].mean()) for key, chosen in groups.items() if chosen.any()}


def _association_mask(associated: Any, candidates: int) -> Any:
    """The true associations as DataComp's `y_true`, a boolean mask over the candidates, from a mask or indices."""
    values = (
        np.fromiter(associated, dtype=np.int64) if isinstance(associated, set | frozenset) else np.asarray(associated)
    )
    if values.dtype == bool:
        if values.shape != (candidates,):
            raise ValueError(f"an association mask of shape {values.shape} for {candidates} candidates")
        return values
    if values.size and (
        values.ndim != 1 or values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= candidates
    ):
        raise ValueError(f"associations must be indices of the {candidates} candidates, not {values.tolist()}")
    return np.isin(np.arange(candidates), values)
