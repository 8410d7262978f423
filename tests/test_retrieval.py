"""Retrieval tasks: the Hub's CSV-and-zip repos served by the test Hub in their real layout, and your own pairs
(`retrieval:PATH`), evaluated to CLIP_benchmark's own recall for the same model and data; pulled, verified and
removed like any task; bad rows, members and captions named."""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from pathlib import Path

import pytest
from conftest import Hub, Run
from hubserver import build_repo
from test_eval import evaluate, image_bytes

FLICKR = "nlphuji/flickr_1k_test_image_text_retrieval"
KEY = "retrieval/flickr_1k_test_image_text_retrieval"
CSV_NAME, ZIP_NAME = "test_1k_flickr.csv", "images_flickr_1k_test.zip"
COLOURS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "pink", "brown", "grey", "teal"]
# Several captions per image, unevenly (CLIP_benchmark's recall@10 needs at least 10 images).
CAPTIONS = [[f"a {c} square", f"something {c}", f"a plain {c} picture"][: 1 + i % 3] for i, c in enumerate(COLOURS)]


def pairs() -> tuple[dict[str, bytes], str]:
    """Images (name -> JPEG bytes) and the CSV, one row per image with its captions in the repo's `raw`
    column (quoted as Python lists, as the real files are, and one as JSON)."""
    rng = random.Random(3)
    images = {f"{1000 + i}.jpg": image_bytes(rng, (48, 40)) for i in range(len(CAPTIONS))}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["raw", "sentids", "split", "filename", "img_id"])
    for index, (name, captions) in enumerate(zip(images, CAPTIONS, strict=True)):
        raw = json.dumps(captions) if index == 0 else repr(captions)
        writer.writerow([raw, repr(list(range(len(captions)))), "test", name, index])
    return images, out.getvalue()


def zipped(images: dict[str, bytes], folder: str = "flickr30k-images/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in images.items():
            archive.writestr(folder + name, data)
    return buffer.getvalue()


@pytest.fixture
def hub_flickr(hub: Hub) -> Hub:
    if not (hub.mirrors / "datasets" / FLICKR).exists():
        images, table = pairs()
        script = "raise SystemExit('a loading script that vitamin must never fetch or run')\n"
        plain = {CSV_NAME: table, "flickr_1k_test_image_text_retrieval.py": script, "README.md": "# test\n"}
        build_repo(hub.mirrors, FLICKR, {ZIP_NAME: zipped(images)}, plain, repo_type="dataset")
    return hub


def clip_benchmark_recall(checkpoint: Path, zoo_path: Path) -> dict[str, float]:
    """CLIP_benchmark's own zeroshot_retrieval.evaluate (fp32: amp=False) on the same model and pairs."""
    import torch
    from clip_benchmark.metrics import zeroshot_retrieval
    from PIL import Image

    from vitamin_cli import zoo
    from vitamin_cli.models import loading

    model, preprocess, tokenizer = loading.load(zoo.load(zoo_path), "Tiny-s1M", checkpoint=checkpoint)
    images, _ = pairs()
    batch = (
        torch.stack([preprocess(Image.open(io.BytesIO(data)).convert("RGB")) for data in images.values()]),
        CAPTIONS,
    )
    found = zeroshot_retrieval.evaluate(model, [batch], tokenizer, device="cpu", amp=False, recall_k_list=[1, 5, 10])
    return {key: 100 * value for key, value in found.items()}


def assert_clip_benchmarks(metrics: dict[str, float], reference: dict[str, float]) -> None:
    for key, value in reference.items():  # CLIP_benchmark averages in float32: equal to its last digit
        assert metrics[key] == pytest.approx(value, abs=1e-4), key
    both = reference["image_retrieval_recall@1"] + reference["text_retrieval_recall@1"]
    assert metrics["mean_recall@1"] == pytest.approx(both / 2, abs=1e-4)  # DataComp's main metric


@pytest.mark.slow  # a served dataset, pulled, evaluated offline and removed
def test_a_hub_retrieval_task_is_pulled_evaluated_as_clip_benchmark_and_removed(
    run: Run, hub_flickr: Hub, tiny: tuple[Path, Path]
) -> None:
    zoo_path, checkpoint = tiny
    pulled = run("pull", "--task", KEY, "--json")
    assert pulled.exit_code == 0, pulled.stderr
    listed = json.loads(run("cache", "--json").stdout)["models"]
    assert sorted(e["filename"] for e in listed) == sorted([CSV_NAME, ZIP_NAME])  # never the loading script
    assert run("verify").exit_code == 0
    code, data, stderr = evaluate(
        None, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", KEY, env={"HF_HUB_OFFLINE": "1"}
    )
    assert code == 0, stderr
    (result,) = data["results"]
    assert result["status"] == "ok" and result["samples"] == len(CAPTIONS) and result["main_metric"] == "mean_recall@1"
    assert_clip_benchmarks(result["metrics"], clip_benchmark_recall(checkpoint, zoo_path))
    assert run("rm", f"task:{KEY}", "--yes").exit_code == 0
    assert json.loads(run("cache", "--json").stdout)["models"] == []


def local_pairs(root: Path, as_zip: bool = True) -> Path:
    images, table = pairs()
    root.mkdir()
    (root / "pairs.csv").write_text(table)
    if as_zip:
        (root / "images.zip").write_bytes(zipped(images, "photos/"))
    else:
        for name, data in images.items():
            (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
def test_your_own_pairs_give_clip_benchmarks_recall(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path, as_zip: bool
) -> None:
    zoo_path, checkpoint = tiny
    root = local_pairs(tmp_path / "pairs", as_zip)
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"retrieval:{root}")
    assert code == 0, stderr
    (result,) = data["results"]
    assert result["status"] == "ok", result["error"]
    assert_clip_benchmarks(result["metrics"], clip_benchmark_recall(checkpoint, zoo_path))


def rewrite_csv(root: Path, change) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.reader(io.StringIO((root / "pairs.csv").read_text())))
    change(rows)
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    (root / "pairs.csv").write_text(out.getvalue())


