"""Damaged or odd input found before the work, never after it: `-o FILE` in a folder that is not there, a FIFO or
garbage where a memo entry should be, WILDS metadata of the wrong kind, checkpoints holding meta, sparse,
non-finite or integer tensors, line separators inside class names and results lines, and zoo filters of the
wrong type. Each ends in one message naming the file (exit code 1 or 2), or, for a memo, in a rebuilt entry."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import Run, tiny_model, tiny_zoo_text
from test_eval import image_bytes, shard_with

from vitamin_cli import zoo
from vitamin_cli.errors import UsageError
from vitamin_cli.models import arch

# ---------------------------------------------------------------------------------------------------
# Helpers (the patterns of tests/test_eval.py)


def wds_folder(root: Path, classnames: str, shards: list[dict[str, dict[str, bytes]]]) -> Path:
    """A task in the webdataset layout: `classnames` written as given (bytes of its own, not lines joined)."""
    (root / "test").mkdir(parents=True)
    (root / "classnames.txt").write_bytes(classnames.encode())
    (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\n")
    (root / "test" / "nshards.txt").write_text(f"{len(shards)}\n")
    for number, samples in enumerate(shards):
        (root / "test" / f"{number}.tar").write_bytes(shard_with(samples))
    return root


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def evaluate(run: Run, *args: str) -> tuple[int, dict[str, Any], str]:
    result = run("eval", *args, "--json", "--workers", "0")
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}, result.stderr


def returns_in_time(call: Callable[[], Any], fifo: Path, seconds: float = 10) -> Any:
    """call(), which must not block on the FIFO at `fifo`: when it does, a writer opens the FIFO so that the
    blocked reader sees its end, and the test fails."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as err:  # noqa: BLE001 - handed back to the test's thread
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(seconds)
        pytest.fail(f"blocked reading the FIFO {fifo}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# ---------------------------------------------------------------------------------------------------
# 1. `-o FILE` that could not be written at the end is refused before the work


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_output_into_a_missing_folder_is_refused_before_any_model_is_built(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    _, checkpoint = tiny
    folder = tmp_path / "photos"
    for name in ("cat", "dog"):
        (folder / name).mkdir(parents=True)
        (folder / name / "0.jpg").write_bytes(image_bytes(random.Random(name)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(arch, "build", lambda *args, **kwargs: pytest.fail("a model was built"))
    args = {
        "eval": ["eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}"],
        "bench": ["bench", "Tiny-s1M", "--device", "cpu", "--iters", "1", "--warmup", "0"],
    }[command]
    result = run(*args, "-o", "nodir/runs.jsonl")
    assert result.exit_code == 2, result.stderr
    assert "cannot write nodir/runs.jsonl: there is no folder" in result.stderr, result.stderr
    assert "create the folder first (mkdir -p" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nodir").exists()


def test_an_output_file_that_would_fail_at_the_end_is_refused_now(tmp_path: Path) -> None:
    from vitamin_cli.files import check_writable

    blocking = tmp_path / "notes.txt"
    blocking.write_text("a file, not a folder\n")
    for path, message in (
        (tmp_path / "a" / "b" / "runs.jsonl", "there is no folder"),
        (blocking / "runs.jsonl", "is a file, not a folder"),
        (blocking / "deeper" / "runs.jsonl", "is a file, not a folder"),
        (tmp_path / ("x" * 300 + ".jsonl"), "the file name is longer than"),
    ):
        with pytest.raises(UsageError, match=message):
            check_writable(path)
    check_writable(tmp_path / "runs.jsonl")  # a new file in a folder that exists: fine
    check_writable(blocking)  # an existing file: fine (results are appended)


# ---------------------------------------------------------------------------------------------------
# 2. Memo entries that are FIFOs, garbage or of another shape: ignored and rebuilt


def test_a_fifo_or_garbage_at_the_zoo_memo_entry_is_ignored_and_replaced(tmp_path: Path) -> None:
    import hashlib

    from vitamin_cli.files import memo_dir
    from vitamin_cli.zoo import memo

    path = tmp_path / "zoo.yaml"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-s1M")]))
    memo.load.cache_clear()
    zoo.load(path)
    (entry,) = memo_dir().glob("zoo-*.json")
    deep = b"[" * 100_000 + b"]" * 100_000  # nesting deeper than the JSON parser goes, under a valid digest
    for damaged in ("fifo", b"\xff\xfe garbage", hashlib.sha256(deep).hexdigest().encode() + b"\n" + deep):
        entry.unlink()
        if damaged == "fifo":
            os.mkfifo(entry)
        else:
            assert isinstance(damaged, bytes)
            entry.write_bytes(damaged)
        memo.load.cache_clear()
        registry = returns_in_time(lambda: zoo.load(path), entry)
        assert [m.name for m in registry.models] == ["Tiny-s1M"]
        assert entry.is_file() and json.loads(entry.read_bytes().partition(b"\n")[2])["models"]  # written anew
    memo.load.cache_clear()


BAD_AUDIT_MEMOS = {
    "a list": b"[1, 2, 3]",
    "garbage": b"\xff\xfe\x00 not json",
    "wrong types": json.dumps({"KEY": {"params_image_m": "0.15", "params_text_m": True}}).encode(),
    "missing keys": json.dumps({"KEY": {"params_image_m": 0.15}}).encode(),
    "not finite": json.dumps({"KEY": dict.fromkeys(arch.Counts.__dataclass_fields__, float("nan"))}).encode(),
    "a number": b"42",
}


@pytest.mark.parametrize("damage", [*BAD_AUDIT_MEMOS, "fifo", "folder"])
def test_a_damaged_audit_memo_counts_as_none_and_is_rebuilt(run: Run, tiny: tuple[Path, Path], damage: str) -> None:
    from vitamin_cli.models import audit

    zoo_path, _ = tiny
    registry = zoo.load(zoo_path)
    model = registry.get("Tiny-s1M")
    memo = audit.cache_file()
    memo.parent.mkdir(parents=True, exist_ok=True)
    if damage == "fifo":
        os.mkfifo(memo)
    elif damage == "folder":
        memo.mkdir()
    else:
        key = json.dumps(audit.architecture_id(registry, model))[1:-1]  # the key as it stands inside a JSON string
        memo.write_bytes(BAD_AUDIT_MEMOS[damage].replace(b"KEY", key.encode()))
    assert returns_in_time(audit.cached_counts, memo) == {}
    listed = run("ls", "--audit")
    assert listed.exit_code == 2 and "vitamin audit --all" in listed.stderr and "Traceback" not in listed.stderr
    (row,) = audit.audit(registry, [model])  # counted again, and the memo written anew
    assert row.params_image_m_measured > 0
    if damage != "folder":  # a folder in the way is left there: the counts are only not remembered
        assert audit.cached_counts() == {audit.architecture_id(registry, model): arch.count(
            arch.config(registry, model)).to_json()}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# 3. WILDS and fairness metadata: one row of numbers per sample, or the task fails naming shard and sample


METADATA_CASES = {
    "no npy": (None, "sample 'bad' has no npy member"),
    "object dtype": (np.array([1, "x", None], dtype=object), "sample 'bad' has an npy member that is not a plain"),
    "strings": (np.array(["1", "2", "3"]), "sample 'bad' has metadata of dtype <U1"),
    "2-D": (np.array([[1, 2016, 0]]), "sample 'bad' has metadata of shape (1, 3)"),
    "shorter": (np.array([1, 2016]), "sample 'bad' has metadata of shape (2,); it must be one row of 3 numbers"),
    "scalar": (np.array(4), "sample 'bad' has metadata of shape ()"),
    "garbage": (b"\x93NUMPY garbage", "sample 'bad' has an npy member that is not a plain NumPy array"),
}


def test_wilds_metadata_of_the_wrong_kind_fails_the_task_naming_shard_and_sample(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from vitamin_cli.eval import sweep, tasks
    from vitamin_cli.eval.zeroshot import EvalSettings

    zoo_path, checkpoint = tiny
    rng = random.Random(3)
    fmow = tasks.load().get("wilds/fmow")

    def sample(label: int, metadata: Any) -> dict[str, bytes]:
        parts = {"jpg": image_bytes(rng), "cls": str(label).encode()}
        if metadata is not None:
            parts["npy"] = metadata if isinstance(metadata, bytes) else npy(metadata)
        return parts

    good = [{f"s{i}": sample(i % 3, np.array([i % 2, 2016, i % 3])) for i in range(4)}]
    wanted = {"good": dataclasses.replace(fmow, repo=None, path=wds_folder(tmp_path / "good", "a\nb\nc\n", good * 2))}
    for case, (metadata, _) in METADATA_CASES.items():
        shards = [*good, {"s9": sample(1, np.array([0, 2016, 1])), "bad": sample(2, metadata)}]
        folder = wds_folder(tmp_path / case.replace(" ", "-"), "a\nb\nc\n", shards)
        wanted[case] = dataclasses.replace(fmow, repo=None, path=folder)
    registry = zoo.load(zoo_path)
    settings = EvalSettings(device="cpu", dtype="fp32", batch_size=4, workers=0)
    found = list(sweep.sweep(registry, [registry.get("Tiny-s1M")], list(wanted.values()), settings,
                             checkpoint=checkpoint))  # fmt: skip
    results = dict(zip(wanted, found, strict=True))
    assert results["good"].status == "ok" and "acc_worst_region" in results["good"].metrics, results["good"]
    for case, (_, message) in METADATA_CASES.items():
        result = results[case]
        assert result.status == "failed", (case, result)
        assert result.error is not None and message in result.error, (case, result.error)
        assert f"{case.replace(' ', '-')}/test/1.tar: " in result.error, (case, result.error)


# ---------------------------------------------------------------------------------------------------
# 4. Checkpoints that would load into nonsense


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("meta", r": text_projection is a meta tensor: it holds no values"),
        ("sparse", r": text_projection is a sparse tensor \(sparse_coo\)"),
        ("sparse_csr", r": text_projection is a sparse tensor \(sparse_csr\)"),
        ("all nan", r": FIRST is not finite: it holds NaN or inf"),
        ("one inf", r": visual.conv1.weight is not finite"),
        ("int64", r"text_projection holds int64 values, the architecture float32 \(a cast would lose them\)"),
    ],
)
def test_a_checkpoint_that_would_load_into_nonsense_is_refused_naming_file_and_key(
    tiny: tuple[Path, Path], tmp_path: Path, damage: str, message: str
) -> None:
    import torch

    from vitamin_cli.models import loading

    zoo_path, checkpoint = tiny
    state = torch.load(checkpoint, weights_only=True)
    projection = state["text_projection"]
    warnings.simplefilter("ignore")  # torch's notes on sparse CSR tensors being in beta
    if damage == "all nan":
        state = {k: torch.full_like(v, float("nan")) for k, v in state.items()}
    elif damage == "one inf":
        state["visual.conv1.weight"][0, 0, 0, 0] = float("inf")
    else:
        state["text_projection"] = {
            "meta": lambda: torch.empty_like(projection, device="meta"),
            "sparse": lambda: projection.to_sparse(),
            "sparse_csr": lambda: projection.to_sparse_csr(),
            "int64": lambda: (projection * 100).to(torch.int64),
        }[damage]()
    damaged = tmp_path / "damaged.pt"
    torch.save(state, damaged)
    with pytest.raises(loading.CheckpointError, match=message.replace("FIRST", next(iter(state)))) as caught:
        loading.load(zoo.load(zoo_path), "Tiny-s1M", checkpoint=damaged)
    assert str(damaged) in caught.value.message


def test_lossless_dtypes_load_and_a_float_into_an_integer_buffer_is_refused(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import torch

    from vitamin_cli.models import loading

    zoo_path, checkpoint = tiny
    state = torch.load(checkpoint, weights_only=True)
    half = tmp_path / "half.pt"
    torch.save({k: v.half() for k, v in state.items()}, half)  # float16 into float32 is exact: it loads
    model, _, _ = loading.load(zoo.load(zoo_path), "Tiny-s1M", checkpoint=half)
    assert model.text_projection.dtype == torch.float32
    double = tmp_path / "double.pt"
    torch.save({k: v.double() if v.is_floating_point() else v for k, v in state.items()}, double)
    model, _, _ = loading.load(zoo.load(zoo_path), "Tiny-s1M", checkpoint=double)  # rounded, as torch loads it
    assert torch.equal(model.text_projection, state["text_projection"])

    class Counter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("steps", torch.zeros(2, dtype=torch.int64))

    with pytest.raises(loading.CheckpointError, match=r"steps holds float32 values, the architecture int64"):
        loading.load_into(Counter(), {"steps": torch.tensor([1.5, 2.0])}, "counter")
    loading.load_into(Counter(), {"steps": torch.tensor([1, 2], dtype=torch.int32)}, "counter")  # int32 fits


def test_eval_of_an_all_nan_checkpoint_fails_instead_of_scoring(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import torch

    _, checkpoint = tiny
    nan = tmp_path / "nan.pt"
    torch.save({k: torch.full_like(v, float("nan")) for k, v in torch.load(checkpoint, weights_only=True).items()}, nan)
    folder = tmp_path / "photos"
    for name in ("cat", "dog", "bird"):
        (folder / name).mkdir(parents=True)
        (folder / name / "0.jpg").write_bytes(image_bytes(random.Random(name)))
    code, data, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(nan), "--task", f"folder:{folder}")
    assert code == 1, stderr
    (row,) = data["results"]
    assert row["status"] == "failed" and "is not finite" in row["error"] and str(nan) in row["error"], row
    assert "Traceback" not in stderr


# ---------------------------------------------------------------------------------------------------
# 5. Lines end at "\n" alone: U+2028 and friends inside a class name, a template or a results line


SEPARATORS = "cat\u2028tabby\r\ndog\x0bhound\r\nbird\x0cfinch\nfish\x85eel\n"  # 4 classes, CRLF lines mixed in


def test_line_separators_inside_class_names_and_templates_keep_them_whole(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from vitamin_cli.eval import data as task_data
    from vitamin_cli.eval import layouts, tasks

    _, checkpoint = tiny
    rng = random.Random(5)
    samples = {f"s{i}": {"jpg": image_bytes(rng), "cls": str(i % 4).encode()} for i in range(8)}
    folder = wds_folder(tmp_path / "wds", SEPARATORS, [samples])
    task = tasks.load().resolve([f"wds:{folder}"], [])[0]
    names = layouts.prepare(task, tmp_path / "hub").classnames
    assert names == ["cat\u2028tabby", "dog\x0bhound", "bird\x0cfinch", "fish\x85eel"]
    templates = tmp_path / "templates.txt"
    templates.write_text("a photo\u2028of a {c}.\r\nitap of a {c}.\n")
    assert task_data.read_templates(templates) == ["a photo\u2028of a {c}.", "itap of a {c}."]
    code, result, stderr = evaluate(run, "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"wds:{folder}",
                                    "--templates", str(templates))  # fmt: skip
    assert code == 0, stderr
    (row,) = result["results"]
    assert row["status"] == "ok" and row["samples"] == 8
    assert "acc5" not in row["metrics"]  # 4 classes: split at U+2028 and the rest, they were 8 (with acc5)


def test_a_results_line_with_a_line_separator_inside_a_string_is_read(tmp_path: Path) -> None:
    from vitamin_cli.eval.results import TaskResult, read_results
    from vitamin_cli.jsonlines import records

    result = TaskResult("Tiny-s1M", "a" * 64, "wds:/data/pets", "pets\u2028and\x85more", "r", "task", "t", "fp32",
                        main=50.0)  # fmt: skip
    line = json.dumps({"kind": "result", **result.to_json()}, ensure_ascii=False)  # another tool's writer
    assert "\u2028" in line
    runs = tmp_path / "runs.jsonl"
    runs.write_bytes((line + "\r\n" + line + "\n").encode())
    assert len(records(runs.read_text())) == 2
    (first, second) = read_results(runs)
    assert first.task_name == second.task_name == "pets\u2028and\x85more"


# ---------------------------------------------------------------------------------------------------
# 6. The zoo's filters: a value of the wrong type is an error naming the filter, never an empty list


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"resolution": "384"}, r"resolution takes int values \(image sizes in pixels.*not '384' \(str\)"),
        ({"resolution": [224, 384.0]}, r"resolution takes int values.*not 384.0 \(float\)"),
        ({"resolution": True}, r"resolution takes int values.*not True \(bool\)"),
        ({"resolution": 0}, r"resolution: 0 is not an image size"),
        ({"released": "no"}, r"released takes True, False or None \(either\), not 'no' \(str\)"),
        ({"released": 1}, r"released takes True, False or None.*not 1 \(int\)"),
        ({"size": 3}, r"size takes str values \(sizes from S, B, L, L2, XL\).*not 3 \(int\)"),
        ({"size": "XXL"}, r"unknown size XXL; expected one of S, B, L, L2, XL"),
        ({"family": [None]}, r"family takes str values \(families from vit, .*not None"),
        ({"family": "resnet"}, r"unknown family resnet; expected one of vit, convnext"),
        ({"samples": 128_000_000}, r"samples takes str values \(sample counts, e.g. '1.28B'\).*not 128000000"),
        ({"samples": "lots"}, r"'lots' is not a sample count like 128M"),
        ({"names": 7}, r"names takes str values \(model names or globs.*not 7 \(int\)"),
        ({"names": [b"ViTamin-L"]}, r"names takes str values.*not b'ViTamin-L' \(bytes\)"),
    ],
)
def test_a_zoo_filter_of_the_wrong_type_or_value_names_the_filter(filters: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        zoo.select(**filters)
    registry = zoo.load()
    names = filters.pop("names", ())
    with pytest.raises(UsageError, match=message):
        registry.select(names, **filters)


def test_the_zoo_filters_still_take_what_they_did() -> None:
    assert {m.image_size for m in zoo.select(resolution=384)} == {384}
    assert zoo.select(resolution=[224, 256]) == zoo.select(resolution=(224, 256)) != []
    assert zoo.select(size=zoo.Size.L, family=["vitamin"]) == zoo.select(size="l", family="ViTamin") != []
    assert all(not m.released for m in zoo.select(released=False)) and zoo.select(released=False)
    assert zoo.select(samples="1.28B") == zoo.select(samples=["1.28b"]) != []
    assert zoo.select("ViTamin-L*", resolution=None, released=None) == zoo.select(["ViTamin-L*"])
    assert zoo.select(resolution=1000) == []  # a size no model has: a true empty answer
    with pytest.raises(TypeError, match="resolutions"):
        zoo.select(resolutions=384)
