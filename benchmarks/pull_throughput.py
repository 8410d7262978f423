"""Download throughput of `vitamin pull` against `hf download`, on the same local server and file.

    python benchmarks/pull_throughput.py [--size-mb 512] [--runs 3]

Serves one random checkpoint from olah (the Hub mirror the tests use) and fetches it into a fresh cache
with each tool, alternately; prints the best and median time of each. Both verify the file: `hf download`
against its size, `vitamin pull` against its sha256 as well.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hubserver import build_repo, olah_server  # noqa: E402

REPO = "jienengchen/ViTamin-L-224px"  # the repo of the zoo's ViTamin-L


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        with olah_server(work) as (url, mirrors):
            build_repo(mirrors, REPO, {"pytorch_model.bin": os.urandom(args.size_mb * 2**20)})
            env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
            commands = {
                "hf download": [str(bin_dir / "hf"), "download", REPO, "pytorch_model.bin", "--cache-dir"],
                "vitamin pull": [sys.executable, "-m", "vitamin_cli", "pull", "ViTamin-L", "--quiet", "--cache-dir"],
            }
            times: dict[str, list[float]] = {label: [] for label in commands}
            for run in range(args.runs + 1):
                for label, command in commands.items():
                    cache = work / f"cache-{label.split()[0]}"
                    shutil.rmtree(cache, ignore_errors=True)
                    cache.with_name(cache.name + ".vitamin-manifest.json").unlink(missing_ok=True)
                    start = time.perf_counter()
                    subprocess.run([*command, str(cache)], env=env, check=True, stdout=subprocess.DEVNULL)
                    if run:  # the first round warms olah's caches and the page cache
                        times[label].append(time.perf_counter() - start)
    print(f"{args.size_mb} MiB from olah on 127.0.0.1, {args.runs} runs each")
    for label, values in times.items():
        best, median = min(values), statistics.median(values)
        print(f"{label:13s} best {best:6.2f} s ({args.size_mb / best:6.1f} MiB/s)   median {median:6.2f} s")


if __name__ == "__main__":
    main()
