"""One identity per model and tower: the image and text towers of one `vitamin bench -o FILE` run are one column
of `compare --bench` and one row of `ls --bench`, though their batch sizes differ and channels last is the image
tower's only; another dtype or another batch size of a tower is another identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Run

from vitamin_cli.bench.results import read_bench, settings_text

VIT = "ViT-B-32-s128M"
VITAMIN = "ViTamin-S-s1.28B"


def result(model: str, tower: str, rate: float, *, old: bool = False, **settings: Any) -> dict[str, Any]:
    """A result line as `bench -o FILE` writes it (CPU defaults unless `settings` say otherwise); `old`: as
    written before `spread`, `runs`, `noisy` and the rest were recorded."""
    batch = 8 if tower == "image" else 32
    row: dict[str, Any] = {
        "kind": "result", "key": f"{model}-{tower}-{rate}", "model": model, "aliases": [], "architecture": "x",
        "tower": tower, "device": "cpu", "gpu_name": None, "node": None, "node_id": None, "dtype": "fp32",
        "amp": False, "compile": False, "channels_last": False, "batch_size": batch, "throughput": rate,
        "throughput_min": rate, "throughput_max": rate, "latency_ms": 1.0, "peak_memory_gib": None,
        "gflops_per_item": 1.0, "tflops": 0.1, "mfu": None, "warmup_s": 0.5, "error": None,
    }  # fmt: skip
    if not old:
        row.update(spread=0.01, runs=5, noisy=False, noise=None, busy_share=0.0, latency_p50_ms=None,
                   latency_p90_ms=None, latency_p99_ms=None)  # fmt: skip
    return {**row, **settings}


def cuda(model: str, tower: str, rate: float, **settings: Any) -> dict[str, Any]:
    """A result line of a CUDA run's defaults: bf16, 256 images with channels last, 1024 texts."""
    image = tower == "image"
    defaults = {"device": "cuda", "gpu_name": "NVIDIA H200", "dtype": "bf16", "channels_last": image,
                "batch_size": 256 if image else 1024}  # fmt: skip
    return result(model, tower, rate, **{**defaults, **settings})


def bench_file(path: Path, *rows: dict[str, Any]) -> Path:
    environment = {"kind": "environment", "node": "n", "gpu_name": rows[0]["gpu_name"]}
    path.write_text("".join(json.dumps(r) + "\n" for r in (environment, *rows)))
    return path


