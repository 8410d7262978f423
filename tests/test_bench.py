"""`vitamin bench`: the method (warm-up apart, repeats, statistics), the batch back-off, error recording,
one measurement per architecture, the JSON contract, and refusals; on the CPU, with tiny models."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import pytest
from conftest import TINY_ARCHITECTURE, Run, tiny_model, tiny_zoo_text

from vitamin_cli import runners, sweeps, zoo
from vitamin_cli.bench import measure
from vitamin_cli.bench import results as bench_results
from vitamin_cli.bench import sweep as bench_sweep
from vitamin_cli.models import batching

BENCH_KEYS = [
    "model", "aliases", "architecture", "tower", "device", "gpu_name", "node", "node_id", "dtype", "amp", "compile",
    "channels_last",
    "batch_size", "throughput", "throughput_min", "throughput_max", "latency_ms", "peak_memory_gib",
    "gflops_per_item", "tflops", "mfu", "warmup_s", "spread", "runs", "noisy", "noise", "busy_share",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "error",
]  # fmt: skip

BROKEN_ARCHITECTURE = """\
  Broken:
    embed_dim: 32
    vision_cfg: {timm_model_name: no_such_timm_model, timm_model_pretrained: false, image_size: 32}
    text_cfg: {context_length: 77, vocab_size: 49408, width: 32, heads: 2, layers: 2}
