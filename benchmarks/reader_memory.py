"""Peak memory of `vitamin eval` while it reads a task, summed over the process and its DataLoader workers
(proportional set size: a page the workers share with the process they were forked from counts once), for a zip
bomb and for an honest zip of 2,000 JPEGs (about 200 MB), against the same command on a task of two images.

    python benchmarks/reader_memory.py [--model ViT-S-32-s128M] [--images 2000] [--workers 4]

Prints each run's status, wall time and peak memory, and the honest zip's peak beyond the two-image run's
(target: under 1 GiB), and whether the bomb was refused naming the member and the bound.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import eval_throughput  # this folder's: run as `python benchmarks/reader_memory.py`
import psutil

GIB = 2**30


def write_pairs(folder: Path, images: int) -> int:
    """A CSV and a zip of `images` JPEGs of 500x375 with grain (about 100 KB each, stored); the zip's size."""
    eval_throughput.write_pairs(folder, images, captions=1, grain=40)
    return (folder / "images.zip").stat().st_size


def write_bomb(folder: Path, inflated: int) -> int:
    """Two honest images and `bomb.jpg`: `inflated` bytes of zeros, deflated to about a thousandth."""
    write_pairs(folder, 2)
    with zipfile.ZipFile(folder / "images.zip", "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("images/bomb.jpg", "w", force_zip64=True) as member:
            chunk = bytes(64 * 2**20)
            for _ in range(inflated // len(chunk)):
                member.write(chunk)
    with (folder / "pairs.csv").open("a") as table:
        csv.writer(table).writerow(["bomb.jpg", json.dumps(["a bomb"])])
    return (folder / "images.zip").stat().st_size


def peak_memory(command: list[str]) -> tuple[int, float, float, str]:
    """Run `command`; its exit code, peak summed PSS of it and its children (sampled every 20 ms), wall seconds,
    and its stdout."""
    process = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            total = 0
            for each in [process, *process.children(recursive=True)]:
                try:
                    total += each.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            peak = max(peak, total)
            time.sleep(0.02)

    start = time.perf_counter()
    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    if process.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed:\n{err}")
    return process.returncode, peak / GIB, time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-S-32-s128M")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--bomb-gib", type=float, default=1.6)
    args = parser.parse_args()

    import torch

    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        registry = zoo.load()
        checkpoint = work / "random.pt"
        torch.save(arch.build(arch.config(registry, registry.get(args.model))).state_dict(), checkpoint)
        sizes = {
            "two images": write_pairs(work / "two", 2),
            f"{args.images} images": write_pairs(work / "honest", args.images),
            "zip bomb": write_bomb(work / "bomb", int(args.bomb_gib * GIB)),
        }
        peaks = {}
        for (label, size), folder in zip(sizes.items(), ("two", "honest", "bomb"), strict=True):
            command = [sys.executable, "-m", "vitamin_cli", "eval", args.model, "--checkpoint", str(checkpoint),
                       "--task", f"retrieval:{work / folder}", "--workers", str(args.workers), "--json"]  # fmt: skip
            code, peak, wall, out = peak_memory(command)
            result = json.loads(out)["results"][0]
            said = result["status"] if result["status"] == "ok" else f"{result['status']}: {result['error'][:110]}"
            print(f"{label:>12}: zip {size / 2**20:7.1f} MiB, peak {peak:5.2f} GiB, {wall:6.1f} s, exit {code}, {said}")
            peaks[label] = peak
    beyond = peaks[f"{args.images} images"] - peaks["two images"]
    print(f"honest zip's peak beyond the two-image run's: {beyond:.2f} GiB (target < 1 GiB), {args.workers} workers")


if __name__ == "__main__":
    main()
