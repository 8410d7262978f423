"""Retrieval and WinoGAViL metrics against their references, value for value: CLIP_benchmark 1.6.2's own
`zeroshot_retrieval.evaluate` run on the same embeddings (a tiny open_clip model on generated images and
captions, and tie-heavy embeddings), DataComp's WinoGAViL scoring loop and prompt copied below; and hand-worked
cases."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitamin_cli.eval import metrics

RETRIEVAL_KEYS = {
    *(f"{direction}_retrieval_recall@{k}" for direction in ("image", "text") for k in (1, 5, 10)),
    "mean_recall@1",
}
# CLIP_benchmark's recalls are float32 means; with fewer than 10**5 items a count apart is a relative 1e-5.
SAME = {"rel": 1e-6, "abs": 1e-9}


# ---------------------------------------------------------------------------------------------------
# The references


def clip_benchmark_retrieval(
    model: Any, batches: Any, tokenizer: Any, ks: tuple[int, ...] = (1, 5, 10), device: str = "cpu"
) -> Any:
    """REFERENCE: CLIP_benchmark's evaluate as DataComp's eval_utils/retr_eval.py calls it, with DataComp's
    mean_recall@1 added as retr_eval.py adds it; then in percent, as vitamin reports it."""
    from clip_benchmark.metrics import zeroshot_retrieval

    found = zeroshot_retrieval.evaluate(model, batches, tokenizer, device=device, amp=False, recall_k_list=list(ks))
    if 1 in ks:
        found["mean_recall@1"] = 0.5 * (found["text_retrieval_recall@1"] + found["image_retrieval_recall@1"])
    return {key: 100 * value for key, value in found.items()}


def get_clip_prompt(item: str) -> str:
    """REFERENCE: DataComp's eval_utils/wino_eval.py get_clip_prompt, verbatim."""
    item = item.lower()
    vowels = ["a", "e", "i", "o", "u"]
    if item[0] in vowels:
        clip_txt = f"An {item}"
    else:
        clip_txt = f"A {item}"
    return clip_txt


