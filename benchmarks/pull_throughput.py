"""Download throughput of `vitamin pull` against huggingface_hub, through a proxy that caps each connection.

    python benchmarks/pull_throughput.py [--size-mb 128] [--cap-mb 6] [--connections 8] [--runs 1]

olah (the Hub mirror the tests use) serves repos built here with random checkpoints, behind
benchmarks/capped_proxy.py: metadata comes from olah as it is, file bytes from a copy on disk, with ranges
honoured and each connection held to --cap-mb MB/s, as a CDN holds each stream (so N connections get N times
the cap). Each tool gets a fresh cache every run, in a subprocess. In one run:

1. one file of --size-mb MiB, capped: `vitamin pull` (VITAMIN_CONNECTIONS=--connections) against
   huggingface_hub's `hf_hub_download`; target: vitamin at least 4x as fast; and vitamin's rate against N times
   the cap, N being the connections the proxy saw it use at once;
2. --files files of --file-mb MiB, capped: `vitamin pull --all` of a zoo of that many models, each the only file
   of its own repo (a zoo file gives each repo to one model), against `snapshot_download` of one repo holding
   the same files (its 8 workers; allow_patterns keeps it to those files); target: at least as fast;
3. the file of (1) uncapped (straight from the proxy's disk copy): `vitamin pull` with --connections against
   VITAMIN_CONNECTIONS=1, with the CPU seconds of each (getrusage of the children), so that bytes per CPU
   second compare; target: no slower than one connection (5% allowed for noise);
4. the file of (1), capped: `vitamin pull` killed (SIGKILL) once the proxy has sent half of the file, then run
   again; the bytes the proxy sent for that file in both runs together, against the file; target: at most the
   file plus one 16 MiB part.

--runs repeats everything and reports the best time of each (the most bytes sent, for 4); each run times the
uncapped pair of (3) three times, alternately, as each takes about a second, half of it Python starting. Prints
a markdown table to paste into docs/checkpoints.md. Sizes are in MiB (2^20 bytes), rates in MB/s (10^6 bytes
per second).
A vitamin that does not know VITAMIN_CONNECTIONS (it ignores it, or refuses it: then it runs without) counts
as using the connections the proxy saw. The defaults take about 2 minutes when vitamin fetches a file over one
connection, under 1 minute over 8 (2 cores).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from capped_proxy import CappedProxy, file_key  # noqa: E402
from conftest import tiny_model, tiny_zoo_text  # noqa: E402
from hubserver import build_repo, olah_server  # noqa: E402

BIG_REPO = "lab/big"
FILENAME = "pytorch_model.bin"
SHARED_REPO = "lab/parts"  # huggingface_hub's side of (2): one repo, files model-N.bin
PART_BYTES = 16 * 2**20  # what a resumed pull may fetch again beyond the file (target of 4)
MB = 1e6
UNCAPPED_REPEATS = 3  # times per run of each uncapped case of (3): they are short, so noisy


@dataclass
class Measure:
    seconds: float
    cpu_s: float
    streams: int  # the most connections the proxy saw sending bytes at once
    sent: int  # body bytes the proxy sent for the files measured
    note: str = ""


@dataclass
class Setup:
    proxy: CappedProxy
    work: Path
    env: dict[str, str]
    big_zoo: Path
    parts_zoo: Path
    cap: float  # bytes per second per connection, 0: none
    connections_known: bool = True  # whether vitamin took VITAMIN_CONNECTIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=128, help="MiB of the single file (default 128)")
    parser.add_argument("--files", type=int, default=16, help="files of the many-files case (default 16)")
    parser.add_argument("--file-mb", type=int, default=10, help="MiB of each of those (default 10)")
    parser.add_argument("--cap-mb", type=float, default=6.0, help="MB/s per connection; 0: no cap (default 6)")
    parser.add_argument("--connections", type=int, default=8, help="VITAMIN_CONNECTIONS (default 8)")
    parser.add_argument("--runs", type=int, default=1, help="runs of everything; the best is reported")
    args = parser.parse_args()
    started = time.perf_counter()
    size, part_size, cap = args.size_mb * 2**20, args.file_mb * 2**20, args.cap_mb * MB
    with tempfile.TemporaryDirectory(prefix="vitamin-pull-bench-") as work_dir:
        work = Path(work_dir)
        with olah_server(work / "olah") as (olah_url, mirrors):
            files = build_files(mirrors, size, args.files, part_size)
            with CappedProxy(olah_url, files=files, cap_bytes_per_s=cap, spool_dir=work / "spool") as proxy:
                setup = Setup(proxy, work, environment(proxy.url, work), *write_zoos(work, args.files), cap)
                warm_up(setup, list(files), args.connections)
                rows = measure_all(setup, args, size, part_size)
    elapsed = time.perf_counter() - started
    print(table(setup, args, rows, size, part_size))
    print(f"\n(the whole benchmark took {elapsed:.0f} s)")


# -- the repos, the zoos, the environment -----------------------------------------------------------------------


def build_files(mirrors: Path, size: int, count: int, part_size: int) -> dict[str, Path]:
    """The repos in olah's mirrors folder; returns each file's key for the proxy and its LFS object on disk."""
    files: dict[str, Path] = {}

    def add(repo: str, lfs: dict[str, bytes]) -> None:
        build_repo(mirrors, repo, lfs)
        for name, data in lfs.items():
            sha = hashlib.sha256(data).hexdigest()
            files[file_key(repo, name)] = (
                mirrors / "models" / repo / ".git" / "lfs" / "objects" / sha[:2] / sha[2:4] / sha
            )

    add(BIG_REPO, {FILENAME: os.urandom(size)})
    parts = [os.urandom(part_size) for _ in range(count)]
    add(SHARED_REPO, {f"model-{i}.bin": data for i, data in enumerate(parts)})
    for i, data in enumerate(parts):
        add(f"lab/model-{i}", {FILENAME: data})
    return files


def write_zoos(work: Path, count: int) -> tuple[Path, Path]:
    """A zoo with the big file's model, and one with a model per small file (each in its own repo)."""
    big, parts = work / "big.yaml", work / "parts.yaml"
    big.write_text(tiny_zoo_text([tiny_model("Big", weights=f"{{repo: {BIG_REPO}, filename: {FILENAME}}}")]))
    parts.write_text(
        tiny_zoo_text(
            [tiny_model(f"Part-{i}", weights=f"{{repo: lab/model-{i}, filename: {FILENAME}}}") for i in range(count)]
        )
    )
    return big, parts