def compared(run: Run, path: Path, *names: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    shown = run("compare", *names, "--bench", str(path), "--json")
    assert shown.exit_code == 0, shown.stderr
    document = json.loads(shown.stdout)
    return document, {r["field"]: r["values"] for r in document["rows"]}


def listed(run: Run, path: Path, name: str) -> list[str]:
    """The cells of the model's row in `ls --bench`, and the table's note."""
    shown = run("ls", name, "--bench", str(path))
    assert shown.exit_code == 0, shown.stderr
    (row,) = [line for line in shown.stdout.splitlines() if line.startswith(name)]
    return row.split()


def test_cpu_defaults_are_one_column_per_model(run: Run, tmp_path: Path) -> None:
    path = bench_file(tmp_path / "cpu.jsonl", result(VIT, "image", 120.0), result(VIT, "text", 900.0),
                      result(VITAMIN, "image", 80.0), result(VITAMIN, "text", 700.0))  # fmt: skip
    document, rows = compared(run, path, VIT, VITAMIN)
    assert [c["label"] for c in document["columns"]] == [VIT, VITAMIN]  # not NAME (1), NAME (2)
    assert document["models"] == [VIT, VITAMIN]
    assert rows["throughput_image"] == [120.0, 80.0] and rows["throughput_text"] == [900.0, 700.0]
    assert rows["throughput_settings"] == ["fp32, batch 8 images / 32 texts"] * 2
    assert [c["throughput"] for c in document["columns"]] == rows["throughput_settings"]
    cells = listed(run, path, VIT)
    assert "120" in cells and "900" in cells  # no `+`: the file holds nothing else of it


def test_a_cuda_run_is_one_column_though_channels_last_is_the_image_towers(run: Run, tmp_path: Path) -> None:
    text_channels_last = {"channels_last": True}  # written by a hand or an older version: means nothing
    path = bench_file(tmp_path / "h200.jsonl", cuda(VIT, "image", 5000.0), cuda(VIT, "text", 20000.0),
                      cuda(VITAMIN, "image", 3000.0), cuda(VITAMIN, "text", 15000.0, **text_channels_last))  # fmt: skip
    document, rows = compared(run, path, VIT, VITAMIN)
    assert [c["label"] for c in document["columns"]] == [VIT, VITAMIN]
    assert rows["throughput_image"] == [5000.0, 3000.0] and rows["throughput_text"] == [20000.0, 15000.0]
    assert rows["throughput_settings"] == ["bf16, batch 256 images / 1024 texts, channels last"] * 2


def test_another_dtype_or_image_batch_is_another_identity_the_newest_shown(run: Run, tmp_path: Path) -> None:
    path = bench_file(
        tmp_path / "cpu.jsonl",
        result(VIT, "image", 120.0), result(VIT, "text", 900.0),  # the defaults
        result(VIT, "image", 300.0, dtype="bf16"), result(VIT, "text", 2000.0, dtype="bf16"),
        result(VIT, "image", 150.0, batch_size=16),  # a rerun with another image batch: the text row resumed
        result(VITAMIN, "image", 80.0), result(VITAMIN, "text", 700.0),
    )  # fmt: skip
    document, rows = compared(run, path, VIT, VITAMIN)
    assert [c["label"] for c in document["columns"]] == [f"{VIT} (1)", f"{VIT} (2)", f"{VIT} (3)", VITAMIN]
    assert rows["throughput_settings"] == ["fp32, batch 16 images / 32 texts", "bf16, batch 8 images / 32 texts",
                                           "fp32, batch 8", "fp32, batch 8 images / 32 texts"]  # fmt: skip
    assert rows["throughput_image"] == [150.0, 300.0, 120.0, 80.0]
    assert rows["throughput_text"] == [900.0, 2000.0, None, 700.0]  # the older image batch: its text paired away
    assert listed(run, path, VIT)[-3:-1] == ["150+", "900+"]  # the newest identity, marked: the file holds others
    assert listed(run, path, VITAMIN)[-3:-1] == ["80", "700"]


def test_the_same_settings_measured_again_count_once_the_newest_kept(tmp_path: Path) -> None:
    path = bench_file(tmp_path / "cpu.jsonl", result(VIT, "image", 100.0), result(VIT, "text", 900.0),
                      result(VIT, "image", 110.0))  # fmt: skip
    speeds = read_bench(path)
    (only,) = speeds.identities[VIT.lower()]
    assert dict(only.rates) == {"image": 110.0, "text": 900.0}
    assert speeds.by_model[VIT.lower()] == {"image": 110.0, "text": 900.0}


def test_pairing_when_a_tower_has_several_batches(tmp_path: Path) -> None:
    """The k-th newest image setting with the k-th newest text batch, under the same dtype, amp and compile."""
    path = bench_file(
        tmp_path / "cpu.jsonl",
        result(VIT, "image", 1.0, batch_size=8), result(VIT, "text", 2.0, batch_size=32),
        result(VIT, "image", 3.0, batch_size=16), result(VIT, "text", 4.0, batch_size=64),
        result(VIT, "text", 5.0, batch_size=128),
        result(VIT, "image", 6.0, batch_size=8, channels_last=True),  # channels last: an image setting of its own
    )  # fmt: skip
    found = [(m.settings, dict(m.rates)) for m in read_bench(path).identities[VIT.lower()]]
    assert found == [
        ("fp32, batch 8 images / 128 texts, channels last", {"image": 6.0, "text": 5.0}),
        ("fp32, batch 16 images / 64 texts", {"image": 3.0, "text": 4.0}),
        ("fp32, batch 8 images / 32 texts", {"image": 1.0, "text": 2.0}),
    ]


def test_an_old_file_still_reads(run: Run, tmp_path: Path) -> None:
    path = bench_file(tmp_path / "old.jsonl", result(VIT, "image", 120.0, old=True),
                      result(VIT, "text", 900.0, old=True))  # fmt: skip
    assert "spread" not in path.read_text()
    document, rows = compared(run, path, VIT, VITAMIN)
    assert [c["label"] for c in document["columns"]] == [VIT, VITAMIN]
    assert rows["throughput_image"] == [120.0, None] and rows["throughput_text"] == [900.0, None]
    bare = tmp_path / "bare.json"  # one document, as --json wrote before JSON lines; no settings recorded
    results = [{"model": VIT, "tower": "image", "throughput": 7.0}, {"model": VIT, "tower": "text", "throughput": 9.0}]
    bare.write_text(json.dumps({"environment": {}, "results": results}))
    document, rows = compared(run, bare, VIT, VITAMIN)
    assert rows["throughput_image"] == [7.0, None] and rows["throughput_text"] == [9.0, None]
    assert rows["throughput_settings"] == ["settings not recorded", None]


def test_settings_in_words() -> None:
    image = {"tower": "image", "dtype": "bf16", "batch_size": 256, "channels_last": True, "amp": True}
    text = {"tower": "text", "dtype": "bf16", "batch_size": 256, "channels_last": False, "amp": True}
    assert settings_text(image, text) == "bf16, batch 256, amp, channels last"
    words = settings_text(image, {**text, "batch_size": 1024})
    assert words == "bf16, batch 256 images / 1024 texts, amp, channels last"
    assert settings_text({**text, "channels_last": True}) == "bf16, batch 256, amp"  # a text row's means nothing
