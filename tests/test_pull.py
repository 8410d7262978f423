"""`vitamin pull` against a real Hub-compatible server (olah) through the real huggingface_hub client.

Each run is a new process, as from a shell; faults come from the proxy in front of the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import BIG_REPO, EMPTY_REPO, SMALL_REPO, Hub, start_vitamin, vitamin_process

PULL_KEYS = ["name", "repo", "revision", "filename", "path", "size_bytes", "sha256", "status", "error", "local_path"]


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--"))


def manifest() -> dict[str, dict[str, object]]:
    path = cache_root().with_name("hub.vitamin-manifest.json")
    return {entry["name"]: entry for entry in json.loads(path.read_text())["files"]}


def manifest_files() -> list[object]:
    """What the manifest records (nothing when there is none): files, and downloads under way."""
    path = cache_root().with_name("hub.vitamin-manifest.json")
    data = json.loads(path.read_text()) if path.exists() else {}
    return [*data.get("files", []), *data.get("downloads", [])]


def leftovers(repo: str) -> list[str]:
    """Files in the repo's cache folder that look like a finished checkpoint or a partial one."""
    folder = repo_folder(repo)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pull_fills_the_standard_cache(hub: Hub) -> None:
    result = vitamin_process("pull", "ViTamin-L", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert list(row) == PULL_KEYS
    data = hub.files[SMALL_REPO]
    commit = hub.commits[SMALL_REPO]
    assert row["name"] == "ViTamin-L-224-s12.8B"
    assert row["status"] == "downloaded"
    assert row["revision"] == commit
    assert row["sha256"] == sha(data)
    assert row["size_bytes"] == len(data)
    folder = repo_folder(SMALL_REPO)
    snapshot = folder / "snapshots" / commit / "pytorch_model.bin"
    assert row["path"] == str(snapshot)
    assert snapshot.is_symlink() and snapshot.resolve() == folder / "blobs" / sha(data)
    assert snapshot.read_bytes() == data
    assert (folder / "refs" / "main").read_text() == commit
    assert leftovers(SMALL_REPO) == sorted([f"blobs/{sha(data)}", "refs/main", f"snapshots/{commit}/pytorch_model.bin"])
    entry = manifest()["ViTamin-L-224-s12.8B"]
    assert (entry["sha256"], entry["revision"], entry["size_bytes"]) == (sha(data), commit, len(data))

    # huggingface_hub itself now finds the file offline, as open_clip and timm will
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache(SMALL_REPO, "pytorch_model.bin", cache_dir=cache_root()) == str(snapshot)


def test_a_present_model_is_not_downloaded_again(hub: Hub) -> None:
    assert vitamin_process("pull", "ViTamin-L").exit_code == 0
    faults = hub.proxy.reset()
    result = vitamin_process("pull", "vitamin-l", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["status"] == "cached"
    assert faults.body_bytes == 0
    assert [r for r in faults.requests if r[0] == "GET" and "/resolve/" in r[1]] == []


def test_human_summary_and_quiet(hub: Hub) -> None:
    result = vitamin_process("pull", "ViTamin-L", "--quiet")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("downloaded ViTamin-L-224-s12.8B")
    assert result.stdout.splitlines()[-1] == "1 present (1 downloaded, 0 resumed, 0 already cached)"
    assert result.stderr == ""  # not a terminal: no progress bars


def test_unreleased_named_explicitly_fails(hub: Hub) -> None:
    result = vitamin_process("pull", "ViT-L-14-s1.28B")
    assert result.exit_code == 1
    assert "ViT-L-14-s1.28B has no public checkpoint" in result.stderr
    assert "vitamin ls --released" in result.stderr


def test_filters_skip_unreleased_models_and_count_them(hub: Hub) -> None:
    result = vitamin_process("pull", "--size", "L", "--resolution", "224", "--family", "vitamin", "--json")
    rows = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    assert {r["name"]: r["status"] for r in rows} == {
        "ViTamin-L-s128M": "unreleased",
        "ViTamin-L-s512M": "unreleased",
        "ViTamin-L-s1.28B": "unreleased",
        "ViTamin-L-224-s12.8B": "downloaded",
    }
    summary = vitamin_process("pull", "--size", "L", "--resolution", "224", "--family", "vitamin").stdout
    last = summary.splitlines()[-1]
    assert last == "1 present (0 downloaded, 0 resumed, 1 already cached), 3 skipped without public weights"


def test_pull_needs_names_or_a_filter(hub: Hub) -> None:
    result = vitamin_process("pull")
    assert result.exit_code == 2
    assert "--all" in result.stderr


def test_server_errors_are_retried(hub: Hub) -> None:
    hub.proxy.faults.statuses = [500, 503, 502]
    result = vitamin_process("pull", "ViTamin-L", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["sha256"] == sha(hub.files[SMALL_REPO])


def test_persistent_server_errors_fail_cleanly(hub: Hub) -> None:
    hub.proxy.faults.statuses = [500] * 50
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "500" in result.stderr
    assert not any(p.startswith("blobs/") or p.startswith("snapshots/") for p in leftovers(SMALL_REPO))


def test_connection_cut_mid_file_is_resumed(hub: Hub) -> None:
    size = len(hub.files[BIG_REPO])
    hub.proxy.faults.cut_after = 9 * 2**20
    result = vitamin_process("pull", "ViTamin-B", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["sha256"] == sha(hub.files[BIG_REPO])
    ranged = [r for r in hub.proxy.faults.requests if r[0] == "GET" and r[2]]
    assert ranged and ranged[0][2].startswith("bytes=")  # the second request continued where the cut left off
    assert hub.proxy.faults.body_bytes < size + 2 * 2**20


def test_a_flipped_byte_is_caught_and_nothing_kept(hub: Hub) -> None:
    hub.proxy.faults.flip_byte_at = 12345
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    expected = sha(hub.files[SMALL_REPO])
    assert f"sha256 mismatch: expected {expected}" in result.stderr
    assert "got " in result.stderr
    assert not any(p.startswith(("blobs/", "snapshots/")) for p in leftovers(SMALL_REPO))
    assert not manifest_files()  # nothing recorded


def test_missing_file_and_missing_repo(hub: Hub) -> None:
    # olah answers as the Hub does for an anonymous client: 401, whether the repo is missing or private
    result = vitamin_process("pull", "ViTamin-XL-384-s13.3B")
    assert result.exit_code == 1
    assert (
        "HTTP 401 from 127.0.0.1" in result.stderr
        and f"{EMPTY_REPO}/pytorch_model.bin needs credentials" in result.stderr
    )
    result = vitamin_process("pull", "ViTamin-L2")  # no such repo on this server
    assert result.exit_code == 1
    assert "jienengchen/ViTamin-L2-224px/pytorch_model.bin needs credentials" in result.stderr
    assert "HF_TOKEN" in result.stderr and "repo id may be wrong" in result.stderr
    hub.proxy.faults.head_statuses = [404]
    result = vitamin_process("pull", "ViTamin-L")
    assert (
        "HTTP 404 from 127.0.0.1" in result.stderr
        and "ViTamin-L-224px/pytorch_model.bin was not found" in result.stderr
    )


@pytest.mark.parametrize("status", [401, 403])
def test_refused_access_says_to_set_hf_token_and_never_prints_it(hub: Hub, status: int) -> None:
    hub.proxy.faults.statuses = [status] * 10
    secret = "hf_SECRETtoken1234567890"
    result = vitamin_process("pull", "ViTamin-L", env={"HF_TOKEN": secret})
    assert result.exit_code == 1
    assert "HF_TOKEN" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert any(r[1].endswith("pytorch_model.bin") for r in hub.proxy.faults.requests)


def test_connection_refused(hub: Hub) -> None:
    from hubserver import free_port

    result = vitamin_process("pull", "ViTamin-L", env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert result.exit_code == 1
    assert "cannot reach" in result.stderr
    assert "HF_ENDPOINT" in result.stderr


def test_slow_server_times_out_and_is_retried(hub: Hub) -> None:
    hub.proxy.faults.stall_once_s = 3.0
    result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_HUB_DOWNLOAD_TIMEOUT": "1"})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["sha256"] == sha(hub.files[SMALL_REPO])
    assert len([r for r in hub.proxy.faults.requests if r[0] == "GET" and "/resolve/" in r[1]]) >= 2


def test_offline(hub: Hub) -> None:
    result = vitamin_process("pull", "ViTamin-L", env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 1
    assert "offline" in result.stderr and "not in the cache" in result.stderr
    assert hub.proxy.faults.requests == []
    assert vitamin_process("pull", "ViTamin-L").exit_code == 0
    result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["status"] == "cached"


def test_revision_and_cache_dir(hub: Hub, tmp_path: Path) -> None:
    commit = hub.commits[SMALL_REPO]
    result = vitamin_process("pull", "ViTamin-L", "--revision", commit, "--cache-dir", str(tmp_path / "c"), "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["path"].startswith(str(tmp_path / "c"))
    assert row["revision"] == commit
    assert not repo_folder(SMALL_REPO).exists()


def test_a_server_sending_a_path_as_etag_is_refused(hub: Hub) -> None:
    hub.proxy.faults.etag = "../../../../escape"
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "unusable commit" in result.stderr
    assert not list(cache_root().parent.rglob("escape"))


def test_not_enough_disk(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, with the free space reported by the OS replaced: a full disk cannot be made here."""
    import shutil
    from collections import namedtuple

    from vitamin_cli import zoo
    from vitamin_cli.checkpoints.pull import PullError, pull
    from vitamin_cli.checkpoints.store import Store

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(PullError, match="not enough free disk"):
        pull(zoo.get("ViTamin-B"), Store(cache_root()))
    assert hub.proxy.faults.body_bytes == 0
    assert not any(p.startswith(("blobs/", "snapshots/")) for p in leftovers(BIG_REPO))


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_kill_and_resume(hub: Hub, stop: signal.Signals) -> None:
    """Killed or Ctrl-C'd mid-download, then pulled again: it continues from the bytes on disk."""
    size = len(hub.files[BIG_REPO])
    partial = repo_folder(BIG_REPO) / "blobs" / (sha(hub.files[BIG_REPO]) + ".vitamin-partial")
    hub.proxy.faults.chunk_delay_s = 0.01  # about 6 MB/s: slow enough to stop half-way
    process = start_vitamin("pull", "ViTamin-B", "--quiet")
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size >= 8 * 2**20):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    if stop == signal.SIGINT:
        assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    kept = partial.stat().st_size
    assert 8 * 2**20 <= kept < size
    assert not (repo_folder(BIG_REPO) / "blobs" / sha(hub.files[BIG_REPO])).exists()  # nothing looks complete
    assert list((repo_folder(BIG_REPO) / "snapshots").iterdir()) == []  # there for the cache scanner, and empty

    faults = hub.proxy.reset()
    result = vitamin_process("pull", "ViTamin-B", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["status"] == "resumed"
    assert row["sha256"] == sha(hub.files[BIG_REPO])
    assert faults.body_bytes <= size - kept + 2**20  # only the missing part crossed the network
    assert any(r[2] == f"bytes={kept}-" for r in faults.requests)
    assert not partial.exists()


def test_two_concurrent_pulls_download_once(hub: Hub) -> None:
    size = len(hub.files[BIG_REPO])
    hub.proxy.faults.chunk_delay_s = 0.002
    first = start_vitamin("pull", "ViTamin-B", "--json")
    second = start_vitamin("pull", "ViTamin-B", "--json")
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    statuses = sorted(json.loads(out)[0]["status"] for out, _ in outputs)
    assert statuses == ["cached", "downloaded"]
    assert hub.proxy.faults.body_bytes < 1.5 * size
    blobs = list((repo_folder(BIG_REPO) / "blobs").iterdir())
    assert [b.name for b in blobs] == [sha(hub.files[BIG_REPO])]
    assert blobs[0].read_bytes() == hub.files[BIG_REPO]
    assert list(manifest()) == ["ViTamin-B-s1.28B"]


def test_ls_pulled(hub: Hub, run) -> None:  # type: ignore[no-untyped-def]
    assert vitamin_process("pull", "ViTamin-L").exit_code == 0
    assert [m["name"] for m in json.loads(run("ls", "--pulled", "--json").stdout)] == ["ViTamin-L-224-s12.8B"]
    assert len(json.loads(run("ls", "--not-pulled", "--json").stdout)) == 60


def test_the_token_goes_to_the_hub_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A file served from another host (a CDN, a presigned bucket) is fetched without the user's token."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from vitamin_cli.hub import download as hub_module
    from vitamin_cli.hub.remote import HubFile, Network, PullError, Remote

    sent: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            sent.append(self.headers.get("authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "1")
            self.end_headers()
            self.wfile.write(b"x")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    wanted = HubFile("jienengchen/ViTamin-S", "x.bin")
    try:
        for url in (f"http://127.0.0.1:{port}/jienengchen/ViTamin-S/resolve/main/x.bin", f"http://localhost:{port}/b"):
            remote = Remote("c" * 40, "e" * 64, 1, url)
            with pytest.raises(PullError, match="sha256 mismatch"):  # one byte, never the right sha256
                hub_module.download(wanted, remote, tmp_path / "x.partial", tmp_path / "x", token="hf_SECRET",
                                    network=Network(), label="ViTamin-S")  # fmt: skip
    finally:
        server.shutdown()
    assert sent == ["Bearer hf_SECRET", None]
