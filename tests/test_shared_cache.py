"""The Hugging Face cache is shared: a released checkpoint another tool put there (here huggingface_hub's own
`hf_hub_download`, as open_clip, timm and `hf download` use it) is seen, verified, loaded and evaluated by
every command alike, and `vitamin rm` leaves it where it is and says how to delete it. `load()` fetches a
missing checkpoint on first use; `pull --local-dir` writes a plain copy; a server that does not answer is
named within seconds."""

from __future__ import annotations

import hashlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL_REPO, Hub, Run, start_vitamin, tiny_model, tiny_zoo_text, vitamin_process
from hubserver import add_commit, build_repo


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def hf_download(repo: str, env: dict[str, str] | None = None, revision: str | None = None) -> Path:
    """The file as huggingface_hub downloads it into the cache, in a process of its own (it reads HF_ENDPOINT
    once, when imported)."""
    code = (
        "from huggingface_hub import hf_hub_download\n"
        f"print(hf_hub_download({repo!r}, 'pytorch_model.bin', revision={revision!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def cached(run: Run) -> list[dict[str, object]]:
    result = run("cache", "--json")
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)["models"]
    return rows


def test_a_checkpoint_another_tool_cached_is_seen_everywhere(hub: Hub, run: Run) -> None:
    path = hf_download(SMALL_REPO)
    (row,) = cached(run)
    assert (row["name"], row["adopted"], row["present"], row["path"]) == ("ViTamin-L-224-s12.8B", True, True, str(path))
    assert row["sha256"] == hashlib.sha256(hub.files[SMALL_REPO]).hexdigest()
    listed = run("ls", "--pulled", "--json")
    assert [m["name"] for m in json.loads(listed.stdout)] == ["ViTamin-L-224-s12.8B"]
    assert "ViTamin-L-224-s12.8B" not in run("ls", "--not-pulled", "--format", "csv").stdout
    checked = run("verify", "--json")
    assert checked.exit_code == 0, checked.stderr
    (check,) = json.loads(checked.stdout)
    assert check["status"] == "ok" and check["actual_sha256"] == row["sha256"]
    table = run("cache")
    assert "found " in table.stdout and "ViTamin-L-224-s12.8B" in table.stdout


def test_a_file_fetched_at_a_commit_is_found_without_a_branch(hub: Hub, run: Run) -> None:
    path = hf_download(SMALL_REPO, revision=hub.commits[SMALL_REPO])
    assert not (cache_root() / "models--jienengchen--ViTamin-L-224px" / "refs" / "main").exists()
    (row,) = cached(run)
    assert (row["revision"], row["path"], row["adopted"]) == (hub.commits[SMALL_REPO], str(path), True)


def test_verify_reads_a_found_file_and_finds_it_damaged(hub: Hub, run: Run) -> None:
    path = hf_download(SMALL_REPO)
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    blob.write_bytes(bytes(data))
    result = run("verify", "ViTamin-L", "--json")
    assert result.exit_code == 1
    (check,) = json.loads(result.stdout)
    assert check["status"] == "corrupt" and check["problems"][0].endswith(
        f"differs from the manifest and its blob name {check['expected_sha256']}"
    )


def test_rm_leaves_another_tools_file_and_says_how_to_delete_it(hub: Hub, run: Run) -> None:
    from huggingface_hub import scan_cache_dir

    path = hf_download(SMALL_REPO)
    result = run("rm", "ViTamin-L", "--yes")
    assert result.exit_code == 1
    assert "left models--jienengchen--ViTamin-L-224px/snapshots/" in result.stderr
    assert "another tool put it in the cache" in result.stderr
    assert f"hf cache rm model/{SMALL_REPO}" in result.stderr
    assert path.read_bytes() == hub.files[SMALL_REPO]
    assert cached(run)[0]["present"] is True
    assert scan_cache_dir(cache_root()).warnings == []
    # the command it names does delete it, and vitamin then forgets the file quietly
    hf = Path(sys.executable).with_name("hf")
    gone = subprocess.run([str(hf), "cache", "rm", f"model/{SMALL_REPO}", "-y"], capture_output=True, text=True)
    assert gone.returncode == 0, gone.stderr
    assert not path.exists()
    assert cached(run) == []
    assert run("rm", "ViTamin-L", "--yes").stderr.startswith("ViTamin-L-224-s12.8B is not pulled")


