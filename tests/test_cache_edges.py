"""The cache's edges, tried as a hostile user would: a pull killed between its download and its record, what
sits at a snapshot or partial path instead of vitamin's own file (a folder, a file of other bytes, a hard link
to a file outside the cache, a pipe), a partial another model still wants, a link to something else, and
messages that must name the right culprit."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Hub, Run, tiny_model, tiny_zoo_text
from hubserver import add_commit, build_repo

pytestmark = pytest.mark.slow  # every test serves files

LAB = "LabA-s1M"


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def folder(repo: str) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--"))


def manifest() -> dict[str, list[dict[str, object]]]:
    path = cache_root().with_name("hub.vitamin-manifest.json")
    return json.loads(path.read_text()) if path.exists() else {"files": [], "downloads": []}


@pytest.fixture
def lab(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes]:
    """A zoo of one model, whose repo (of its own: the test may change it) holds a 2 MiB checkpoint."""
    repo = f"test/edges-{os.getpid()}-{time.monotonic_ns()}"
    data = random.Random(repo).randbytes(2 * 2**20)
    build_repo(hub.mirrors, repo, {"pytorch_model.bin": data})
    zoo = tmp_path / "lab.yaml"
    zoo.write_text(tiny_zoo_text([tiny_model(LAB, weights=f"{{repo: {repo}, filename: pytorch_model.bin}}")]))
    monkeypatch.setenv("VITAMIN_ZOO", str(zoo))
    return repo, data


KILLED_AT = """
import os, sys
from vitamin_cli.checkpoints import store
from vitamin_cli.hub import cache

where = sys.argv.pop(1)
if where == "record":
    store.Store._record = lambda self, record, status: os._exit(9)
else:
    cache.RepoCache.link = lambda self, *args: os._exit(9)
from vitamin_cli import cli
cli.main(sys.argv[1:])
"""


@pytest.mark.parametrize("where", ["record", "link"])
def test_a_pull_killed_before_its_record_leaves_a_file_that_is_vitamins(
    lab: tuple[str, bytes], run: Run, where: str
) -> None:
    """Killed after its download and before its record (SIGKILL, a crash): the blob is vitamin's download, not
    another tool's file. The next pull records it as pulled, and rm deletes it, whichever came first."""
    repo, data = lab
    killed = subprocess.run([sys.executable, "-c", KILLED_AT, where, "pull", LAB], capture_output=True, text=True)
    assert killed.returncode == 9, killed.stderr
    blobs = [p for p in (folder(repo) / "blobs").iterdir() if not p.name.endswith(".vitamin-partial")]
    assert [p.read_bytes() for p in blobs] == [data]
    if where == "record":
        assert run("pull", LAB).exit_code == 0
        assert [f["adopted"] for f in manifest()["files"]] == [False]
    removed = run("rm", LAB, "--yes")
    assert removed.exit_code == 0, removed.stderr
    assert not blobs[0].exists() and not manifest()["files"] and not manifest().get("downloads")


def test_a_folder_at_the_snapshot_path_is_named_and_nothing_is_left_astray(lab: tuple[str, bytes], run: Run) -> None:
    repo, _ = lab
    assert run("pull", LAB).exit_code == 0
    (snapshot,) = (folder(repo) / "snapshots").glob("*/pytorch_model.bin")
    snapshot.unlink()
    snapshot.mkdir()
    (snapshot / "inner").write_text("someone's")
    pulled = run("pull", LAB)
    assert pulled.exit_code == 1
    assert f"{snapshot} is a folder" in pulled.stderr and f"rm -r {snapshot}" in pulled.stderr
    assert sorted(p.name for p in snapshot.parent.iterdir()) == ["pytorch_model.bin"]  # no temporary link left
    removed = run("rm", LAB, "--yes")
    assert "kept" in removed.stdout and (snapshot / "inner").read_text() == "someone's"
    assert not list((folder(repo) / "blobs").iterdir())  # the blob, which nothing links to, is deleted


def test_a_file_of_other_bytes_at_the_snapshot_path_is_never_replaced(lab: tuple[str, bytes], run: Run) -> None:
    """Weights saved where open_clip found the checkpoint replace its link with a file: pull refuses to
    overwrite them; a copy of the checkpoint's own bytes is linked again, losing nothing."""
    repo, data = lab
    assert run("pull", LAB).exit_code == 0
    (snapshot,) = (folder(repo) / "snapshots").glob("*/pytorch_model.bin")
    mine = b"my fine-tuned weights" * 1000
    saved = snapshot.with_name("saved")
    saved.write_bytes(mine)
    os.replace(saved, snapshot)
    refused = run("pull", LAB)
    assert refused.exit_code == 1 and "is a file of its own" in refused.stderr and "mv " in refused.stderr
    assert snapshot.read_bytes() == mine and not snapshot.is_symlink()
    snapshot.write_bytes(data)  # a plain copy of the checkpoint
    again = run("pull", LAB, "--json")
    assert again.exit_code == 0, again.stderr
    assert snapshot.is_symlink() and snapshot.read_bytes() == data


