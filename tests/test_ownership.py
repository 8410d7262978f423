"""`vitamin rm` deletes only what one model alone uses, decided by repo, commit, file and blob across every
entry and every snapshot link; the manifest records each revision pulled; and huggingface_hub's own cache
scanner, a real client of what vitamin leaves, sees a healthy cache in every state vitamin leaves it in."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import BIG_REPO, SMALL_REPO, Hub, Run, start_vitamin, tiny_model, tiny_zoo_text, vitamin_process
from hubserver import add_commit, build_repo


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pull(*args: str, env: dict[str, str] | None = None) -> list[dict[str, object]]:
    result = vitamin_process("pull", *args, "--json", env=env)
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def scan() -> object:
    """huggingface_hub's view of the cache, which must hold no warning."""
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(cache_root())
    assert info.warnings == [], info.warnings
    return info


def scanned_sizes() -> dict[str, int]:
    return {repo.repo_id: repo.size_on_disk for repo in scan().repos}  # type: ignore[attr-defined]


def vitamin_sizes(run: Run) -> dict[str, int]:
    """Bytes on disk per repo by `vitamin cache`, each blob counted once."""
    listed = json.loads(run("cache", "--json").stdout)
    blobs = {(m["repo"], m["etag"]): m["size_bytes"] for m in listed["models"] if m["present"]}
    sizes: dict[str, int] = {}
    for (repo, _), size in blobs.items():
        sizes[repo] = sizes.get(repo, 0) + size
    return sizes


def lab_zoo(tmp_path: Path, repo: str = SMALL_REPO) -> Path:
    """A lab's zoo whose model uses the same repo and file as a model of the bundled zoo."""
    path = tmp_path / "lab.yaml"
    weights = f"{{repo: {repo}, filename: pytorch_model.bin}}"
    path.write_text(tiny_zoo_text([tiny_model("Lab-s1M", weights=weights)]))
    return path


def test_rm_of_a_lab_model_sharing_a_repo_keeps_the_other_models_files(hub: Hub, run: Run, tmp_path: Path) -> None:
    lab = lab_zoo(tmp_path)
    pull("ViTamin-L")
    pull("Lab-s1M", "--zoo", str(lab))
    result = run("rm", "Lab-s1M", "--yes", "--zoo", str(lab))
    assert result.exit_code == 0, result.stderr
    assert "deleted Lab-s1M: 0 files, 0 B freed" in result.stdout
    assert "also pulled for ViTamin-L-224-s12.8B" in result.stdout
    assert "also used by ViTamin-L-224-s12.8B" in result.stdout
    assert run("verify").exit_code == 0
    assert [m["name"] for m in json.loads(run("cache", "--json").stdout)["models"]] == ["ViTamin-L-224-s12.8B"]
    assert vitamin_sizes(run) == scanned_sizes() == {SMALL_REPO: len(hub.files[SMALL_REPO])}
    # and the other way round: then the last user goes, and the files with it
    assert run("rm", "ViTamin-L", "--yes").exit_code == 0
    assert not repo_folder(SMALL_REPO).exists()
    assert scanned_sizes() == {}


def test_rm_deletes_every_revision_it_pulled_and_says_what_remains(hub: Hub, run: Run, tmp_path: Path) -> None:
    repo = "test/two-revisions"
    rng = random.Random(3)
    first, second = rng.randbytes(200_000), rng.randbytes(300_000)
    old = build_repo(hub.mirrors, repo, {"pytorch_model.bin": first})
    new = add_commit(hub.mirrors, repo, {"pytorch_model.bin": second})
    lab = lab_zoo(tmp_path, repo)
    pull("Lab-s1M", "--zoo", str(lab), "--revision", old)
    pull("Lab-s1M", "--zoo", str(lab))
    listed = json.loads(run("cache", "--json").stdout)["models"]
    assert sorted(m["revision"] for m in listed) == sorted([old, new])
    assert vitamin_sizes(run) == scanned_sizes() == {repo: len(first) + len(second)}
    result = run("rm", "Lab-s1M", "--yes", "--zoo", str(lab))
    assert result.exit_code == 0, result.stderr
    assert "deleted Lab-s1M: 5 files" in result.stdout  # two links, two blobs and refs/main
    assert not repo_folder(repo).exists()
    assert json.loads(run("cache", "--json").stdout)["models"] == []


def test_rm_keeps_a_blob_another_tools_snapshot_links_to(hub: Hub, run: Run) -> None:
    (row,) = pull("ViTamin-L")
    snapshots = repo_folder(SMALL_REPO) / "snapshots"
    other = snapshots / ("0" * 40) / "copy.bin"  # another tool's snapshot of the same bytes
    other.parent.mkdir()
    other.symlink_to(os.path.relpath(repo_folder(SMALL_REPO) / "blobs" / str(row["sha256"]), other.parent))
    result = run("rm", "ViTamin-L", "--yes")
    assert result.exit_code == 0
    assert "still linked from snapshots/" in result.stdout
    assert "still in the cache, not pulled by vitamin" in result.stdout
    assert other.read_bytes() == hub.files[SMALL_REPO]
    assert not Path(str(row["path"])).exists()
    scan()


