"""One answer about what is in the cache: a checkpoint is the bytes it was pulled as (a file changed in place
is refused by every command that would use it, and pulled again), the commit pinned is the commit linked, a
repo or snapshot folder that leads out of the cache is refused by every command in the same words, and a
read-only cache still serves what it holds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SMALL_REPO, Hub, Result, Run, vitamin_process
from hubserver import build_repo
from test_eval import evaluate, image_folder
from test_shared_cache import hf_download

TINY_REPO = "test/tiny-clip-eval"  # the released model of conftest's `tiny` zoo (built once per session)
TINY = "Tiny-s2M"
L_NAME = "ViTamin-L-224-s12.8B"


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str = SMALL_REPO, root: Path | None = None) -> Path:
    return (root or cache_root()) / ("models--" + repo.replace("/", "--"))


def flip_a_byte(path: Path, at: int | None = None) -> None:
    """Damage a file in place, keeping its size: one bit of one byte (by default, in the middle) flipped."""
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def json_rows(result: Result) -> list[dict[str, object]]:
    assert result.stdout.strip(), result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def hint_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip().startswith("hint: ")}


# ---------------------------------------------------------------------------------------------------
# A. Identity is the bytes


@pytest.fixture
def released_tiny(hub: Hub, tiny: tuple[Path, Path]) -> tuple[Path, bytes]:
    """conftest's tiny zoo, whose Tiny-s2M is served by the test Hub; (its zoo file, the served bytes)."""
    zoo_path, checkpoint = tiny
    if not (hub.mirrors / "models" / TINY_REPO).exists():  # the hub lives for the session
        build_repo(hub.mirrors, TINY_REPO, {"pytorch_model.bin": checkpoint.read_bytes()})
    return zoo_path, checkpoint.read_bytes()


def tiny_state(zoo_path: Path, seed: int) -> dict[str, object]:
    import torch

    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    registry = zoo.load(zoo_path)
    torch.manual_seed(seed)
    return dict(arch.build(arch.config(registry, registry.get(TINY))).state_dict())


def damage(kind: str, snapshot: Path, zoo_path: Path) -> None:
    """Change a pulled checkpoint in place, through the path `vitamin cache` reports, as a user's script would."""
    import torch

    before = snapshot.read_bytes()
    if kind == "resaved":  # other weights of the same architecture: `torch.save(model.state_dict(), path)`
        torch.save(tiny_state(zoo_path, seed=1), snapshot)
    elif kind == "resaved-float64":  # the same keys in another dtype: a file of another size that still loads
        state = {k: v.double() if v.is_floating_point() else v for k, v in tiny_state(zoo_path, 1).items()}  # type: ignore[attr-defined]
        torch.save(state, snapshot)
    else:
        flip_a_byte(snapshot.resolve())
    assert snapshot.read_bytes() != before


def pulled_tiny(run: Run) -> Path:
    result = run("pull", TINY, "--json")
    assert result.exit_code == 0, result.stderr
    cached = run("cache", "--json")
    (row,) = json.loads(cached.stdout)["models"]
    return Path(row["path"])


DAMAGES = ["resaved", "resaved-float64", "flipped"]


@pytest.mark.slow  # builds and runs a tiny model
@pytest.mark.parametrize("kind", DAMAGES)
def test_eval_refuses_a_pulled_checkpoint_changed_in_place(
    released_tiny: tuple[Path, bytes], run: Run, tmp_path: Path, kind: str
) -> None:
    zoo_path, _ = released_tiny
    damage(kind, pulled_tiny(run), zoo_path)
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 2)
    runs = tmp_path / "runs.jsonl"
    code, data, stderr = evaluate(run, TINY, "--task", f"folder:{folder}", "-o", str(runs))
    assert code == 1, (stderr, data)
    assert not any(r.get("status") == "ok" for r in data.get("results", [])), data
    assert "verify --fix" in stderr + json.dumps(data), stderr
    saved = [json.loads(line) for line in runs.read_text().splitlines()] if runs.exists() else []
    assert not any(line.get("status") == "ok" for line in saved), saved


@pytest.mark.slow  # builds a tiny model
@pytest.mark.parametrize("kind", DAMAGES)
def test_load_refuses_a_pulled_checkpoint_changed_in_place(
    released_tiny: tuple[Path, bytes], run: Run, kind: str
) -> None:
    import vitamin_cli
    from vitamin_cli.errors import VitaminError

    zoo_path, _ = released_tiny
    damage(kind, pulled_tiny(run), zoo_path)
    with pytest.raises(VitaminError) as refused:
        vitamin_cli.load(TINY, cache_dir=cache_root())
    assert "verify --fix" in str(refused.value)