def test_a_partial_that_is_a_hard_link_is_never_written_through(
    lab: tuple[str, bytes], hub: Hub, run: Run, tmp_path: Path
) -> None:
    repo, data = lab
    outside = tmp_path / "notes.txt"
    outside.write_bytes(b"my notes" * 1000)
    partial = folder(repo) / "blobs" / (hashlib.sha256(data).hexdigest() + ".vitamin-partial")
    partial.parent.mkdir(parents=True)
    os.link(outside, partial)
    pulled = run("pull", LAB)
    assert pulled.exit_code == 1
    assert f"{partial} is a file with other names (hard links)" in pulled.stderr and "hint: remove it" in pulled.stderr
    assert outside.read_bytes() == b"my notes" * 1000
    assert hub.proxy.faults.body_bytes == 0


def interrupted(repo: str, data: bytes, names: list[str], kept: int) -> Path:
    """A download of `data` interrupted after `kept` bytes, for these models: its partial file and the manifest's
    record of it, as a killed pull leaves them (the manifest's own format)."""
    etag = hashlib.sha256(data).hexdigest()
    partial = folder(repo) / "blobs" / (etag + ".vitamin-partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data[:kept])
    downloads = [{"name": n, "repo": repo, "repo_type": "model", "filename": "pytorch_model.bin", "etag": etag,
                  "started_at": "2026-01-01T00:00:00+00:00"} for n in names]  # fmt: skip
    cache_root().with_name("hub.vitamin-manifest.json").write_text(
        json.dumps({"version": 2, "files": [], "downloads": downloads})
    )
    return partial


def test_finishing_a_file_keeps_the_partial_another_model_still_wants(hub: Hub, run: Run, tmp_path: Path) -> None:
    """Two zoos, one following main and one pinning its first commit, both interrupted on the same bytes; main
    moves on and the first finishes: the old partial stays, and the second model's pull continues from it."""
    repo = f"test/edges-shared-{os.getpid()}-{time.monotonic_ns()}"
    first = random.Random(1).randbytes(2 * 2**20)
    commit = build_repo(hub.mirrors, repo, {"pytorch_model.bin": first})
    weights = f"{{repo: {repo}, filename: pytorch_model.bin"
    follows, pins = tmp_path / "follows.yaml", tmp_path / "pins.yaml"
    follows.write_text(tiny_zoo_text([tiny_model("Follows-s1M", weights=weights + "}")]))
    pins.write_text(tiny_zoo_text([tiny_model("Pins-s1M", weights=weights + f", revision: {commit}}}")]))
    partial = interrupted(repo, first, ["Follows-s1M", "Pins-s1M"], 2**19)
    add_commit(hub.mirrors, repo, {"pytorch_model.bin": random.Random(2).randbytes(2 * 2**20)})
    assert run("pull", "Follows-s1M", "--zoo", str(follows)).exit_code == 0
    assert partial.stat().st_size == 2**19  # still wanted by the other
    pulled = run("pull", "Pins-s1M", "--zoo", str(pins), "--json")
    assert pulled.exit_code == 0, pulled.stderr
    (row,) = json.loads(pulled.stdout)
    assert row["status"] == "resumed" and row["sha256"] == hashlib.sha256(first).hexdigest()


def test_a_pipe_where_a_partial_goes_is_named_by_rm(lab: tuple[str, bytes], run: Run) -> None:
    repo, data = lab
    partial = interrupted(repo, data, [LAB], 2**19)
    partial.unlink()
    os.mkfifo(partial)
    removed = run("rm", LAB, "--yes")
    assert removed.exit_code == 0, removed.stderr
    assert f"kept {partial.relative_to(cache_root())}: a pipe, not a partial file vitamin wrote" in removed.stdout
    assert not manifest().get("downloads")


def test_a_snapshot_linked_elsewhere_is_not_called_gone(lab: tuple[str, bytes], run: Run) -> None:
    repo, _ = lab
    assert run("pull", LAB).exit_code == 0
    (snapshot,) = (folder(repo) / "snapshots").glob("*/pytorch_model.bin")
    snapshot.unlink()
    snapshot.symlink_to("../../blobs/" + "a" * 64)  # a blob that is not there, and not its own
    checked = run("verify", "--json")
    assert checked.exit_code == 1
    (row,) = json.loads(checked.stdout)
    assert row["status"] == "corrupt" and "is not the link to its blob" in row["problems"][0]
    assert json.loads(run("cache", "--json").stdout)["models"][0]["state"] == "not a link to its blob"


def test_what_was_never_pulled_says_how_to_pull_it(lab: tuple[str, bytes], run: Run) -> None:
    checked = run("verify", LAB)
    assert checked.exit_code == 1
    assert f"hint: `vitamin pull {LAB}` fetches it" in checked.stderr and "--fix" not in checked.stderr
    task = run("verify", "task:cifar10")
    assert task.exit_code == 1 and "hint: `vitamin pull --task cifar10` fetches it" in task.stderr
    unknown = run("verify", "task:vtab/cifar10")
    assert unknown.exit_code == 2 and "unknown task" in unknown.stderr


def test_a_body_cut_short_is_the_download_failing_not_the_network(lab: tuple[str, bytes], hub: Hub, run: Run) -> None:
    hub.proxy.faults.short_by = 1000  # every answer ends 1000 bytes early: the last ones never come
    hub.proxy.faults.every_time = True
    result = run("pull", LAB, "--connections", "1")
    assert result.exit_code == 1
    assert "download failed after" in result.stderr and "cannot reach" not in result.stderr
