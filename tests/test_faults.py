"""A misbehaving server and a hostile environment: for each fault, the exit code, a message that leads
somewhere, a bounded time, and what is left on disk (nothing that looks complete, no traceback)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIG_REPO, SMALL_REPO, Hub, Run, vitamin_process


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str = SMALL_REPO) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--"))


def blob(hub: Hub, repo: str = SMALL_REPO) -> Path:
    return repo_folder(repo) / "blobs" / hashlib.sha256(hub.files[repo]).hexdigest()


def partial(hub: Hub, repo: str = SMALL_REPO) -> Path:
    return blob(hub, repo).with_name(blob(hub, repo).name + ".vitamin-partial")


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and len(stderr) < 2000, stderr


def downloads(hub: Hub) -> list[tuple[str, str, str | None]]:
    return [r for r in hub.proxy.faults.requests if r[0] == "GET" and "/resolve/" in r[1]]


@pytest.mark.parametrize("status", [401, 403])
def test_a_download_refused_after_a_good_head_says_gated_and_leaves_nothing(hub: Hub, status: int) -> None:
    hub.proxy.faults.get_statuses = [status] * 10
    result = vitamin_process("pull", "ViTamin-L", env={"HF_TOKEN": "hf_SECRETtoken1234567890"})
    assert result.exit_code == 1
    assert f"HTTP {status} from 127.0.0.1" in result.stderr and "HF_TOKEN" in result.stderr
    assert "gated" in result.stderr and "hf_SECRET" not in result.stderr
    assert len(downloads(hub)) == 1  # refused is refused: not tried again
    assert not partial(hub).exists() and not blob(hub).exists()
    no_traceback(result.stderr)


def test_401_on_the_metadata_is_not_not_found(hub: Hub) -> None:
    hub.proxy.faults.head_statuses = [401] * 10
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "HTTP 401 from 127.0.0.1" in result.stderr and "HF_TOKEN" in result.stderr
    assert "not found" not in result.stderr
    no_traceback(result.stderr)


@pytest.mark.parametrize("where", ["head_statuses", "get_statuses"])
def test_server_errors_are_tried_five_times_then_reported_once(hub: Hub, where: str) -> None:
    setattr(hub.proxy.faults, where, [503] * 50)
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    method = "HEAD" if where == "head_statuses" else "GET"
    assert len([r for r in hub.proxy.faults.requests if r[0] == method and "/resolve/" in r[1]]) == 5
    assert result.stderr.count("error:") == 1 and "503" in result.stderr
    assert not blob(hub).exists() and not partial(hub).exists()
    no_traceback(result.stderr)


def test_a_404_on_the_download_is_reported(hub: Hub) -> None:
    hub.proxy.faults.get_statuses = [404]
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "404" in result.stderr
    no_traceback(result.stderr)


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
@pytest.mark.parametrize("phase", ["metadata", "download"])
def test_a_server_that_accepts_and_never_answers_fails_in_bounded_time(hub: Hub, phase: str) -> None:
    """5 tries of a 1 s timeout and short pauses: seconds, not the minutes of 30 stacked retries."""
    env = {"HF_HUB_ETAG_TIMEOUT": "1", "HF_HUB_DOWNLOAD_TIMEOUT": "1"}
    hub.proxy.faults.hang_s = 3.0
    hub.proxy.faults.hang_method = "HEAD" if phase == "metadata" else "GET"
    start = time.monotonic()
    result = vitamin_process("pull", "ViTamin-L", env=env)
    elapsed = time.monotonic() - start
    assert result.exit_code == 1
    assert elapsed < 30, elapsed
    assert result.stderr.count("\n") <= 3  # one error and its hint, not a warning per try
    no_traceback(result.stderr)


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_a_slow_drip_is_stopped_by_the_deadline_and_resumes_later(hub: Hub) -> None:
    hub.proxy.faults.chunk_delay_s = 0.2  # 320 KiB/s: 24 MiB would take over a minute
    start = time.monotonic()
    result = vitamin_process("pull", "ViTamin-B", env={"VITAMIN_PULL_DEADLINE": "2"})
    assert time.monotonic() - start < 20
    assert result.exit_code == 1
    assert "did not finish within its deadline" in result.stderr and "VITAMIN_PULL_DEADLINE" in result.stderr
    kept = partial(hub, BIG_REPO).stat().st_size
    assert 0 < kept < len(hub.files[BIG_REPO]) and not blob(hub, BIG_REPO).exists()
    hub.proxy.reset()
    result = vitamin_process("pull", "ViTamin-B", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "resumed"


def test_a_range_ignored_after_a_cut_starts_over_and_checks_out(hub: Hub) -> None:
    hub.proxy.faults.cut_after = 5 * 2**20
    hub.proxy.faults.honour_range = False
    result = vitamin_process("pull", "ViTamin-B", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["sha256"] == hashlib.sha256(hub.files[BIG_REPO]).hexdigest()


def test_fewer_bytes_than_announced_are_continued(hub: Hub) -> None:
    hub.proxy.faults.short_by = 100_000
    result = vitamin_process("pull", "ViTamin-L", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(downloads(hub)) == 2 and downloads(hub)[1][2] is not None  # the second asked for the rest


def test_more_bytes_than_announced_are_never_written(hub: Hub) -> None:
    """What comes past the bytes asked for is dropped unwritten; the file's sha256 decides whether the rest is
    the file (here it is: the server appended bytes to a whole file)."""
    hub.proxy.faults.extra_bytes = 10
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 0, result.stderr
    assert blob(hub).read_bytes() == hub.files[SMALL_REPO]


def test_a_redirect_to_another_host_downloads_without_the_token(hub: Hub) -> None:
    other_host = hub.url.replace("127.0.0.1", "localhost")
    hub.proxy.faults.redirect_to = other_host
    result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_TOKEN": "hf_SECRET"})
    assert result.exit_code == 0, result.stderr
    assert any("/cdn/" not in r[1] for r in downloads(hub))
    sent = hub.proxy.faults.authorizations
    assert sent[0] == "Bearer hf_SECRET"  # the metadata, from the Hub
    assert sent[-1] is None  # the bytes, from the other host


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HF_HUB_DOWNLOAD_TIMEOUT", "abc"),
        ("HF_HUB_ETAG_TIMEOUT", "0"),
        ("VITAMIN_RETRY_WAIT", "abc"),
        ("VITAMIN_RETRY_WAIT", "nan"),
        ("VITAMIN_PULL_DEADLINE", "-1"),
        ("HF_HUB_ETAG_TIMEOUT", "99999999999999999999"),
        ("VITAMIN_PULL_DEADLINE", "1e308"),
        ("VITAMIN_RETRY_WAIT", "1e300"),
        ("HF_ENDPOINT", "http://[::1"),
        ("HF_ENDPOINT", "http://127.0.0.1:99999"),
        ("HF_ENDPOINT", "ftp://mirror"),
    ],
)
def test_a_bad_environment_variable_is_a_usage_error_naming_it(hub: Hub, variable: str, value: str) -> None:
    for args in (["pull", "ViTamin-L"], ["verify", "--fix"], ["pin", "ViTamin-L"]):
        result = vitamin_process(*args, env={variable: value})
        assert result.exit_code == 2, (args, result.stderr)
        assert variable in result.stderr and "network" not in result.stderr
        no_traceback(result.stderr)
    assert hub.proxy.faults.requests == []


def test_a_model_name_of_100_kb_is_not_echoed_back(run: Run) -> None:
    for command in ("show", "pull", "verify", "rm"):
        result = run(command, "x" * 100_000)
        assert result.exit_code == 2
        assert len(result.stderr) < 1000, command


# ---------------------------------------------------------------------------------------------------
# File systems that refuse: a read-only cache, a full disk (tmpfs mounts; root can make them)


@pytest.mark.parametrize("part_mb", ["16", "1"], ids=["stream", "ranges"])
def test_a_read_only_cache_is_a_message(hub: Hub, mount, part_mb: str) -> None:  # type: ignore[no-untyped-def]
    point = mount("ro,size=1m")
    env = {"VITAMIN_PART_MB": part_mb}  # 1: ViTamin-L's 3 MiB file comes as ranges
    result = vitamin_process("pull", "ViTamin-L", "--cache-dir", str(point / "hub"), env=env)
    assert result.exit_code == 1
    assert "read-only file system" in result.stderr and "--cache-dir" in result.stderr
    no_traceback(result.stderr)


@pytest.mark.parametrize("part_mb", ["16", "2"], ids=["stream", "ranges"])
def test_a_disk_that_fills_up_midway_says_how_much_is_needed(hub: Hub, mount, part_mb: str) -> None:  # type: ignore[no-untyped-def]
    point = mount("size=12m")
    (point / "filler").write_bytes(b"\0" * (11 * 2**20))  # room for the metadata, not for 24 MiB
    env = {"VITAMIN_PART_MB": part_mb}
    result = vitamin_process("pull", "ViTamin-B", "--cache-dir", str(point / "hub"), env=env)
    assert result.exit_code == 1
    assert "needs" in result.stderr and "MiB more" in result.stderr
    no_traceback(result.stderr)


def test_a_manifest_that_cannot_be_written_leaves_nothing_unrecorded(hub: Hub, mount, run: Run) -> None:  # type: ignore[no-untyped-def]
    """The disk fills up just as the manifest is written: the download goes back to being a partial file
    (nothing complete that the manifest does not list), the scanner sees a healthy cache, and the next pull
    finishes without fetching a byte."""
    from huggingface_hub import scan_cache_dir

    point = mount("size=3200k")
    root = point / "hub"
    size = len(hub.files[SMALL_REPO])
    filler = point / "filler"
    filler.write_bytes(b"\0" * (3200 * 1024 - size - 4096))  # the blob and refs/main fit, the manifest does not
    result = vitamin_process("pull", "ViTamin-L", "--cache-dir", str(root))
    assert result.exit_code == 1, result.stderr
    assert "manifest" in result.stderr and "full" in result.stderr
    no_traceback(result.stderr)
    folder = root / repo_folder().name
    assert not list((folder / "snapshots").glob("*/*")) and not (folder / "refs").exists()
    assert [p.name for p in (folder / "blobs").iterdir()] == [partial(hub).name]
    assert scan_cache_dir(root).warnings == []
    assert json.loads(run("cache", "--cache-dir", str(root), "--json").stdout)["models"] == []
    filler.unlink()
    hub.proxy.reset()
    again = vitamin_process("pull", "ViTamin-L", "--cache-dir", str(root), "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)[0]["status"] == "resumed"
    assert downloads(hub) == []


def test_a_folder_of_the_cache_this_user_may_not_read_is_a_message(hub: Hub, run: Run) -> None:
    """A cache folder closed to this user: each command says which path it may not read. Root reads anything,
    so the commands run as root without the capabilities that override file permissions."""
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run without permission overrides")
    restricted = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "vitamin_cli"]
    pulled = run("pull", "ViTamin-L")
    assert pulled.exit_code == 0, pulled.stderr
    snapshots = cache_root() / "models--jienengchen--ViTamin-L-224px" / "snapshots"
    snapshots.chmod(0)
    try:
        for args in (["cache"], ["ls", "--pulled"], ["verify"], ["rm", "ViTamin-L", "--yes"]):
            result = subprocess.run([*restricted, *args], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                    capture_output=True, text=True)  # fmt: skip
            assert result.returncode in (1, 2), (args, result.stderr)
            assert "Traceback" not in result.stderr and "ermission denied" in result.stderr, (args, result.stderr)
    finally:
        snapshots.chmod(0o755)
