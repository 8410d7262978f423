"""After a pull: `vitamin verify`, `vitamin rm`, `vitamin cache` and `vitamin pin`, and open_clip loading the file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIG_REPO, ROOT, SMALL_REPO, Hub, Run, build_repo, vitamin_process

from vitamin_cli import zoo

VERIFY_KEYS = ["name", "path", "size_bytes", "expected_sha256", "actual_sha256", "status", "problems"]


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def blob_of(repo: str, data: bytes) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--")) / "blobs" / hashlib.sha256(data).hexdigest()


def pull(*names: str, env: dict[str, str] | None = None) -> None:
    result = vitamin_process("pull", *names, env=env)
    assert result.exit_code == 0, result.stderr


def test_verify_intact(hub: Hub, run: Run) -> None:
    pull("ViTamin-L", "ViTamin-B")
    result = run("verify")
    assert result.exit_code == 0, result.stderr
    assert "2 intact, 0 corrupt or missing" in result.stdout
    rows = json.loads(run("verify", "--json").stdout)
    assert [list(r) for r in rows] == [VERIFY_KEYS] * 2
    assert {r["name"]: r["status"] for r in rows} == {"ViTamin-B-s1.28B": "ok", "ViTamin-L-224-s12.8B": "ok"}
    assert rows[0]["actual_sha256"] == hashlib.sha256(hub.files[BIG_REPO]).hexdigest()


def test_verify_finds_a_flipped_byte_and_fix_repairs_it(hub: Hub, run: Run) -> None:
    pull("ViTamin-L", "ViTamin-B")
    blob = blob_of(SMALL_REPO, hub.files[SMALL_REPO])
    data = bytearray(blob.read_bytes())
    data[1000] ^= 1
    blob.write_bytes(bytes(data))
    result = run("verify", "--json")
    assert result.exit_code == 1
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    bad = rows["ViTamin-L-224-s12.8B"]
    assert bad["status"] == "corrupt"
    expected = hashlib.sha256(hub.files[SMALL_REPO]).hexdigest()
    actual = hashlib.sha256(bytes(data)).hexdigest()
    assert bad["actual_sha256"] == actual
    assert bad["problems"] == [
        f"sha256 {actual} differs from the manifest and its blob name {expected}"
    ]  # one problem, said once
    assert any("blob name" in p for p in bad["problems"])
    assert rows["ViTamin-B-s1.28B"]["status"] == "ok"
    text = run("verify")
    assert text.exit_code == 1
    assert "ViTamin-L-224-s12.8B: sha256" in text.stderr

    fixed = vitamin_process("verify", "--fix")
    assert fixed.exit_code == 0, fixed.stderr
    assert blob.read_bytes() == hub.files[SMALL_REPO]


def test_verify_finds_a_missing_file(hub: Hub, run: Run) -> None:
    pull("ViTamin-L")
    blob_of(SMALL_REPO, hub.files[SMALL_REPO]).unlink()
    result = run("verify", "ViTamin-L", "--json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["status"] == "missing"
    result = run("verify", "ViTamin-B")  # never pulled
    assert result.exit_code == 1
    assert "not pulled" in result.stderr


def test_verify_checks_zoo_pins(hub: Hub, run: Run, zoo_copy: Path) -> None:
    pull("ViTamin-L")
    text = zoo_copy.read_text()
    zoo_copy.write_text(
        text.replace(
            "repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: null",
            "repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: " + "f" * 64,
        )
    )
    result = run("verify", "--zoo", str(zoo_copy), "--json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert any("zoo.yaml pin" in p for p in row["problems"])


def test_verify_with_nothing_pulled(run: Run) -> None:
    result = run("verify")
    assert result.exit_code == 0
    assert "nothing pulled" in result.stderr


def test_rm_removes_only_that_models_files(hub: Hub, run: Run) -> None:
    pull("ViTamin-L", "ViTamin-B")
    small = cache_root() / ("models--" + SMALL_REPO.replace("/", "--"))
    assert small.exists()
    assert run("rm", "ViTamin-L").exit_code == 2  # no terminal to ask on, and no --yes
    assert small.exists()
    result = run("rm", "ViTamin-L", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "deleted ViTamin-L-224-s12.8B" in result.stdout
    assert not small.exists()
    assert blob_of(BIG_REPO, hub.files[BIG_REPO]).read_bytes() == hub.files[BIG_REPO]
    assert [m["name"] for m in json.loads(run("ls", "--pulled", "--json").stdout)] == ["ViTamin-B-s1.28B"]
    assert run("verify").exit_code == 0
    again = run("rm", "ViTamin-L", "--yes")
    assert again.exit_code == 1
    assert "not pulled" in again.stderr


def test_cache_lists_models_partials_and_total(hub: Hub, run: Run) -> None:
    pull("ViTamin-L", "ViTamin-B")
    partial = cache_root() / "models--jienengchen--ViTamin-S" / "blobs" / ("a" * 64 + ".vitamin-partial")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x" * 1000)
    data = json.loads(run("cache", "--json").stdout)
    assert [m["name"] for m in data["models"]] == ["ViTamin-B-s1.28B", "ViTamin-L-224-s12.8B"]
    assert all(m["present"] and Path(m["path"]).is_symlink() for m in data["models"])
    assert data["partial"] == [
        {
            "repo": "jienengchen/ViTamin-S",
            "repo_type": "model",
            "path": str(partial),
            "size_bytes": 1000,
            "for": [],
            "stale": False,
        }  # fmt: skip
    ]  # a partial file of no download vitamin knows of: for no one, never stale
    assert data["total_bytes"] == len(hub.files[SMALL_REPO]) + len(hub.files[BIG_REPO]) + 1000
    text = run("cache").stdout
    assert "total 27.0 MiB in 2 files and 1 partial download" in text


def test_pin_writes_commit_sha_and_size_and_keeps_the_rest(hub: Hub, zoo_copy: Path) -> None:
    before = zoo_copy.read_text()
    zoo_copy.chmod(0o600)  # a private file stays private
    result = vitamin_process("pin", "ViTamin-L", "--zoo", str(zoo_copy))
    assert result.exit_code == 0, result.stderr
    assert zoo_copy.stat().st_mode & 0o777 == 0o600
    after = zoo_copy.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(changed) == 1
    weights = zoo.load(zoo_copy).get("ViTamin-L").weights
    assert weights is not None
    assert weights.revision == hub.commits[SMALL_REPO]
    assert weights.sha256 == hashlib.sha256(hub.files[SMALL_REPO]).hexdigest()
    assert weights.size_bytes == len(hub.files[SMALL_REPO])
    # a pull through the pinned zoo fetches that commit and checks the pin
    pulled = vitamin_process("pull", "ViTamin-L", "--zoo", str(zoo_copy), "--json")
    assert pulled.exit_code == 0, pulled.stderr
    assert json.loads(pulled.stdout)[0]["revision"] == hub.commits[SMALL_REPO]


def test_a_pin_the_hub_disagrees_with_fails_before_downloading(hub: Hub, zoo_copy: Path) -> None:
    text = zoo_copy.read_text()
    zoo_copy.write_text(
        text.replace(
            "repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: null",
            "repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: " + "f" * 64,
        )
    )
    result = vitamin_process("pull", "ViTamin-L", "--zoo", str(zoo_copy))
    assert result.exit_code == 1
    assert "zoo.yaml pins " + "f" * 64 in result.stderr
    assert hub.proxy.faults.body_bytes == 0


def test_pin_refuses_unreleased_models(hub: Hub, zoo_copy: Path) -> None:
    result = vitamin_process("pin", "ViT-L-14-s128M", "--zoo", str(zoo_copy))
    assert result.exit_code == 2
    assert "no public weights" in result.stderr


@pytest.mark.slow
def test_open_clip_loads_a_pulled_checkpoint_offline(hub: Hub, tmp_path: Path) -> None:
    """A real (randomly initialised) ViTamin-S state dict, served, pulled, then loaded by open_clip offline."""
    import io

    import open_clip
    import torch

    model = open_clip.create_model("ViTamin-S", pretrained=None)
    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    build_repo(hub.mirrors, "jienengchen/ViTamin-S", {"pytorch_model.bin": data})
    # the test proxy reads the whole 125 MB from olah before it answers: on a busy machine that can take
    # longer than huggingface_hub's default 10 s without data
    pull("ViTamin-S", env={"HF_HUB_DOWNLOAD_TIMEOUT": "120"})
    probe = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1000)
    expected = state[probe].float().flatten()[:5].tolist()
    code = (
        "import json, open_clip\n"
        "model, _, preprocess = open_clip.create_model_and_transforms('ViTamin-S', pretrained='datacomp1b')\n"
        f"print(json.dumps(model.state_dict()[{probe!r}].float().flatten()[:5].tolist()))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_ENDPOINT")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_fix_keeps_a_file_that_only_disagrees_with_a_pin(hub: Hub, run: Run, zoo_copy: Path) -> None:
    """A wrong pin is no reason to delete a good file: --fix leaves it, and says why."""
    pull("ViTamin-L")
    pinned = zoo_copy.read_text().replace(
        "repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: null",
        "repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: " + "f" * 64,
    )
    zoo_copy.write_text(pinned)
    result = run("verify", "--fix", "--zoo", str(zoo_copy))
    assert result.exit_code == 1
    assert "the same file would come back" in result.stderr
    assert blob_of(SMALL_REPO, hub.files[SMALL_REPO]).read_bytes() == hub.files[SMALL_REPO]


def test_a_relative_cache_dir_works_from_anywhere(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    assert vitamin_process("pull", "ViTamin-L", "--cache-dir", "rel").exit_code == 0
    monkeypatch.chdir(second)
    result = vitamin_process("verify", "--cache-dir", str(first / "rel"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert vitamin_process("rm", "ViTamin-L", "--yes", "--cache-dir", str(first / "rel")).exit_code == 0
    assert not (first / "rel" / ("models--" + SMALL_REPO.replace("/", "--"))).exists()


def test_rm_copes_with_nested_refs(hub: Hub, run: Run) -> None:
    pull("ViTamin-L")
    folder = cache_root() / ("models--" + SMALL_REPO.replace("/", "--"))
    nested = folder / "refs" / "refs" / "pr" / "1"
    nested.parent.mkdir(parents=True)
    nested.write_text(hub.commits[SMALL_REPO])
    result = run("rm", "ViTamin-L", "--yes")
    assert result.exit_code == 0, result.stderr
    assert not folder.exists()
    assert run("ls", "--pulled", "--json").stdout.strip() == "[]"


def test_pin_rewrites_a_block_style_weights_value(tmp_path: Path) -> None:
    from vitamin_cli.checkpoints.pin import Pin, write_pins

    text = (
        (ROOT / "zoo.yaml")
        .read_text()
        .replace(
            "    weights: {repo: jienengchen/ViTamin-S, filename: pytorch_model.bin, revision: null, sha256: null, "
            "size_bytes: null}\n",
            "    weights:\n      repo: jienengchen/ViTamin-S\n      filename: pytorch_model.bin\n",
        )
    )
    path = tmp_path / "zoo.yaml"
    path.write_text(text)
    write_pins(path, [Pin("ViTamin-S-s1.28B", "jienengchen/ViTamin-S", "a" * 40, "1" * 64, 123)])
    weights = zoo.load(path).get("ViTamin-S").weights
    assert weights is not None and (weights.revision, weights.sha256, weights.size_bytes) == ("a" * 40, "1" * 64, 123)
    assert path.read_text().count("# ---") == text.count("# ---")  # the comments are all still there
