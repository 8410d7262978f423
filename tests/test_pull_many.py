"""`vitamin pull` of several files at once: models (and tasks) up to --jobs at once, each file as --connections
byte ranges, results in the order of the selection, a failure that stops nothing else, Ctrl-C that stops them
all, and progress bars only on a terminal.

Against the test Hub (olah behind the tests' proxy), each pull a new process; the options and the bound on
files at once are checked in this process too, with the fetch of a file replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Hub, Run, start_vitamin, tiny_model, tiny_zoo_text, vitamin_process
from hubserver import build_repo

from vitamin_cli.commands.pull import STOP_WAIT_S

MiB = 2**20
LETTERS = "ABCD"
REPOS = {c: f"test/many-{c.lower()}" for c in LETTERS}
NAMES = {c: f"Many{c}-s1M" for c in LETTERS}
MISSING = "test/many-missing"  # a repo the test Hub does not have
PULL_KEYS = ["name", "repo", "revision", "filename", "path", "size_bytes", "sha256", "status", "error", "local_path"]


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str, kind: str = "models") -> Path:
    return cache_root() / (f"{kind}--" + repo.replace("/", "--"))


def manifest() -> dict[str, dict[str, Any]]:
    path = cache_root().with_name("hub.vitamin-manifest.json")
    return {entry["name"]: entry for entry in json.loads(path.read_text())["files"]}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Many:
    zoo: Path  # ManyA-s1M ... ManyD-s1M, released, one repo each; ManyX-s1M, unreleased
    files: dict[str, bytes]  # repo -> its checkpoint


def checkpoints() -> dict[str, bytes]:
    """The checkpoint of each repo, the same in every run: ManyA's the largest (it finishes last)."""
    rng = random.Random(11)
    return {REPOS[c]: rng.randbytes(size) for c, size in zip(LETTERS, (3 * MiB, MiB, MiB, MiB), strict=True)}


def weights(repo: str) -> str:
    return f"{{repo: {repo}, filename: pytorch_model.bin}}"


@pytest.fixture
def many(hub: Hub, tmp_path: Path) -> Many:
    files = checkpoints()
    for repo, data in files.items():
        if not (hub.mirrors / "models" / repo).exists():  # built once per session (per xdist worker)
            build_repo(hub.mirrors, repo, {"pytorch_model.bin": data})
    zoo = tmp_path / "many.yaml"
    models = [tiny_model(NAMES[c], weights=weights(REPOS[c])) for c in LETTERS] + [tiny_model("ManyX-s1M")]
    zoo.write_text(tiny_zoo_text(models))
    return Many(zoo, files)


@dataclass
class Get:
    path: str
    sent_before: int  # the proxy's body bytes of every file download when this GET arrived
    at: float


@pytest.fixture
def gets(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> list[Get]:
    """Each file download (GET) the proxy receives, in the order they arrive, with the bytes it had sent then."""
    arrived: list[Get] = []
    handle = hub.proxy.handle

    def logged(request: Any, method: str) -> None:
        if method == "GET" and "/resolve/" in request.path:
            with hub.proxy.lock:
                arrived.append(Get(request.path, hub.proxy.faults.body_bytes, time.monotonic()))
        handle(request, method)

    monkeypatch.setattr(hub.proxy, "handle", logged)
    return arrived


def repo_of(path: str) -> str:
    return path.lstrip("/").removeprefix("datasets/").split("/resolve/")[0]


def first_gets(arrived: list[Get]) -> list[Get]:
    """The first GET of each file, in the order they arrived."""
    seen: set[str] = set()
    firsts = []
    for get in arrived:
        if get.path not in seen:
            seen.add(get.path)
            firsts.append(get)
    return firsts


def pull_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]], str]:
    result = vitamin_process("pull", *args, "--json", env=env)
    return result.exit_code, json.loads(result.stdout or "[]"), result.stderr


# ---------------------------------------------------------------------------------------------------
# Against the test Hub