def environment(endpoint: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "VITAMIN_"))}
    return {
        **env,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(work / "hf-home"),  # no token, no cache or settings of the user's
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
    }


def vitamin_command(zoo: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vitamin_cli", "pull", "--zoo", str(zoo), "--all", "--quiet", *extra,
            "--cache-dir", str(cache)]  # fmt: skip


def hf_download_command(cache: Path) -> list[str]:
    return hf_download(BIG_REPO, FILENAME, cache)


def hf_download(repo: str, filename: str, cache: Path) -> list[str]:
    code = "import sys; from huggingface_hub import hf_hub_download as get; get(*sys.argv[1:3], cache_dir=sys.argv[3])"
    return [sys.executable, "-c", code, repo, filename, str(cache)]


def snapshot_command(cache: Path) -> list[str]:
    code = (
        "import sys; from huggingface_hub import snapshot_download; "
        "snapshot_download(sys.argv[1], cache_dir=sys.argv[2], allow_patterns=['model-*.bin'])"
    )
    return [sys.executable, "-c", code, SHARED_REPO, str(cache)]


def vitamin_env(setup: Setup, connections: int) -> dict[str, str]:
    if not setup.connections_known:
        return setup.env
    return {**setup.env, "VITAMIN_CONNECTIONS": str(connections)}


def warm_up(setup: Setup, keys: list[str], connections: int) -> None:
    """olah's first answers for each file and Python's imports, before anything is timed; finds out whether
    vitamin takes VITAMIN_CONNECTIONS."""
    host = setup.proxy.url.removeprefix("http://")
    for key in keys:  # olah's HEAD of each file, through the proxy (which keeps it for the downloads)
        connection = http.client.HTTPConnection(host, timeout=60)
        owner, name, filename = key.split("/", 2)
        connection.request("GET", f"/{owner}/{name}/resolve/main/{filename}", headers={"Range": "bytes=0-0"})
        connection.getresponse().read()
        connection.close()
    setup.proxy.cap_bytes_per_s = 0
    cache = setup.work / "warm-up"
    command = vitamin_command(setup.parts_zoo, cache / "vitamin", "Part-0")
    command.remove("--all")
    result = subprocess.run(command, env=vitamin_env(setup, connections), capture_output=True, text=True)
    if result.returncode == 2 and "VITAMIN_CONNECTIONS" in result.stderr:  # not a setting this vitamin knows
        setup.connections_known = False
        result = subprocess.run(command, env=setup.env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"vitamin pull failed in the warm-up:\n{result.stdout}{result.stderr}")
    subprocess.run(hf_download("lab/model-0", FILENAME, cache / "hf"), env=setup.env, check=True)
    shutil.rmtree(cache)
    setup.proxy.cap_bytes_per_s = setup.cap


# -- measuring --------------------------------------------------------------------------------------------------


def run_timed(setup: Setup, command: list[str], env: dict[str, str], key: str | None) -> tuple[Measure, str]:
    """Run a command to completion; its time, its CPU, and what the proxy sent for `key` (None: all files)."""
    setup.proxy.reset_stats()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])}... failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    stats = setup.proxy.stats(key)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measure(seconds, cpu, stats.peak_streams, stats.body_bytes), result.stdout


