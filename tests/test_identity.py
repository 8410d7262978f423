"""Every reused number is keyed by all that made it: the classifier memo, `eval -o` and `bench -o` resume, the
pulled checkpoint of a model, and the columns ls, compare and plot make from results files (never a mean over
two checkpoints, architectures, dtypes or settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_ARCHITECTURE, Run, tiny_model, tiny_zoo_text
from test_eval import evaluate, image_folder

from vitamin_cli.eval import tasks


def edit_architecture(zoo_path: Path, old: str, new: str) -> None:
    text = zoo_path.read_text()
    assert old in text
    zoo_path.write_text(text.replace(old, new))


TEXT_POOL = "text_cfg: {context_length: 77, vocab_size: 49408, width: 32, heads: 2, layers: 2"
IMAGE_POOL = "vision_cfg: {image_size: 32, layers: 2, width: 64, patch_size: 16, head_width: 32"


def test_an_architecture_edit_that_keeps_the_shapes_builds_a_new_classifier_and_result(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """The same weights load into a text tower pooled another way: the kept classifier and the saved result
    belong to the old architecture and are not reused."""
    zoo_path, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["cat", "dog", "bird"], 3)
    out = tmp_path / "runs.jsonl"
    args = ("Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}", "-o", str(out))
    code, first, stderr = evaluate(run, *args)
    assert code == 0, stderr
    assert first["results"][0]["classifier_cached"] is False
    code, again, _ = evaluate(run, *args)
    assert code == 0 and out.read_text().count("\n") == 1  # the same everything: resumed, nothing appended
    edit_architecture(zoo_path, TEXT_POOL, TEXT_POOL + ", pool_type: last")
    code, edited, stderr = evaluate(run, *args)
    assert code == 0, stderr
    (row,) = edited["results"]
    assert row["classifier_cached"] is False  # built again for the new text tower
    assert row["architecture_sha256"] != first["results"][0]["architecture_sha256"]
    assert out.read_text().count("\n") == 2  # measured again and appended, the old line kept


def test_an_image_tower_edit_is_not_resumed_from_the_old_line(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    zoo_path, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 2)
    out = tmp_path / "runs.jsonl"
    args = ("Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}", "-o", str(out))
    assert evaluate(run, *args)[0] == 0
    edit_architecture(zoo_path, IMAGE_POOL, IMAGE_POOL + ", pool_type: avg")
    code, data, stderr = evaluate(run, *args)
    assert code == 0, stderr
    assert data["results"][0]["classifier_cached"] is False  # keyed by the whole architecture: built again
    assert out.read_text().count("\n") == 2


def classifier_files() -> list[Path]:
    from vitamin_cli.files import memo_dir

    return sorted((memo_dir() / "classifiers").glob("*.pt"))


def damage_garbage(path: Path) -> None:
    path.write_bytes(b"\x00not a checkpoint" * 10)


def damage_text(path: Path) -> None:
    path.write_text("a text file\n")


def damage_one_dimensional(path: Path) -> None:
    import torch

    torch.save(torch.ones(3), path)


def damage_width(path: Path) -> None:
    import torch

    kept = torch.load(path, weights_only=True)
    kept["weights"] = kept["weights"][:, :1].contiguous()
    torch.save(kept, path)


def damage_nan(path: Path) -> None:
    import torch

    kept = torch.load(path, weights_only=True)
    kept["weights"][0, 0] = float("nan")
    torch.save(kept, path)


def damage_permuted(path: Path) -> None:
    import torch

    kept = torch.load(path, weights_only=True)
    kept["weights"] = kept["weights"][:, [1, 0, 2]].contiguous()  # unit columns still, in the wrong order
    torch.save(kept, path)


def damage_fifo(path: Path) -> None:
    import os

    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize(
    "damage",
    [damage_garbage, damage_text, damage_one_dimensional, damage_width, damage_nan, damage_permuted, damage_fifo],
)
def test_a_damaged_classifier_memo_is_built_again(run: Run, tiny: tuple[Path, Path], tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["cat", "dog", "bird"], 3)
    args = ("Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}")
    code, fresh, stderr = evaluate(run, *args)
    assert code == 0, stderr
    (kept,) = classifier_files()
    damage(kept)
    code, again, stderr = evaluate(run, *args)
    assert code == 0, stderr
    assert again["results"][0]["classifier_cached"] is False
    assert again["results"][0]["metrics"] == fresh["results"][0]["metrics"]
    code, third, _ = evaluate(run, *args)  # and the rebuilt entry is used from then on
    assert code == 0 and third["results"][0]["classifier_cached"] is True


# ---------------------------------------------------------------------------------------------------
# Columns: one identity each


def result_line(
    model: str, task: str, main: float, checkpoint: str, dtype: str = "fp32", templates: str = "task"
) -> str:
    row = {
        "kind": "result", "model": model, "checkpoint_sha256": checkpoint, "task": task, "task_name": task,
        "data_revision": "r", "templates": templates, "templates_sha256": "t", "dtype": dtype, "device": "cpu",
        "architecture_sha256": "a", "classnames_sha256": "c", "samples": 10, "undecodable": 0,
        "metrics": {"acc1": main}, "main_metric": "acc1", "main": main, "seconds": 1.0, "images_per_s": 10.0,
        "classifier_s": 0.1, "classifier_cached": False, "node": None, "node_id": None, "status": "ok",
        "error": None,
    }  # fmt: skip
    return json.dumps(row) + "\n"


def shift_file(path: Path, halves: bool) -> Path:
    """Results of ViTamin-S on the dist-shift tasks under two checkpoints: each complete (1.0 and 3.0), or
    each holding half the tasks (which a mean over both would complete: the old bug)."""
    keys = [t.key for t in tasks.load().suite("dist_shift")]
    lines = []
    for checkpoint, value in (("a" * 64, 1.0), ("b" * 64, 3.0)):
        part = keys if not halves else (keys[::2] if checkpoint[0] == "a" else keys[1::2])
        lines += [result_line("ViTamin-S-s1.28B", key, value, checkpoint) for key in part]
    path.write_text("".join(lines))
    return path


def test_a_column_is_never_a_mean_over_two_checkpoints(run: Run, tmp_path: Path) -> None:
    mixed = shift_file(tmp_path / "halves.jsonl", halves=True)
    listed = run("ls", "ViTamin-S", "--eval", str(mixed))
    assert listed.exit_code == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("ViTamin-S")]
    assert row.split()[-6:] == ["-", "-", "-", "-", "-", "yes"]  # not 2.0, the mean no checkpoint scored
    compared = run("compare", "ViTamin-S", "ViTamin-B", "--eval", str(mixed), "--json")
    rows = {r["field"]: r for r in json.loads(compared.stdout)["rows"]}
    assert rows["dist_shift_measured"]["values"] == [None, None]

    both = shift_file(tmp_path / "both.jsonl", halves=False)
    listed = run("ls", "ViTamin-S", "--eval", str(both))
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("ViTamin-S")]
    assert row.split()[-6:] == ["-", "-", "3.0+", "-", "-", "yes"]  # the newest identity, marked
    assert "`vitamin compare ViTamin-S-s1.28B --eval FILE` shows each" in listed.stdout
    compared = json.loads(run("compare", "ViTamin-S", "ViTamin-B", "--eval", str(both), "--json").stdout)
    assert compared["models"] == ["ViTamin-S-s1.28B", "ViTamin-S-s1.28B", "ViTamin-B-s1.28B"]
    rows = {r["field"]: r for r in compared["rows"]}
    assert rows["dist_shift_measured"]["values"] == [3.0, 1.0, None]  # each identity apart, the newest first
    identities = rows["accuracy_identity"]["values"]
    assert identities[0].startswith("checkpoint bbbbbbbbbbbb") and identities[1].startswith("checkpoint aaaaaaaaaaaa")
    assert rows["dist_shift_measured"]["best"] == ["ViTamin-S-s1.28B (1)"]
    plotted = run("plot", "--x", "imagenet", "--y", "dist_shift", "--eval", str(both), "--json")
    if plotted.exit_code == 0:  # plot's JSON points: the newest identity, never a mean
        assert "2.0" not in plotted.stdout


def bench_line(model: str, tower: str, dtype: str, batch: int, rate: float) -> str:
    row = {
        "kind": "result", "key": f"{model}-{tower}-{dtype}-{batch}", "model": model, "aliases": [],
        "architecture": "x", "tower": tower, "device": "cuda", "gpu_name": "H200", "node": None, "node_id": None,
        "dtype": dtype, "amp": False, "compile": False, "channels_last": True, "batch_size": batch,
        "throughput": rate, "throughput_min": rate, "throughput_max": rate, "latency_ms": 1.0,
        "peak_memory_gib": 1.0, "gflops_per_item": 1.0, "tflops": 1.0, "mfu": 0.1, "warmup_s": 1.0, "error": None,
    }  # fmt: skip
    return json.dumps(row) + "\n"


def test_throughput_of_other_settings_is_shown_apart(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "h200.jsonl"
    path.write_text(
        bench_line("ViTamin-S-s1.28B", "image", "fp32", 256, 1000.0)
        + bench_line("ViTamin-S-s1.28B", "image", "bf16", 256, 3000.0)
        + bench_line("ViTamin-B-s1.28B", "image", "bf16", 256, 2000.0)
    )
    listed = run("ls", "ViTamin-S", "ViTamin-B", "--bench", str(path))
    assert listed.exit_code == 0, listed.stderr
    assert "3,000+" in listed.stdout and "2,000" in listed.stdout and "1,000" not in listed.stdout
    compared = json.loads(run("compare", "ViTamin-S", "ViTamin-B", "--bench", str(path), "--json").stdout)
    rows = {r["field"]: r for r in compared["rows"]}
    assert rows["throughput_image"]["values"] == [3000.0, 1000.0, 2000.0]
    assert rows["throughput_settings"]["values"] == ["bf16, batch 256, channels last", "fp32, batch 256, channels last",
                                                     "bf16, batch 256, channels last"]  # fmt: skip
    assert rows["throughput_image"]["best"] == ["ViTamin-S-s1.28B (1)"]


# ---------------------------------------------------------------------------------------------------
# Results files that appending would spoil


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (
            "bench",
            json.dumps(
                {"environment": {}, "results": [json.loads(bench_line("m", "image", "bf16", 1, 1.0))]}, indent=2
            ),
        ),  # fmt: skip
        ("bench", "[]"),
        ("bench", result_line("ViTamin-S-s1.28B", "imagenet1k", 1.0, "a" * 64)),  # an eval file
        ("eval", bench_line("ViTamin-S-s1.28B", "image", "bf16", 1, 1.0)),  # a bench file
        ("eval", "model,task\nx,y\n"),  # another tool's file
    ],
)
def test_o_refuses_a_file_that_appending_would_spoil(run: Run, tmp_path: Path, command: str, text: str) -> None:
    path = tmp_path / "old.json"
    path.write_text(text)
    args = ["--device", "cpu"] if command == "bench" else ["--task", f"folder:{tmp_path}"]
    result = run(command, "ViTamin-S", *args, "-o", str(path))
    assert result.exit_code == 2, result.stderr
    assert str(path) in result.stderr and "new file" in result.stderr
    assert path.read_text() == text  # untouched


# ---------------------------------------------------------------------------------------------------
# The pulled file of a model is the one the zoo names now


def test_a_checkpoint_pulled_from_another_repo_or_file_is_not_the_models(tmp_path: Path) -> None:
    from test_load import install, saved, tiny_state

    from vitamin_cli import zoo
    from vitamin_cli.checkpoints.owners import ModelOwner
    from vitamin_cli.checkpoints.pull import checkpoint
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.errors import UsageError

    weights = "{repo: test/tiny-vit, filename: open_clip_pytorch_model.bin}"
    path = tmp_path / "zoo.yaml"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-ViT-s1M", weights=weights)], TINY_ARCHITECTURE))
    registry = zoo.load(path)
    install(registry, saved(tiny_state(registry)))
    store = Store()
    assert checkpoint(registry.get("Tiny-ViT-s1M"), store).path(store.root).is_file()
    for edited in (
        "{repo: test/tiny-vit-v2, filename: open_clip_pytorch_model.bin}",
        "{repo: test/tiny-vit, filename: model.safetensors}",
        '{repo: test/tiny-vit, filename: open_clip_pytorch_model.bin, sha256: "' + "0" * 64 + '"}',
    ):
        path.write_text(tiny_zoo_text([tiny_model("Tiny-ViT-s1M", weights=edited)], TINY_ARCHITECTURE))
        model = zoo.load(path).get("Tiny-ViT-s1M")
        with pytest.raises(UsageError, match="not pulled"):
            checkpoint(model, store)
        assert store.pulled([ModelOwner(model)]) == set()
