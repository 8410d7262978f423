"""Start-up time of `vitamin ls` beside the bare imports of its libraries.

    python benchmarks/ls_startup.py [--runs 41]

Runs the two commands alternately (so that a busy neighbour slows both alike) and prints their median,
min and max wall times. The target is a median of at most 0.15 s on a 2-core machine where importing
typer, rich and yaml alone takes about 0.07 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=41)
    args = parser.parse_args()
    vitamin = shutil.which("vitamin") or sys.exit("install the package first: pip install .")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # measure with bytecode
    commands = {
        "import typer, rich, yaml": [sys.executable, "-c", "import typer, rich, yaml"],
        "vitamin ls": [vitamin, "ls"],
    }
    for command in commands.values():  # warm the disk cache, the bytecode and the zoo cache
        timed(command, env)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(args.runs):
        for label, command in commands.items():
            times[label].append(timed(command, env))
    for label, values in times.items():
        print(
            f"{label:26s} median {statistics.median(values) * 1000:5.0f} ms"
            f"   min {min(values) * 1000:5.0f}   max {max(values) * 1000:5.0f}   ({args.runs} runs)"
        )


if __name__ == "__main__":
    main()
