"""`vitamin eval`: the task registry, the metrics against hand-worked cases, zero-shot accuracy against an
independent open_clip loop, task data served by the test Hub as dataset repos, resuming, and bad input."""

from __future__ import annotations

import io
import json
import random
import signal
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Hub, Run, start_vitamin, tiny_model, tiny_zoo_text, vitamin_process
from hubserver import build_repo

from vitamin_cli import metrics, tasks

# ---------------------------------------------------------------------------------------------------
# The registry


def test_the_registry_holds_datacomps_40_tasks_and_the_zoos_columns() -> None:
    registry = tasks.load()
    assert len(registry.tasks) == 40
    sizes = {suite: len(registry.suite(suite)) for suite in tasks.SUITES}
    assert sizes == {"imagenet": 1, "avg38": 38, "dist_shift": 6, "vtab": 13, "retrieval": 3}
    assert "sun397" in [t.key for t in registry.suite("vtab")]  # by the table, not by the key's prefix
    assert "vtab/cifar100" not in [t.key for t in registry.suite("dist_shift")]
    assert {t.key for t in registry.tasks if t.metric is None} == {"fairness/fairface", "fairness/utkface"}
    assert registry.get("wilds/fmow").metric == "acc_worst_region"
    assert registry.get("fairness/dollar_street").repo == "djghosh/wds_dollar_street_test"
    assert registry.get("vtab/cifar100").repo == "djghosh/wds_vtab-cifar100_test"
    assert registry.resolve([], []) == [registry.get("imagenet1k")]


def test_a_broken_registry_is_reported_with_its_line(tmp_path: Path) -> None:
    from vitamin_cli.errors import ZooFileError

    text = tasks.bundled_path().read_text().replace("groups: [vtab, avg38]", "groups: [vtab, nope]", 1)
    with pytest.raises(ZooFileError, match="expected a list of distinct suites") as caught:
        tasks._Parser("tasks.yaml", text).parse()
    assert caught.value.line is not None


# ---------------------------------------------------------------------------------------------------
# Metrics, against cases worked by hand


def test_top_k_accuracy() -> None:
    top = np.array([[0, 1, 2, 3, 4], [1, 0, 2, 3, 4], [4, 3, 2, 1, 0]])
    labels = np.array([0, 0, 0])
    assert metrics.acc(top, labels) == pytest.approx(100 / 3)  # only the first is right at top-1
    assert metrics.acc(top, labels, 2) == pytest.approx(200 / 3)
    assert metrics.acc(top, labels, 5) == 100


def test_mean_per_class_recall_counts_a_class_never_predicted_as_zero() -> None:
    predicted = np.array([[0], [0], [0], [1], [2]])  # class 2 is predicted but never true: it does not count
    labels = np.array([0, 0, 1, 1, 3])  # class 3 is never predicted: recall 0
    # class 0: 2/2, class 1: 1/2 (one predicted 0), class 3: 0/1 -> (1 + 0.5 + 0) / 3
    assert metrics.mean_per_class_recall(predicted, labels) == pytest.approx(50)


def test_macro_f1_over_the_true_classes() -> None:
    predicted = np.array([[0], [0], [1], [1], [1], [2]])
    labels = np.array([0, 1, 1, 1, 2, 2])
    # class 0: P 1/2, R 1/1 -> 2/3; class 1: P 2/3, R 2/3 -> 2/3; class 2: P 1/1, R 1/2 -> 2/3
    assert metrics.f1_macro(predicted, labels) == pytest.approx(200 / 3)
    # a class never predicted has F1 0; a predicted class absent from the labels is not averaged
    assert metrics.f1_macro(np.array([[0], [0], [5]]), np.array([0, 1, 0])) == pytest.approx(100 * (0.5 + 0) / 2)


def test_worst_region_leaves_other_out() -> None:
    predicted = np.array([[0], [1], [0], [0], [1]])
    labels = np.array([0, 1, 1, 1, 0])
    metadata = np.array([[0, 2015, 0], [0, 2015, 1], [1, 2016, 1], [5, 2016, 1], [5, 2016, 0]])
    # region 0: 2/2; region 1: 0/1; region 5 ("Other"): 0/2, left out -> worst is region 1
    found = metrics.classification("wilds", "wilds/fmow", predicted, labels, metadata)
    assert found["acc_worst_region"] == 0.0
    metadata[2, 0] = 0  # now region 0 holds 2 of 3 right; region 5 still left out
    found = metrics.classification("wilds", "wilds/fmow", predicted, labels, metadata)
    assert found["acc_worst_region"] == pytest.approx(200 / 3)


