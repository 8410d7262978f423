"""One large file fetched as byte ranges over several connections: intact whatever the server does with a range
(ignores it, sends it short, long or under the wrong Content-Range), resumed from its record after a kill with
parts in flight, from a single stream's partial file, and never fetched twice by two pulls at once."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import time
from pathlib import Path

import pytest
from conftest import BIG_REPO, Hub, Run, start_vitamin, vitamin_process
from test_pull import cache_root, repo_folder

PART_MB = 2  # BIG_REPO's 24 MiB file: 12 parts


@pytest.fixture
def ranged(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Hub:
    monkeypatch.setenv("VITAMIN_PART_MB", str(PART_MB))
    monkeypatch.setenv("VITAMIN_CONNECTIONS", "4")
    # about 30 MB/s a connection, as a CDN caps a stream: below the speed at which one stream is kept alone
    # (fetch.FAST_STREAM), so that the file comes as ranges however fast this machine's proxy is just now
    hub.proxy.faults.chunk_delay_s = 0.002
    return hub


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def partial() -> Path:
    return repo_folder(BIG_REPO) / "blobs" / (sha(_big()) + ".vitamin-partial")


_files: dict[str, bytes] = {}


def _big() -> bytes:
    return _files[BIG_REPO]


def ranges_asked(hub: Hub) -> list[tuple[int, int]]:
    found = []
    for _, path, asked in hub.proxy.faults.requests:
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", asked or "")
        if match and "/resolve/" in path:
            found.append((int(match[1]), int(match[2])))
    return found


def pulled(run: Run) -> dict[str, object]:
    result = run("pull", "ViTamin-B", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    return row  # type: ignore[no-any-return]


def test_a_large_file_comes_as_ranges_and_checks_out(run: Run, ranged: Hub) -> None:
    from huggingface_hub import scan_cache_dir

    _files.update(ranged.files)
    row = pulled(run)
    assert row["status"] == "downloaded" and row["sha256"] == sha(_big())
    asked = sorted(ranges_asked(ranged))
    part = PART_MB * 2**20
    assert asked == [(start, min(start + part, len(_big())) - 1) for start in range(0, len(_big()), part)]
    assert not partial().exists() and not Path(str(partial()) + ".ranges").exists()
    assert (repo_folder(BIG_REPO) / "blobs" / sha(_big())).read_bytes() == _big()
    assert not scan_cache_dir(cache_root()).warnings


@pytest.mark.parametrize(
    ("fault", "value"),
    [("short_by", 1000), ("wrong_range_once", True), ("cut_after", 300_000)],
    ids=["short", "wrong-content-range", "cut"],
)
def test_a_range_that_comes_back_wrong_is_tried_again_never_written_past_its_end(
    run: Run, ranged: Hub, fault: str, value: object
) -> None:
    _files.update(ranged.files)
    setattr(ranged.proxy.faults, fault, value)
    row = pulled(run)
    assert row["status"] == "downloaded" and row["sha256"] == sha(_big())
    parts = -(-len(_big()) // (PART_MB * 2**20))
    assert len(ranges_asked(ranged)) == parts + 1  # one range asked again


def test_a_range_that_comes_back_long_is_kept_to_its_end_and_not_asked_again(run: Run, ranged: Hub) -> None:
    _files.update(ranged.files)
    ranged.proxy.faults.long_by_once = 1000
    row = pulled(run)
    assert row["status"] == "downloaded" and row["sha256"] == sha(_big())
    assert len(ranges_asked(ranged)) == -(-len(_big()) // (PART_MB * 2**20))  # each part once


def test_a_server_that_ignores_range_gets_one_stream(run: Run, ranged: Hub) -> None:
    _files.update(ranged.files)
    ranged.proxy.faults.honour_range = False
    row = pulled(run)
    assert row["status"] == "downloaded" and row["sha256"] == sha(_big())
    assert ranged.proxy.faults.body_bytes <= 2 * len(_big())  # the whole file once more at most


def test_a_single_streams_partial_file_resumes_as_one_range_from_its_end(run: Run, ranged: Hub) -> None:
    """A partial file left by a one-stream pull (no record): its bytes are kept and the rest comes as ranges."""
    _files.update(ranged.files)
    kept = 5 * 2**20 + 123
    partial().parent.mkdir(parents=True, exist_ok=True)
    partial().write_bytes(_big()[:kept])
    row = pulled(run)
    assert row["status"] == "resumed" and row["sha256"] == sha(_big())
    assert min(start for start, _ in ranges_asked(ranged)) == kept
    assert ranged.proxy.faults.body_bytes == len(_big()) - kept


def test_cache_reports_the_bytes_a_ranged_partial_file_holds(run: Run, ranged: Hub) -> None:
    _files.update(ranged.files)
    part = PART_MB * 2**20
    partial().parent.mkdir(parents=True, exist_ok=True)
    with open(partial(), "wb") as f:  # parts 0 and 2 on disk, 1 half: a file whose length runs past a hole
        f.write(_big()[: 3 * part])
    parts = [[0, part, part], [part, 2 * part, part // 2], [2 * part, 3 * part, part]]
    parts += [[s, min(s + part, len(_big())), 0] for s in range(3 * part, len(_big()), part)]
    Path(str(partial()) + ".ranges").write_text(json.dumps({"size": len(_big()), "parts": parts}))
    listed = json.loads(run("cache", "--json").stdout)
    (found,) = listed["partial"]
    assert found["size_bytes"] == 2 * part + part // 2
    row = pulled(run)
    assert row["status"] == "resumed" and row["sha256"] == sha(_big())
    assert ranged.proxy.faults.body_bytes == len(_big()) - (2 * part + part // 2)  # only the missing bytes


@pytest.mark.slow  # a pull killed with parts in flight, in subprocesses
def test_a_kill_with_parts_in_flight_resumes_from_the_record(ranged: Hub) -> None:
    _files.update(ranged.files)
    ranged.proxy.faults.chunk_delay_s = 0.02
    process = start_vitamin("pull", "ViTamin-B", "--quiet")
    record = Path(str(partial()) + ".ranges")
    deadline = time.monotonic() + 60
    while not (
        record.exists() and sum(p[2] for p in json.loads(record.read_text() or "{}").get("parts", [])) > 6 * 2**20
    ):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    saved = sum(p[2] for p in json.loads(record.read_text())["parts"])
    assert 0 < saved < len(_big())
    faults = ranged.proxy.reset()
    result = vitamin_process("pull", "ViTamin-B", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["status"] == "resumed" and row["sha256"] == sha(_big())
    assert faults.body_bytes == len(_big()) - saved  # exactly what the record did not hold
    assert not record.exists()


@pytest.mark.slow  # two processes
def test_two_ranged_pulls_of_one_file_fetch_it_once(ranged: Hub) -> None:
    _files.update(ranged.files)
    ranged.proxy.faults.chunk_delay_s = 0.005
    first, second = start_vitamin("pull", "ViTamin-B", "--json"), start_vitamin("pull", "ViTamin-B", "--json")
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    statuses = sorted(json.loads(out)[0]["status"] for out, _ in outs)
    assert statuses == ["cached", "downloaded"]
    assert ranged.proxy.faults.body_bytes == len(_big())