@pytest.mark.slow  # builds and times a tiny model
@pytest.mark.parametrize("kind", ["resaved", "flipped"])
def test_bench_weights_refuses_a_pulled_checkpoint_changed_in_place(
    released_tiny: tuple[Path, bytes], run: Run, kind: str
) -> None:
    zoo_path, _ = released_tiny
    damage(kind, pulled_tiny(run), zoo_path)
    result = run("bench", TINY, "--weights", "--device", "cpu", "--warmup", "0", "--iters", "1", "--repeats", "1")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "verify --fix" in result.stderr


@pytest.mark.slow  # serves files
def test_a_pull_of_a_blob_damaged_in_place_downloads_it_again(hub: Hub, run: Run) -> None:
    assert run("pull", "ViTamin-L").exit_code == 0
    blob = repo_folder() / "blobs" / hashlib.sha256(hub.files[SMALL_REPO]).hexdigest()
    flip_a_byte(blob)
    result = run("pull", "ViTamin-L", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json_rows(result)
    assert row["status"] == "downloaded", row
    assert blob.read_bytes() == hub.files[SMALL_REPO]


@pytest.mark.slow  # serves files, and a process of its own
def test_an_offline_pull_of_a_blob_damaged_in_place_fails_naming_verify_fix(hub: Hub, run: Run) -> None:
    assert run("pull", "ViTamin-L").exit_code == 0
    flip_a_byte(repo_folder() / "blobs" / hashlib.sha256(hub.files[SMALL_REPO]).hexdigest())
    result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "verify --fix" in result.stderr
    rows = json.loads(result.stdout) if result.stdout.strip() else []
    assert not any(r["status"] == "cached" for r in rows), rows


@pytest.mark.slow  # builds and runs a tiny model; huggingface_hub in a process of its own
def test_eval_and_load_refuse_a_file_another_tool_downloaded_and_that_changed(
    released_tiny: tuple[Path, bytes], run: Run, tmp_path: Path
) -> None:
    import vitamin_cli
    from vitamin_cli.errors import VitaminError

    flip_a_byte(hf_download(TINY_REPO).resolve())
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 2)
    code, data, stderr = evaluate(run, TINY, "--task", f"folder:{folder}")
    assert code == 1, (stderr, data)
    assert "verify --fix" in stderr + json.dumps(data), stderr
    with pytest.raises(VitaminError) as refused:
        vitamin_cli.load(TINY, cache_dir=cache_root())
    assert "verify --fix" in str(refused.value)


# ---------------------------------------------------------------------------------------------------
# B. One answer


OTHER_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.slow  # serves files
def test_a_server_answering_another_commit_than_the_pinned_one_links_nothing(
    hub: Hub, run: Run, zoo_copy: Path
) -> None:
    pinned = hub.commits[SMALL_REPO]
    text = zoo_copy.read_text()
    unpinned = "{repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null"
    assert unpinned in text
    zoo_copy.write_text(text.replace(unpinned, unpinned.replace("revision: null", f"revision: {pinned}")))
    hub.proxy.faults.repo_commit = OTHER_COMMIT
    result = run("pull", "ViTamin-L", "--zoo", str(zoo_copy))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert pinned[:10] in result.stderr and OTHER_COMMIT[:10] in result.stderr, result.stderr
    folder = repo_folder()
    assert not (folder / "refs" / pinned).exists()
    assert not (folder / "snapshots" / OTHER_COMMIT).exists()
    assert not (folder / "snapshots" / pinned).exists()


def tree(folder: Path) -> dict[str, object]:
    """What a folder holds: each file's bytes' hash, each link's target."""
    found: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(folder))] = os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path.relative_to(folder))] = "folder"
    return found


@pytest.fixture
def no_model_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """ViTamin-L takes many seconds to build: a load that gets as far as building it has taken the file."""
    from vitamin_cli.models import arch

    def build(*args: object, **kwargs: object) -> object:
        raise AssertionError("the model was built: the checkpoint in the cache was taken")

    monkeypatch.setattr(arch, "build", build)