def test_worst_group_top5_and_top1() -> None:
    top = np.array([[1, 2, 3, 4, 0], [1, 2, 3, 4, 5], [0, 1, 2, 3, 4], [9, 8, 7, 6, 5]])
    labels = np.array([0, 0, 0, 0])
    incomes = np.array([[0, 10, 1], [0, 10, 1], [1, 50, 2], [1, 50, 2]])
    # group 0: top-5 hits 1 of 2; group 1: 1 of 2 -> 50; top-1: group 0 has 0 of 2 -> 0
    dollar = metrics.classification("fairness", "fairness/dollar_street", top, labels, incomes)
    assert dollar["acc_top5_worst_group"] == 50
    geode = metrics.classification("fairness", "fairness/geode", top, labels, incomes)
    assert geode["acc_worst_group"] == 0


def test_acc5_only_with_five_classes_or_more() -> None:
    assert "acc5" not in metrics.classification("classification", "x", np.array([[0, 1], [1, 0]]), np.array([0, 0]))


def test_mean_recall_at_1_with_several_captions_per_image() -> None:
    # two images, four texts: texts 0 and 1 describe image 0, texts 2 and 3 image 1
    similarity = np.array([[0.9, 0.1, 0.8, 0.0], [0.2, 0.3, 0.1, 0.7]])
    image_of_text = np.array([0, 0, 1, 1])
    # images: 0's best text is 0 (its own), 1's best text is 3 (its own) -> 1.0
    # texts: 0 -> image 0 (right), 1 -> image 1 (wrong), 2 -> image 0 (wrong), 3 -> image 1 (right) -> 0.5
    assert metrics.mean_recall_at_1(similarity, image_of_text) == pytest.approx(75)


