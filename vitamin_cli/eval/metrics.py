"""The main metrics of the zoo's evaluation tasks (DataComp's, shared/EVAL.md), in percent.

Each takes plain arrays: `top` holds each sample's predicted classes, best first (top[:, 0] is the top-1
prediction), `labels` the true classes. Groups are decided from metadata columns, as WILDS groups them:
worst-group metrics take the lowest value over the groups that have samples.
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
# Retrieval and WinoGAViL (their data is not read yet; the metrics are ready and tested)


def mean_recall_at_1(similarity: Any, image_of_text: Any) -> float:
    """(image→text recall@1 + text→image recall@1) / 2. `similarity` is images × texts; `image_of_text[t]` is
    the image text t describes (an image has several texts). An image is right when its best text is one of
    its own; a text when its best image is its own."""
    similarity, image_of_text = np.asarray(similarity), np.asarray(image_of_text)
    image_to_text = image_of_text[similarity.argmax(axis=1)] == np.arange(similarity.shape[0])
    text_to_image = similarity.argmax(axis=0) == image_of_text
    return float(100 * (image_to_text.mean() + text_to_image.mean()) / 2)


def winogavil_prompt(cue: str) -> str:
    """The text a WinoGAViL cue becomes: "A cue" or "An cue" (before a vowel), the cue lower-cased."""
    cue = cue.lower()
    return f"{'An' if cue[:1] in 'aeiou' else 'A'} {cue}"


def jaccard_10_12(instances: Sequence[tuple[Sequence[float], set[int]]]) -> float:
    """WinoGAViL's score: for each instance (the prompt's similarity to each candidate, the true associations)
    pick the k most similar candidates, k the number of true ones, and take the Jaccard index of picked and
    true; the mean over the instances with 10 or 12 candidates."""
    scores = []
    for similarities, associated in instances:
        if len(similarities) not in (10, 12):
            continue
        order = np.argsort(-np.asarray(similarities), kind="stable")
        picked = {int(i) for i in order[: len(associated)]}
        scores.append(len(picked & associated) / len(picked | associated))
    return float(100 * np.mean(scores)) if scores else float("nan")
