"""`vitamin eval`: the task registry, the metrics against hand-worked cases, zero-shot accuracy against an
independent open_clip loop, task data served by the test Hub as dataset repos, resuming, and bad input."""

from __future__ import annotations

import io
import json
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Hub, Run, start_vitamin, vitamin_process
from hubserver import build_repo

from vitamin_cli.eval import metrics, tasks

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


# ---------------------------------------------------------------------------------------------------
# Data the tests build: folders of images and webdataset shards (the tiny model: conftest.py)


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


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
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


def test_a_suite_with_tasks_whose_data_is_missing_is_marked_incomplete(
    run: Run, hub_tasks: Hub, tiny: tuple[Path, Path]
) -> None:
    """The retrieval suite's three repos are not on this Hub: each task fails naming what is missing, and the
    column stays unmeasured with the three listed."""
    _, checkpoint = tiny
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--suite", "retrieval")
    assert code == 1, stderr
    assert {r["status"] for r in data["results"]} == {"failed"}
    (model,) = data["models"]
    retrieval = next(c for c in model["columns"] if c["column"] == "retrieval")
    assert retrieval["measured"] is None and len(retrieval["missing"]) == 3


def test_a_released_model_is_pulled_first_and_the_classifier_is_kept(
    hub_tasks: Hub, run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    _, checkpoint = tiny
    if not (hub_tasks.mirrors / "models" / "test" / "tiny-clip-eval").exists():  # the hub lives for the session
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


def sweep_stopped_after_one_task(
    checkpoint: Path, tmp_path: Path, stop: signal.Signals
) -> tuple[subprocess.Popen[str], list[str], Path]:
    """`vitamin eval` of a small task then a large one, sent `stop` once the small one is in `-o FILE`."""
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
    process.send_signal(stop)
    return process, args, runs


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_an_interrupted_sweep_resumes_without_redoing_finished_tasks(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    process, args, runs = sweep_stopped_after_one_task(checkpoint, tmp_path, signal.SIGKILL)
    process.wait()
    first = runs.read_text()
    assert first.count("\n") == 1  # the large task was cut short: nothing of it is recorded
    result = vitamin_process(*args, "-o", str(runs), "--json", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    lines = runs.read_text().splitlines()
    assert len(lines) == 2 and runs.read_text().startswith(first)  # the finished task kept, not redone
    assert [json.loads(line)["task"] for line in lines] == [args[-3], args[-1]]  # folder:..., wds:...
    assert len(json.loads(result.stdout)["results"]) == 2


def test_the_python_sweep_of_docs_code_md_runs_and_resumes(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/code.md's Python equivalent of `vitamin eval --suite vtab --ray auto -o runs.jsonl`, run as written
    but for what this machine lacks (a Ray cluster, ViTamin-L's weights, the VTAB data): each such part is
    swapped for a local stand-in, and the swap fails if the snippet no longer holds that part."""
    _, checkpoint = tiny
    text = (Path(__file__).parent.parent / "docs" / "code.md").read_text()
    snippet = text.split("`vitamin eval --suite vtab --ray auto -o runs.jsonl`, with the model named, in Python:")[1]
    snippet = snippet.split("```python\n")[1].split("```")[0]
    folder = wds_folder(tmp_path / "data", ["cat", "dog", "bird"], [0, 1, 2, 1, 0, 2])
    runs = tmp_path / "runs.jsonl"
    for part, stand_in in {
        'runners.make("auto")': "runners.make(None)",
        'registry.select("ViTamin-L")': 'registry.select("Tiny-s1M")',
        'tasks.load().suite("vtab")': f"tasks.load().resolve([{f'wds:{folder}'!r}], [])",
        "runner=runner,": f"runner=runner, checkpoint=Path({str(checkpoint)!r}),",
        'Path("runs.jsonl")': f"Path({str(runs)!r})",
    }.items():
        assert part in snippet, f"docs/code.md's snippet no longer has {part}"
        snippet = snippet.replace(part, stand_in)
    capsys.readouterr()
    exec(compile(snippet, "docs/code.md", "exec"), {})
    first = capsys.readouterr().out
    assert first.startswith("Tiny-s1M wds:") and runs.read_text().count("\n") == 1
    exec(compile(snippet, "docs/code.md", "exec"), {})  # resumed from runs.jsonl: nothing appended
    assert capsys.readouterr().out == first and runs.read_text().count("\n") == 1


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
    from vitamin_cli.eval.results import TaskResult

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


# ---------------------------------------------------------------------------------------------------
# Data that is broken in the middle, checkpoints from training runs, results files written by hand


def shard_with(samples: dict[str, dict[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for key, parts in samples.items():
            for extension, data in parts.items():
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("label", "expected"),
    [(b"dog", "has cls 'dog'"), (b"1.0", "has cls '1.0'"), (b"-1", "has cls '-1'"),
     (b"99999999999999999999999", "has cls '99999999999"), (b"7", "has cls '7'"), (None, "has no cls")],
)  # fmt: skip
def test_a_sample_without_a_valid_label_fails_the_task_naming_it(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path, label: bytes | None, expected: str
) -> None:
    _, checkpoint = tiny
    folder = wds_folder(tmp_path / "wds", ["cat", "dog", "bird"], [0, 1, 2], count=1)
    rng = random.Random(1)
    broken = {"jpg": image_bytes(rng)} | ({} if label is None else {"cls": label})
    (folder / "test" / "0.tar").write_bytes(shard_with({"good": {"jpg": image_bytes(rng), "cls": b"1"}, "bad": broken}))
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"wds:{folder}")
    assert code == 1
    (row,) = data["results"]
    assert row["status"] == "failed" and "sample 'bad'" in row["error"] and expected in row["error"]
    assert "0.tar" in row["error"] and "Traceback" not in stderr + row["error"]


@pytest.mark.parametrize("keep", [0.5, 0.3, 0.98])
def test_a_shard_cut_short_fails_instead_of_counting_fewer_samples(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path, keep: float
) -> None:
    _, checkpoint = tiny
    folder = wds_folder(tmp_path / "wds", ["cat", "dog", "bird"], [i % 3 for i in range(12)], count=1)
    shard = folder / "test" / "0.tar"
    whole = shard.read_bytes()
    code, data, _ = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"wds:{folder}")
    assert code == 0 and data["results"][0]["samples"] == 12  # whole, it reads
    end = len(whole.rstrip(b"\0"))  # where the end-of-archive blocks and the padding begin
    shard.write_bytes(whole[: int(end * keep)] if keep < 0.9 else whole[: end + 512])
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"wds:{folder}")
    assert code == 1, data
    (row,) = data["results"]
    assert row["status"] == "failed", row
    assert "cut short" in row["error"] or "unexpected end of data" in row["error"], row["error"]


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_an_unreadable_shard_in_a_worker_is_one_line(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    folder = wds_folder(tmp_path / "wds", ["cat", "dog"], [0, 1], count=1)
    (folder / "test" / "0.tar").write_bytes(b"not a tar at all" * 100)
    result = vitamin_process("eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"wds:{folder}",
                             "--workers", "1", "--json")  # fmt: skip
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)["results"]
    assert row["error"].endswith("is not a readable tar file: invalid header") and "\n" not in row["error"]
    assert "Traceback" not in result.stderr


def test_a_training_checkpoint_loads_and_a_broken_one_says_why(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """open_clip's training writes {"epoch", "state_dict"} with DistributedDataParallel's `module.` prefix."""
    import torch

    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 2)
    task = ("--task", f"folder:{folder}")
    state = torch.load(checkpoint, weights_only=True)
    wrapped = tmp_path / "epoch_3.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    code, plain, _ = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), *task)
    code_wrapped, from_training, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(wrapped), *task)
    assert code == code_wrapped == 0, stderr
    assert from_training["results"][0]["metrics"] == plain["results"][0]["metrics"]

    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    not_tensor = tmp_path / "float.pt"
    torch.save({**state, "logit_scale": 1.0}, not_tensor)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for bad, expected in ((text, "is not a PyTorch checkpoint: it is text"), (empty, "is not a PyTorch checkpoint"),
                          (not_tensor, "logit_scale is a float, not a tensor")):  # fmt: skip
        code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(bad), *task)
        assert code == 1 and "Traceback" not in stderr
        error = data["results"][0]["error"]
        assert expected in error and not error.endswith(": "), error


def test_a_folder_tasks_revision_follows_linked_class_folders(tmp_path: Path) -> None:
    from vitamin_cli.eval import layouts

    real = image_folder(tmp_path / "real", ["dog"], 2)
    folder = image_folder(tmp_path / "photos", ["cat"], 2)
    (folder / "dog").symlink_to(real / "dog")
    task = tasks.load().resolve([f"folder:{folder}"], [])[0]
    before = layouts.prepare(task, tmp_path / "hub")
    assert len(before.images) == 4
    (real / "dog" / "0.png").write_bytes(image_bytes(random.Random(7), size=(50, 50), kind="PNG"))
    assert layouts.prepare(task, tmp_path / "hub").revision != before.revision
    (folder / "empty_class").mkdir()  # a class more: another classifier, another revision
    assert layouts.prepare(task, tmp_path / "hub").revision != before.revision


def test_files_that_are_not_regular_files_are_refused(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import os

    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 1)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    common = ("eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}")
    for args in (("-o", "/dev/zero"), ("-o", str(fifo)), ("--templates", str(fifo))):
        result = run(*common, *args)
        assert result.exit_code == 2 and "not a regular file" in result.stderr, result.stderr
    for option in ("--eval", "--bench"):
        result = run("ls", option, "/dev/zero")
        assert result.exit_code == 2 and "not a regular file" in result.stderr


def test_results_files_survive_cut_lines_and_hand_edits(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A line cut short by a kill, or with wrong types, is left out; the next line starts on its own line."""
    _, checkpoint = tiny
    out = tmp_path / "runs.jsonl"
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 2)
    one = ("Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}", "-o", str(out))
    assert evaluate(run, *one)[0] == 0
    good = json.loads(out.read_text())
    bad_types = [{**good, "dtype": ["fp32"]}, {**good, "main": "high"}, {**good, "main": float("nan")},
                 {**good, "samples": "4"}]  # fmt: skip
    out.write_text("".join(json.dumps(b) + "\n" for b in bad_types) + json.dumps(good)[:40])  # cut by a kill
    code, data, stderr = evaluate(run, *one)
    assert code == 0, stderr
    assert data["results"][0]["status"] == "ok"  # measured again: nothing readable held it
    lines = out.read_text().splitlines()
    assert json.loads(lines[-1])["main"] == good["main"] and len(lines) == len(bad_types) + 2
    from vitamin_cli.eval import results as results_file

    assert len(results_file.read_results(out)) == 1
    listed = run("ls", "--eval", str(out))
    assert listed.exit_code == 0, listed.stderr


def test_a_failed_task_is_tried_again_on_resume(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    out = tmp_path / "runs.jsonl"
    folder = wds_folder(tmp_path / "wds", ["cat", "dog"], [0, 1, 0, 1], count=1)
    shard = folder / "test" / "0.tar"
    whole = shard.read_bytes()
    shard.write_bytes(whole[:1000])
    args = ("Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"wds:{folder}", "-o", str(out))
    assert evaluate(run, *args)[0] == 1
    shard.write_bytes(whole)
    import os

    os.utime(shard, ns=(1, 1))  # even with the revision unchanged by the repair, the failure is not kept
    code, data, _ = evaluate(run, *args)
    assert code == 0 and data["results"][0]["samples"] == 4


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_ctrl_c_keeps_what_finished_and_says_so(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    process, args, runs = sweep_stopped_after_one_task(checkpoint, tmp_path, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert [json.loads(line)["task"] for line in runs.read_text().splitlines()] == [args[-3]]


# Python runs a fork hook for each DataLoader worker it starts; a Ctrl-C landing there is swallowed as
# "Exception ignored". This one presses Ctrl-C inside the hook, as an unlucky user would.
CTRL_C_WHILE_FORKING = """
import os, signal, sys
pressed = []
def press():
    if not pressed:
        pressed.append(True)
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(100000))  # the handler runs here, inside the hook
os.register_at_fork(after_in_parent=press)
from vitamin_cli.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_a_ctrl_c_swallowed_by_a_fork_hook_still_stops_the_sweep(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    small = image_folder(tmp_path / "small", ["a", "b"], 2)
    runs = tmp_path / "runs.jsonl"
    args = ["eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{small}", "--workers", "1"]
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_FORKING, *args, "-o", str(runs)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 130 and "interrupted" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert not runs.exists() or runs.read_text() == ""  # the task it cut short is not recorded
