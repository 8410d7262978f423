"""Nothing outside the cache is ever touched: names that would climb out are refused before any byte moves,
links that lead out are never written or deleted through, and the rest of the home folder stays as it was.

Every test takes a picture of the temporary home folder (all but the cache, vitamin's manifest beside it and
vitamin's memo) before and after, and the two must be equal.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SMALL_REPO, Hub, Run, tiny_model, tiny_zoo_text, vitamin_process


def home() -> Path:
    return Path(os.environ["HOME"])


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str = SMALL_REPO) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--"))


def outside(top: Path) -> dict[str, object]:
    """Every file, link and folder under `top` but the cache, the manifest beside it and vitamin's memo."""
    owned = (cache_root(), cache_root().with_name("hub.vitamin-manifest.json"), home() / ".cache" / "vitamin")
    state: dict[str, object] = {}
    for path in sorted(top.rglob("*")):
        if any(path == p or p in path.parents or path.name.startswith("hub.vitamin-manifest") for p in owned):
            continue
        if path.is_dir() and not path.is_symlink() and any(path in p.parents for p in owned):
            continue  # a folder that holds the cache or the memo, made to hold them
        if path.is_symlink():
            state[str(path)] = ("link", os.readlink(path))
        elif path.is_file():
            state[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
        else:
            state[str(path)] = ("dir", path.stat().st_mode)
    return state


@pytest.fixture
def precious(tmp_path: Path) -> Iterator[Path]:
    """A user's own file outside the cache, and a check that nothing outside the cache changed."""
    path = home() / "thesis.txt"
    path.write_text("years of work\n")
    before = outside(home())
    yield path
    assert outside(home()) == before
    assert path.read_text() == "years of work\n"


def pull(*args: str, env: dict[str, str] | None = None) -> None:
    result = vitamin_process("pull", *args, env=env)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("revision", ["../../../../thesis.txt", "main/../../x", "a\nb", ".hidden", "x.lock", ""])
def test_a_revision_that_climbs_out_is_refused_before_any_request(hub: Hub, precious: Path, revision: str) -> None:
    result = vitamin_process("pull", "ViTamin-L", "--revision", revision)
    assert result.exit_code == 2
    assert "--revision" in result.stderr and "Traceback" not in result.stderr
    assert hub.proxy.faults.requests == []


def test_a_zoo_revision_that_climbs_out_is_a_zoo_error(hub: Hub, precious: Path, tmp_path: Path) -> None:
    weights = '{repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: "../../../../thesis.txt"}'
    lab = tmp_path / "lab.yaml"
    lab.write_text(tiny_zoo_text([tiny_model("Lab-s1M", weights=weights)]))
    result = vitamin_process("pull", "Lab-s1M", "--zoo", str(lab))
    assert result.exit_code == 2
    assert f"{lab}:" in result.stderr and "weights.revision" in result.stderr
    assert hub.proxy.faults.requests == []


def test_verify_fix_never_deletes_what_a_snapshot_links_to(hub: Hub, run: Run, precious: Path) -> None:
    """A snapshot entry pointed at the user's own file: verify says so, --fix downloads the checkpoint again
    and links it back, and the user's file is untouched."""
    pull("ViTamin-L")
    (snapshot,) = (repo_folder() / "snapshots").glob("*/pytorch_model.bin")
    snapshot.unlink()
    snapshot.symlink_to(precious)
    result = run("verify", "--json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["status"] == "corrupt" and "not the link to its blob" in row["problems"][0]
    fixed = vitamin_process("verify", "--fix")
    assert fixed.exit_code == 0, fixed.stderr
    assert snapshot.resolve().parent.name == "blobs"
    assert snapshot.read_bytes() == hub.files[SMALL_REPO]


def test_a_blob_that_is_a_link_out_is_replaced_not_written_through(hub: Hub, precious: Path) -> None:
    data = hub.files[SMALL_REPO]
    blob = repo_folder() / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.symlink_to(precious)
    pull("ViTamin-L")
    assert not blob.is_symlink() and blob.read_bytes() == data


def test_a_partial_download_that_is_a_link_out_is_refused(hub: Hub, precious: Path) -> None:
    partial = repo_folder() / "blobs" / (hashlib.sha256(hub.files[SMALL_REPO]).hexdigest() + ".vitamin-partial")
    partial.parent.mkdir(parents=True)
    partial.symlink_to(precious)
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert hub.proxy.faults.body_bytes == 0


@pytest.mark.parametrize("linked", ["blobs", "snapshots", "refs", "repo", "locks"])
def test_a_folder_of_the_cache_that_links_out_is_never_written_into(
    hub: Hub, precious: Path, tmp_path: Path, linked: str
) -> None:
    elsewhere = home() / "elsewhere"
    elsewhere.mkdir()
    link = {
        "repo": repo_folder(),
        "locks": cache_root() / ".locks" / repo_folder().name,
        "blobs": repo_folder() / "blobs",
        "snapshots": repo_folder() / "snapshots",
        "refs": repo_folder() / "refs",
    }[linked]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(elsewhere, target_is_directory=True)
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "leads out of the cache" in result.stderr and "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == []
    link.unlink()
    elsewhere.rmdir()


def test_a_lock_that_is_a_link_out_is_refused(hub: Hub, precious: Path) -> None:
    lock = cache_root() / ".locks" / repo_folder().name / (hashlib.sha256(hub.files[SMALL_REPO]).hexdigest() + ".lock")
    lock.parent.mkdir(parents=True)
    lock.symlink_to(precious)
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr


def test_a_ref_holding_a_path_is_data_not_a_path(hub: Hub, precious: Path) -> None:
    pull("ViTamin-L")
    (repo_folder() / "refs" / "main").write_text("../../../../thesis.txt")
    result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_HUB_OFFLINE": "1"})
    # the ref is no commit, so it is not followed: offline, the snapshot already in the cache is the answer
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["status"] == "cached" and row["revision"] == hub.commits[SMALL_REPO]
    assert Path(row["path"]).parent.parent == repo_folder() / "snapshots"


def test_a_tampered_manifest_drives_no_deletion(hub: Hub, run: Run, precious: Path) -> None:
    """Entries whose names would make paths out of the cache are reported and ignored, never acted on."""
    pull("ViTamin-L")
    manifest = cache_root().with_name("hub.vitamin-manifest.json")
    data = json.loads(manifest.read_text())
    good = data["files"][0]
    data["files"] = [
        {**good, "name": "Evil-1", "filename": "../../../../thesis.txt"},
        {**good, "name": "Evil-2", "repo": "../..", "etag": "../../thesis.txt"},
        {**good, "name": "Evil-3", "revision": "../../.."},
        good,
    ]
    manifest.write_text(json.dumps(data))
    for name in ("Evil-1", "Evil-2", "Evil-3"):
        result = run("rm", name, "--yes")
        assert result.exit_code == 2, result.stderr  # not a model, and not an entry vitamin can use
        assert "ignoring what vitamin cannot use" in result.stderr
    listed = json.loads(run("cache", "--json").stdout)
    assert [m["name"] for m in listed["models"]] == ["ViTamin-L-224-s12.8B"]
    assert run("verify").exit_code == 0


@pytest.mark.parametrize(
    "written",
    [
        "{",
        "[]",
        '{"version": 7, "files": []}',
        '{"version": 2, "files": [{"name": 1}]}',
        '{"version": 2}',
        "\xff",
        "[" * 5000 + "]" * 5000,
    ],  # fmt: skip
)
def test_a_corrupt_manifest_is_reported_never_a_crash(hub: Hub, run: Run, precious: Path, written: str) -> None:
    pull("ViTamin-L")
    manifest = cache_root().with_name("hub.vitamin-manifest.json")
    manifest.write_bytes(written.encode("latin-1"))
    for args in (["cache"], ["verify"], ["ls", "--pulled"], ["rm", "ViTamin-L", "--yes"]):
        result = run(*args)
        assert result.exit_code in (0, 1), (args, result.stderr)
        assert "warning: ignoring what vitamin cannot use" in result.stderr
    assert (repo_folder() / "blobs").exists()  # rm found no entry: it deleted nothing
    pull("ViTamin-L")  # the next pull records the model again and keeps the unreadable file aside
    assert manifest.with_name(manifest.name + ".unreadable").read_bytes() == written.encode("latin-1")
    assert run("verify").exit_code == 0


def test_rm_never_deletes_through_a_link_out(hub: Hub, run: Run, precious: Path) -> None:
    pull("ViTamin-L")
    data = hub.files[SMALL_REPO]
    blob = repo_folder() / "blobs" / hashlib.sha256(data).hexdigest()
    blob.unlink()
    blob.symlink_to(precious)
    result = run("rm", "ViTamin-L", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "kept" in result.stdout and "a link, not a blob vitamin wrote" in result.stdout


def test_the_cache_root_itself_is_refused(run: Run) -> None:
    result = run("pull", "ViTamin-L", "--cache-dir", "/")
    assert result.exit_code == 2
    assert "cannot be a cache folder" in result.stderr


def test_output_files_are_written_where_the_user_said(run: Run, tmp_path: Path) -> None:
    """`-o FILE` through a link writes the file the link names (as a shell would), whole or not at all."""
    target = tmp_path / "results" / "bench.json"
    target.parent.mkdir()
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    from vitamin_cli.files import save

    save(link, "{}\n")
    assert link.is_symlink() and target.read_text() == "{}\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["bench.json"]  # no temporary file left
    result = run("bench", "ViTamin-S", "--device", "cpu", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "is a folder" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("linked", ["blobs folder", "blob"])
def test_an_offline_pull_never_deletes_a_blob_that_leads_out(hub: Hub, precious: Path, linked: str) -> None:
    """A cache whose blobs were moved to another disk and linked back: an offline pull refuses to vouch for
    them and deletes nothing, even when the file there does not match its name."""
    pull("ViTamin-L")
    blobs = repo_folder() / "blobs"
    (blob,) = blobs.iterdir()
    elsewhere = home() / "other-disk"
    elsewhere.mkdir()
    (elsewhere / blob.name).write_text("not the checkpoint at all\n")  # mismatches its name
    if linked == "blob":
        blob.unlink()
        blob.symlink_to(elsewhere / blob.name)
    else:
        for path in blobs.iterdir():
            path.unlink()
        blobs.rmdir()
        blobs.symlink_to(elsewhere, target_is_directory=True)
    before = outside(home())
    result = vitamin_process("pull", "ViTamin-L", env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "leads out of the cache" in result.stderr or "does not link to a blob" in result.stderr, result.stderr
    assert outside(home()) == before and (elsewhere / blob.name).read_text() == "not the checkpoint at all\n"
    if linked == "blob":
        blob.unlink()
    else:
        blobs.unlink()
    (elsewhere / blob.name).unlink()
    elsewhere.rmdir()


def test_a_damaged_blob_is_downloaded_anew_not_deleted_first(hub: Hub, run: Run) -> None:
    pull("ViTamin-L")
    (blob,) = (repo_folder() / "blobs").iterdir()
    damaged = bytearray(blob.read_bytes())
    damaged[100] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    manifest = cache_root().with_name("hub.vitamin-manifest.json")
    manifest.unlink()  # nothing vouches for the blob: it is hashed
    offline = vitamin_process("pull", "ViTamin-L", env={"HF_HUB_OFFLINE": "1"})
    assert offline.exit_code == 1 and "is damaged" in offline.stderr
    assert blob.read_bytes() == bytes(damaged)  # offline, it stays as it is
    pull("ViTamin-L")
    assert blob.read_bytes() == hub.files[SMALL_REPO]
    assert run("verify").exit_code == 0


def test_a_manifest_entry_with_an_impossible_size_is_ignored(hub: Hub, run: Run) -> None:
    pull("ViTamin-L")
    manifest = cache_root().with_name("hub.vitamin-manifest.json")
    data = json.loads(manifest.read_text())
    data["files"][0]["size_bytes"] = 10**400
    manifest.write_text(json.dumps(data))
    for args in (["cache"], ["verify"], ["ls", "--pulled"]):
        result = run(*args)
        assert result.exit_code in (0, 1) and "bad size_bytes" in result.stderr, (args, result.stderr)
