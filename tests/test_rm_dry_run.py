"""`vitamin rm --dry-run`: says what `rm` would delete and keep, changes nothing in the cache, and a real `rm`
then deletes exactly the files it listed."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from conftest import BIG_REPO, SMALL_REPO, Hub, Result, Run, put_in_cache, vitamin_process

from vitamin_cli import zoo


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def manifest_path() -> Path:
    return cache_root().with_name("hub.vitamin-manifest.json")


def contents() -> dict[str, str]:
    """Everything in the cache and beside it (the manifest): each file's sha256, each link's target, each
    folder."""
    found = {}
    for path in sorted(cache_root().parent.rglob("*")):
        key = str(path.relative_to(cache_root()) if path.is_relative_to(cache_root()) else path.name)
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[key] = "folder"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def a_file_to_delete(line: str) -> bool:
    return line.startswith("  ") and not line.startswith(("  would keep ", "  kept ", "  still in the cache"))


def listed(stdout: str) -> set[str]:
    """The files a dry run lists under its `would delete` lines (in the cache, each with its size)."""
    return {line.strip().rsplit(" (", 1)[0] for line in stdout.splitlines() if a_file_to_delete(line)}


def as_done(dry: Result) -> tuple[list[str], str]:
    """What a dry run says, in the words of a real run, without its list of files and its closing note."""
    words = dry.stdout.replace("would delete ", "deleted ").replace("  would keep ", "  kept ")
    note = "dry run: nothing deleted; run it again without --dry-run to delete\n"
    return [line for line in words.splitlines() if not a_file_to_delete(line)], dry.stderr.replace(
        "would leave ", "left "
    ).replace(note, "")


def dry_run_then_rm(run: Run, *names: str) -> tuple[set[str], set[str]]:
    """`rm --dry-run NAMES`, which changes nothing, then `rm --yes NAMES`, which says what the dry run said, with
    the same exit code; the files the dry run listed, and those the real run deleted."""
    before = contents()
    dry = run("rm", *names, "--dry-run")
    assert contents() == before  # not a byte, link or folder changed: no lock file made, the manifest untouched
    real = run("rm", *names, "--yes")
    assert dry.exit_code == real.exit_code, (dry.stderr, real.stderr)
    assert as_done(dry)[0] == real.stdout.splitlines(), "\n".join([*as_done(dry)[0], "----", real.stdout])
    assert as_done(dry) == (real.stdout.splitlines(), real.stderr)
    after = contents()
    return listed(dry.stdout), {path for path, what in before.items() if path not in after and what != "folder"}


def test_a_dry_run_lists_what_rm_then_deletes(run: Run) -> None:
    rng = random.Random(5)
    large = zoo.get("ViTamin-L")
    old, new = rng.randbytes(3000), rng.randbytes(5000)
    put_in_cache(large.name, SMALL_REPO, "pytorch_model.bin", old, commit="a" * 40)  # pulled, then main moved
    put_in_cache(
        large.name, SMALL_REPO, "pytorch_model.bin", new, commit="b" * 40, pulled_at="2025-02-01T00:00:00+00:00"
    )
    base = zoo.get("ViTamin-B")
    data = rng.randbytes(70_000)
    snapshot = put_in_cache(base.name, BIG_REPO, "pytorch_model.bin", data)
    other = snapshot.parent.parent / ("c" * 40) / "copy.bin"  # another tool's snapshot of the same bytes
    other.parent.mkdir()
    other.symlink_to(os.path.relpath(snapshot.resolve(), other.parent))
    small = zoo.get("ViTamin-S")  # an interrupted download: its partial file and its ranges' record
    assert small.weights is not None
    etag = hashlib.sha256(b"the whole file").hexdigest()
    blobs = cache_root() / ("models--" + small.weights.repo.replace("/", "--")) / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{etag}.vitamin-partial").write_bytes(b"the wh")
    (blobs / f"{etag}.vitamin-partial.ranges").write_text('{"size": 14, "parts": [[0, 14, 6]]}')
    saved = json.loads(manifest_path().read_text())
    saved["downloads"] = [
        {"name": small.name, "repo": small.weights.repo, "repo_type": "model", "filename": "pytorch_model.bin",
         "etag": etag, "started_at": "2025-03-01T00:00:00+00:00"}
    ]  # fmt: skip
    manifest_path().write_text(json.dumps(saved))

    dry = run("rm", "ViTamin-L", "ViTamin-B", "ViTamin-S", "ViTamin-XL-256", "--dry-run")
    assert dry.exit_code == 1  # as rm's: a name not pulled
    assert "ViTamin-XL-256-s40B is not pulled" in dry.stderr
    assert f"would delete {large.name}: 5 files, 7.8 KiB freed" in dry.stdout  # two links, two blobs, refs/main
    folder = f"models--{SMALL_REPO.replace('/', '--')}"
    for commit, blob in (("a" * 40, old), ("b" * 40, new)):
        assert f"  {folder}/snapshots/{commit}/pytorch_model.bin\n" in dry.stdout
        digest = hashlib.sha256(blob).hexdigest()
        assert f"  {folder}/blobs/{digest} ({len(blob) / 1024:.1f} KiB)\n" in dry.stdout
    assert f"  {folder}/refs/main (40 B)\n" in dry.stdout
    assert f"would delete {base.name}: 2 files, 0 B freed" in dry.stdout  # its link, and refs/main to its commit
    assert "  would keep models--jienengchen--ViTamin-B/blobs/" in dry.stdout and "still linked from" in dry.stdout
    assert "  still in the cache, not pulled by vitamin: models--jienengchen--ViTamin-B/snapshots/" in dry.stdout
    assert f"would delete {small.name}: 2 files, 0 B freed" in dry.stdout
    assert "dry run: nothing deleted" in dry.stderr

    shown, deleted = dry_run_then_rm(run, "ViTamin-L", "ViTamin-B", "ViTamin-S", "ViTamin-XL-256")
    assert shown == deleted and len(deleted) == 9


def test_one_blob_pulled_for_two_names_goes_with_the_last(run: Run, tmp_path: Path) -> None:
    """Removed in order, as rm removes them: the first name keeps the blob the second still uses, which then
    deletes it."""
    data = random.Random(6).randbytes(2000)
    put_in_cache("ViTamin-L-224-s12.8B", SMALL_REPO, "pytorch_model.bin", data)
    put_in_cache("task:vtab/cifar100", SMALL_REPO, "pytorch_model.bin", data)  # the same file, another owner
    dry = run("rm", "task:vtab/cifar100", "ViTamin-L", "--dry-run")
    assert "would delete task:vtab/cifar100: 0 files, 0 B freed\n  would keep " in dry.stdout
    assert "also pulled for ViTamin-L-224-s12.8B" in dry.stdout
    assert "would delete ViTamin-L-224-s12.8B: 3 files, 2.0 KiB freed" in dry.stdout
    shown, deleted = dry_run_then_rm(run, "task:vtab/cifar100", "ViTamin-L")
    assert shown == deleted and len(deleted) == 3


def test_a_dry_run_refuses_as_rm_does_and_names_the_real_manifest(run: Run) -> None:
    put_in_cache("ViTamin-L-224-s12.8B", SMALL_REPO, "pytorch_model.bin", b"weights")
    saved = json.loads(manifest_path().read_text())
    saved["files"].append(dict(saved["files"][0], name="Lab-s1M", pulled_at="x" * 65))  # an entry it cannot read
    manifest_path().write_text(json.dumps(saved))
    dry = run("rm", "ViTamin-L", "--dry-run")
    assert dry.exit_code == 1
    assert f"nothing deleted: the manifest {manifest_path()} has entries" in dry.stderr
    assert "vitamin-rm-" not in dry.stderr  # no word of the copy it ran on
    assert dry_run_then_rm(run, "ViTamin-L") == (set(), set())  # and it says what rm says


@pytest.mark.slow  # pulls from the test Hub in processes of their own
def test_a_dry_run_of_pulled_models(hub: Hub, run: Run) -> None:
    for name in ("ViTamin-L", "ViTamin-B"):
        assert vitamin_process("pull", name).exit_code == 0
    shown, deleted = dry_run_then_rm(run, "ViTamin-L", "ViTamin-B")
    assert shown == deleted and len(deleted) == 6  # a link, a blob and refs/main each
    assert not list(cache_root().glob("models--*"))
