"""Sweeps on Ray, with no cluster at hand: one simulated two-node cluster for the whole session (fake GPUs:
the head has 2, the other node 1), the real bench and eval task functions measuring on the CPU while their
tasks ask Ray for GPUs; and `vitamin bench --ray local` in a process of its own, as a user runs it, for what
it leaves behind (stdout, processes, folders) when it ends, is stopped, or a worker dies. Slow: Ray starts
once for the session and once for each of those processes, and each fresh worker imports torch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    from vitamin_cli.bench import measure
    from vitamin_cli.bench import sweep as bench_sweep

    registry = zoo.load(two_archs)
    settings = measure.BenchSettings(device="cpu", batch_size=2, iters=1, repeats=1, warmup=0)
    jobs, _ = bench_sweep.plan(registry, registry.models, settings)
    assert len(jobs) == 4  # two architectures, two towers; Tiny's two rows share
    resources = runners.Resources(num_gpus=1, fresh_worker=True)
    finished = list(runners.RayRunner("auto").run(measure.measure, [(job,) for job in jobs], resources))
    assert sorted(f.index for f in finished) == [0, 1, 2, 3]  # every task once
    assert all(f.error is None and f.value.throughput for f in finished)
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


def test_what_a_worker_reports_reaches_the_drivers_stderr(cluster: object, capfd: pytest.CaptureFixture[str]) -> None:
    """Library code reports through `vitamin_cli.report`; Ray does not forward a worker's output (log_to_driver
    is off), so a job's warnings and notes come back with its result and are said on the driver."""
    from vitamin_cli import report, runners

    def noisy(name: str) -> str:
        report.note(f"{name}: pulling it first")
        report.warn(f"{name}: a cache at http://user:s3cret@mirror is odd", hint="look at it")
        return name

    capfd.readouterr()
    finished = list(runners.RayRunner("auto").run(noisy, [("one",), ("two",)], runners.Resources(num_cpus=1)))
    assert sorted(f.value for f in finished) == ["one", "two"]
    err = capfd.readouterr().err
    for name in ("one", "two"):
        assert f"note: {name}: pulling it first" in err
        assert f"warning: {name}: a cache at http://***@mirror is odd\nhint: look at it" in err
    assert "s3cret" not in err


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


def test_cuda_n_with_ray_is_a_usage_error(cluster: object, run: Run) -> None:
    # With the session's Ray up, `--ray local` joins it: no second Ray started in this process.
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


# ---------------------------------------------------------------------------------------------------
# `vitamin bench --ray local` as its own process: what it leaves when it ends