def fresh_cache(setup: Setup, label: str) -> Path:
    folder = setup.work / "runs" / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder / "hub"  # vitamin's manifest goes beside it, in the same throwaway folder


def check_present(cache: Path, repo: str, filename: str, size: int) -> None:
    found = list((cache / f"models--{repo.replace('/', '--')}" / "snapshots").glob(f"*/{filename}"))
    if len(found) != 1 or found[0].stat().st_size != size:
        raise SystemExit(f"{repo}/{filename} is not in {cache} with {size} bytes after the download")


def measure_all(setup: Setup, args: argparse.Namespace, size: int, part_size: int) -> dict[str, Measure]:
    big_key = file_key(BIG_REPO, FILENAME)
    n = args.connections
    cases: dict[str, Callable[[], Measure]] = {}

    def capped(cap: bool) -> None:
        setup.proxy.cap_bytes_per_s = setup.cap if cap else 0

    def one(label: str, command: Callable[[Path], list[str]], env: dict[str, str], cap: bool, key: str | None,
            files: list[tuple[str, str, int]]) -> Callable[[], Measure]:  # fmt: skip
        def go() -> Measure:
            capped(cap)
            cache = fresh_cache(setup, label)
            measure, _ = run_timed(setup, command(cache), env, key)
            for repo, filename, length in files:
                check_present(cache, repo, filename, length)
            shutil.rmtree(cache.parent)
            return measure

        return go

    big = [(BIG_REPO, FILENAME, size)]
    cases["hf capped"] = one("hf", hf_download_command, setup.env, True, big_key, big)
    cases["vitamin capped"] = one(
        "vitamin", lambda c: vitamin_command(setup.big_zoo, c), vitamin_env(setup, n), True, big_key, big
    )
    shared = [(SHARED_REPO, f"model-{i}.bin", part_size) for i in range(args.files)]
    own = [(f"lab/model-{i}", FILENAME, part_size) for i in range(args.files)]
    cases["snapshot capped"] = one("snapshot", snapshot_command, setup.env, True, None, shared)
    cases["vitamin files capped"] = one(
        "vitamin-files", lambda c: vitamin_command(setup.parts_zoo, c), vitamin_env(setup, n), True, None, own
    )
    cases["vitamin uncapped"] = one(
        "vitamin-n", lambda c: vitamin_command(setup.big_zoo, c), vitamin_env(setup, n), False, big_key, big
    )
    cases["vitamin uncapped 1"] = one(
        "vitamin-1", lambda c: vitamin_command(setup.big_zoo, c), vitamin_env(setup, 1), False, big_key, big
    )
    cases["vitamin killed"] = lambda: killed_and_rerun(setup, n, size, big_key)

    results: dict[str, list[Measure]] = {label: [] for label in cases}
    uncapped = ("vitamin uncapped", "vitamin uncapped 1")
    for run in range(args.runs):
        for label in cases:
            if label == uncapped[1]:
                continue
            # the uncapped pair takes about a second each, half of it Python starting: 3 times, alternately
            for this in uncapped * UNCAPPED_REPEATS if label == uncapped[0] else (label,):
                results[this].append(cases[this]())
                print(f"run {run + 1}/{args.runs}: {this}: {results[this][-1].seconds:.1f} s", file=sys.stderr)
    best = {label: min(values, key=lambda m: m.seconds) for label, values in results.items()}
    best["vitamin killed"] = max(results["vitamin killed"], key=lambda m: m.sent)  # a bound holds on every run
    return best