def datacomp_winogavil(instances: list[tuple[Any, Any]]) -> dict[str, float]:
    """REFERENCE: DataComp's eval_utils/wino_eval.py scoring loop and return, verbatim but for the model: each
    instance gives its `image_logits` and `y_true` (np.isin(candidates, associations)) directly. Then in percent,
    its NaN keys (no instance of that size) left out."""
    from sklearn.metrics import jaccard_score

    all_groups = []
    all_scores = []
    for image_logits, y_true in instances:
        n_images = len(image_logits)
        n_assoc = y_true.sum()
        # Select topk
        topk_indices = np.argsort(image_logits)[-n_assoc:]
        y_pred = np.isin(np.arange(n_images), topk_indices)

        # Evaluate with Jaccard
        score = jaccard_score(y_true, y_pred)
        all_scores.append(score)
        all_groups.append(n_images)

    all_groups = np.array(all_groups)
    all_scores = np.array(all_scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty group
        found = {
            "avg_jaccard_score": all_scores.mean(),
            "jaccard_score_5": all_scores[all_groups == 5].mean(),
            "jaccard_score_6": all_scores[all_groups == 6].mean(),
            "jaccard_score_10": all_scores[all_groups == 10].mean(),
            "jaccard_score_12": all_scores[all_groups == 12].mean(),
            "jaccard_score_5-6": all_scores[all_groups <= 6].mean(),
            "jaccard_score_10-12": all_scores[all_groups >= 10].mean(),
        }
    return {key: 100 * value for key, value in found.items() if not np.isnan(value)}


# ---------------------------------------------------------------------------------------------------
# Retrieval: hand-worked


def test_retrieval_worked_by_hand_with_ties_and_an_images_captions_apart() -> None:
    # Three images, one-hot, so a caption's score with image i is its i-th entry. Captions 0 and 4 describe
    # image 0 (first and last in order), 1 and 2 image 1, 3 image 2.
    images = np.eye(3, dtype=np.float32)
    captions = np.array(
        [
            [0.9, 0.1, 0.0],  # image 0's: best image 0, right
            [0.6, 0.6, 0.0],  # image 1's: images 0 and 1 tie, torch.topk takes the lower index 0 (3 values): wrong
            [0.0, 0.3, 0.3],  # image 1's: images 1 and 2 tie, image 1 taken: right
            [0.1, 0.2, 0.25],  # image 2's: right
            [0.2, 0.5, 0.1],  # image 0's: best image 1, wrong
        ],
        dtype=np.float32,
    )
    image_of_text = [0, 1, 1, 2, 0]
    # image -> text: image 0's best caption is 0 (its own), image 1's is 1 (its own), image 2's is 2 (image 1's)
    found = metrics.retrieval(images, captions, image_of_text)
    assert found == pytest.approx(
        {
            "image_retrieval_recall@1": 60.0,  # 3 of 5 captions
            "text_retrieval_recall@1": 200 / 3,  # 2 of 3 images
            "mean_recall@1": (60 + 200 / 3) / 2,
            # k above the 3 images (5 captions): every image (caption) is among the k best
            "image_retrieval_recall@5": 100.0,
            "image_retrieval_recall@10": 100.0,
            "text_retrieval_recall@5": 100.0,
            "text_retrieval_recall@10": 100.0,
        }
    )
    # CLIP_benchmark agrees at k=1 (above that its topk fails on 3 images), given the captions it normalises
    import torch

    unit = torch.nn.functional.normalize(torch.from_numpy(captions), dim=-1)
    model, batches, tokenizer = lookup_model(torch.from_numpy(images), unit, [[0, 4], [1, 2], [3]], batch=2)
    expected = clip_benchmark_retrieval(model, batches, tokenizer, ks=(1,))
    assert expected == pytest.approx(
        {k: v for k, v in metrics.retrieval(images, unit, image_of_text).items() if k.endswith("@1")}, **SAME
    )
    assert expected["image_retrieval_recall@1"] == pytest.approx(60, **SAME)  # the tie of caption 1 broken the same way


def test_the_earlier_case_of_two_images_and_four_captions() -> None:
    similarity = np.array([[0.9, 0.1, 0.8, 0.0], [0.2, 0.3, 0.1, 0.7]], dtype=np.float32)  # images x captions
    found = metrics.retrieval(np.eye(2, dtype=np.float32), similarity.T, [0, 0, 1, 1])
    # images: 0's best caption is 0 (its own), 1's is 3 (its own) -> 100
    # captions: 0 -> image 0 (right), 1 -> image 1 (wrong), 2 -> image 0 (wrong), 3 -> image 1 (right) -> 50
    assert found["text_retrieval_recall@1"] == 100 and found["image_retrieval_recall@1"] == 50
    assert found["mean_recall@1"] == 75


def test_a_k_above_the_images_or_captions_counts_all_in_where_clip_benchmark_raises() -> None:
    import torch

    images = np.eye(2, dtype=np.float32)
    captions = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # image 0's, 0's, 1's
    found = metrics.retrieval(images, captions, [0, 0, 1])
    assert found["image_retrieval_recall@1"] == pytest.approx(200 / 3)
    assert found["text_retrieval_recall@1"] == 50  # image 0's best caption is 1 (its own), image 1's is 0
    for k in (5, 10):  # more than the 2 images and the 3 captions
        assert found[f"image_retrieval_recall@{k}"] == found[f"text_retrieval_recall@{k}"] == 100
    # CLIP_benchmark's torch.topk fails there instead
    model, batches, tokenizer = lookup_model(torch.from_numpy(images), torch.from_numpy(captions), [[0, 1], [2]])
    with pytest.raises(RuntimeError):
        clip_benchmark_retrieval(model, batches, tokenizer, ks=(5,))


def test_an_image_without_captions_misses_and_bad_input_is_refused() -> None:
    images = np.eye(3, dtype=np.float32)
    captions = np.eye(3, dtype=np.float32)[:2]  # image 2 has none
    found = metrics.retrieval(images, captions, [0, 1])
    assert found["image_retrieval_recall@1"] == 100
    assert found["text_retrieval_recall@10"] == pytest.approx(200 / 3)  # every caption retrieved, image 2's none
    with pytest.raises(ValueError, match="captions an image below 3"):
        metrics.retrieval(images, captions, [0, 3])
    with pytest.raises(ValueError, match="captions an image"):
        metrics.retrieval(images, captions, [0])
    with pytest.raises(ValueError, match="do not match"):
        metrics.retrieval(images, captions[:, :2], [0, 1])
    with pytest.raises(ValueError, match="at least one"):
        metrics.retrieval(images, captions[:0], [])


# ---------------------------------------------------------------------------------------------------
# Retrieval against CLIP_benchmark: tie-heavy embeddings through a lookup "model"


class Lookup:
    """A CLIP-like model for CLIP_benchmark's evaluate: an image tensor is its own embedding; a caption's
    tokens are its row in a table."""

    def __init__(self, texts: Any) -> None:
        self.texts = texts

    def encode_image(self, images: Any) -> Any:
        return images

    def encode_text(self, tokens: Any) -> Any:
        return self.texts.to(tokens.device)[tokens]


def lookup_model(images: Any, texts: Any, captions_of_image: list[list[int]], batch: int = 64) -> Any:
    """(model, batches, tokenizer) for CLIP_benchmark: batches of (images, a list of each image's captions), the
    captions being the indices of their rows in `texts`, as strings."""
    import torch

    batches = [
        (
            images[start : start + batch],
            [[str(t) for t in captions] for captions in captions_of_image[start : start + batch]],
        )
        for start in range(0, len(images), batch)
    ]

    def tokenizer(texts: list[str]) -> Any:
        return torch.tensor([int(t) for t in texts], dtype=torch.long)

    return Lookup(texts), batches, tokenizer


def tie_heavy(rng: np.random.Generator, n_images: int, most_captions: int, dim: int = 16) -> Any:
    """Unit vectors with four entries of 0.5, exactly normalised already (F.normalize leaves them as they are),
    so that scores are quarters and ties are everywhere; images with 0 to `most_captions` captions, captions
    in image order as CLIP_benchmark lists them, some captions equal to another image's."""
    import torch

    def vectors(count: int) -> Any:
        found = np.zeros((count, dim), dtype=np.float32)
        for row in found:
            row[rng.choice(dim, 4, replace=False)] = 0.5
        return torch.from_numpy(found)

    images = vectors(n_images)
    counts = rng.integers(0, most_captions + 1, n_images)
    texts = vectors(int(counts.sum()))
    texts[1::7] = texts[0]  # the same caption for many images
    image_of_text = np.repeat(np.arange(n_images), counts)
    captions_of_image = [list(np.flatnonzero(image_of_text == i)) for i in range(n_images)]
    assert torch.equal(torch.nn.functional.normalize(texts, dim=-1), texts)
    return images, texts, image_of_text, captions_of_image


@pytest.mark.parametrize("slice_scores", [None, 300], ids=["one-product", "sliced"])
@pytest.mark.parametrize(
    ("n_images", "most_captions"),
    [(14, 3), (700, 4)],  # rows under 64 k: topk's nth_element on a CPU; rows of 640 or more: its partial_sort
)
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_retrieval_equals_clip_benchmark_where_everything_ties(
    n_images: int, most_captions: int, slice_scores: int | None, device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")  # where CLIP_benchmark runs topk in DataComp's runs, with its own tie order
    if slice_scores is not None:
        monkeypatch.setattr(metrics, "SCORES_PER_SLICE", slice_scores)
    rng = np.random.default_rng(n_images)
    images, texts, image_of_text, captions_of_image = tie_heavy(rng, n_images, most_captions)
    assert (np.bincount(image_of_text, minlength=n_images) == 0).any()  # an image without captions
    expected = clip_benchmark_retrieval(*lookup_model(images, texts, captions_of_image, batch=5), device=device)
    found = metrics.retrieval(images, texts, image_of_text, device=device)
    assert set(found) == set(expected) == RETRIEVAL_KEYS
    assert found == pytest.approx(expected, **SAME)
    if device == "cpu":  # the ties decide: the lowest-index rule, say, gives other numbers here
        assert found != pytest.approx(stable_order_retrieval(images.numpy(), texts.numpy(), image_of_text), **SAME)


def stable_order_retrieval(images: Any, texts: Any, image_of_text: Any) -> dict[str, float]:
    """Recalls with ties going to the lower index (a stable sort): not CLIP_benchmark's rule."""
    scores = texts @ images.T
    found = {}
    for k in (1, 5, 10):
        by_text = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        by_image = np.argsort(-scores.T, axis=1, kind="stable")[:, :k]
        found[f"image_retrieval_recall@{k}"] = 100 * (by_text == image_of_text[:, None]).any(1).mean()
        mine = np.arange(len(images))[:, None]
        found[f"text_retrieval_recall@{k}"] = 100 * (image_of_text[by_image] == mine).any(1).mean()
    found["mean_recall@1"] = (found["image_retrieval_recall@1"] + found["text_retrieval_recall@1"]) / 2
    return found


# ---------------------------------------------------------------------------------------------------
# Retrieval against CLIP_benchmark: a tiny open_clip model on generated images and captions

WORDS = "red green blue cat dog tree car boat sky house lamp river".split()


def pictures_and_captions(count: int, seed: int = 0) -> tuple[list[Any], list[list[str]]]:
    """Small noisy pictures, each with 2 to 5 captions, no two captions alike."""
    from PIL import Image

    rng = random.Random(seed)
    pictures = []
    for _ in range(count):
        data = bytes(rng.randrange(256) for _ in range(24 * 20 * 3))
        pictures.append(Image.frombytes("RGB", (24, 20), data))
    seen: set[str] = set()
    captions: list[list[str]] = []
    for _ in range(count):
        captions.append([])
        wanted = rng.randint(2, 5)
        while len(captions[-1]) < wanted:
            caption = " ".join(rng.choices(WORDS, k=rng.randint(1, 5)))
            if caption not in seen:
                seen.add(caption)
                captions[-1].append(caption)
    return pictures, captions


@pytest.mark.slow  # a model built, CLIP_benchmark's dataset module imported: seconds
@pytest.mark.parametrize("slice_scores", [None, 20], ids=["one-product", "sliced"])
def test_retrieval_equals_clip_benchmark_on_a_tiny_clip_model(
    tiny: tuple[Path, Path], slice_scores: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from clip_benchmark.datasets.builder import image_captions_collate_fn

    from vitamin_cli import zoo
    from vitamin_cli.models import loading

    if slice_scores is not None:
        monkeypatch.setattr(metrics, "SCORES_PER_SLICE", slice_scores)
    zoo_path, checkpoint = tiny
    model, preprocess, tokenizer = loading.load(zoo.load(zoo_path), "Tiny-s1M", checkpoint=checkpoint)
    pictures, captions = pictures_and_captions(13)
    tied = [list(texts) for texts in captions]
    tied[3][0] = tied[2][-1]  # image 3 has a caption of image 2's: equal embeddings, tied scores

    for texts_of_image in (captions, tied):
        dataset = [(preprocess(picture), texts) for picture, texts in zip(pictures, texts_of_image, strict=True)]
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=image_captions_collate_fn)
        expected = clip_benchmark_retrieval(model, loader, tokenizer)

        # the same embeddings, as CLIP_benchmark's loop makes them: normalised, batch by batch
        image_parts, text_parts = [], []
        with torch.no_grad():
            for batch_images, batch_texts in loader:
                image_parts.append(torch.nn.functional.normalize(model.encode_image(batch_images), dim=-1))
                tokens = tokenizer([text for texts in batch_texts for text in texts])
                text_parts.append(torch.nn.functional.normalize(model.encode_text(tokens), dim=-1))
        images, texts = torch.cat(image_parts), torch.cat(text_parts)
        image_of_text = np.repeat(np.arange(len(pictures)), [len(texts) for texts in texts_of_image])
        found = metrics.retrieval(images, texts, image_of_text)
        assert set(found) == RETRIEVAL_KEYS
        assert found == pytest.approx(expected, **SAME)
        assert 0 < found["image_retrieval_recall@1"] < 100 and 0 < found["text_retrieval_recall@1"] < 100

    # Captions need not come grouped by image, as CLIP_benchmark lists them: in another order, image 0's first and
    # last, the same recalls (no two captions alike, so no tie for the order to break differently).
    image_of_text = np.repeat(np.arange(len(pictures)), [len(texts) for texts in captions])
    with torch.no_grad():
        texts = torch.nn.functional.normalize(model.encode_text(tokenizer(sum(captions, []))), dim=-1)
        images = torch.nn.functional.normalize(
            model.encode_image(torch.stack([preprocess(p) for p in pictures])), dim=-1
        )
    in_order = metrics.retrieval(images, texts, image_of_text)
    middle = list(range(2, len(texts)))
    random.Random(1).shuffle(middle)
    order = np.array([0, *middle, 1])
    assert image_of_text[order[0]] == image_of_text[order[-1]] == 0
    assert metrics.retrieval(images, texts[order], image_of_text[order]) == pytest.approx(in_order, **SAME)


# ---------------------------------------------------------------------------------------------------
# WinoGAViL


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12) | st.sampled_from(["", " apple", "Apple", "UMBRELLA", "İce", "ß", "\u0130", "x"]))
def test_winogavil_prompt_is_datacomps_for_any_cue(cue: str) -> None:
    try:
        expected = get_clip_prompt(cue)
    except IndexError:
        with pytest.raises(IndexError):
            metrics.winogavil_prompt(cue)
    else:
        assert metrics.winogavil_prompt(cue) == expected


