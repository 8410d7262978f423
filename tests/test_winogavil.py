"""WinoGAViL (`misc/winogavil`): its plain files read without the repo's loading script, scored as DataComp's
`eval_utils/wino_eval.py` scores it (checked against an independent loop with open_clip's own calls), and
annotations or images that are missing, malformed or unsafe failing with a message that names them."""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vitamin_cli.errors import UsageError
from vitamin_cli.eval import kinds, layouts, tasks
from vitamin_cli.eval.data import DataError, TaskData
from vitamin_cli.eval.layouts import winogavil
from vitamin_cli.eval.zeroshot import Checkpoint, EvalSettings

CSV, ZIP = "winogavil_dataset.csv", "winogavil_images.zip"
COMMIT = "51e1265fc8118bc9273550c3ade7ee4e546e0bb9"
NAMES = [f"thing {i}" for i in range(16)]  # the real names have spaces too ("tea party")
COLUMNS = ["candidates", "cue", "associations", "num_associations", "num_candidates", "ID"]  # as the authors' CSV


def jpeg(rng: random.Random) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (40, 30), rng.randbytes(40 * 30 * 3)).save(buffer, "JPEG")
    return buffer.getvalue()


def instances(seed: int = 0) -> list[dict[str, Any]]:
    """Instances of each size WinoGAViL has (5, 6, 10 and 12 candidates), with 2 to 4 associations."""
    rng = random.Random(seed)
    rows = []
    for number, size in enumerate([10, 12, 5, 6, 10, 12, 6, 5, 12, 10]):
        candidates = rng.sample(NAMES, size)
        associations = rng.sample(candidates, rng.randint(2, min(4, size - 1)))
        cue = rng.choice(["Apple", "dog", "umbrella", "fishing", "Ice", "night"])
        rows.append({"candidates": candidates, "cue": cue, "associations": associations, "ID": number})
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] = COLUMNS) -> Path:
    """The annotations as the authors' CSV holds them: JSON lists; every third row in Python's syntax."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, columns, extrasaction="ignore")
        writer.writeheader()
        for number, row in enumerate(rows):
            lists = repr if number % 3 == 2 else json.dumps
            writer.writerow(
                {
                    **row,
                    "candidates": lists(row["candidates"]),
                    "associations": lists(row["associations"]),
                    "num_associations": row.get("num_associations", len(row["associations"])),
                    "num_candidates": len(row["candidates"]),
                }
            )
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("winogavil_images/", b"")
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def repo(root: Path, rows: list[dict[str, Any]] | None = None, members: dict[str, bytes] | None = None) -> Path:
    """A copy of the Hub repo's two files in `root`: the annotations and the zip, the images in a folder."""
    rng = random.Random(1)
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / CSV, instances() if rows is None else rows)
    write_zip(root / ZIP, {f"winogavil_images/{n}.jpg": jpeg(rng) for n in NAMES} if members is None else members)
    return root


def prepared(root: Path, monkeypatch: pytest.MonkeyPatch) -> TaskData:
    """`layouts.prepare` of the real task, its fetch answered by the files in `root`."""

    def fetch(task: tasks.Task, hub_root: Path, **_: Any) -> tuple[str, dict[str, Path]]:
        return COMMIT, {CSV: root / CSV, ZIP: root / ZIP}

    monkeypatch.setattr(winogavil, "fetch", fetch)
    return layouts.prepare(tasks.load().get("misc/winogavil"), root / "hub")


def read(root: Path) -> TaskData:
    return winogavil.read(tasks.load().get("misc/winogavil"), root / CSV, root / ZIP, COMMIT)


# ---------------------------------------------------------------------------------------------------
# The score, against DataComp's loop


def datacomp_prompt(cue: str) -> str:
    cue = cue.lower()
    return f"An {cue}" if cue[0] in "aeiou" else f"A {cue}"


def jaccard(y_true: Any, y_pred: Any) -> float:
    """sklearn's jaccard_score of two boolean vectors (test_set_jaccard_is_sklearns checks it is)."""
    return float(np.sum(y_true & y_pred) / np.sum(y_true | y_pred))


def test_set_jaccard_is_sklearns() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(50):
        y_true, y_pred = rng.random(12) < 0.3, rng.random(12) < 0.3
        y_true[0] = True
        assert jaccard(y_true, y_pred) == pytest.approx(metrics.jaccard_score(y_true, y_pred))


