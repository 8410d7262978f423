"""Sweeps on Ray, with no cluster at hand: one simulated two-node cluster for the whole session (fake GPUs:
the head has 2, the other node 1), the real bench and eval task functions measuring on the CPU while their
tasks ask Ray for GPUs. Slow: Ray starts once, and each fresh worker imports torch."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY_ARCHITECTURE, Run, tiny_model, tiny_zoo_text

pytestmark = pytest.mark.slow

OTHER_ARCHITECTURE = TINY_ARCHITECTURE.replace("Tiny:", "Wide:").replace("width: 64", "width: 96")


@pytest.fixture(scope="session")
def cluster() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 2})
    simulated.add_node(num_cpus=1, num_gpus=1)
    ray.init(address=simulated.address, logging_level="ERROR", log_to_driver=False)
    yield simulated
    ray.shutdown()
    simulated.shutdown()


@pytest.fixture
def two_archs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "zoo.yaml"
    models = [tiny_model("Tiny-s1M"), tiny_model("Tiny-s2M", samples="2M"), tiny_model("Wide-s1M", arch="Wide")]
    path.write_text(tiny_zoo_text(models, architectures=TINY_ARCHITECTURE + OTHER_ARCHITECTURE))
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    return path


FAST = ("--batch-size", "2", "--iters", "1", "--repeats", "1", "--warmup", "0")


def test_tasks_on_fake_gpus_get_gpus_of_their_own_on_both_nodes(cluster: object, two_archs: Path) -> None:
    """bench's own task function, asking for a whole GPU per task while it measures on the CPU (the seam:
    what a task asks of Ray is apart from the device it measures on)."""
    from vitamin_cli import runners, zoo
    from vitamin_cli.models import bench, bench_sweep

    registry = zoo.load(two_archs)
    settings = bench.BenchSettings(device="cpu", batch_size=2, iters=1, repeats=1, warmup=0)
    jobs, _ = bench_sweep.plan(registry, registry.models, settings)
    assert len(jobs) == 4  # two architectures, two towers; Tiny's two rows share
    resources = runners.Resources(num_gpus=1, fresh_worker=True)
    finished = list(runners.RayRunner("auto").run(bench.measure, [(job,) for job in jobs], resources))
    assert sorted(f.index for f in finished) == [0, 1, 2, 3]  # every task once
    assert all(f.error is None and f.value.result.throughput for f in finished)
    assert all(len(f.gpu_ids) == 1 for f in finished)
    for a in finished:
        for b in finished:
            overlap = a is not b and a.node_id == b.node_id and a.started < b.ended and b.started < a.ended
            assert not overlap or a.gpu_ids != b.gpu_ids  # at the same time on one node: different GPUs
    assert len({f.node_id for f in finished}) == 2


def test_a_worker_that_dies_is_tried_once_more_then_reported(cluster: object, tmp_path: Path) -> None:
    from vitamin_cli import runners

    marks = tmp_path / "marks"
    marks.mkdir()

    def flaky(name: str, dies: int) -> str:
        tries = len(list(marks.glob(f"{name}-*")))
        (marks / f"{name}-{tries}").touch()
        if tries < dies:
            os._exit(1)  # the worker process dies, as when the kernel kills it for memory
        return name

    jobs = [("steady", 0), ("once", 1), ("always", 5)]
    resources = runners.Resources(num_cpus=1, fresh_worker=True)
    finished = {f.index: f for f in runners.RayRunner("auto").run(flaky, jobs, resources)}
    assert finished[0].value == "steady" and finished[1].value == "once"
    assert finished[2].value is None and "worker died" in str(finished[2].error)
    assert len(list(marks.glob("always-*"))) == 2  # tried once more, not more


def test_ctrl_c_cancels_what_is_queued_and_keeps_what_finished(cluster: object, tmp_path: Path) -> None:
    from vitamin_cli import runners

    started = tmp_path / "started"
    started.mkdir()

    def slow(index: int) -> int:
        (started / str(index)).touch()
        time.sleep(1.5)
        return index

    kept = []
    with pytest.raises(KeyboardInterrupt):
        for finished in runners.RayRunner("auto").run(slow, [(i,) for i in range(12)], runners.Resources(num_gpus=1)):
            kept.append(finished.value)
            raise KeyboardInterrupt
    assert len(kept) == 1
    time.sleep(2)
    assert len(list(started.iterdir())) < 12  # the queued ones never started


def test_bench_through_ray_streams_rows_with_their_node_and_resumes(
    cluster: object, two_archs: Path, run: Run, tmp_path: Path
) -> None:
    saved = tmp_path / "bench.jsonl"
    result = run("bench", "--ray", "auto", "--device", "cpu", *FAST, "--json", "-o", str(saved))
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["model"], r["tower"]) for r in rows] == [
        (m, t) for m in ("Tiny-s1M", "Tiny-s2M", "Wide-s1M") for t in ("image", "text")
    ]
    assert all(r["node"] and r["node_id"] for r in rows)
    lines = saved.read_text().splitlines()
    again = run("bench", "--ray", "auto", "--device", "cpu", *FAST, "--json", "-o", str(saved))
    assert again.exit_code == 0 and saved.read_text().splitlines() == lines  # nothing measured again
    assert [r["throughput"] for r in json.loads(again.stdout)] == [r["throughput"] for r in rows]


def test_cuda_n_with_ray_is_a_usage_error(run: Run) -> None:
    result = run("bench", "ViTamin-S", "--ray", "local", "--device", "cuda:1")
    assert result.exit_code == 2
    assert "Ray gives each task its GPU" in result.stderr


def test_eval_through_ray(cluster: object, two_archs: Path, run: Run, tmp_path: Path) -> None:
    import torch
    from PIL import Image

    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    registry = zoo.load(two_archs)
    checkpoint = tmp_path / "tiny.pt"
    torch.save(arch.build(arch.config(registry, registry.get("Tiny-s1M"))).state_dict(), checkpoint)
    for name in ("a", "b"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(tmp_path / "photos" / name / f"{i}.png")
    args = ["eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{tmp_path / 'photos'}"]
    result = run(*args, "--ray", "auto", "--device", "cpu", "--json", "--workers", "0")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["status"] == "ok" and row["samples"] == 6 and row["node_id"]