def test_several_models_arrive_intact_recorded_and_in_the_order_of_the_zoo(many: Many, gets: list[Get]) -> None:
    code, rows, stderr = pull_json("--zoo", str(many.zoo), "--released")
    assert code == 0, stderr
    assert [r["name"] for r in rows] == [NAMES[c] for c in LETTERS]  # the zoo's order, not the order they ended
    assert [r["status"] for r in rows] == ["downloaded"] * 4
    assert all(list(r) == PULL_KEYS for r in rows)  # --json as before
    recorded = manifest()
    for c, row in zip(LETTERS, rows, strict=True):
        data = many.files[REPOS[c]]
        assert (row["sha256"], row["size_bytes"]) == (sha(data), len(data))
        assert Path(row["path"]).read_bytes() == data
        assert (recorded[NAMES[c]]["sha256"], recorded[NAMES[c]]["revision"]) == (sha(data), row["revision"])
        assert not list(repo_folder(REPOS[c]).glob("blobs/*.vitamin-partial"))
    assert sorted(repo_of(g.path) for g in first_gets(gets)) == sorted(REPOS.values())
    assert stderr == ""  # not a terminal: no bars

    again = vitamin_process("pull", "--zoo", str(many.zoo), "--released")
    assert again.exit_code == 0
    assert again.stdout.splitlines()[-1] == "4 present (0 downloaded, 0 resumed, 4 already cached)"
    assert [line.split()[1] for line in again.stdout.splitlines()[:-1]] == [NAMES[c] for c in LETTERS]


def test_files_are_fetched_at_once(many: Many, hub: Hub, gets: list[Get]) -> None:
    """Each file slowed by the proxy: a file's GET arrives before the files asked for earlier are all sent."""
    hub.proxy.faults.chunk_delay_s = 0.02  # 16 chunks of 64 KiB a MiB: a third of a second for each
    code, rows, stderr = pull_json("--zoo", str(many.zoo), "ManyB-s1M", "ManyC-s1M", "ManyD-s1M")
    assert code == 0, stderr
    firsts = first_gets(gets)
    assert len(firsts) == 3
    for k, get in enumerate(firsts[1:], 1):
        earlier = sum(len(many.files[repo_of(g.path)]) for g in firsts[:k])
        assert get.sent_before < earlier, f"GET {k + 1} arrived after the {k} before it were sent whole"


def test_jobs_1_fetches_one_file_after_another(many: Many, hub: Hub, gets: list[Get]) -> None:
    hub.proxy.faults.chunk_delay_s = 0.005
    code, rows, stderr = pull_json("--zoo", str(many.zoo), "ManyB-s1M", "ManyC-s1M", "ManyD-s1M", "--jobs", "1")
    assert code == 0, stderr
    assert [r["name"] for r in rows] == [NAMES[c] for c in "BCD"]
    firsts = first_gets(gets)
    assert [repo_of(g.path) for g in firsts] == [REPOS[c] for c in "BCD"]
    for k, get in enumerate(firsts):
        earlier = sum(len(many.files[repo_of(g.path)]) for g in firsts[:k])
        assert get.sent_before >= earlier - 64 * 1024  # every byte of the files before it sent (but the last chunk)


def test_one_failing_file_stops_nothing_else(many: Many, tmp_path: Path) -> None:
    zoo = tmp_path / "broken.yaml"
    models = [
        tiny_model(NAMES["B"], weights=weights(REPOS["B"])),
        tiny_model("Gone-s1M", weights=weights(MISSING)),
        tiny_model(NAMES["C"], weights=weights(REPOS["C"])),
    ]
    zoo.write_text(tiny_zoo_text(models))
    code, rows, stderr = pull_json("--zoo", str(zoo), "--released")
    assert code == 1
    assert [(r["name"], r["status"]) for r in rows] == [
        (NAMES["B"], "downloaded"),
        ("Gone-s1M", "failed"),
        (NAMES["C"], "downloaded"),
    ]
    assert (
        "error: Gone-s1M: HTTP 401 from 127.0.0.1" in stderr
        and f"{MISSING}/pytorch_model.bin needs credentials" in stderr
    )
    assert stderr.count("error:") == 1 and "hint:" in stderr.split("error:", 1)[1].splitlines()[1]
    assert set(manifest()) == {NAMES["B"], NAMES["C"]}
    table = vitamin_process("pull", "--zoo", str(zoo), "--released")
    assert table.exit_code == 1
    assert table.stdout.splitlines()[-1] == "2 present (0 downloaded, 0 resumed, 2 already cached), 1 failed"