"""
TINY_ZOO = tiny_zoo_text(
    [
        tiny_model("Tiny-s128M", samples="128M", imagenet=1.0),
        tiny_model("Broken-s128M", samples="128M", imagenet=2.0, arch="Broken"),
        tiny_model("Tiny-s512M", samples="512M", imagenet=3.0),
        tiny_model("Tiny-s1.28B", samples="1.28B", imagenet=4.0),
    ],
    architectures=TINY_ARCHITECTURE + BROKEN_ARCHITECTURE,
)

FAST = measure.BenchSettings(device="cpu", warmup=1, iters=2, repeats=3, batch_size=2)


@pytest.fixture
def tiny_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zoo.Zoo:
    path = tmp_path / "tiny-zoo.yaml"
    path.write_text(TINY_ZOO)
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    return zoo.load(path)


def test_warmup_is_timed_apart_and_runs_are_repeated() -> None:
    calls = []

    def step() -> None:
        calls.append(time.perf_counter())
        time.sleep(0.3 if len(calls) == 1 else 0.01)  # the first call is slow, as compilation is

    timing = measure.time_batches(step, measure.BenchSettings(device="cpu", warmup=2, iters=3, repeats=4), batch_size=8)
    assert 4 <= len(timing.runs_s) <= 8  # until the spread decides, at most twice the runs asked for
    assert len(calls) == 2 + 3 * len(timing.runs_s)
    assert timing.warmup_s >= 0.3
    assert all(0.03 <= run < 0.2 for run in timing.runs_s)  # 3 batches of 10 ms, the slow call not among them
    rates = timing.rates()
    assert rates == sorted(8 * 3 / run for run in timing.runs_s)
    assert timing.throughput() == pytest.approx(statistics.median(rates))


def test_out_of_memory_backs_the_batch_off() -> None:
    import torch

    tried = []

    def attempt(batch: int) -> measure.Timing:
        tried.append(batch)
        if batch > 96:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return measure.Timing(batch, 1, [1.0], 0.0, None)

    assert batching.with_backoff(attempt, 256)[0].batch_size == 96
    assert tried == [256, 192, 128, 96]


def test_32_bit_indexing_failures_back_off_too() -> None:
    def attempt(batch: int) -> measure.Timing:
        if batch > 128:
            raise RuntimeError("Expected canUse32BitIndexMath(input) to be true, but got false.")
        return measure.Timing(batch, 1, [1.0], 0.0, None)

    assert batching.with_backoff(attempt, 256)[0].batch_size == 128


def test_other_errors_are_not_retried() -> None:
    tried = []

    def attempt(batch: int) -> measure.Timing:
        tried.append(batch)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        batching.with_backoff(attempt, 256)
    assert tried == [256]


def test_auto_batch_stops_when_a_larger_batch_no_longer_helps() -> None:
    def attempt(batch: int) -> measure.Timing:
        seconds = batch / min(batch, 64) * 0.01  # throughput grows up to batch 64, then stays flat
        return measure.Timing(batch, 1, [seconds], 0.0, None)

    assert measure.largest_useful_batch(attempt, FAST, 8).batch_size == 64


def test_auto_batch_stops_at_the_memory_limit() -> None:
    import torch

    def attempt(batch: int) -> measure.Timing:
        if batch > 32:
            raise torch.cuda.OutOfMemoryError("out of memory")
        return measure.Timing(batch, 1, [0.01], 0.0, None)

    assert measure.largest_useful_batch(attempt, FAST, 8).batch_size == 32


def test_one_measurement_per_architecture_and_errors_recorded(
    tiny_zoo: zoo.Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = []
    real = measure._measure
    monkeypatch.setattr(
        measure,
        "_measure",
        lambda result, cfg, tower, s, c=None, **kw: measured.append(tower) or real(result, cfg, tower, s, c, **kw),
    )
    monkeypatch.setattr(measure, "roof_tflops", lambda device, dtype, fresh=False: measure.Roof(1.0))
    results = bench_sweep.in_table_order(list(bench_sweep.sweep(tiny_zoo, tiny_zoo.models, FAST)), tiny_zoo.models)
    assert [(r.model, r.tower) for r in results] == [(m.name, t) for m in tiny_zoo.models for t in ("image", "text")]
    assert measured == ["image", "text", "image", "text"]  # Tiny once, Broken once: not 8 times
    by = {(r.model, r.tower): r for r in results}
    assert (
        by[("Broken-s128M", "image")].error is not None and "no_such_timm_model" in by[("Broken-s128M", "image")].error
    )
    assert by[("Broken-s128M", "image")].throughput is None
    for name in ("Tiny-s128M", "Tiny-s512M", "Tiny-s1.28B"):
        result = by[(name, "image")]
        assert result.error is None
        assert result.throughput == by[("Tiny-s128M", "image")].throughput  # shared
        assert result.throughput_min <= result.throughput <= result.throughput_max
        assert result.batch_size == 2
        assert result.gflops_per_item and result.gflops_per_item > 0
        assert result.tflops == pytest.approx(result.gflops_per_item * result.throughput / 1e3)
        assert result.mfu == pytest.approx(result.tflops / 1.0)


def test_json_contract_and_saved_file(tiny_zoo: zoo.Zoo, run: Run, tmp_path: Path) -> None:
    saved = tmp_path / "bench.jsonl"
    args = ("bench", "Tiny-s128M", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--repeats", "2")
    result = run(*args, "--warmup", "0", "--json", "-o", str(saved))
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [list(r) for r in rows] == [BENCH_KEYS] * 2
    assert [r["tower"] for r in rows] == ["image", "text"]
    assert rows[0]["device"] == "cpu" and rows[0]["dtype"] == "fp32" and rows[0]["channels_last"] is False
    assert rows[0]["node"] is None and rows[0]["node_id"] is None  # no Ray
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["environment", "result", "result"]
    assert [{k: v for k, v in line.items() if k not in ("kind", "key")} for line in lines[1:]] == rows
    environment = lines[0]
    for key in ("node", "torch", "open_clip", "timm", "cuda", "driver", "gpu_name", "matmul_roof_tflops"):
        assert key in environment
    assert environment["matmul_roof_tflops"] > 0
    # a rerun with the same file measures nothing again; another setting does
    again = run(*args, "--warmup", "0", "--json", "-o", str(saved))
    assert json.loads(again.stdout) == rows
    assert len(saved.read_text().splitlines()) == 3
    other = run(*args, "--warmup", "1", "--json", "-o", str(saved))
    assert other.exit_code == 0 and len(saved.read_text().splitlines()) == 6  # its environment, two results
    csv_result = run(*args, "--csv")
    assert csv_result.stdout.splitlines()[0].split(",") == BENCH_KEYS


def test_ls_shows_saved_throughput(run: Run, tmp_path: Path) -> None:
    saved = tmp_path / "bench.json"
    saved.write_text(
        json.dumps(
            {"environment": {}, "results": [{"model": "ViTamin-S-s1.28B", "tower": "image", "throughput": 6453.2}]}
        )
    )
    table = run("ls", "--bench", str(saved), "ViTamin-S*").stdout
    assert "Images" in table
    (row,) = [line for line in table.splitlines() if line.startswith("ViTamin-S-s1.28B")]
    assert "6,453" in row
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = run("ls", "--bench", str(broken))
    assert result.exit_code == 2
    assert "holds no benchmark results" in result.stderr


def test_tune_keeps_the_fastest_setting(tiny_zoo: zoo.Zoo, monkeypatch: pytest.MonkeyPatch) -> None:
    speeds = {("fp32", False): 10.0, ("bf16", False): 20.0, ("bf16", True): 25.0, ("fp32", True): 99.0}
    calls = []

    def fake_sweep(z, models, settings, towers, progress=None):  # type: ignore[no-untyped-def]
        calls.append((settings.dtype, settings.compile, settings.auto_batch, settings.batch_size))
        return [
            dataclasses.replace(bench_results.BenchResult.started(m, t, settings),
                                batch_size=settings.batch_size or 16,
                                throughput=speeds[(settings.dtype, settings.compile)])
            for m in models for t in towers
        ]  # fmt: skip

    monkeypatch.setattr(bench_sweep, "sweep", fake_sweep)
    monkeypatch.setattr(measure, "roof_tflops", lambda device, dtype, fresh=False: measure.Roof(1.0))
    results = bench_sweep.tune(tiny_zoo, tiny_zoo.models[:1], FAST, ("image",))
    (best,) = results
    # eager in both dtypes with the batch searched, then compiled in the eager winner's dtype and batch only
    assert calls == [("fp32", False, True, 2), ("bf16", False, True, 2), ("bf16", True, False, 2)]
    assert (best.dtype, best.compile, best.throughput) == ("bf16", True, 25.0)
    assert [(t["dtype"], t["compile"]) for t in best.tried] == [("fp32", False), ("bf16", False), ("bf16", True)]
    assert "tried" in best.to_json()


def test_cuda_without_cuda_is_a_usage_error(run: Run) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run("bench", "ViTamin-S", "--device", "cuda")
    assert result.exit_code == 2
    assert "no CUDA device" in result.stderr
    assert "--device cpu" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dtype", "fp16"], "fp16 is not a CPU inference type"),
        (["--dtype", "fp8"], "--dtype must be one of"),
        (["--tower", "audio"], "--tower must be image, text or both"),
        (["--batch-size", "0"], "neither a positive whole number nor 'auto'"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_settings_the_device_cannot_do_are_refused(run: Run, args: list[str], message: str) -> None:
    result = (
        run("bench", "ViTamin-S", "--device", "cpu", *args)
        if "--device" not in args
        else run("bench", "ViTamin-S", *args)
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_no_selection_measures_the_whole_zoo_once_per_architecture(tiny_zoo: zoo.Zoo, run: Run) -> None:
    result = run("bench", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--repeats", "1", "--json")
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == [m.name for m in tiny_zoo.models for _ in ("image", "text")]
    assert "measuring 2 architectures x 2 towers (4 models) on cpu" in result.stderr
    assert result.exit_code == 1  # the broken architecture's rows


def test_weights_without_a_selection_means_the_pulled_models(tiny_zoo: zoo.Zoo, run: Run) -> None:
    result = run("bench", "--device", "cpu", "--weights")
    assert result.exit_code == 2
    assert "none is pulled" in result.stderr


@pytest.mark.gpu
def test_gpu_bench_of_a_small_model(run: Run) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    result = run("bench", "ViTamin-S", "--device", "cuda", "--iters", "3", "--repeats", "2", "--json")
    assert result.exit_code == 0, result.stderr
    for row in json.loads(result.stdout):
        assert row["error"] is None
        assert row["dtype"] == "bf16" and row["throughput"] > 0 and row["peak_memory_gib"] > 0
        assert 0 < row["mfu"] < 1


def test_a_failed_row_makes_the_exit_code_1(tiny_zoo: zoo.Zoo, run: Run) -> None:
    result = run(
        "bench", "Broken-s128M", "Tiny-s128M", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--json"
    )
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [(r["model"], r["error"] is None) for r in rows] == [
        ("Tiny-s128M", True),
        ("Tiny-s128M", True),
        ("Broken-s128M", False),
        ("Broken-s128M", False),
    ]
    assert "Broken-s128M image:" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--amp", "--dtype", "fp32"], "--amp autocasts"), (["--tune", "--weights"], "--tune measures random weights")],
)
def test_contradictory_settings(run: Run, args: list[str], message: str) -> None:
    result = run("bench", "ViTamin-S", "--device", "cpu", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_no_selection_on_cuda_without_cuda_is_a_usage_error(run: Run) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run("bench", "--device", "cuda")
    assert result.exit_code == 2
    assert "no CUDA device" in result.stderr


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_without_ray_ray_is_never_imported(tiny_zoo: zoo.Zoo, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from vitamin_cli.cli import main\n"
        "try:\n"
        "    main(['bench', 'Tiny-s128M', '--device', 'cpu', '--batch-size', '2', '--iters', '1', '--repeats', '1'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('RAY', 'ray' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert "RAY False" in result.stderr, result.stderr


def test_results_of_different_gpus_are_never_mixed(run: Run, tmp_path: Path) -> None:
    saved = tmp_path / "cluster.jsonl"
    rows = [
        {"kind": "environment", "node": "a", "gpu_name": "NVIDIA H200"},
        {
            "kind": "result",
            "model": "ViTamin-S-s1.28B",
            "tower": "image",
            "throughput": 6453.0,
            "gpu_name": "NVIDIA H200",
        },
        {"kind": "environment", "node": "b", "gpu_name": "NVIDIA A100"},
        {
            "kind": "result",
            "model": "ViTamin-S-s1.28B",
            "tower": "image",
            "throughput": 3100.0,
            "gpu_name": "NVIDIA A100",
        },
    ]
    saved.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mixed = run("ls", "ViTamin-S", "--bench", str(saved))
    assert mixed.exit_code == 2 and "never mixed" in mixed.stderr and "--gpu" in mixed.stderr
    for gpu, shown in (("NVIDIA H200", "6,453"), ("NVIDIA A100", "3,100")):
        table = run("ls", "ViTamin-S", "--bench", str(saved), "--gpu", gpu).stdout
        assert shown in table
    compared = json.loads(
        run("compare", "ViTamin-S", "ViTamin-B", "--bench", str(saved), "--gpu", "NVIDIA A100", "--json").stdout
    )
    assert {r["field"]: r["values"] for r in compared["rows"]}["throughput_image"] == [3100.0, None]


class DiesOnText:
    """A runner whose worker dies on every text tower, as Ray reports it after the one retry."""

    in_process = False

    def gpus(self) -> float:
        return 0.0

    def cpus_per_node(self) -> float:
        return 1.0

    def run(self, function, jobs, resources):  # type: ignore[no-untyped-def]
        for index, (job,) in enumerate(jobs):
            if job.tower == "text":
                yield runners.Finished(index, error="its worker died, and again when tried once more", node="node-a")
            else:
                yield runners.Finished(index, function(job), node="node-a", node_id="id-a")


def test_a_task_whose_worker_died_is_saved_under_no_key_and_tried_again(tiny_zoo: zoo.Zoo, tmp_path: Path) -> None:
    """With Ray, a job whose worker died twice comes back with no measurement: its error row must not take the
    key of the job before it, and a rerun measures it again while the good result stands."""
    out = tmp_path / "bench.jsonl"
    tiny = [tiny_zoo.get("Tiny-s128M")]
    log, saved = sweeps.resume(bench_results.ROWS, out)
    assert saved == {}
    results = bench_sweep.in_table_order(list(bench_sweep.sweep(tiny_zoo, tiny, FAST, runner=DiesOnText())), tiny)
    for result in results:
        log.add(result)
    assert [(r.tower, r.error is None) for r in results] == [("image", True), ("text", False)]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["kind"], r.get("tower")) for r in rows] == [("environment", None), ("result", "image"),
                                                            ("result", "text")]  # fmt: skip
    assert isinstance(rows[1]["key"], str) and rows[2]["key"] is None
    saved = sweeps.read_saved(bench_results.ROWS, out)
    assert list(saved) == [rows[1]["key"]] and saved[rows[1]["key"]].throughput == rows[1]["throughput"]
    again = list(bench_sweep.sweep(tiny_zoo, tiny, FAST, saved=saved))
    assert [r.resumed for r in again] == [True, False] and again[1].throughput


def test_the_resume_key_is_the_architectures_config_not_its_name(tmp_path: Path) -> None:
    wide = TINY_ARCHITECTURE.replace("width: 32", "width: 64", 1)
    assert wide != TINY_ARCHITECTURE
    keys = []
    for text in (TINY_ARCHITECTURE, wide):
        path = tmp_path / f"zoo{len(keys)}.yaml"
        path.write_text(tiny_zoo_text([tiny_model("Tiny-s128M")], architectures=text))
        registry = zoo.load(path)
        keys.append(measure.result_key(measure._identity(registry, registry.models[0], None), "image", None, FAST))
    assert keys[0] != keys[1]


def test_bench_files_cut_short_or_edited_by_hand(tiny_zoo: zoo.Zoo, run: Run, tmp_path: Path) -> None:
    out = tmp_path / "bench.jsonl"
    args = ("bench", "Tiny-s128M", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--repeats", "2",
            "--warmup", "0", "--tower", "image", "--json", "-o", str(out))  # fmt: skip
    environment_only = '{"kind": "environment", "node": "n", "gpu_name": null}\n'
    out.write_text(environment_only)  # killed before the first result
    assert run("ls", "--bench", str(out)).exit_code == 2
    assert run(*args).exit_code == 0
    lines = out.read_text().splitlines()
    good = json.loads(lines[-1])
    out.write_text(environment_only + json.dumps({**good, "throughput": "fast"}) + "\n" + lines[-1][:50])
    again = run(*args)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)[0]["throughput"] != "fast"  # measured again: the bad row is no result
    rows = [json.loads(line) for line in out.read_text().splitlines()[-1:]]
    assert rows[0]["kind"] == "result"
    shown = run("ls", "--bench", str(out), "Tiny-s128M")
    assert shown.exit_code == 0, shown.stderr
    assert f"{rows[0]['throughput']:,.0f}" in shown.stdout


@pytest.mark.parametrize(
    ("address", "environment", "code", "message"),
    [("auto", "127.0.0.1:1", 1, "cannot reach Ray at '127.0.0.1:1'"),
     ("ray://127.0.0.1:1", None, 1, "cannot reach Ray at 'ray://127.0.0.1:1'"),
     ("auto", "garbage", 2, "RAY_ADDRESS 'garbage': expected host:port")],
)  # fmt: skip
def test_a_ray_address_nothing_answers_at_fails_at_once(
    tiny_zoo: zoo.Zoo, run: Run, monkeypatch: pytest.MonkeyPatch, address: str, environment: str | None, code: int,
    message: str,
) -> None:  # fmt: skip
    """Ray itself retries a dead address for minutes; vitamin checks that something answers first."""
    pytest.importorskip("ray")
    if environment is not None:
        monkeypatch.setenv("RAY_ADDRESS", environment)
    result = run("bench", "Tiny-s128M", "--device", "cpu", "--ray", address)
    assert result.exit_code == code and message in result.stderr, result.stderr


@pytest.mark.parametrize("command", [["ls"], ["compare", "ViTamin-L", "ViTamin-B"], ["plot"]])
def test_gpu_without_a_bench_file_is_a_usage_error(run: Run, command: list[str]) -> None:
    result = run(*command, "--gpu", "H200")
    assert result.exit_code == 2 and "--gpu chooses among the devices of a --bench file" in result.stderr


@pytest.mark.parametrize("device", ["", "cuda:x", "mps", "cpu:0"])
def test_a_device_that_is_not_cpu_or_cuda_is_a_usage_error(run: Run, device: str) -> None:
    result = run("bench", "ViTamin-L", "--device", device)
    assert result.exit_code == 2 and "use cpu, cuda or cuda:N" in result.stderr.replace("\n", " ").replace("│", "")
