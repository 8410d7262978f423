"""Start-up time of `vitamin ls` beside the bare imports of its libraries.

    python benchmarks/ls_startup.py [--runs 41]

Runs the two commands alternately (so that a busy neighbour slows both alike) and prints their median,
min and max wall times. The target is `vitamin ls` within 1.2x the bare imports' median.

The third command is `vitamin ls` with its zoo memo out of reach (a cache folder below /dev/null, which even
root cannot create), so every start validates zoo.yaml again: the difference to the second is what the memo
saves.
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


def report(commands: dict[str, tuple[list[str], dict[str, str]]], runs: int, baseline: str) -> None:
    """Run the commands alternately `runs` times, after one warm-up each (the disk cache, the bytecode, the zoo
    memo), and print each one's median, min and max, and its median over the baseline's."""
    for command, command_env in commands.values():
        timed(command, command_env)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, (command, command_env) in commands.items():
            times[label].append(timed(command, command_env))
    base = statistics.median(times[baseline])
    width = max(len(label) for label in commands) + 2
    for label, values in times.items():
        median = statistics.median(values)
        print(
            f"{label:{width}s} median {median * 1000:5.0f} ms ({median / base:4.2f}x)"
            f"   min {min(values) * 1000:5.0f}   max {max(values) * 1000:5.0f}   ({runs} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=41)
    args = parser.parse_args()
    vitamin = shutil.which("vitamin") or sys.exit("install the package first: pip install .")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # measure with bytecode
    no_memo = {**env, "XDG_CACHE_HOME": os.path.join(os.devnull, "cache")}
    commands = {
        "import typer, rich, yaml": ([sys.executable, "-c", "import typer, rich, yaml"], env),
        "vitamin ls": ([vitamin, "ls"], env),
        "vitamin ls, no zoo memo": ([vitamin, "ls"], no_memo),
    }
    report(commands, args.runs, baseline="import typer, rich, yaml")


if __name__ == "__main__":
    main()
