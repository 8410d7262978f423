"""What Ray costs a sweep: `vitamin bench` of three tiny architectures run in-process, then through
`--ray local --device cpu` (Ray started by the command), and the overheads the scaling model of
docs/scale.md rests on.

    python benchmarks/ray_overhead.py

Prints both wall times (target: the Ray run within 15 s of the in-process one, Ray's start included), then
Ray's own costs on this machine: starting Ray, a task on a reused worker, a task on a fresh worker, and a
fresh worker's imports of torch and open_clip (paid by every GPU task, which runs in a process of its own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import TINY_ARCHITECTURE, tiny_model, tiny_zoo_text  # noqa: E402 - the tests' tiny models

ARCHITECTURES = {"TinyA": 64, "TinyB": 96, "TinyC": 128}
SETTINGS = ["--device", "cpu", "--batch-size", "8", "--iters", "5", "--repeats", "3", "--json"]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ray_costs() -> dict[str, float]:
    import ray

    costs = {}
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, logging_level="ERROR", log_to_driver=False, include_dashboard=False)
    costs["start Ray"] = time.perf_counter() - start

    def nothing() -> None:
        return None

    def imports() -> float:
        begin = time.perf_counter()
        import open_clip  # noqa: F401
        import torch  # noqa: F401

        return time.perf_counter() - begin

    reused = ray.remote(num_cpus=1)(nothing)
    ray.get(reused.remote())  # the first starts a worker
    start = time.perf_counter()
    ray.get([reused.remote() for _ in range(20)])
    costs["a task on a reused worker"] = (time.perf_counter() - start) / 20
    fresh = ray.remote(num_cpus=1, max_calls=1)(nothing)
    start = time.perf_counter()
    for _ in range(5):
        ray.get(fresh.remote())
    costs["a task on a fresh worker"] = (time.perf_counter() - start) / 5
    costs["torch and open_clip imports in a fresh worker"] = ray.get(
        ray.remote(num_cpus=1, max_calls=1)(imports).remote()
    )
    ray.shutdown()
    return costs


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        zoo = Path(work) / "zoo.yaml"
        architectures = "".join(
            TINY_ARCHITECTURE.replace("Tiny:", f"{name}:").replace("width: 64", f"width: {width}")
            for name, width in ARCHITECTURES.items()
        )
        models = [tiny_model(f"{name}-s1M", arch=name) for name in ARCHITECTURES]
        zoo.write_text(tiny_zoo_text(models, architectures=architectures))
        env = {**os.environ, "VITAMIN_ZOO": str(zoo), "XDG_CACHE_HOME": str(Path(work) / "cache")}
        vitamin = [sys.executable, "-m", "vitamin_cli", "bench"]
        timed(vitamin + SETTINGS, env)  # warm the disk cache and the audit memo alike for both
        in_process = timed(vitamin + SETTINGS, env)
        with_ray = timed(vitamin + ["--ray", "local"] + SETTINGS, env)
    print(f"bench of 3 tiny architectures, in-process:      {in_process:6.1f} s")
    print(f"the same through --ray local --device cpu:     {with_ray:6.1f} s  (+{with_ray - in_process:.1f} s)")
    for label, seconds in ray_costs().items():
        print(f"{label:48s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
