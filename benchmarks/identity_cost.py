"""What checking a checkpoint's identity costs when nothing changed: `vitamin ls --pulled` and the start of
`vitamin eval` (finding each model's checkpoint and its sha256, as `eval` does before it loads a model), this
checkout against another one (`--baseline`, e.g. a `git worktree` of the commit before).

    git worktree add /tmp/vitamin-before <commit>
    python benchmarks/identity_cost.py --baseline /tmp/vitamin-before [--runs 21] [--size-mb 64]

Builds a scratch Hugging Face cache holding the zoo's 15 released checkpoints (random bytes of --size-mb each,
laid out and recorded as `vitamin pull` leaves them), lets each version look once (this one remembers each
file's hash then: the memo is warm, as after any first use), then runs the two versions alternately and prints
each one's median, min and max. A third row hashes one file again after its times changed: the cost the check
exists to pay.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

EVAL_START = """
import statistics, sys, time
from pathlib import Path
from vitamin_cli import zoo
from vitamin_cli.eval import sweep, tasks, zeroshot
registry = zoo.load()
task = tasks.load().get("imagenet1k")
settings = zeroshot.default_settings("cpu")
jobs = [sweep.EvalJob(registry.path, m.name, task, settings, cache_dir=Path(sys.argv[1])) for m in registry.models
        if m.released]
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    for job in jobs:
        sweep._weights(job, sweep.Reuse())
    times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


def build_cache(root: Path, size: int) -> None:
    """The released checkpoints in a cache and its manifest, as a pull leaves them (version 2, read by both)."""
    sys.path.insert(0, str(HERE))
    from vitamin_cli import zoo

    files = []
    for model in zoo.load().models:
        if model.weights is None:
            continue
        data = os.urandom(size)
        digest = hashlib.sha256(data).hexdigest()
        folder = root / ("models--" + model.weights.repo.replace("/", "--"))
        (folder / "blobs").mkdir(parents=True)
        (folder / "blobs" / digest).write_bytes(data)
        snapshot = folder / "snapshots" / ("a" * 40) / model.weights.filename
        snapshot.parent.mkdir(parents=True)
        snapshot.symlink_to(Path("..") / ".." / "blobs" / digest)
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text("a" * 40)
        files.append({"name": model.name, "repo": model.weights.repo, "repo_type": "model", "revision": "a" * 40,
                      "filename": model.weights.filename, "size_bytes": size, "sha256": digest, "etag": digest,
                      "pulled_at": "2026-01-01T00:00:00+00:00", "adopted": False})  # fmt: skip
    root.with_name(root.name + ".vitamin-manifest.json").write_text(json.dumps({"version": 2, "files": files}))


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def measured(command: list[str], env: dict[str, str]) -> float:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of vitamin to compare with")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--size-mb", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "hub"
        build_cache(root, args.size_mb * 2**20)
        os.chdir(scratch)  # `python -c` puts the working folder first on sys.path: not a checkout's
        time.sleep(2.5)  # older than the racy window: a hash of them is remembered
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # measure with bytecode
        base = {**env, "HF_HUB_CACHE": str(root), "XDG_CACHE_HOME": str(Path(scratch) / "memo"), "HF_HUB_OFFLINE": "1"}
        versions = {"before": {**base, "PYTHONPATH": str(args.baseline)}, "now": {**base, "PYTHONPATH": str(HERE)}}
        ls = [sys.executable, "-m", "vitamin_cli", "ls", "--pulled"]
        start = [sys.executable, "-c", EVAL_START, str(root), "5"]
        for env in versions.values():  # warm-up: bytecode, the zoo memo, and this version's hash memo
            timed(ls, env)
            measured(start, env)
        rows: dict[str, list[float]] = {f"{what} ({label})": [] for what in ("ls --pulled", "eval start") for label in
                                        versions}  # fmt: skip
        for _ in range(args.runs):
            for label, env in versions.items():
                rows[f"ls --pulled ({label})"].append(timed(ls, env))
                rows[f"eval start ({label})"].append(measured(start, env))
        for label, values in rows.items():
            median = statistics.median(values)
            print(f"{label:22s} median {median * 1000:7.1f} ms   min {min(values) * 1000:7.1f}"
                  f"   max {max(values) * 1000:7.1f}   ({args.runs} runs)")  # fmt: skip
        for what in ("ls --pulled", "eval start"):
            before, now = (statistics.median(rows[f"{what} ({v})"]) for v in versions)
            print(f"{what}: now / before = {now / before:.3f}")
        blob = next(root.glob("models--*/blobs/*"))
        os.utime(blob)  # changed times: hashed again at the next use
        sys.path.insert(0, str(HERE))
        os.environ.update(versions["now"])
        from vitamin_cli.checkpoints import identity

        began = time.perf_counter()
        identity.sha256_of(blob)
        print(f"hashing one {args.size_mb} MiB file again after its times changed: {time.perf_counter() - began:.3f} s")


if __name__ == "__main__":
    main()