def test_winogavil_prompt_and_jaccard() -> None:
    assert metrics.winogavil_prompt("Apple") == "An apple"
    assert metrics.winogavil_prompt("dog") == "A dog"
    ten = [0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    twelve = [0.5] * 12  # ties: the first ones are picked
    five = [0.9, 0.1, 0.1, 0.1, 0.1]  # 5 candidates: not averaged
    instances = [(ten, {0, 3}), (twelve, {0, 1, 2}), (five, {1})]
    # ten: picks {0, 1} vs {0, 3} -> 1/3; twelve: picks {0, 1, 2} -> 1
    assert metrics.jaccard_10_12(instances) == pytest.approx(100 * (1 / 3 + 1) / 2)


# ---------------------------------------------------------------------------------------------------
# Data the tests build: a tiny model, folders of images and webdataset shards


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A zoo with two tiny models (one released) and a random checkpoint of the architecture."""
    import torch

    from vitamin_cli import arch, zoo

    path = tmp_path / "zoo.yaml"
    released = "{repo: test/tiny-clip-eval, filename: pytorch_model.bin}"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-s1M"), tiny_model("Tiny-s2M", samples="2M", weights=released)]))
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    registry = zoo.load(path)
    torch.manual_seed(0)
    model = arch.build(arch.config(registry, registry.get("Tiny-s1M")))
    checkpoint = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    return path, checkpoint


def image_bytes(rng: random.Random, size: tuple[int, int] = (40, 30), kind: str = "JPEG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3))).save(buffer, kind)
    return buffer.getvalue()


def image_folder(root: Path, classes: list[str], per_class: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i}.png").write_bytes(image_bytes(rng, kind="PNG"))
    return root


def shards(labels: list[int], count: int, metadata: list[list[int]] | None = None, seed: int = 0) -> dict[str, bytes]:
    """Webdataset tars holding these samples (an image, `cls`, and `npy` when metadata is given)."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    per = (len(labels) + count - 1) // count
    for shard in range(count):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for index in range(shard * per, min(len(labels), (shard + 1) * per)):
                parts = {"jpg": image_bytes(rng), "cls": str(labels[index]).encode()}
                if metadata is not None:
                    array = io.BytesIO()
                    np.save(array, np.array(metadata[index]))
                    parts["npy"] = array.getvalue()
                for extension, data in parts.items():
                    info = tarfile.TarInfo(f"sample{index:05d}.{extension}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        files[f"test/{shard}.tar"] = buffer.getvalue()
    return files


def wds_folder(root: Path, classnames: list[str], labels: list[int], count: int = 2) -> Path:
    (root / "test").mkdir(parents=True)
    (root / "classnames.txt").write_text("\n".join(classnames) + "\n")
    (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\na {c}.\n")
    (root / "test" / "nshards.txt").write_text(f"{count}\n")
    for name, data in shards(labels, count).items():
        (root / name).write_bytes(data)
    return root


def evaluate(run: Run | None, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    """`vitamin eval ARGS --json`: in this process (torch is imported once), or in a new one with `env`."""
    argv = ["eval", *args, "--json", "--workers", "1"]
    result = run(*argv) if run is not None else vitamin_process(*argv, env=env)
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}, result.stderr


# ---------------------------------------------------------------------------------------------------
# Zero-shot accuracy, checked against open_clip itself


def test_accuracy_equals_an_independent_open_clip_loop(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Build the same model with open_clip's own factory and loader, classify each image with open_clip's own
    classifier builder and an argmax: the same accuracy as `vitamin eval`'s pipeline."""
    import open_clip
    import torch
    from open_clip.zero_shot_classifier import build_zero_shot_classifier
    from PIL import Image

    from vitamin_cli import zoo

    zoo_path, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["red_apple", "blue_sky", "green_grass", "tabby_cat"], 6)
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}")
    assert code == 0, stderr
    (row,) = data["results"]
    assert row["samples"] == 24 and row["templates"] == "default" and row["status"] == "ok"

    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    registry = zoo.load(zoo_path)
    (config_dir / "VitaminTiny.json").write_text(json.dumps(registry.inline_architecture(registry.get("Tiny-s1M"))))
    open_clip.add_model_config(config_dir)
    model, _, preprocess = open_clip.create_model_and_transforms("VitaminTiny", pretrained=str(checkpoint))
    tokenizer = open_clip.get_tokenizer("VitaminTiny")
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    names = ["blue sky", "green grass", "red apple", "tabby cat"]  # sorted folders, `_` read as a space
    with torch.no_grad():
        classifier = build_zero_shot_classifier(model.eval(), tokenizer, names, OPENAI_IMAGENET_TEMPLATES)
        right = 0
        for label, name in enumerate(sorted(p.name for p in folder.iterdir())):
            for image in sorted((folder / name).iterdir()):
                features = model.encode_image(preprocess(Image.open(image))[None], normalize=True)
                right += int((features @ classifier).argmax() == label)
    assert row["metrics"]["acc1"] == pytest.approx(100 * right / 24)


# ---------------------------------------------------------------------------------------------------
# Task data from the Hub, through the machinery of `vitamin pull`

EUROSAT = "djghosh/wds_vtab-eurosat_test"
FMOW = "djghosh/wds_wilds-fmow_test"
CLASSES = ["annual crop", "forest", "herbaceous vegetation", "highway", "industrial", "pasture", "permanent crop",
           "residential", "river", "sea or lake"]  # fmt: skip


@pytest.fixture
def hub_tasks(hub: Hub) -> Hub:
    """Two dataset repos on the test Hub: a classification task and a WILDS task with metadata."""
    if not (hub.mirrors / "datasets" / EUROSAT).exists():
        labels = [i % 10 for i in range(40)]
        plain = {
            "classnames.txt": "\n".join(CLASSES) + "\n",
            "zeroshot_classification_templates.txt": "a centered satellite photo of {c}.\n",
            "test/nshards.txt": "2\n",
        }
        build_repo(hub.mirrors, EUROSAT, shards(labels, 2), plain, repo_type="dataset")
        regions = [[i % 6, 2016, i % 3] for i in range(30)]
        plain_fmow = {**plain, "classnames.txt": "airport\nbarn\ndam\n", "test/nshards.txt": "1\n"}
        build_repo(hub.mirrors, FMOW, shards([i % 3 for i in range(30)], 1, regions), plain_fmow, repo_type="dataset")
    return hub


def test_task_data_is_pulled_verified_evaluated_offline_and_removed(
    hub_tasks: Hub, run: Run, tiny: tuple[Path, Path]
) -> None:
    hub_tasks.proxy.faults.cut_after = 5000  # the first shard's download is cut, and continued
    pulled = vitamin_process("pull", "--task", "vtab/eurosat", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    assert any(r[2] and r[1].endswith("test/0.tar") for r in hub_tasks.proxy.faults.requests)
    (row,) = json.loads(pulled.stdout)
    assert row["name"] == "task:vtab/eurosat" and row["status"] == "downloaded" and row["filename"] == "5 files"
    listed = json.loads(run("cache", "--json").stdout)["models"]
    assert {m["repo_type"] for m in listed} == {"dataset"} and len(listed) == 5
    assert run("verify").exit_code == 0  # the small text files are checked by their git blob id
    hub_tasks.proxy.reset()
    _, checkpoint = tiny
    code, data, stderr = evaluate(
        None, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", "vtab/eurosat", env={"HF_HUB_OFFLINE": "1"}
    )
    assert code == 0, stderr
    (result,) = data["results"]
    assert result["samples"] == 40 and result["templates"] == "task" and len(result["data_revision"]) == 40
    assert hub_tasks.proxy.faults.requests == []
    assert run("rm", "task:vtab/eurosat", "--yes").exit_code == 0
    assert json.loads(run("cache", "--json").stdout)["models"] == []


def test_a_wilds_task_reads_its_metadata(run: Run, hub_tasks: Hub, tiny: tuple[Path, Path]) -> None:
    _, checkpoint = tiny
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", "wilds/fmow")
    assert code == 0, stderr
    (result,) = data["results"]
    assert result["main_metric"] == "acc_worst_region" and result["main"] == result["metrics"]["acc_worst_region"]


def test_a_suite_with_tasks_not_evaluated_yet_is_marked_incomplete(
    run: Run, hub_tasks: Hub, tiny: tuple[Path, Path]
) -> None:
    _, checkpoint = tiny
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--suite", "retrieval")
    assert code == 0, stderr
    assert {r["status"] for r in data["results"]} == {"skipped"}
    assert all("datasets format" in r["error"] for r in data["results"])
    (model,) = data["models"]
    retrieval = next(c for c in model["columns"] if c["column"] == "retrieval")
    assert retrieval["measured"] is None and len(retrieval["missing"]) == 3


def test_a_released_model_is_pulled_first_and_the_classifier_is_kept(
    hub_tasks: Hub, run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    _, checkpoint = tiny
    if not (hub_tasks.mirrors / "models" / "test" / "tiny-clip").exists():
        build_repo(hub_tasks.mirrors, "test/tiny-clip-eval", {"pytorch_model.bin": checkpoint.read_bytes()})
    code, data, stderr = evaluate(run, "Tiny-s2M", "--task", "vtab/eurosat")
    assert code == 0, stderr
    (first,) = data["results"]
    assert first["classifier_cached"] is False
    code, data, _ = evaluate(run, "Tiny-s2M", "--task", "vtab/eurosat")
    (second,) = data["results"]
    assert second["classifier_cached"] is True and second["metrics"] == first["metrics"]


# ---------------------------------------------------------------------------------------------------
# Resuming


def test_an_interrupted_sweep_resumes_without_redoing_finished_tasks(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    small = image_folder(tmp_path / "small", ["a", "b"], 2)
    large = wds_folder(tmp_path / "large", ["cat", "dog", "bird"], [i % 3 for i in range(1500)], count=4)
    runs = tmp_path / "runs.jsonl"
    args = ["eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{small}", "--task", f"wds:{large}"]
    process = start_vitamin(*args, "-o", str(runs), "--workers", "1")
    deadline = time.monotonic() + 120
    while not (runs.exists() and runs.read_text().count("\n") >= 1):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = runs.read_text()
    assert first.count("\n") == 1  # the large task was cut short: nothing of it is recorded
    result = vitamin_process(*args, "-o", str(runs), "--json", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    lines = runs.read_text().splitlines()
    assert len(lines) == 2 and runs.read_text().startswith(first)  # the finished task kept, not redone
    assert [json.loads(line)["task"] for line in lines] == [f"folder:{small}", f"wds:{large}"]
    assert len(json.loads(result.stdout)["results"]) == 2


# ---------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--task", "vtab/cifar1000"], 2, "did you mean: vtab/cifar100"),
        (["--suite", "vtabb"], 2, "did you mean: vtab"),
        (["--task", "folder:/no/such/folder"], 2, "no such folder"),
        (["--task", "wds:/tmp"], 2, "not in the webdataset layout"),
    ],
)
def test_bad_tasks_are_usage_errors(
    run: Run, tiny: tuple[Path, Path], args: list[str], code: int, message: str
) -> None:
    _, checkpoint = tiny
    result = run("eval", "Tiny-s1M", "--checkpoint", str(checkpoint), *args)
    assert result.exit_code == code
    assert message in result.stderr and "Traceback" not in result.stderr


def test_folders_with_too_little_in_them(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    empty = tmp_path / "empty"
    empty.mkdir()
    one = image_folder(tmp_path / "one", ["only"], 3)
    for folder, message in ((empty, "0 class folders"), (one, "1 class folder")):
        result = run("eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}")
        assert result.exit_code == 2
        assert message in result.stderr and "at least 2" in result.stderr


def test_an_image_that_does_not_decode_is_counted(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["a", "b"], 3)
    (folder / "a" / "broken.jpg").write_bytes(b"not an image at all")
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}")
    assert code == 0, stderr
    (row,) = data["results"]
    assert (row["samples"], row["undecodable"]) == (6, 1)


def test_templates(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["a", "b"], 2)
    bad = tmp_path / "bad.txt"
    bad.write_text("a photo of a {c}.\na photo of a thing.\n")
    result = run("eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}",
                 "--templates", str(bad))  # fmt: skip
    assert result.exit_code == 2 and "template 2" in result.stderr and "{c}" in result.stderr
    good = tmp_path / "good.txt"
    good.write_text("itap of a {c}.\n")
    code, data, _ = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}",
                             "--templates", str(good))  # fmt: skip
    assert code == 0 and data["results"][0]["templates"] == str(good)


def test_weights_rules(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import torch

    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["a", "b"], 2)
    task = ["--task", f"folder:{folder}"]
    two = run("eval", "Tiny-s1M", "Tiny-s2M", "--checkpoint", str(checkpoint), *task)
    assert two.exit_code == 2 and "one model" in two.stderr
    named = run("eval", "Tiny-s1M", *task)
    assert named.exit_code == 1 and "has no public checkpoint" in named.stderr and "--checkpoint" in named.stderr
    wrong = tmp_path / "wrong.pt"
    state = torch.load(checkpoint, weights_only=True)
    state.pop("text_projection")
    torch.save(state, wrong)
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(wrong), *task)
    assert code == 1 and data["results"][0]["status"] == "failed"
    assert "does not fit its architecture" in data["results"][0]["error"]


# ---------------------------------------------------------------------------------------------------
# Measured accuracy beside the zoo's


def test_ls_compare_and_plot_show_measured_accuracy(run: Run, tmp_path: Path) -> None:
    """A results file in which ViTamin-S has every ImageNet-family task and ViT-S-16 only some."""
    from vitamin_cli.results_file import TaskResult

    runs = tmp_path / "runs.jsonl"
    lines = []
    for key in ["imagenet1k", *(t.key for t in tasks.load().suite("dist_shift"))]:
        result = TaskResult("ViTamin-S-s1.28B", "a" * 64, key, key, "r", "task", "t", "fp32", main=60.0)
        lines.append(json.dumps({"kind": "result", **result.to_json()}))
    partial = TaskResult("ViT-S-16-s1.28B", "b" * 64, "imagenetv2", "v2", "r", "task", "t", "fp32", main=40.0)
    lines.append(json.dumps({"kind": "result", **partial.to_json()}))
    runs.write_text("\n".join(lines) + "\n" + '{"kind": "result", "model": "cut sho')  # a line a kill cut short
    table = run("ls", "ViTamin-S", "ViT-S-16-s1.28B", "--eval", str(runs)).stdout
    (row,) = [line for line in table.splitlines() if line.startswith("ViTamin-S-s1.28B")]
    assert row.count("60.0") == 2  # imagenet and dist_shift measured; the other columns not complete
    compared = json.loads(run("compare", "ViTamin-S", "ViT-S-16-s1.28B", "--eval", str(runs), "--json").stdout)
    rows = {r["field"]: r for r in compared["rows"]}
    assert rows["imagenet_measured"]["values"] == [60.0, None]
    picture = run("plot", "--eval", str(runs), "--y", "dist_shift")
    assert picture.exit_code == 0 and "1 models" in picture.stdout
    missing = run("ls", "--eval", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2