def test_an_old_manifest_is_read_and_upgraded(hub: Hub, run: Run) -> None:
    (row,) = pull("ViTamin-L")
    manifest = cache_root().with_name("hub.vitamin-manifest.json")
    entry = json.loads(manifest.read_text())["files"][0]
    old = {k: v for k, v in entry.items() if k != "repo_type"} | {"path": "/somewhere/else"}
    manifest.write_text(json.dumps({"version": 1, "models": [old]}))
    assert [m["path"] for m in json.loads(run("cache", "--json").stdout)["models"]] == [row["path"]]  # computed
    assert run("verify").exit_code == 0
    pull("ViTamin-B")
    assert json.loads(manifest.read_text())["version"] == 2
    assert run("rm", "ViTamin-L", "ViTamin-B", "--yes").exit_code == 0
    assert scanned_sizes() == {}


# ---------------------------------------------------------------------------------------------------
# The cache scanner, in every state vitamin leaves


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_the_scanner_agrees_after_pull_kill_rm_and_fix(hub: Hub, run: Run) -> None:
    pull("ViTamin-L")
    assert vitamin_sizes(run) == scanned_sizes() == {SMALL_REPO: len(hub.files[SMALL_REPO])}

    # killed midway: the partial file sits in a repo folder the scanner still reads as healthy
    partial = repo_folder(BIG_REPO) / "blobs" / (sha(hub.files[BIG_REPO]) + ".vitamin-partial")
    hub.proxy.faults.chunk_delay_s = 0.01
    process = start_vitamin("pull", "ViTamin-B", "--quiet")
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 2**20):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert scanned_sizes() == {SMALL_REPO: len(hub.files[SMALL_REPO]), BIG_REPO: 0}
    listed = json.loads(run("cache", "--json").stdout)
    assert listed["total_bytes"] == len(hub.files[SMALL_REPO]) + partial.stat().st_size

    # resumed, then damaged and mended
    hub.proxy.reset()
    pull("ViTamin-B")
    blob = repo_folder(SMALL_REPO) / "blobs" / sha(hub.files[SMALL_REPO])
    blob.write_bytes(b"x" * len(hub.files[SMALL_REPO]))
    assert vitamin_process("verify", "--fix").exit_code == 0
    expected = {SMALL_REPO: len(hub.files[SMALL_REPO]), BIG_REPO: len(hub.files[BIG_REPO])}
    assert vitamin_sizes(run) == scanned_sizes() == expected

    assert run("rm", "ViTamin-L", "ViTamin-B", "--yes").exit_code == 0
    assert scanned_sizes() == {}


def test_a_failed_fix_leaves_the_cache_as_it_was(hub: Hub, run: Run) -> None:
    pull("ViTamin-L")
    blob = repo_folder(SMALL_REPO) / "blobs" / sha(hub.files[SMALL_REPO])
    blob.write_bytes(b"x" * len(hub.files[SMALL_REPO]))
    hub.proxy.faults.statuses = [404] * 20
    result = vitamin_process("verify", "--fix")
    assert result.exit_code == 1
    assert blob.read_bytes() == b"x" * len(hub.files[SMALL_REPO])  # nothing deleted before a good copy came
    scan()


def test_huggingface_hubs_own_deletion_is_reported_plainly(hub: Hub, run: Run) -> None:
    pull("ViTamin-L")
    pull("ViTamin-B")
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(cache_root())
    revision = next(r.commit_hash for repo in info.repos if repo.repo_id == SMALL_REPO for r in repo.revisions)
    info.delete_revisions(revision).execute()
    listed = json.loads(run("cache", "--json").stdout)["models"]
    assert {m["name"]: m["present"] for m in listed} == {"ViTamin-B-s1.28B": True, "ViTamin-L-224-s12.8B": False}
    text = run("cache")
    assert text.exit_code == 0 and "ViTamin-L-224-s12.8B (gone)" in text.stdout
    checked = run("verify")
    assert checked.exit_code == 1
    assert "deleted outside vitamin" in checked.stderr and "Traceback" not in checked.stderr
    assert [m["name"] for m in json.loads(run("ls", "--pulled", "--json").stdout)] == ["ViTamin-B-s1.28B"]
    forgotten = run("rm", "ViTamin-L", "--yes")
    assert forgotten.exit_code == 0
    assert run("verify").exit_code == 0
    scan()