def test_on_a_terminal_a_bar_per_file_and_one_for_all(many: Many) -> None:
    """stderr a terminal (a pty): a bar per downloaded file, and "N files" below them; a cached file draws none."""
    names = [NAMES[c] for c in "BCD"]
    first = pull_on_a_terminal("--zoo", str(many.zoo), *names)
    assert first.returncode == 0, first.stderr
    bars = [line for line in first.stderr.splitlines() if line.strip()]
    assert sorted(line.split()[0] for line in bars[:-1]) == names  # in the order they started
    assert bars[-1].startswith("3 files") and "3.0 MiB/3.0 MiB" in bars[-1]  # binary, as the summary's
    assert all("1.0 MiB/1.0 MiB" in line for line in bars[:-1])
    second = pull_on_a_terminal("--zoo", str(many.zoo), *names, "ManyA-s1M")
    assert second.returncode == 0, second.stderr
    (bar,) = [line for line in second.stderr.splitlines() if line.strip()]  # the one file not yet cached
    assert bar.startswith("ManyA-s1M") and "3.0 MiB/3.0 MiB" in bar
    assert "files" not in bar


def pull_on_a_terminal(*args: str) -> subprocess.CompletedProcess[str]:
    """`vitamin pull ARGS` with stderr a pseudo-terminal: what it drew there, and its stdout."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "vitamin_cli", "pull", *args],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    drawn = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed its end
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    stdout, _ = process.communicate(timeout=300)
    reader.join(timeout=10)
    os.close(leader)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, drawn.decode().replace("\r", ""))


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_tasks_are_fetched_at_once(hub: Hub, gets: list[Get]) -> None:
    """Two tasks' data at once (each task's files one after another)."""
    tars = {}
    for repo in ("djghosh/wds_vtab-pets_test", "djghosh/wds_cars_test"):
        tars[repo] = random.Random(repo).randbytes(MiB)
        if not (hub.mirrors / "datasets" / repo).exists():
            plain = {"classnames.txt": "one\ntwo\n", "test/nshards.txt": "1\n"}
            plain["zeroshot_classification_templates.txt"] = "a photo of {c}.\n"
            build_repo(hub.mirrors, repo, {"test/0.tar": tars[repo]}, plain, repo_type="dataset")
    hub.proxy.faults.chunk_delay_s = 0.02
    code, rows, stderr = pull_json("--task", "vtab/pets", "--task", "cars")
    assert code == 0, stderr
    assert [(r["name"], r["status"], r["filename"]) for r in rows] == [
        ("task:vtab/pets", "downloaded", "4 files"),
        ("task:cars", "downloaded", "4 files"),
    ]
    shards = [g for g in first_gets(gets) if g.path.endswith("/test/0.tar")]
    assert len(shards) == 2 and repo_of(shards[0].path) != repo_of(shards[1].path)
    assert shards[1].sent_before < MiB  # the second task's shard asked for before the first one's was sent whole


def wait_for(condition: Any, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def partials() -> dict[str, int]:
    """The partial downloads of the Many repos: repo -> bytes on disk."""
    found = {}
    for repo in REPOS.values():
        for path in repo_folder(repo).glob("blobs/*.vitamin-partial"):
            found[repo] = path.stat().st_size
    return found


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_ctrl_c_stops_every_file_and_keeps_what_arrived(many: Many, hub: Hub) -> None:
    hub.proxy.faults.chunk_delay_s = 0.1  # 650 KB/s for each file: seconds to go when Ctrl-C comes
    process = start_vitamin("pull", "--zoo", str(many.zoo), "--released", "--quiet")
    wait_for(lambda: len([n for n in partials().values() if n >= 256 * 1024]) == 4, process)
    process.send_signal(signal.SIGINT)
    pressed = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    stopped_in = time.monotonic() - pressed
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert stopped_in < STOP_WAIT_S, stopped_in  # they stopped at their next chunk: vitamin did not leave them
    kept = partials()
    assert set(kept) == set(REPOS.values())
    for repo, size in kept.items():
        assert 256 * 1024 <= size < len(many.files[repo])
        assert not (repo_folder(repo) / "blobs" / sha(many.files[repo])).exists()  # nothing looks complete

    faults = hub.proxy.reset()
    code, rows, stderr = pull_json("--zoo", str(many.zoo), "--released")
    assert code == 0, stderr
    assert [r["status"] for r in rows] == ["resumed"] * 4
    assert all(r["sha256"] == sha(many.files[r["repo"]]) for r in rows)
    assert faults.body_bytes <= sum(len(data) - kept[repo] for repo, data in many.files.items())


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_ctrl_c_does_not_wait_for_a_server_that_says_nothing(many: Many, hub: Hub, gets: list[Get]) -> None:
    """Downloads blocked on a silent server cannot see Ctrl-C: vitamin leaves without them, still exit 130."""
    hub.proxy.faults.hang_s, hub.proxy.faults.hang_method = 30.0, "GET"
    process = start_vitamin("pull", "--zoo", str(many.zoo), "ManyB-s1M", "ManyC-s1M", "--quiet")
    wait_for(lambda: len(gets) == 2, process)
    process.send_signal(signal.SIGINT)
    pressed = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr
    assert "Traceback" not in stderr
    assert time.monotonic() - pressed < 8  # within STOP_WAIT_S, well before the 10 s read timeout


# ---------------------------------------------------------------------------------------------------
# In this process, with the fetch of one file replaced


@dataclass
class Calls:
    networks: list[Any]  # each call's Network
    most_at_once: int = 0
    hook: Callable[[Any], None] | None = None  # what each call does (with the HubFile asked for)


@pytest.fixture
def fake_fetch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """The store's pull replaced by one that records each call's Network and how many ran at once."""
    from vitamin_cli.checkpoints.store import Fetched, Record, Store

    calls = Calls([])
    lock = threading.Lock()
    running = [0]

    def fetch(store: Store, owner: Any, wanted: Any, **options: Any) -> Fetched:
        with lock:
            calls.networks.append(options["network"])
            running[0] += 1
            calls.most_at_once = max(calls.most_at_once, running[0])
        try:
            if calls.hook is not None:
                calls.hook(wanted)
        finally:
            with lock:
                running[0] -= 1
        record = Record(owner.name, wanted.repo, "model", "c" * 40, wanted.filename, 1, "e" * 64, "e" * 64, "")
        return Fetched(record, "downloaded")

    monkeypatch.setattr(Store, "pull", fetch)
    yield calls


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {}, 8),
        (("--connections", "3"), {}, 3),
        ((), {"VITAMIN_CONNECTIONS": "5"}, 5),
        (("--connections", "2"), {"VITAMIN_CONNECTIONS": "5"}, 2),
        (("--connections", "64"), {}, 64),
    ],
)
def test_connections_reach_the_fetch(
    run: Run,
    fake_fetch: Calls,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    expected: int,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run("pull", "--size", "L", "--released", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert fake_fetch.networks and {n.connections for n in fake_fetch.networks} == {expected}


@pytest.mark.parametrize(
    "args",
    [("--connections", "0"), ("--connections", "65"), ("--connections", "x"), ("--jobs", "0"), ("--jobs", "33")],
)
def test_connections_and_jobs_out_of_range_are_usage_errors(run: Run, fake_fetch: Calls, args: tuple[str, ...]) -> None:
    result = run("pull", "ViTamin-L", *args)
    assert result.exit_code == 2, result.stderr
    assert args[0] in result.stderr
    assert fake_fetch.networks == []


def test_a_bad_vitamin_connections_is_a_usage_error(
    run: Run, fake_fetch: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITAMIN_CONNECTIONS", "abc")
    result = run("pull", "ViTamin-L")
    assert result.exit_code == 2
    assert "VITAMIN_CONNECTIONS='abc' is not a whole number from 1 to 64" in result.stderr
    assert fake_fetch.networks == []


@pytest.mark.parametrize("jobs", [3, 8])
def test_jobs_files_at_once_and_no_more(run: Run, fake_fetch: Calls, jobs: int) -> None:
    """The first `jobs` fetches wait for each other (so that many run at once); never more run together."""
    together = threading.Barrier(jobs, timeout=20)
    started = [0]
    lock = threading.Lock()

    def hook(wanted: Any) -> None:
        with lock:
            started[0] += 1
            first = started[0] <= jobs
        if first:
            together.wait()
        else:
            time.sleep(0.01)

    fake_fetch.hook = hook
    result = run("pull", "--released", "--jobs", str(jobs), "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 15
    assert fake_fetch.most_at_once == jobs


def test_results_in_the_order_of_the_selection_not_of_their_end(run: Run, fake_fetch: Calls) -> None:
    """Each fetch ends only once the one after it has: they end last first, and are printed first first."""
    from vitamin_cli import zoo

    released = zoo.select(released=True)
    place = {m.weights.repo: k for k, m in enumerate(released) if m.weights is not None}
    assert len(place) == len(released) == 15
    ended = [threading.Event() for _ in released]
    order: list[int] = []

    def hook(wanted: Any) -> None:
        k = place[wanted.repo]
        assert k + 1 == len(released) or ended[k + 1].wait(timeout=20)
        order.append(k)
        ended[k].set()

    fake_fetch.hook = hook
    result = run("pull", "--released", "--jobs", "15", "--json")
    assert result.exit_code == 0, result.stderr
    assert order == list(reversed(range(15)))
    assert [r["name"] for r in json.loads(result.stdout)] == [m.name for m in released]