def test_bad_pairs_fail_the_task_naming_the_row_or_member(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, checkpoint = tiny
    cases = {
        "a missing image": (lambda rows: rows[2].__setitem__(3, "9999.jpg"), "line 3: image '9999.jpg' is not in"),
        "captions not strings": (lambda rows: rows[1].__setitem__(0, "[1, 2]"), "line 2: the captions are not"),
        "captions as code": (lambda rows: rows[1].__setitem__(0, "__import__('os')"), "line 2: the captions are not"),
        "no raw column": (lambda rows: rows[0].__setitem__(0, "captions"), "no raw column (its columns: captions"),
    }
    for number, (label, (change, message)) in enumerate(cases.items()):
        root = local_pairs(tmp_path / f"case{number}")
        rewrite_csv(root, change)
        code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"retrieval:{root}")
        assert code == 1, (label, stderr)
        (result,) = data["results"]
        assert result["status"] == "failed" and message in result["error"], (label, result["error"])

    root = local_pairs(tmp_path / "escape")
    with zipfile.ZipFile(root / "images.zip", "a") as archive:
        archive.writestr("../outside.jpg", b"x")
    code, data, _ = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"retrieval:{root}")
    assert code == 1 and "member '../outside.jpg' leads outside the zip's folder" in data["results"][0]["error"]


def test_a_results_file_with_the_old_flickr_key_is_read_with_a_note(run: Run, tmp_path: Path) -> None:
    from test_identity import result_line

    path = tmp_path / "old.jsonl"
    path.write_text(result_line("ViTamin-S-s1.28B", "retrieval/flickr30k", 80.0, "a" * 64))
    listed = run("ls", "ViTamin-S", "--eval", str(path))
    assert listed.exit_code == 0, listed.stderr
    assert "retrieval/flickr30k" in listed.stderr and "never counted" in listed.stderr


MSCOCO = "nlphuji/mscoco_2014_5k_test_image_text_retrieval"
MSCOCO_KEY = "retrieval/mscoco_2014_5k_test_image_text_retrieval"