def test_winogavil_prompt_cases() -> None:
    assert metrics.winogavil_prompt("Apple") == "An apple"
    assert metrics.winogavil_prompt("dog") == "A dog"
    assert metrics.winogavil_prompt("  egg") == "A   egg"  # the leading space decides, as DataComp's does
    assert metrics.winogavil_prompt("Umbrella") == "An umbrella"
    with pytest.raises(IndexError):
        metrics.winogavil_prompt("")


def test_winogavil_worked_by_hand() -> None:
    ten = [0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    twelve = [0.5] * 12  # all tied: argsort's last three are picked
    five = [0.9, 0.1, 0.1, 0.1, 0.1]  # 5 candidates: not in jaccard_score_10-12
    found = metrics.winogavil([ten, twelve, five], [{0, 3}, {0, 1, 2}, {1}])
    # ten: picks {0, 1} against {0, 3} -> 1/3; five: picks {0} against {1} -> 0
    picked = set(np.argsort(np.array(twelve))[-3:].tolist())  # {9, 10, 11} with numpy's sorts tried here
    tied = len(picked & {0, 1, 2}) / len(picked | {0, 1, 2})
    assert found == pytest.approx(
        {
            "avg_jaccard_score": 100 * (1 / 3 + tied + 0) / 3,
            "jaccard_score_5": 0.0,
            "jaccard_score_10": 100 / 3,
            "jaccard_score_12": 100 * tied,
            "jaccard_score_5-6": 0.0,
            "jaccard_score_10-12": 100 * (1 / 3 + tied) / 2,
        }
    )
    assert "jaccard_score_6" not in found  # no instance of 6 candidates: left out, where DataComp has NaN
    assert metrics.winogavil([], []) == {}


def test_winogavil_takes_masks_or_indices_and_refuses_bad_ones() -> None:
    row = [0.3, 0.9, 0.1, 0.5, 0.7]
    by_mask = metrics.winogavil([row], [np.array([False, True, False, False, True])])
    assert by_mask == metrics.winogavil([row], [[1, 4]]) == metrics.winogavil([row], [{4, 1}])
    assert by_mask["jaccard_score_5"] == 100
    assert metrics.winogavil([row], [[]])["avg_jaccard_score"] == 0  # no true one: DataComp's [-0:] picks all
    with pytest.raises(ValueError, match="indices of the 5 candidates"):
        metrics.winogavil([row], [[5]])
    with pytest.raises(ValueError, match="mask of shape"):
        metrics.winogavil([row], [np.array([True, False])])
    with pytest.raises(ValueError, match="rows of similarities"):
        metrics.winogavil([row, row], [[1]])
    with pytest.raises(ValueError, match="a row of candidate similarities"):
        metrics.winogavil([[]], [[]])


def random_instances(rng: np.random.Generator, count: int, dtype: Any, ties: bool) -> list[tuple[Any, Any]]:
    """(logits, y_true) pairs: 4 to 13 candidates (mostly DataComp's 5, 6, 10, 12), 0 to all of them true;
    logits continuous, or drawn from three values so that ties cross the cut."""
    instances = []
    for _ in range(count):
        n = int(rng.choice([4, 5, 5, 6, 6, 7, 10, 10, 11, 12, 12, 13]))
        logits = rng.choice([0.0, 0.25, 0.5], n) if ties else rng.standard_normal(n)
        truth = np.zeros(n, dtype=bool)
        truth[rng.choice(n, int(rng.integers(0, n + 1)), replace=False)] = True
        instances.append((logits.astype(dtype), truth))
    return instances


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "tie-heavy"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_winogavil_equals_datacomps_loop(dtype: Any, ties: bool) -> None:
    rng = np.random.default_rng(7)
    instances = random_instances(rng, 400, dtype, ties)
    expected = datacomp_winogavil(instances)
    assert set(expected) == {
        "avg_jaccard_score", "jaccard_score_5", "jaccard_score_6", "jaccard_score_10", "jaccard_score_12",
        "jaccard_score_5-6", "jaccard_score_10-12",
    }  # fmt: skip
    logits, truths = [i[0] for i in instances], [i[1] for i in instances]
    # the same float operations (a count over a count, numpy's mean): equal, not just close
    assert metrics.winogavil(logits, truths) == expected
    indices = [np.flatnonzero(truth) for truth in truths]
    assert metrics.winogavil(logits, indices) == expected
    # one size only: the other keys are left out, where the reference has NaN
    tens = [i for i in instances if len(i[0]) == 10]
    only_ten = datacomp_winogavil(tens)
    assert set(only_ten) == {"avg_jaccard_score", "jaccard_score_10", "jaccard_score_10-12"}
    assert metrics.winogavil([i[0] for i in tens], [i[1] for i in tens]) == only_ten