# `vitamin` with each Ray task replaced (the driver sends this function to the workers by value): `dies_once`
# kills the first task's worker as the kernel would for memory, then runs the task when Ray tries it again;
# `hangs` never ends, for a signal to stop the sweep. SIGINT as in a terminal, even under a shell that
# started the tests in the background (which ignores it).
SWEEP = """
import os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
from vitamin_cli import cli, runners
marks = Path(os.environ["VITAMIN_TEST_MARKS"])
call = runners._call
def dies_once(function, job):
    if not (marks / "died").exists():
        (marks / "died").touch()
        os._exit(1)
    return call(function, job)
def hangs(function, job):
    (marks / "started").touch()
    time.sleep(600)
runners._call = {"dies_once": dies_once, "hangs": hangs}[os.environ["VITAMIN_TEST_TASK"]]
cli.main(sys.argv[1:])
"""


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """The folder where a vitamin process makes Ray's (RAY_TMPDIR): short, as Ray's socket paths must stay
    under 108 bytes (pytest's tmp_path is too long); removed afterwards, whatever was left in it."""
    folder = Path(tempfile.mkdtemp(prefix="vt-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_sweep(task: str, marks: Path, ray_tmp: Path) -> subprocess.Popen[str]:
    """`vitamin bench --ray local --json` with its tasks replaced by `task`, in a session of its own: every
    process it starts, Ray's included, carries its session id, which `left_running` looks for."""
    env = {**os.environ, "VITAMIN_TEST_MARKS": str(marks), "VITAMIN_TEST_TASK": task, "RAY_TMPDIR": str(ray_tmp)}
    args = ["bench", "--ray", "local", "--device", "cpu", *FAST, "--json"]
    return subprocess.Popen(
        [sys.executable, "-c", SWEEP, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def left_running(session: int, grace_s: float = 10) -> list[str]:
    """The processes of a session still running `grace_s` seconds after its leader ended, as `ps` lists them
    (Ray names its own `ray::...`, raylet, gcs_server, ...); one that ended but is not yet reaped (a zombie,
    where nothing reaps orphans) does not count."""
    deadline = time.monotonic() + grace_s
    while True:
        listed = subprocess.run(["ps", "-eo", "sid=,stat=,pid=,args="], capture_output=True, text=True, check=True)
        rows = [line.split(maxsplit=2) for line in listed.stdout.splitlines()]
        found = [" ".join(row[2:]) for row in rows if row[0] == str(session) and not row[1].startswith("Z")]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def no_ray_leftovers(process: subprocess.Popen[str], ray_tmp: Path) -> None:
    assert left_running(process.pid) == []  # the raylet, the GCS, the agents and the workers are gone
    assert list(ray_tmp.iterdir()) == []  # vitamin's folder for Ray removed: no session_* folder left
    assert not (Path(os.environ["HOME"]) / ".ray").exists()  # nor a token in ~/.ray


def test_a_worker_that_dies_leaves_stdout_to_the_json_and_nothing_behind(
    two_archs: Path, tmp_path: Path, ray_tmp: Path
) -> None:
    """Ray reports the dead worker on the driver's stdout, "(raylet) A worker died ..."; it goes to stderr, and
    stdout holds the JSON document alone. Afterwards no Ray process, folder or token is left."""
    process = start_sweep("dies_once", tmp_path, ray_tmp)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert (tmp_path / "died").exists()  # a worker did die
    rows = json.loads(stdout)  # the whole of stdout is the document
    assert len(rows) == 6 and all(r["error"] is None and r["throughput"] for r in rows)
    assert "Traceback" not in stderr
    no_ray_leftovers(process, ray_tmp)


@pytest.mark.parametrize(
    ("stop", "code", "said"),
    [
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),  # kill, timeout
        (signal.SIGHUP, 129, "terminated (SIGHUP)"),  # the terminal closed
        (signal.SIGINT, 130, "interrupted"),  # Ctrl-C: to the whole process group, Ray's processes too
    ],
    ids=["sigterm", "sighup", "ctrl-c"],
)
def test_a_signal_ends_a_sweep_on_ray_cleanly(
    stop: signal.Signals, code: int, said: str, two_archs: Path, tmp_path: Path, ray_tmp: Path
) -> None:
    """Stopped while a task runs: the exit code of the signal and one line saying so, no stack dump of Ray's,
    and the local Ray shut down, its folder removed."""
    process = start_sweep("hangs", tmp_path, ray_tmp)
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    if stop == signal.SIGINT:
        os.killpg(process.pid, stop)
    else:
        process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stdout == ""
    assert stderr.splitlines()[-1] == said, stderr
    assert "Traceback" not in stderr and "***" not in stderr and "SIGTERM received" not in stderr, stderr
    no_ray_leftovers(process, ray_tmp)


def test_joining_a_cluster_leaves_it_running(cluster: Any, two_archs: Path) -> None:
    """`--ray auto` with RAY_ADDRESS: vitamin disconnects when it ends, and the cluster goes on."""
    import ray

    result = subprocess.run(
        [sys.executable, "-m", "vitamin_cli", "bench", "Tiny-s1M", "--ray", "auto", "--device", "cpu", *FAST, "--json"],
        env={**os.environ, "RAY_ADDRESS": cluster.address},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    assert ray.get(ray.remote(lambda: "still up").remote(), timeout=60) == "still up"


@pytest.mark.parametrize("how", ["flag", "RAY_ADDRESS"])
def test_a_ray_client_address_without_ray_client_is_a_usage_error(
    how: str, two_archs: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's client (ray[client]) needs grpcio: missing, that is said before anything is tried (nothing
    listens at the address: trying it first would fail otherwise)."""
    monkeypatch.setitem(sys.modules, "grpc", None)  # as where grpcio is not installed
    if how == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", "ray://127.0.0.1:9")
    address = "auto" if how == "RAY_ADDRESS" else "ray://127.0.0.1:9"
    result = run("bench", "--ray", address, "--device", "cpu", *FAST)
    assert result.exit_code == 2, result.stderr
    assert "Ray's client" in result.stderr
    assert 'hint: pip install "ray[client]==' in result.stderr