@pytest.mark.parametrize("mask", [0o002, 0o022])
def test_files_follow_the_users_umask(hub: Hub, mask: int) -> None:
    """A group-shared cache (umask 002) stays writable by the group: refs, manifest, locks and blobs."""
    old = os.umask(mask)
    try:
        pull("ViTamin-L")
    finally:
        os.umask(old)
    folder = repo_folder(SMALL_REPO)
    made = [
        folder / "refs" / "main",
        cache_root().with_name("hub.vitamin-manifest.json"),
        next((cache_root() / ".locks" / folder.name).iterdir()),
        next((folder / "blobs").iterdir()),
    ]
    for path in made:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


def plain_pins(tmp_path: Path, hub: Hub) -> tuple[Path, Path]:
    """Two zoo files naming one non-LFS file (checked by its git blob id): one unpinned, one with a wrong pin."""
    repo = "test/plain-pin"
    if not (hub.mirrors / "models" / repo).exists():
        build_repo(hub.mirrors, repo, {}, {"config.txt": "a small text file\n"})
    paths = []
    for name, pin in (("Plain-s1M", ""), ("Pinned-s1M", f', sha256: "{"0" * 64}"')):
        path = tmp_path / f"{name}.yaml"
        path.write_text(tiny_zoo_text([tiny_model(name, weights=f"{{repo: {repo}, filename: config.txt{pin}}}")]))
        paths.append(path)
    return paths[0], paths[1]


def test_a_pin_mismatch_never_deletes_a_blob_others_use(hub: Hub, run: Run, tmp_path: Path) -> None:
    plain, pinned = plain_pins(tmp_path, hub)
    pull("Plain-s1M", "--zoo", str(plain))
    result = vitamin_process("pull", "Pinned-s1M", "--zoo", str(pinned))
    assert result.exit_code == 1 and "sha256 mismatch" in result.stderr, result.stderr
    assert "stays in the cache" in result.stderr
    assert run("verify", "--zoo", str(plain)).exit_code == 0  # Plain-s1M still has its file
    assert vitamin_sizes(run) == scanned_sizes() == {"test/plain-pin": len("a small text file\n")}


def test_a_pin_mismatch_on_a_fresh_download_removes_it(hub: Hub, run: Run, tmp_path: Path) -> None:
    _, pinned = plain_pins(tmp_path, hub)
    result = vitamin_process("pull", "Pinned-s1M", "--zoo", str(pinned))
    assert result.exit_code == 1 and "removed the download" in result.stderr, result.stderr
    assert not any((repo_folder("test/plain-pin") / "blobs").glob("*"))
    assert scanned_sizes() in ({}, {"test/plain-pin": 0})


def test_rm_deletes_nothing_while_the_manifest_has_entries_it_cannot_read(hub: Hub, run: Run, tmp_path: Path) -> None:
    """An entry vitamin cannot read may name the same files: rm keeps everything and says why."""
    lab = lab_zoo(tmp_path)
    pull("ViTamin-L")
    pull("Lab-s1M", "--zoo", str(lab))
    manifest = cache_root().with_name("hub.vitamin-manifest.json")
    data = json.loads(manifest.read_text())
    lab_entry = next(e for e in data["files"] if e["name"] == "Lab-s1M")
    lab_entry["pulled_at"] = "x" * 65  # a field out of its bounds: the entry is dropped when read
    manifest.write_text(json.dumps(data))
    written = manifest.read_bytes()
    result = run("rm", "ViTamin-L", "--yes")
    assert result.exit_code == 1 and "nothing deleted" in result.stderr, result.stderr
    assert manifest.read_bytes() == written  # not moved aside: nothing was written
    assert vitamin_sizes(run) == scanned_sizes() == {SMALL_REPO: len(hub.files[SMALL_REPO])}


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_pull_and_rm_at_once_never_lock_each_other_up(hub: Hub, run: Run) -> None:
    """pull holds the blob's lock and then takes the manifest's; rm takes them in the same order."""
    import subprocess

    pull("ViTamin-L")
    for blob in (repo_folder(SMALL_REPO) / "blobs").iterdir():
        blob.unlink()  # recorded, but gone: the next pull downloads it again under the blob's lock
    hub.proxy.faults.chunk_delay_s = 0.05  # about 2.5 s for the 3 MiB file
    pulling = start_vitamin("pull", "ViTamin-L", "-q")
    blobs = repo_folder(SMALL_REPO) / "blobs"
    deadline = time.monotonic() + 60
    while not any(blobs.glob("*.vitamin-partial")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the pull is downloading, under the blob's lock
    removing = start_vitamin("rm", "ViTamin-L", "--yes")
    try:
        assert pulling.wait(timeout=120) == 0
        removing.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pulling.kill()
        removing.kill()
        raise
    assert removing.returncode == 0, removing.stderr.read()
    assert scanned_sizes() in ({}, {SMALL_REPO: len(hub.files[SMALL_REPO])})
    verified = run("verify")
    assert verified.exit_code == 0, verified.stderr