def test_the_jaccard_scores_equal_datacomps_loop_with_open_clip(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `layouts.prepare` and `kinds.run_task`; then DataComp's loop: per instance, the candidates
    read from the zip and encoded together, the prompt encoded, both normalised by open_clip, the
    `np.argsort(...)[-k:]` top k, the Jaccard index, its means by number of candidates."""
    import open_clip
    import torch
    from PIL import Image

    from vitamin_cli import zoo
    from vitamin_cli.models import loading

    zoo_path, checkpoint = tiny
    root = repo(tmp_path / "winogavil")
    data = prepared(root, monkeypatch)
    assert data.revision == COMMIT and len(data.instances) == 10 and len(data.images) == len(NAMES)
    registry = zoo.load(zoo_path)
    loaded = loading.load(registry, "Tiny-s1M", checkpoint=checkpoint)
    settings = EvalSettings(workers=1, batch_size=5)  # a worker process, and images in several batches
    seen: list[tuple[int, int]] = []
    result = kinds.run_task(
        "Tiny-s1M",
        loaded,
        Checkpoint(checkpoint, "0" * 64),
        data,
        settings,
        lambda done, total, seconds: seen.append((done, total)),
        architecture="a" * 64,
    )
    assert result.status == "ok", result.error
    assert result.samples == 10 and result.undecodable == 0 and result.main_metric == "jaccard_score_10-12"
    assert seen[-1] == (len(NAMES), len(NAMES))

    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    (config_dir / "VitaminTiny.json").write_text(json.dumps(registry.inline_architecture(registry.get("Tiny-s1M"))))
    open_clip.add_model_config(config_dir)
    model, _, preprocess = open_clip.create_model_and_transforms("VitaminTiny", pretrained=str(checkpoint))
    tokenizer = open_clip.get_tokenizer("VitaminTiny")
    model.eval()
    scores, groups = [], []
    with zipfile.ZipFile(root / ZIP) as archive, torch.no_grad():
        for instance in instances():
            pictures = [
                Image.open(io.BytesIO(archive.read(f"winogavil_images/{n}.jpg"))) for n in instance["candidates"]
            ]
            images = torch.stack([preprocess(p) for p in pictures])
            image_features = model.encode_image(images, normalize=True)
            text_features = model.encode_text(tokenizer([datacomp_prompt(instance["cue"])]), normalize=True)
            similarities = (text_features @ image_features.T).squeeze(0).numpy()
            y_true = np.isin(instance["candidates"], instance["associations"])
            top_k = np.argsort(similarities)[-y_true.sum() :]
            y_pred = np.isin(np.arange(len(pictures)), top_k)
            scores.append(jaccard(y_true, y_pred))
            groups.append(len(pictures))
    scores_, groups_ = np.array(scores), np.array(groups)
    expected = {
        "avg_jaccard_score": scores_.mean(),
        "jaccard_score_5": scores_[groups_ == 5].mean(),
        "jaccard_score_6": scores_[groups_ == 6].mean(),
        "jaccard_score_10": scores_[groups_ == 10].mean(),
        "jaccard_score_12": scores_[groups_ == 12].mean(),
        "jaccard_score_5-6": scores_[groups_ <= 6].mean(),
        "jaccard_score_10-12": scores_[groups_ >= 10].mean(),
    }
    assert set(result.metrics) == set(expected)
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(100 * value, abs=1e-9), key
    assert result.main == result.metrics["jaccard_score_10-12"]


def test_an_image_that_does_not_decode_fails_the_task_naming_it(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from vitamin_cli import zoo
    from vitamin_cli.models import loading

    zoo_path, checkpoint = tiny
    rng = random.Random(2)
    members = {f"winogavil_images/{n}.jpg": jpeg(rng) for n in NAMES}
    members["winogavil_images/thing 3.jpg"] = b"not a JPEG"
    data = read(repo(tmp_path, members=members))
    loaded = loading.load(zoo.load(zoo_path), "Tiny-s1M", checkpoint=checkpoint)
    result = kinds.run_task(
        "Tiny-s1M", loaded, Checkpoint(checkpoint, "0" * 64), data, EvalSettings(workers=0), architecture="a" * 64
    )
    assert result.status == "failed" and result.undecodable == 1 and result.main is None
    assert "'winogavil_images/thing 3.jpg'" in (result.error or "") and "do not decode" in (result.error or "")


# ---------------------------------------------------------------------------------------------------
# Reading the files


def test_fetch_takes_the_zip_at_the_commit_the_annotations_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []

    class Fetched:
        def __init__(self, name: str, revision: str) -> None:
            self.commit, self.path = COMMIT, tmp_path / name
            calls.append((name, revision))

    from vitamin_cli.eval import data

    monkeypatch.setattr(data, "fetcher", lambda *args: Fetched)
    task = tasks.load().get("misc/winogavil")
    assert winogavil.fetch(task, tmp_path) == (COMMIT, {CSV: tmp_path / CSV, ZIP: tmp_path / ZIP})
    assert calls == [(CSV, "main"), (ZIP, COMMIT)]
    calls.clear()
    assert winogavil.fetch(task, tmp_path, everything=False) == (COMMIT, {CSV: tmp_path / CSV})
    assert calls == [(CSV, "main")]


def test_names_match_members_by_base_name_with_or_without_extension(tmp_path: Path) -> None:
    rng = random.Random(3)
    members = {
        "images/sub/apple.jpeg": jpeg(rng),
        "images/tea party.png": jpeg(rng),
        "images/cat.jpg": jpeg(rng),
        "images/dog": jpeg(rng),
        "__MACOSX/images/._cat.jpg": b"resource fork",
    }
    rows = [{"candidates": ["apple", "tea party.png", "cat", "dog"], "cue": "tea", "associations": ["tea party.png"]}]
    data = read(repo(tmp_path, rows, members))
    (instance,) = data.instances
    zip_path = tmp_path / ZIP
    assert instance.cue == "tea" and instance.true == [1]
    assert instance.candidates == [
        (zip_path, "images/sub/apple.jpeg"),
        (zip_path, "images/tea party.png"),
        (zip_path, "images/cat.jpg"),
        (zip_path, "images/dog"),
    ]
    assert data.images == [(c, i) for i, c in enumerate(instance.candidates)]
    assert (data.classnames, data.templates, data.templates_source) == ([], [], "none")


def test_a_candidate_missing_from_the_zip_fails_naming_it(tmp_path: Path) -> None:
    rows = instances()
    rows[4]["candidates"][2] = "werewolf"
    rows[4]["associations"] = [c for c in rows[4]["candidates"] if c != "werewolf"][:2]
    with pytest.raises(DataError, match=r"row 5: candidate 'werewolf' is not in .*winogavil_images\.zip; it holds "):
        read(repo(tmp_path, rows))


def test_a_name_two_members_match_fails_naming_both(tmp_path: Path) -> None:
    rng = random.Random(4)
    members = {f"winogavil_images/{n}.jpg": jpeg(rng) for n in NAMES} | {"other/thing 0.png": jpeg(rng)}
    with pytest.raises(
        DataError, match=r"'thing 0' matches both 'winogavil_images/thing 0.jpg' and 'other/thing 0.png'"
    ):
        read(
            repo(
                tmp_path,
                [instances()[0] | {"candidates": ["thing 0", "thing 1"], "associations": ["thing 1"]}],
                members,
            )
        )


def test_annotations_without_associations_fail_naming_the_columns_found(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write_csv(root / CSV, instances(), [c for c in COLUMNS if c != "associations"])
    with pytest.raises(DataError, match=r"has no associations column \(its columns: candidates, cue, num_assoc"):
        read(root)


@pytest.mark.parametrize("member", ["../thing 0.jpg", "winogavil_images/../../thing 0.jpg", "/thing 0.jpg"])
def test_a_member_leading_outside_the_zip_is_refused(tmp_path: Path, member: str) -> None:
    rng = random.Random(5)
    members = {f"winogavil_images/{n}.jpg": jpeg(rng) for n in NAMES[1:]} | {member: jpeg(rng)}
    with pytest.raises(DataError, match=f"member '{member}' leads outside the zip's folder; refused"):
        read(repo(tmp_path, members=members))


@pytest.mark.parametrize(
    "cell",
    [
        '"thing 0"',
        "[1, 2]",
        '["thing 0", ""]',
        "[]",
        "thing 0, thing 1",
        "[__import__('os').system('false')]",
        "['thing 0'] + ['thing 1']",
        "[" * 5000 + "]" * 5000,
    ],
)
def test_a_list_that_is_not_one_of_names_fails_naming_the_row(tmp_path: Path, cell: str) -> None:
    root = repo(tmp_path)
    text = (root / CSV).read_text(encoding="utf-8").splitlines()
    row = next(csv.reader([text[3]]))
    row[0] = cell
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    text[3] = buffer.getvalue().rstrip("\r\n")
    (root / CSV).write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"winogavil_dataset\.csv row 3: candidates is .*, not a list of image names"):
        read(root)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"associations": ["thing 99"]}, "association 'thing 99' is not one of its candidates"),
        ({"num_associations": 7}, "num_associations is '7', but the list has"),
        ({"cue": " "}, "has no cue"),
    ],
)
def test_an_inconsistent_instance_fails_naming_the_row(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    rows = instances()
    rows[1] = rows[1] | change
    root = repo(tmp_path, rows)
    with pytest.raises(DataError, match=f"row 2: .*{message}|row 2 {message}"):
        read(root)


def test_winogavil_is_a_hub_task_only(tmp_path: Path) -> None:
    task = tasks.load().get("misc/winogavil")
    with pytest.raises(UsageError, match="read from the Hub only"):
        winogavil.check_local(task)
    local = tasks.Task("winogavil:x", "x", "winogavil", "winogavil", None, (), None, path=tmp_path)
    with pytest.raises(UsageError, match="read from the Hub only"):
        winogavil.prepare(local, tmp_path, None, None)
