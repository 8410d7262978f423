"""Time of a shell completion request beside `vitamin ls`.

    python benchmarks/completion_startup.py [--runs 41]

A completion request is what the script of `vitamin --install-completion` runs at each Tab press: `vitamin`
with $_VITAMIN_COMPLETE set and the command line in $COMP_WORDS (bash's protocol; zsh's and fish's differ
only in the variable that holds the line). Runs the commands alternately (so that a busy neighbour slows all
alike) and prints their median, min and max wall times, and each median over `vitamin ls`'s. The target is
every request within 1.3x `vitamin ls`.

The requests: the command names (which builds every command, for their help), the options of one command, a
model name (the zoo read through its memo, as `vitamin ls` reads it) and a task key (tasks.yaml scanned for
its keys).
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


def completing(line: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of bash's completion function with the cursor at the end of `line`."""
    return {**env, "_VITAMIN_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(line.count(" "))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=41)
    args = parser.parse_args()
    vitamin = shutil.which("vitamin") or sys.exit("install the package first: pip install .")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # measure with bytecode
    commands = {
        "vitamin ls": ([vitamin, "ls"], env),
        "complete `vitamin `": ([vitamin], completing("vitamin ", env)),
        "complete `vitamin eval --`": ([vitamin], completing("vitamin eval --", env)),
        "complete `vitamin eval ViTamin-L`": ([vitamin], completing("vitamin eval ViTamin-L", env)),
        "complete `vitamin eval --task vtab/`": ([vitamin], completing("vitamin eval --task vtab/", env)),
    }
    for command, command_env in commands.values():  # warm the disk cache, the bytecode and the zoo memo
        timed(command, command_env)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(args.runs):
        for label, (command, command_env) in commands.items():
            times[label].append(timed(command, command_env))
    ls = statistics.median(times["vitamin ls"])
    for label, values in times.items():
        print(
            f"{label:38s} median {statistics.median(values) * 1000:5.0f} ms ({statistics.median(values) / ls:4.2f}x)"
            f"   min {min(values) * 1000:5.0f}   max {max(values) * 1000:5.0f}   ({args.runs} runs)"
        )


if __name__ == "__main__":
    main()