def killed_and_rerun(setup: Setup, connections: int, size: int, key: str) -> Measure:
    """Pull the big file capped, SIGKILL it once the proxy has sent half of it, pull again; the bytes sent in all."""
    setup.proxy.cap_bytes_per_s = setup.cap
    cache = fresh_cache(setup, "vitamin-killed")
    env = vitamin_env(setup, connections)
    setup.proxy.reset_stats()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(
        vitamin_command(setup.big_zoo, cache), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    while setup.proxy.stats(key).body_bytes < size // 2 and process.poll() is None:
        time.sleep(0.01)
    finished_first = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = setup.proxy.stats(key).body_bytes
    rerun = subprocess.run(vitamin_command(setup.big_zoo, cache, "--json"), env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rerun.returncode != 0:
        raise SystemExit(f"vitamin pull after the kill failed ({rerun.returncode}):\n{rerun.stdout}{rerun.stderr}")
    check_present(cache, BIG_REPO, FILENAME, size)
    statuses = pull_statuses(rerun.stdout)
    stats = setup.proxy.stats(key)
    shutil.rmtree(cache.parent)
    note = (
        f"{first / MB:.1f} MB before the kill, {(stats.body_bytes - first) / MB:.1f} MB after; "
        f"the rerun: {'/'.join(statuses) or '?'}"
    )
    if finished_first:
        note += " (the first pull finished before it could be killed)"
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measure(seconds, cpu, stats.peak_streams, stats.body_bytes, note)


def pull_statuses(text: str) -> list[str]:
    """The `status` of each model in `vitamin pull --json`'s output (one object per model, or a list)."""
    try:
        loaded = json.loads(text)
        objects = loaded if isinstance(loaded, list) else [loaded]
    except json.JSONDecodeError:
        objects = []
        for line in text.splitlines():
            try:
                objects.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return [str(o.get("status")) for o in objects if isinstance(o, dict)]


# -- the table --------------------------------------------------------------------------------------------------


def table(setup: Setup, args: argparse.Namespace, rows: dict[str, Measure], size: int, part_size: int) -> str:
    cap_mb = args.cap_mb
    capped = f"{cap_mb:g} MB/s per connection" if cap_mb > 0 else "no cap"
    n = args.connections
    many = args.files * part_size

    def rate(m: Measure, total: int) -> float:
        return total / m.seconds / MB

    def line(what: str, m: Measure, total: int, result: str = "", target: str = "", met: bool | None = None) -> str:
        per_cpu = f"{total / MB / m.cpu_s:.0f}" if m.cpu_s > 0 else "-"
        verdict = "" if met is None else ("yes" if met else "**no**")
        return (f"| {what} | {m.seconds:.1f} | {rate(m, total):.1f} | {m.streams} | {m.cpu_s:.1f} | {per_cpu} "
                f"| {result} | {target} | {verdict} |")  # fmt: skip

    hf, vit = rows["hf capped"], rows["vitamin capped"]
    speedup = hf.seconds / vit.seconds
    if cap_mb > 0:
        of_cap = f"; {rate(vit, size) / (vit.streams * cap_mb):.0%} of {vit.streams} x {cap_mb:g} MB/s"
    else:
        of_cap = ""
    snap, vit_many = rows["snapshot capped"], rows["vitamin files capped"]
    many_speedup = snap.seconds / vit_many.seconds
    fast, one = rows["vitamin uncapped"], rows["vitamin uncapped 1"]
    uncapped_speedup = one.seconds / fast.seconds
    killed = rows["vitamin killed"]
    bound = size + PART_BYTES
    knows = "" if setup.connections_known else " (this vitamin refused it: run without)"
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("huggingface_hub", "olah"))
    lines = [
        f"`python benchmarks/pull_throughput.py` on {os.cpu_count()} cores ({platform.machine()}), {versions}: "
        f"olah on 127.0.0.1 behind benchmarks/capped_proxy.py ({capped}, ranges honoured); a fresh cache per "
        f"run; best of {args.runs} run{'s' if args.runs > 1 else ''} ({UNCAPPED_REPEATS * args.runs} for the uncapped "
        "rows). MiB = 2^20 bytes, MB = 10^6. "
        f"VITAMIN_CONNECTIONS={n}{knows}; *connections* is the most the proxy saw sending at once.",
        "",
        "| measurement | time (s) | MB/s | connections | CPU (s) | MB per CPU s | result | target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
        line(f"`hf_hub_download`, 1 x {args.size_mb} MiB, {capped}", hf, size),
        line(f"`vitamin pull`, 1 x {args.size_mb} MiB, {capped}", vit, size,
             f"{speedup:.2f}x `hf_hub_download`{of_cap}", ">= 4x `hf_hub_download`", speedup >= 4),
        line(f"`snapshot_download` (8 workers), 1 repo of {args.files} x {args.file_mb} MiB, {capped}", snap, many),
        line(f"`vitamin pull --all`, {args.files} models of {args.file_mb} MiB, {capped}", vit_many, many,
             f"{many_speedup:.2f}x `snapshot_download`", ">= 1x `snapshot_download`", many_speedup >= 1),
        line(f"`vitamin pull`, 1 x {args.size_mb} MiB, no cap, VITAMIN_CONNECTIONS={n}", fast, size,
             f"{uncapped_speedup:.2f}x 1 connection", ">= 1x 1 connection (5% for noise)", uncapped_speedup >= 0.95),
        line(f"`vitamin pull`, 1 x {args.size_mb} MiB, no cap, VITAMIN_CONNECTIONS=1", one, size),
        line(f"`vitamin pull` killed at half, then again, 1 x {args.size_mb} MiB, {capped}", killed, size,
             f"sent {killed.sent / MB:.1f} MB = {killed.sent / size:.3f}x the file ({killed.note})",
             f"<= the file + 16 MiB ({bound / size:.3f}x)", killed.sent <= bound),
    ]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
