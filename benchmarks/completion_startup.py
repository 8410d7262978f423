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
import sys

from ls_startup import report  # run as a script: its folder is on the path


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
    report(commands, args.runs, baseline="vitamin ls")


if __name__ == "__main__":
    main()
