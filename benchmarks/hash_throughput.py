"""sha256 throughput of `vitamin verify`'s hashing against `openssl dgst -sha256`, on one file and on two.

    python benchmarks/hash_throughput.py [--size-gb 2] [--dir /tmp]

Writes two random files of the given size (kept in the page cache, as after a pull), then times, best of
three: openssl on one file, vitamin_cli.hub.hashing on one file, and both tools on the two files at once
(openssl as two processes, vitamin as two threads).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from vitamin_cli.hub.hashing import hash_files, sha256_file


def best_of(runs: int, action) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = int(args.size_gb * 1e9)
    files = [Path(args.dir) / f"vitamin-hash-bench-{i}.bin" for i in range(2)]
    try:
        for path in files:
            if not path.exists() or path.stat().st_size != size:
                with open(path, "wb") as out:
                    for _ in range(size // 2**26):
                        out.write(os.urandom(2**26))
                    out.write(os.urandom(size % 2**26))
        for path in files:  # into the page cache
            sha256_file(path)

        def openssl(paths: list[Path]) -> None:
            procs = [subprocess.Popen(["openssl", "dgst", "-sha256", str(p)], stdout=subprocess.DEVNULL) for p in paths]
            for proc in procs:
                proc.wait()

        rows = [
            ("openssl, 1 file", 1, best_of(args.runs, lambda: openssl(files[:1]))),
            ("vitamin, 1 file", 1, best_of(args.runs, lambda: sha256_file(files[0]))),
            ("openssl, 2 files", 2, best_of(args.runs, lambda: openssl(files))),
            ("vitamin, 2 files", 2, best_of(args.runs, lambda: hash_files(files))),
        ]
        reference = size / rows[0][2]
        print(f"{'':18s} {'seconds':>8s} {'MB/s':>8s} {'vs openssl, 1 file':>19s}   ({os.cpu_count()} cores)")
        for label, count, seconds in rows:
            rate = count * size / seconds
            print(f"{label:18s} {seconds:8.2f} {rate / 1e6:8.0f} {rate / reference:18.2f}x")
    finally:
        for path in files:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