def test_rm_deletes_what_vitamin_pulled_beside_a_found_file(hub: Hub, run: Run) -> None:
    """One model pulled by vitamin, another found: rm of both deletes the first and leaves the second."""
    found = hf_download(SMALL_REPO)
    pulled = run("pull", "ViTamin-B", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    (row,) = json.loads(pulled.stdout)
    assert row["status"] == "downloaded"
    result = run("rm", "ViTamin-B", "ViTamin-L", "--yes")
    assert result.exit_code == 1
    assert "deleted ViTamin-B-s1.28B" in result.stdout
    assert not Path(row["path"]).exists() and found.exists()


def test_an_online_pull_of_a_found_file_downloads_nothing_and_records_it_as_found(hub: Hub, run: Run) -> None:
    hf_download(SMALL_REPO)
    sent = hub.proxy.faults.body_bytes
    result = run("pull", "ViTamin-L", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "cached"
    assert hub.proxy.faults.body_bytes == sent
    assert cached(run)[0]["adopted"] is True
    assert run("rm", "ViTamin-L", "--yes").exit_code == 1  # still not vitamin's to delete


def test_an_offline_pull_records_a_found_file(hub: Hub, run: Run) -> None:
    hf_download(SMALL_REPO)
    result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "cached"
    manifest = json.loads(cache_root().with_name("hub.vitamin-manifest.json").read_text())
    assert [(e["name"], e["adopted"]) for e in manifest["files"]] == [("ViTamin-L-224-s12.8B", True)]


def test_a_file_vitamin_pulled_stays_vitamins(hub: Hub, run: Run) -> None:
    assert run("pull", "ViTamin-L").exit_code == 0
    assert vitamin_process("pull", "ViTamin-L", env={"HF_HUB_OFFLINE": "1"}).exit_code == 0
    assert run("pull", "ViTamin-L").exit_code == 0
    assert cached(run)[0]["adopted"] is False
    result = run("rm", "ViTamin-L", "--yes")
    assert result.exit_code == 0 and "deleted ViTamin-L-224-s12.8B" in result.stdout


def test_a_found_file_that_is_not_the_pinned_one_is_not_the_models(hub: Hub, run: Run, zoo_copy: Path) -> None:
    hf_download(SMALL_REPO)
    text = zoo_copy.read_text()
    pinned = "{repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: " + "a" * 64
    zoo_copy.write_text(
        text.replace(
            "{repo: jienengchen/ViTamin-L-224px, filename: pytorch_model.bin, revision: null, sha256: null", pinned
        )
    )
    assert cached(run) != []  # the bundled zoo's model finds it
    listed = run("ls", "--pulled", "--json", "--zoo", str(zoo_copy))
    assert json.loads(listed.stdout) == []


# ---------------------------------------------------------------------------------------------------
# load() on first use


@pytest.fixture
def served_tiny(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes]:
    """A tiny model whose checkpoint the local Hub serves, in a zoo of its own (a repo per test)."""
    import io

    import torch

    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    repo = f"test/tiny-first-use-{os.getpid()}-{time.monotonic_ns()}"
    path = tmp_path / "zoo.yaml"
    weights = f"{{repo: {repo}, filename: pytorch_model.bin}}"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-ViT-s1M", weights=weights)]))
    registry = zoo.load(path)
    counts = arch.count(arch.config(registry, registry.get("Tiny-ViT-s1M")))
    sizes = (round(counts.params_image_m, 2), round(counts.params_text_m, 2))
    path.write_text(tiny_zoo_text([tiny_model("Tiny-ViT-s1M", weights=weights, params=sizes)]))
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(arch.build(arch.config(registry, registry.get("Tiny-ViT-s1M"))).state_dict(), buffer)
    build_repo(hub.mirrors, repo, {"pytorch_model.bin": buffer.getvalue()})
    return repo, buffer.getvalue()


def test_load_pulls_a_missing_checkpoint_on_first_use(
    served_tiny: tuple[str, bytes], run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    import torch

    import vitamin_cli

    repo, data = served_tiny
    model, _, _ = vitamin_cli.load("Tiny-ViT-s1M")
    assert f"pulling {repo}" in capsys.readouterr().err
    expected = torch.load(io.BytesIO(data), weights_only=True)
    assert torch.equal(model.state_dict()["visual.conv1.weight"], expected["visual.conv1.weight"])
    (row,) = cached(run)
    assert row["adopted"] is False and row["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.slow  # two processes that import torch and open_clip
def test_load_offline_says_so_and_uses_what_another_tool_cached(served_tiny: tuple[str, bytes]) -> None:
    repo, _ = served_tiny
    code = "import vitamin_cli; vitamin_cli.load('Tiny-ViT-s1M'); print('loaded')"
    offline = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.run([sys.executable, "-c", code], env=offline, capture_output=True, text=True, check=False)
    assert first.returncode != 0
    assert "offline (HF_HUB_OFFLINE is set) and not in the cache" in first.stderr
    assert "unset HF_HUB_OFFLINE" in first.stderr
    hf_download(repo)
    second = subprocess.run([sys.executable, "-c", code], env=offline, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "loaded" and "pulling" not in second.stderr


# ---------------------------------------------------------------------------------------------------
# pull --local-dir


def test_pull_local_dir_writes_a_plain_copy(hub: Hub, run: Run, tmp_path: Path) -> None:
    target = tmp_path / "weights" / "ViTamin-L"
    result = run("pull", "ViTamin-L", "--local-dir", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    copy = target / "pytorch_model.bin"
    assert row["local_path"] == str(copy)
    assert copy.is_file() and not copy.is_symlink() and copy.read_bytes() == hub.files[SMALL_REPO]
    assert Path(row["path"]).is_symlink()  # the cache keeps its own link
    assert [p.name for p in target.iterdir()] == ["pytorch_model.bin"]  # no temporary file left
    # a link where the copy goes is replaced, never written through
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    copy.unlink()
    copy.symlink_to(precious)
    again = run("pull", "ViTamin-L", "--local-dir", str(target))
    assert again.exit_code == 0, again.stderr
    assert str(copy) in again.stdout
    assert precious.read_text() == "mine\n" and not copy.is_symlink()


def test_pull_local_dir_that_cannot_be_written_says_so(hub: Hub, run: Run, tmp_path: Path) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a folder\n")
    result = run("pull", "ViTamin-L", "--local-dir", str(occupied))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    below = run("pull", "ViTamin-L", "--local-dir", str(occupied / "sub"))
    assert below.exit_code == 2 and "cannot make it a folder" in below.stderr, below.stderr
    inside = run("pull", "ViTamin-L", "--local-dir", str(cache_root() / "models--jienengchen--ViTamin-L-224px"))
    assert inside.exit_code == 2 and "is inside the cache" in inside.stderr, inside.stderr
    assert hub.proxy.faults.requests == []  # refused before anything was asked of the Hub
    assert occupied.read_text() == "not a folder\n"


def test_pull_local_dir_takes_one_model(hub: Hub, run: Run, tmp_path: Path) -> None:
    result = run("pull", "ViTamin-L", "ViTamin-B", "--local-dir", str(tmp_path / "w"))
    assert result.exit_code == 2
    assert "--local-dir takes one model" in result.stderr and "--local-dir weights/NAME" in result.stderr
    assert not (tmp_path / "w").exists()


# ---------------------------------------------------------------------------------------------------
# No network


@pytest.mark.slow  # it waits for a silent server
def test_a_silent_server_is_named_within_seconds_with_the_offline_hint(tmp_path: Path) -> None:
    """A server that takes the connection and never answers (a network that drops packets looks the same):
    while the tries go on, stderr says so and names HF_HUB_OFFLINE=1."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_ETAG_TIMEOUT": "60"}
        began = time.monotonic()
        process = start_vitamin("pull", "ViTamin-S", env=env)
        try:
            assert process.stderr is not None
            ready, _, _ = select.select([process.stderr], [], [], 20)
            assert ready, "nothing said on stderr within 20 s"
            line = process.stderr.readline()
            waited = time.monotonic() - began
            assert process.poll() is None  # still trying
        finally:
            process.kill()
            process.communicate()
    assert f"no answer from 127.0.0.1:{port} after 3 s; still trying" in line
    assert "HF_HUB_OFFLINE=1" in line
    assert waited < 10


def test_an_unreachable_hub_names_the_offline_switch_in_its_hint(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("VITAMIN_RETRY_WAIT", "0.01")
    result = run("pull", "ViTamin-S")
    assert result.exit_code == 1
    assert "cannot reach" in result.stderr and "HF_HUB_OFFLINE=1 uses the files already in the cache" in result.stderr


# ---------------------------------------------------------------------------------------------------
# What finding must not do


def test_a_file_vitamin_pulled_found_under_another_name_stays_vitamins(hub: Hub, run: Run, tmp_path: Path) -> None:
    """A lab's zoo naming the same repo and file finds vitamin's download, not adopted; looking records nothing,
    and `rm` of the lab's name says which name deletes it. Once pulled for both, deleting both deletes it."""
    assert run("pull", "ViTamin-L").exit_code == 0
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        tiny_zoo_text([tiny_model("Lab-s1M", weights=f"{{repo: {SMALL_REPO}, filename: pytorch_model.bin}}")])
    )
    listed = run("ls", "--pulled", "--json", "--zoo", str(lab))
    assert [m["name"] for m in json.loads(listed.stdout)] == ["Lab-s1M"]
    found = json.loads(run("cache", "--json", "--zoo", str(lab)).stdout)["models"]
    assert {(r["name"], r["adopted"]) for r in found} == {("ViTamin-L-224-s12.8B", False), ("Lab-s1M", False)}
    assert {r["name"] for r in cached(run)} == {"ViTamin-L-224-s12.8B"}  # looking recorded nothing
    refused = run("rm", "Lab-s1M", "--yes", "--zoo", str(lab))
    assert refused.exit_code == 1 and "vitamin pulled it for ViTamin-L-224-s12.8B" in refused.stderr
    assert run("pull", "Lab-s1M", "--zoo", str(lab)).exit_code == 0
    assert {(r["name"], r["adopted"]) for r in cached(run)} == {("ViTamin-L-224-s12.8B", False), ("Lab-s1M", False)}
    first = run("rm", "ViTamin-L", "--yes")
    assert first.exit_code == 0 and "also pulled for Lab-s1M" in first.stdout
    second = run("rm", "lab-s1m", "--yes", "--zoo", str(lab))  # a name known from the manifest, in any case
    assert second.exit_code == 0, second.stderr
    assert "deleted Lab-s1M" in second.stdout and not (cache_root() / "models--jienengchen--ViTamin-L-224px").exists()


def test_a_snapshot_folder_that_leads_out_of_the_cache_is_not_taken(hub: Hub, run: Run, tmp_path: Path) -> None:
    path = hf_download(SMALL_REPO)
    outside = tmp_path / "elsewhere"
    path.parent.rename(outside)  # the commit's folder moves out, and a link takes its place
    path.parent.symlink_to(outside, target_is_directory=True)
    (outside / "pytorch_model.bin").unlink()
    (outside / "pytorch_model.bin").symlink_to(os.path.relpath(tmp_path / "not-the-blob", outside))
    (tmp_path / "not-the-blob").write_bytes(b"not the checkpoint")
    listed = run("cache", "--json")
    (row,) = json.loads(listed.stdout)["models"]
    assert (row["present"], row["state"], row["sha256"]) == (False, "leads out", None)
    assert "leads out of the cache" in listed.stderr
    assert run("ls", "--pulled", "--json").stdout.strip() == "[]"
    assert run("verify", "ViTamin-L", "--json").exit_code == 1
    assert (tmp_path / "not-the-blob").read_bytes() == b"not the checkpoint"


def test_verify_reports_a_pulled_snapshot_whose_folder_now_leads_out(hub: Hub, run: Run, tmp_path: Path) -> None:
    (row,) = json.loads(run("pull", "ViTamin-L", "--json").stdout)
    snapshot = Path(row["path"])
    outside = tmp_path / "elsewhere"
    snapshot.parent.rename(outside)
    snapshot.parent.symlink_to(outside, target_is_directory=True)
    result = run("verify", "ViTamin-L", "--json")
    assert result.exit_code == 1
    assert "leads out of the cache" in " ".join(json.loads(result.stdout)[0]["problems"])


def test_an_offline_pull_finds_a_file_fetched_at_a_commit(hub: Hub) -> None:
    hf_download(SMALL_REPO, revision=hub.commits[SMALL_REPO])
    result = vitamin_process("pull", "ViTamin-L", "--json", env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["revision"] == hub.commits[SMALL_REPO]


def test_an_offline_pull_from_a_cache_whose_manifest_cannot_be_written(hub: Hub, tmp_path: Path) -> None:
    """A team's cache this user may only read: the found file is used, without being recorded."""
    hf_download(SMALL_REPO)
    lock = cache_root().with_name("hub.vitamin-manifest.json.lock")
    lock.mkdir()  # a lock that cannot be taken, as on a read-only file system
    copy = tmp_path / "w"
    result = vitamin_process("pull", "ViTamin-L", "--local-dir", str(copy), env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.stderr
    assert (copy / "pytorch_model.bin").read_bytes() == hub.files[SMALL_REPO]
    assert not cache_root().with_name("hub.vitamin-manifest.json").exists()


def test_a_found_file_is_followed_when_its_tool_moves_main(hub: Hub, run: Run, tmp_path: Path) -> None:
    from vitamin_cli import zoo
    from vitamin_cli.checkpoints.pull import checkpoint
    from vitamin_cli.checkpoints.store import Store

    repo = f"test/moving-main-{os.getpid()}-{time.monotonic_ns()}"  # a repo of its own: main moves here
    build_repo(hub.mirrors, repo, {"pytorch_model.bin": b"the first checkpoint"})
    lab = tmp_path / "lab.yaml"
    lab.write_text(tiny_zoo_text([tiny_model("Lab-s1M", weights=f"{{repo: {repo}, filename: pytorch_model.bin}}")]))
    first = hf_download(repo)
    assert [r["path"] for r in json.loads(run("cache", "--json", "--zoo", str(lab)).stdout)["models"]] == [str(first)]
    commit = add_commit(hub.mirrors, repo, {"pytorch_model.bin": b"a newer checkpoint on main"})
    second = hf_download(repo)
    assert commit in str(second)
    store = Store(cache_root())
    assert checkpoint(zoo.load(lab).get("Lab-s1M"), store).path(store.root) == second
    # the other tool relinks the old snapshot to the new blob: vitamin did not make that link, nothing is broken
    first.unlink()
    first.symlink_to(os.readlink(second))
    checked = run("verify", "--json", "--zoo", str(lab))
    assert checked.exit_code == 0, checked.stdout


def test_the_rm_hint_quotes_a_cache_folder_with_spaces(hub: Hub, run: Run, tmp_path: Path) -> None:
    folder = tmp_path / "team cache" / "hub"
    hf_download(SMALL_REPO, env={"HF_HUB_CACHE": str(folder)})
    result = run("rm", "ViTamin-L", "--yes", "--cache-dir", str(folder))
    assert result.exit_code == 1
    assert f"hf cache rm model/{SMALL_REPO} --cache-dir '{folder}'" in result.stderr


def test_a_copy_a_killed_pull_left_is_replaced(hub: Hub, run: Run, tmp_path: Path) -> None:
    target = tmp_path / "w"
    target.mkdir()
    (target / ".pytorch_model.bin.vitamin-partial").write_bytes(b"half a copy")
    assert run("pull", "ViTamin-L", "--local-dir", str(target)).exit_code == 0
    assert sorted(p.name for p in target.iterdir()) == ["pytorch_model.bin"]


@pytest.mark.slow  # it waits out a deadline
def test_a_server_that_never_answers_is_given_up_at_the_deadline(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        env = {
            "HF_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "HF_HUB_ETAG_TIMEOUT": "600",
            "VITAMIN_PULL_DEADLINE": "2",
        }
        began = time.monotonic()
        result = vitamin_process("pull", "ViTamin-S", env=env, timeout=60)
    assert result.exit_code == 1 and "cannot reach" in result.stderr
    assert time.monotonic() - began < 15
