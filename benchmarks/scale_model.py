"""The scaling model of docs/scale.md: how long `vitamin bench --ray` takes for the whole zoo on G GPUs.

    python benchmarks/scale_model.py [--gpus 8] [--import-s 16.5] [--worker-s 0.74]

Each of the 52 tasks (26 architectures x 2 towers) costs a fixed part (a fresh worker process, its imports of
torch and open_clip, building the tower, the matmul roof, the warm-up) and its timed batches, estimated from
the tower's full FLOP count (the audit's, cached) at the TFLOP/s the H200 reached on ViTamin-L's image
tower in shared/PERF.md. The tasks are dealt to G GPUs as Ray deals them, in the order submitted (vitamin
submits the largest first); the sweep takes as long as the busiest GPU. Parallel efficiency = the sum of the
task times / (G x the sweep's time).
"""

from __future__ import annotations

import argparse
import heapq

IMAGE_TFLOPS = 2 * 74.9 * 1823 / 1e3  # ViTamin-L image tower on the H200: 149.8 GFLOP/img at 1823 img/s
TEXT_TFLOPS = 2 * 6.55 * 20162 / 1e3 / 1.0  # its text tower: 13.1 GFLOP/text at 20162 texts/s
BATCHES = {"image": 256, "text": 1024}
TIMED = 3 + 3 * 10  # warm-up and timed batches of the default settings
FIXED_S = {"build and move the tower": 2.0, "matmul roof": 0.5, "warm-up, cuDNN autotune": 1.5}


def task_times(import_s: float, worker_s: float) -> list[float]:
    from vitamin_cli import zoo
    from vitamin_cli.bench import measure
    from vitamin_cli.bench import sweep as bench_sweep
    from vitamin_cli.models import audit

    registry = zoo.load()
    jobs, _ = bench_sweep.plan(registry, registry.models, measure.default_settings("cuda"))
    rows = {r.model: r for r in audit.audit(registry, registry.models)}
    fixed = import_s + worker_s + sum(FIXED_S.values())
    times = []
    for job in jobs:
        row = rows[job.model]
        gflops = 2 * (row.macs_image_g_measured_full if job.tower == "image" else row.macs_text_g_measured_full)
        tflops = IMAGE_TFLOPS if job.tower == "image" else TEXT_TFLOPS
        times.append(fixed + TIMED * BATCHES[job.tower] * gflops / (tflops * 1e3))
    return times


def sweep_time(times: list[float], gpus: int) -> float:
    """Each task goes to the GPU that frees up first, in the order given."""
    free = [0.0] * gpus
    for t in times:
        heapq.heappush(free, heapq.heappop(free) + t)
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--import-s", type=float, default=16.5, help="torch and open_clip imports in a new worker")
    parser.add_argument("--worker-s", type=float, default=0.74, help="Ray: a task on a fresh worker")
    args = parser.parse_args()
    times = task_times(args.import_s, args.worker_s)
    total = sum(times)
    print(f"{len(times)} tasks, {total:.0f} s in all, {min(times):.1f} to {max(times):.1f} s each")
    for label, order in (("largest first", sorted(times, reverse=True)), ("zoo order", times)):
        span = sweep_time(order, args.gpus)
        print(f"{label:14s} on {args.gpus} GPUs: {span:6.0f} s, parallel efficiency {total / (args.gpus * span):.2f}")


if __name__ == "__main__":
    main()