@pytest.mark.slow  # a pull stopped half-way and resumed in subprocesses
def test_a_task_pull_killed_midway_resumes_verifies_and_is_removed_alone(run: Run, hub: Hub) -> None:
    """The zip is large enough to kill the pull in the middle of it: the next pull fetches only what is
    missing; `verify` checks both files; `rm task:KEY` removes them and nothing else."""
    import hashlib
    import os
    import signal
    import time

    from conftest import start_vitamin, vitamin_process
    from test_pull import cache_root

    images, table = pairs()
    archive = zipped({**images, "padding.bin": os.urandom(24 * 2**20)})  # a member no row names
    if not (hub.mirrors / "datasets" / MSCOCO).exists():
        csv_name, zip_name = "test_5k_mscoco_2014.csv", "images_mscoco_2014_5k_test.zip"
        build_repo(hub.mirrors, MSCOCO, {zip_name: archive}, {csv_name: table}, repo_type="dataset")
    assert run("pull", "ViTamin-L", "--quiet").exit_code == 0  # a checkpoint beside it, which rm keeps
    folder = cache_root() / ("datasets--" + MSCOCO.replace("/", "--"))
    partial = folder / "blobs" / (hashlib.sha256(archive).hexdigest() + ".vitamin-partial")
    hub.proxy.faults.chunk_delay_s = 0.01
    process = start_vitamin("pull", "--task", MSCOCO_KEY, "--quiet")
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size >= 4 * 2**20):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    kept = partial.stat().st_size
    faults = hub.proxy.reset()
    result = vitamin_process("pull", "--task", MSCOCO_KEY, "--json")
    assert result.exit_code == 0, result.stderr
    assert faults.body_bytes <= len(archive) - kept + 2**20  # only the missing part crossed the network
    assert run("verify").exit_code == 0
    assert run("rm", f"task:{MSCOCO_KEY}", "--yes").exit_code == 0
    left = json.loads(run("cache", "--json").stdout)["models"]
    assert [e["name"] for e in left] == ["ViTamin-L-224-s12.8B"]  # the checkpoint, and nothing of the task


def test_with_all_38_tasks_every_column_is_measured(run: Run, tmp_path: Path) -> None:
    """Classification results (the task's templates) and retrieval and WinoGAViL results (no templates) of one
    checkpoint make one identity: all five columns measured, retrieval and avg38 included."""
    from test_identity import result_line

    from vitamin_cli.eval import tasks

    lines = []
    for task in tasks.load().tasks:
        if task.metric is not None:
            no_templates = task.kind in ("retrieval", "winogavil")
            value = 60.0 if no_templates else 40.0
            lines.append(
                result_line("ViTamin-S-s1.28B", task.key, value, "a" * 64, templates="none" if no_templates else "task")
            )
    path = tmp_path / "all.jsonl"
    path.write_text("".join(lines))
    assert len(lines) == 38
    compared = json.loads(run("compare", "ViTamin-S", "ViTamin-B", "--eval", str(path), "--json").stdout)
    rows = {r["field"]: r["values"][0] for r in compared["rows"]}
    assert rows["retrieval_measured"] == 60.0
    assert rows["avg38_measured"] == pytest.approx(round((35 * 40 + 3 * 60) / 38, 2))
    assert rows["imagenet_measured"] == 40.0
    listed = run("ls", "ViTamin-S", "--eval", str(path))
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("ViTamin-S-s1.28B")]
    assert row.split()[-6:] == ["40.0", "41.6", "40.0", "40.0", "60.0", "yes"]


@pytest.mark.slow  # a served dataset, pulled, evaluated offline and removed
def test_winogavil_is_pulled_from_its_plain_files_evaluated_and_removed(
    run: Run, hub: Hub, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from test_winogavil import CSV, ZIP, repo

    files = repo(tmp_path / "winogavil")
    if not (hub.mirrors / "datasets" / "nlphuji/winogavil").exists():
        script = "raise SystemExit('a loading script that vitamin must never fetch or run')\n"
        plain = {CSV: (files / CSV).read_text(), "winogavil.py": script}
        build_repo(hub.mirrors, "nlphuji/winogavil", {ZIP: (files / ZIP).read_bytes()}, plain, repo_type="dataset")
    assert run("pull", "--task", "misc/winogavil", "--quiet").exit_code == 0
    assert sorted(e["filename"] for e in json.loads(run("cache", "--json").stdout)["models"]) == [CSV, ZIP]
    assert run("verify").exit_code == 0
    _, checkpoint = tiny
    code, data, stderr = evaluate(
        None, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", "misc/winogavil", env={"HF_HUB_OFFLINE": "1"}
    )
    assert code == 0, stderr
    (result,) = data["results"]
    assert result["status"] == "ok" and result["main_metric"] == "jaccard_score_10-12" and result["samples"] == 10
    assert run("rm", "task:misc/winogavil", "--yes").exit_code == 0
    assert json.loads(run("cache", "--json").stdout)["models"] == []
