"""Failures named for what failed: an HTTP error is called by its status and its server (never a full disk or
an unwritable cache), a range is never asked for backwards or past the file's end, hashing a file that
changes under it raises instead of dying of a signal, a server that ignores ranges is asked once and a
partial it left is restarted and said so, and credentials in HF_ENDPOINT are never printed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIG_REPO, SMALL_REPO, Hub, Run, start_vitamin, vitamin_process


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str = SMALL_REPO) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--"))


def file_requests(hub: Hub, method: str, repo: str) -> list[tuple[str, str, str | None]]:
    return [r for r in hub.proxy.faults.requests if r[0] == method and "/resolve/" in r[1] and f"/{repo}/" in r[1]]


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and len(stderr) < 3000, stderr


# ---------------------------------------------------------------------------------------------------
# HTTP errors


STATUSES = [404, 410, 429, 500, 502, 503, 401, 403]


@pytest.mark.slow  # serves files
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("phase", ["download", "metadata"])
def test_an_http_error_is_named_by_its_status_and_server(hub: Hub, run: Run, status: int, phase: str) -> None:
    """After a good metadata request (or on it), an error status: the message says HTTP STATUS from HOST, and
    what to do about that status; never that the disk or the cache failed."""
    queue = hub.proxy.faults.get_statuses if phase == "download" else hub.proxy.faults.head_statuses
    queue.extend([status] * 20)  # more than the tries: a 5xx or 429 is refused every time
    hub.proxy.faults.head_without_body = True  # each try gets a well-formed answer
    result = run("pull", "ViTamin-L")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    said = result.stderr
    assert f"HTTP {status} from 127.0.0.1" in said, said
    if status in (404, 410):
        assert SMALL_REPO in said and "pytorch_model.bin" in said, said
    if status in (401, 403):
        assert "HF_TOKEN" in said, said
    if status == 429 or status >= 500:
        assert "again" in said, said
    for wrong in ("cannot write", "disk", "the cache:"):
        assert wrong not in said, said
    no_traceback(said)


# ---------------------------------------------------------------------------------------------------
# Ranges


def ranges_asked(hub: Hub, repo: str) -> list[tuple[int, int]]:
    found = []
    for _, _, asked in file_requests(hub, "GET", repo):
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", asked or "")
        if match:
            found.append((int(match[1]), int(match[2])))
    return found


@pytest.mark.slow  # serves files
def test_a_range_answered_long_is_never_followed_by_a_backwards_range(
    hub: Hub, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setenv("VITAMIN_PART_MB", "1")  # ViTamin-L's 3 MiB file comes as ranges
    size = len(hub.files[SMALL_REPO])
    hub.proxy.faults.long_by_once = 1000
    result = run("pull", "ViTamin-L", "--json")
    assert result.exit_code == 0, result.stderr
    assert hub.proxy.faults.long_by_once == 0  # the fault was met
    blob = repo_folder() / "blobs" / hashlib.sha256(hub.files[SMALL_REPO]).hexdigest()
    assert blob.read_bytes() == hub.files[SMALL_REPO]
    asked = ranges_asked(hub, SMALL_REPO)
    assert asked, hub.proxy.faults.requests
    for start, end in asked:
        assert start <= end, f"asked for bytes={start}-{end}: {asked}"
        assert end < size, f"asked for bytes={start}-{end} of a {size}-byte file: {asked}"


@pytest.mark.slow  # serves files
def test_a_server_that_ignores_range_is_asked_for_the_file_once(
    hub: Hub, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setenv("VITAMIN_PART_MB", "1")  # 24 parts: it would come as ranges
    monkeypatch.setenv("VITAMIN_CONNECTIONS", "8")
    hub.proxy.faults.honour_range = False
    result = run("pull", "ViTamin-B", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["sha256"] == hashlib.sha256(hub.files[BIG_REPO]).hexdigest()
    gets = file_requests(hub, "GET", BIG_REPO)
    assert len(gets) == 1, gets


def killed_once_bytes_are_on_disk(hub: Hub, repo: str, *args: str) -> None:
    """A pull of `args` in a process of its own, killed (SIGKILL) once its partial file holds some bytes."""
    blobs = repo_folder(repo) / "blobs"
    process = start_vitamin("pull", *args, "--quiet")
    deadline = time.monotonic() + 60
    try:
        while not any(p.stat().st_size > 0 for p in blobs.glob("*.vitamin-partial") if p.is_file()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no bytes on disk within 60 s"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)


@pytest.mark.slow  # a pull killed midway, in a process of its own
@pytest.mark.parametrize("output", ["json", "table"])
def test_a_partial_from_a_server_that_ignores_range_is_restarted_and_says_so(
    hub: Hub, run: Run, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    import hashlib

    monkeypatch.setenv("VITAMIN_PART_MB", "1")
    monkeypatch.setenv("VITAMIN_CONNECTIONS", "8")
    hub.proxy.faults.honour_range = False
    hub.proxy.faults.chunk_delay_s = 0.05  # 24 MiB in about 20 s: killed long before the end
    killed_once_bytes_are_on_disk(hub, BIG_REPO, "ViTamin-B")
    faults = hub.proxy.reset()
    faults.honour_range = False
    if output == "json":
        result = run("pull", "ViTamin-B", "--json")
        assert result.exit_code == 0, result.stderr
        (row,) = json.loads(result.stdout)
        assert row["status"] == "restarted", row
        assert row["sha256"] == hashlib.sha256(hub.files[BIG_REPO]).hexdigest()
    else:
        result = run("pull", "ViTamin-B")
        assert result.exit_code == 0, result.stderr
        assert "restarted (the server does not serve ranges)" in result.stdout, result.stdout


# ---------------------------------------------------------------------------------------------------
# Hashing a file that changes under it


@pytest.mark.slow  # a process of its own, and a 200 MiB file
@pytest.mark.parametrize("change", ["truncated", "grown"])
def test_hashing_a_file_that_changes_while_read_raises_instead_of_dying(tmp_path: Path, change: str) -> None:
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(200 * 2**20)
    act = "os.truncate(path, 0)" if change == "truncated" else "open(path, 'ab').write(b'x' * 2**20)"
    code = (
        "import os\n"
        "from vitamin_cli.hub.hashing import sha256_file\n"
        f"path = {str(path)!r}\n"
        "calls = []\n"
        "def on_bytes(n):\n"
        "    if not calls:\n"
        f"        {act}\n"
        "    calls.append(n)\n"
        "try:\n"
        "    print('hashed', sha256_file(path, on_bytes=on_bytes), flush=True)\n"
        "except Exception as err:\n"
        "    print('raised', type(err).__name__, err, flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode not in (-signal.SIGBUS, 128 + signal.SIGBUS), "killed by SIGBUS"
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("raised") and "changed while being read" in done.stdout, done.stdout


# ---------------------------------------------------------------------------------------------------
# Credentials in HF_ENDPOINT


@pytest.mark.slow  # processes of their own; seconds of waiting
@pytest.mark.parametrize("server", ["metadata-503", "download-503", "refused", "silent"])
def test_credentials_in_hf_endpoint_are_never_printed(hub: Hub, server: str) -> None:
    port = int(hub.url.rsplit(":", 1)[1])
    env = {"VITAMIN_PULL_DEADLINE": "2"}
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        if server == "metadata-503":
            hub.proxy.faults.head_statuses = [503] * 20
            hub.proxy.faults.head_without_body = True
        elif server == "download-503":
            hub.proxy.faults.get_statuses = [503] * 20
        elif server == "refused":
            port = other.getsockname()[1]  # nothing listens there
        else:  # takes the connection and never answers: named on stderr after 3 s while the tries go on
            other.listen(16)
            port = other.getsockname()[1]
            env = {"VITAMIN_PULL_DEADLINE": "5", "HF_HUB_ETAG_TIMEOUT": "60"}
        endpoint = f"http://user:s3cret@127.0.0.1:{port}"
        result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_ENDPOINT": endpoint, **env}, timeout=120)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.strip(), "nothing said"
    assert "s3cret" not in result.stdout and "s3cret" not in result.stderr, (result.stdout, result.stderr)