@pytest.mark.slow  # serves files, and processes of their own
@pytest.mark.parametrize("moved", ["repo", "snapshot"])
def test_a_folder_that_leads_out_of_the_cache_is_refused_by_every_command_alike(
    hub: Hub, run: Run, tmp_path: Path, moved: str, no_model_built: None
) -> None:
    import vitamin_cli
    from vitamin_cli.errors import VitaminError

    assert run("pull", "ViTamin-L").exit_code == 0
    if moved == "repo":
        link = repo_folder()
    else:
        (link,) = (repo_folder() / "snapshots").iterdir()
    elsewhere = tmp_path / "moved"
    link.rename(elsewhere)
    link.symlink_to(elsewhere, target_is_directory=True)
    before = tree(elsewhere)
    said: dict[str, str] = {}

    listed = run("ls", "--pulled", "--json")
    assert L_NAME not in [m["name"] for m in json.loads(listed.stdout)]
    said["ls --pulled"] = listed.stderr

    cached = run("cache", "--json")
    rows = [m for m in json.loads(cached.stdout)["models"] if m["name"] == L_NAME]
    assert rows and all(m["present"] is False for m in rows), rows
    said["cache"] = cached.stderr

    verified = run("verify", "--json")
    assert verified.exit_code == 1
    (check,) = json_rows(verified)
    assert any("leads out of the cache" in p for p in check["problems"]), check  # type: ignore[union-attr]
    table = run("verify")  # the problems and their hints on stderr
    assert table.exit_code == 1
    said["verify"] = table.stderr + "\n" + "\n".join(check["problems"])  # type: ignore[arg-type]

    online = run("pull", "ViTamin-L")
    assert online.exit_code == 1
    said["pull"] = online.stderr
    offline = vitamin_process("pull", "ViTamin-L", env={"HF_HUB_OFFLINE": "1"})
    assert offline.exit_code == 1
    said["pull offline"] = offline.stderr

    removed = run("rm", "ViTamin-L", "--yes")
    assert removed.exit_code == 1
    said["rm"] = removed.stderr
    assert tree(elsewhere) == before

    with pytest.raises(VitaminError) as refused:
        vitamin_cli.load("ViTamin-L", cache_dir=cache_root())
    said["load"] = str(refused.value)

    for command, text in said.items():
        assert "leads out of the cache" in text, (command, text)
        assert "Traceback" not in text, (command, text)
    hints = {command: hint_lines(text) for command, text in said.items()}
    assert set.intersection(*hints.values()), hints  # one hint, word for word, from every command
    assert tree(elsewhere) == before


@pytest.mark.slow  # serves files, mounts a file system, processes of their own
@pytest.mark.parametrize("put_by", ["vitamin", "huggingface_hub"])
def test_a_read_only_cache_still_serves_what_it_holds(
    hub: Hub, run: Run, mount: Callable[[str], Path], put_by: str
) -> None:
    point = mount("size=16m")
    root = point / "hub"
    if put_by == "vitamin":
        assert run("pull", "ViTamin-L", "--cache-dir", str(root)).exit_code == 0
    else:
        hf_download(SMALL_REPO, env={"HF_HUB_CACHE": str(root)})
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(point)], capture_output=True, text=True)
    assert remounted.returncode == 0, remounted.stderr
    with pytest.raises(OSError):
        (point / "probe").write_text("read-only")

    online = run("pull", "ViTamin-L", "--cache-dir", str(root), "--json")
    assert online.exit_code == 0, online.stderr
    assert [r["status"] for r in json_rows(online)] == ["cached"]
    offline = vitamin_process("pull", "ViTamin-L", "--cache-dir", str(root), "--json", env={"HF_HUB_OFFLINE": "1"})
    assert offline.exit_code == 0, offline.stderr
    assert [r["status"] for r in json_rows(offline)] == ["cached"]
    listed = run("ls", "--pulled", "--json", "--cache-dir", str(root))
    assert listed.exit_code == 0, listed.stderr
    assert [m["name"] for m in json.loads(listed.stdout)] == [L_NAME]
    verified = run("verify", "--cache-dir", str(root))
    assert verified.exit_code == 0, (verified.stdout, verified.stderr)


# ---------------------------------------------------------------------------------------------------
# Looking writes nothing


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path below a folder (links not followed), with its size and modification time."""
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.slow  # a subprocess downloads with huggingface_hub
def test_looking_writes_nothing_into_the_cache_or_the_manifest(hub: Hub, run: Run) -> None:
    """A checkpoint another tool put in the cache is found by every command that looks, and none of them
    writes a byte: not into the shared cache, not into vitamin's manifest beside it."""
    hf_download(SMALL_REPO)
    before = stamps(cache_root())
    for args in (["ls", "--pulled", "--json"], ["cache", "--json"], ["verify", "--json"], ["tasks", "--json"]):
        result = run(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert L_NAME in result.stdout or args[0] == "tasks", args
    assert stamps(cache_root()) == before
    assert not cache_root().with_name("hub.vitamin-manifest.json").exists()
    assert run("pull", "ViTamin-L").exit_code == 0  # pulling is what records it, as found
    (row,) = json.loads(run("cache", "--json").stdout)["models"]
    assert row["adopted"] is True and cache_root().with_name("hub.vitamin-manifest.json").exists()
