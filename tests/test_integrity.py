"""Integrity without pins: a file outside Git LFS is checked by its git blob id, online and offline; and
messages carry data as text (never rich markup), never point at a safety to turn off."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Hub, Run, tiny_model, tiny_zoo_text, vitamin_process
from hubserver import build_repo

PLAIN_REPO = "test/plain-file"
PLAIN = '{"weights": "not in LFS"}\n' * 50


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def plain_zoo(hub: Hub, tmp_path: Path) -> Path:
    folder = hub.mirrors / "models" / PLAIN_REPO
    if not folder.exists():
        build_repo(hub.mirrors, PLAIN_REPO, {}, {"weights.json": PLAIN})
    path = tmp_path / "plain.yaml"
    path.write_text(tiny_zoo_text([tiny_model("Plain-s1M", weights=f"{{repo: {PLAIN_REPO}, filename: weights.json}}")]))
    return path


def cache_folder() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub" / ("models--" + PLAIN_REPO.replace("/", "--"))


def test_a_plain_file_is_checked_by_its_git_blob_id(hub: Hub, run: Run, plain_zoo: Path) -> None:
    result = vitamin_process("pull", "Plain-s1M", "--zoo", str(plain_zoo), "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert Path(row["path"]).resolve().name == git_blob_id(PLAIN.encode())
    assert row["sha256"] == hashlib.sha256(PLAIN.encode()).hexdigest()
    assert run("verify", "--zoo", str(plain_zoo)).exit_code == 0


def test_a_corrupted_plain_file_fails_like_a_sha256_mismatch(hub: Hub, plain_zoo: Path) -> None:
    hub.proxy.faults.flip_byte_at = 10
    result = vitamin_process("pull", "Plain-s1M", "--zoo", str(plain_zoo))
    assert result.exit_code == 1
    assert f"git blob id mismatch: expected {git_blob_id(PLAIN.encode())}" in result.stderr
    assert not (cache_folder() / "blobs" / git_blob_id(PLAIN.encode())).exists()
    assert not list((cache_folder() / "snapshots").glob("*/*"))


def test_a_wrong_etag_for_an_lfs_file_is_caught(hub: Hub) -> None:
    hub.proxy.faults.etag = "0" * 40  # a git blob id that is not this file's
    result = vitamin_process("pull", "ViTamin-L")
    assert result.exit_code == 1
    assert "git blob id mismatch: expected " + "0" * 40 in result.stderr


def test_verify_checks_a_plain_file_offline(hub: Hub, run: Run, plain_zoo: Path) -> None:
    assert vitamin_process("pull", "Plain-s1M", "--zoo", str(plain_zoo)).exit_code == 0
    blob = cache_folder() / "blobs" / git_blob_id(PLAIN.encode())
    blob.write_bytes(PLAIN.replace("LFS", "lfs").encode())
    result = run("verify", "--zoo", str(plain_zoo), "--json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert any("git blob id differs from its blob name" in p for p in row["problems"])


# ---------------------------------------------------------------------------------------------------
# Messages


def test_text_that_looks_like_markup_is_printed_as_it_is(hub: Hub, run: Run, tmp_path: Path) -> None:
    weights = "{repo: test/no-such-repo, filename: '[bold]weights[/bold].bin'}"
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        tiny_zoo_text([tiny_model("Markup-s1M", weights="null\n    weights_note: '[red]not[/red] public'")])
        + tiny_model("Files-s1M", samples="2M", weights=weights)
    )
    shown = run("show", "Markup-s1M", "--zoo", str(lab))
    assert shown.exit_code == 0 and "[red]not[/red] public" in shown.stdout
    pulled = vitamin_process("pull", "Files-s1M", "--zoo", str(lab))
    assert pulled.exit_code == 1 and "no-such-repo/[bold]weights[/bold].bin" in pulled.stderr
    bad_flag = run("ls", "--size", "[red]XL[/red]")
    assert bad_flag.exit_code == 2 and "[red]XL[/red]" in bad_flag.stderr


def test_a_pickle_that_runs_code_is_refused_without_advice_to_unpickle_it(tmp_path: Path) -> None:
    """torch's own message suggests weights_only=False; vitamin's never does."""
    import pickle

    from vitamin_cli.models.loading import CheckpointError, read_state_dict

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))

    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(CheckpointError) as caught:
        read_state_dict(path)
    message = caught.value.message + (caught.value.hint or "")
    assert "weights_only=False" not in message and "does not unpickle" in message


BROKEN = """\
  Broken:
    embed_dim: 32
    vision_cfg: {timm_model_name: no_such_timm_model, timm_model_pretrained: false, image_size: 32}
    text_cfg: {context_length: 77, vocab_size: 49408, width: 32, heads: 2, layers: 2}
"""


@pytest.mark.slow  # seconds of wall time (subprocesses started, stopped or waited on); CI runs it
def test_an_architecture_open_clip_cannot_build_is_a_message_in_audit(tmp_path: Path) -> None:
    from conftest import TINY_ARCHITECTURE

    path = tmp_path / "zoo.yaml"
    models = [tiny_model("Broken-s1M", arch="Broken"), tiny_model("Tiny-s1M", samples="2M", imagenet=2.0)]
    path.write_text(tiny_zoo_text(models, architectures=TINY_ARCHITECTURE + BROKEN))
    result = subprocess.run(
        [sys.executable, "-m", "vitamin_cli", "audit", "--all", "--zoo", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    assert "Broken-s1M: open_clip cannot build this architecture" in result.stderr
    assert "no_such_timm_model" in result.stderr and "Traceback" not in result.stderr
    assert [r["model"] for r in json.loads(result.stdout)] == ["Tiny-s1M"]
