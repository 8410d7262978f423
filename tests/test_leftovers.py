"""Nothing left behind, and messages that lead somewhere: `rm` deletes partial downloads (of the file's current
ETag or an older one) unless another process is downloading them, a partial path that is not a plain file is
named with a way out, path options expand `~`, and what reaches a user never names internal classes; the
library reports through logging."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SMALL_REPO, ZOO_YAML, Hub, Run, tiny_model, tiny_zoo_text, vitamin_process
from hubserver import add_commit, build_repo
from test_eval import evaluate, image_folder
from test_server_errors import killed_once_bytes_are_on_disk

INTERNAL_NAME = re.compile(r"\b_[A-Z]\w*")  # a private class, such as _ShortRead


def cache_root() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def repo_folder(repo: str = SMALL_REPO) -> Path:
    return cache_root() / ("models--" + repo.replace("/", "--"))


def home() -> Path:
    return Path(os.environ["HOME"])


def partial_files() -> list[Path]:
    return sorted(p for p in cache_root().rglob("*") if ".vitamin-partial" in p.name)


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and len(stderr) < 3000, stderr


# ---------------------------------------------------------------------------------------------------
# D. Partial downloads that rm deletes, or keeps and says why


@pytest.fixture
def own_repo(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes]:
    """A repo of this test's own (its main moves here) holding a 2 MiB file, served as model Lab-s1M of a zoo
    file of its own (VITAMIN_ZOO, which the processes started here see too)."""
    repo = f"test/leftovers-{os.getpid()}-{time.monotonic_ns()}"
    data = random.Random(repo).randbytes(2 * 2**20)
    build_repo(hub.mirrors, repo, {"pytorch_model.bin": data})
    lab = tmp_path / "lab.yaml"
    lab.write_text(tiny_zoo_text([tiny_model("Lab-s1M", weights=f"{{repo: {repo}, filename: pytorch_model.bin}}")]))
    monkeypatch.setenv("VITAMIN_ZOO", str(lab))
    return repo, data


def killed_pull(hub: Hub, repo: str) -> Path:
    """Lab-s1M's pull killed midway: its partial file, holding some of the bytes."""
    hub.proxy.faults.chunk_delay_s = 0.05  # 32 chunks of 64 KiB: about 1.6 s
    killed_once_bytes_are_on_disk(hub, repo, "Lab-s1M")
    hub.proxy.reset()
    (partial,) = (repo_folder(repo) / "blobs").glob("*.vitamin-partial")
    return partial


@pytest.mark.slow  # a pull killed midway, in a process of its own
def test_rm_deletes_a_partial_of_an_etag_the_file_no_longer_has(
    own_repo: tuple[str, bytes], hub: Hub, run: Run
) -> None:
    repo, data = own_repo
    old = killed_pull(hub, repo)
    assert old.name == hashlib.sha256(data).hexdigest() + ".vitamin-partial"
    add_commit(hub.mirrors, repo, {"pytorch_model.bin": b"a newer checkpoint on main" * 1000})
    pulled = run("pull", "Lab-s1M")
    assert pulled.exit_code == 0, pulled.stderr
    removed = run("rm", "Lab-s1M", "--yes")
    assert removed.exit_code == 0, removed.stderr
    assert partial_files() == []
    listed = run("cache", "--json")
    assert json.loads(listed.stdout)["partial"] == []


@pytest.mark.slow  # a pull killed midway, in a process of its own
def test_rm_of_a_model_only_partly_downloaded_deletes_the_partial(
    own_repo: tuple[str, bytes], hub: Hub, run: Run
) -> None:
    repo, _ = own_repo
    killed_pull(hub, repo)
    removed = run("rm", "Lab-s1M", "--yes")
    assert removed.exit_code == 0, (removed.stdout, removed.stderr)
    assert partial_files() == []
    assert json.loads(run("cache", "--json").stdout)["partial"] == []


@pytest.fixture
def lock_holder() -> Iterator[object]:
    """Take a filelock in another process (as a running pull holds its blob's lock) until the test ends."""
    held: list[subprocess.Popen[str]] = []

    def hold(lock: Path) -> None:
        code = (
            "import sys, time, filelock\n"
            f"lock = filelock.FileLock({str(lock)!r})\n"  # kept: a lock object that is collected lets go
            "lock.acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n"
        )
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        held.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "held"

    yield hold
    for process in held:
        process.kill()
        process.communicate()


@pytest.mark.slow  # a pull killed midway, processes of their own
def test_rm_keeps_a_partial_another_process_is_downloading_and_says_so(
    own_repo: tuple[str, bytes], hub: Hub, lock_holder
) -> None:  # type: ignore[no-untyped-def]
    repo, data = own_repo
    partial = killed_pull(hub, repo)
    kept = partial.read_bytes()
    lock_holder(cache_root() / ".locks" / repo_folder(repo).name / (hashlib.sha256(data).hexdigest() + ".lock"))
    try:
        removed = vitamin_process("rm", "Lab-s1M", "--yes", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("rm waited for the lock of a download in progress")
    assert partial.read_bytes() == kept
    said = removed.stdout + removed.stderr
    assert "partial" in said or partial.name in said, said
    assert any(words in said for words in ("kept", "being downloaded", "in progress")), said
    no_traceback(removed.stderr)


@pytest.mark.slow  # serves files
@pytest.mark.parametrize("thing", ["fifo", "folder"])
def test_a_partial_path_that_is_not_a_file_is_named_with_a_way_out(hub: Hub, thing: str) -> None:
    partial = repo_folder() / "blobs" / (hashlib.sha256(hub.files[SMALL_REPO]).hexdigest() + ".vitamin-partial")
    partial.parent.mkdir(parents=True)
    if thing == "fifo":
        os.mkfifo(partial)
    else:
        partial.mkdir()
    try:
        result = vitamin_process("pull", "ViTamin-L", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pull hung on a {thing} at {partial}")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert partial.name in result.stderr, result.stderr
    hints = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    assert any(re.search(r"\brm\b", line) for line in hints), result.stderr
    assert "Invalid argument" not in result.stderr
    no_traceback(result.stderr)


# ---------------------------------------------------------------------------------------------------
# E. Path options, messages


@pytest.mark.slow  # serves files
def test_local_dir_expands_a_tilde(hub: Hub, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("pull", "ViTamin-L", "--local-dir", "~/w")
    assert result.exit_code == 0, result.stderr
    assert (home() / "w" / "pytorch_model.bin").read_bytes() == hub.files[SMALL_REPO]
    assert not (tmp_path / "~").exists()


def test_zoo_expands_a_tilde(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(ZOO_YAML, home() / "z.yaml")
    result = run("ls", "--zoo", "~/z.yaml", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert "ViTamin-L-224-s12.8B" in result.stdout


@pytest.mark.slow  # builds and runs a tiny model
@pytest.mark.parametrize("option", ["--checkpoint", "-o"])
def test_eval_expands_a_tilde(
    run: Run, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["cat", "dog"], 2)
    monkeypatch.chdir(tmp_path)
    shutil.copy(checkpoint, home() / "c.pt")
    given = ["--checkpoint", "~/c.pt"] if option == "--checkpoint" else ["--checkpoint", str(checkpoint)]
    if option == "-o":
        given += ["-o", "~/r.jsonl"]
    code, data, stderr = evaluate(run, "Tiny-s1M", *given, "--task", f"folder:{folder}")
    assert code == 0, stderr
    assert [r["status"] for r in data["results"]] == ["ok"]
    if option == "-o":
        assert (home() / "r.jsonl").read_text().count("\n") == 1
    assert not (tmp_path / "~").exists()


@pytest.mark.slow  # builds and times a tiny model
def test_bench_output_expands_a_tilde(run: Run, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    args = ["Tiny-s1M", "--device", "cpu", "--warmup", "0", "--iters", "1", "--repeats", "1", "--tower", "image"]
    result = run("bench", *args, "-o", "~/b.jsonl")
    assert result.exit_code == 0, result.stderr
    assert (home() / "b.jsonl").read_text().strip()
    assert not (tmp_path / "~").exists()


def test_rm_of_a_known_task_never_pulled_says_not_pulled(run: Run) -> None:
    from vitamin_cli.eval import tasks

    assert "vtab/cifar100" in [t.key for t in tasks.load().tasks]
    result = run("rm", "task:vtab/cifar100", "--yes")
    assert result.exit_code == 1, result.stderr
    assert "not pulled" in result.stderr and "unknown model" not in result.stderr, result.stderr


def test_rm_of_an_unknown_task_says_unknown_task(run: Run) -> None:
    result = run("rm", "task:nope/nope", "--yes")
    assert result.exit_code == 2, result.stderr
    assert "unknown task" in result.stderr, result.stderr


def test_a_checkpoint_that_is_a_device_is_not_a_regular_file(run: Run) -> None:
    result = run("eval", "ViT-B-32-s128M", "--checkpoint", "/dev/zero")
    assert result.exit_code == 2, result.stderr
    assert "not a regular file" in result.stderr and "no such file" not in result.stderr, result.stderr


@pytest.mark.slow  # serves files
@pytest.mark.parametrize(
    ("faults", "part_mb"),
    [
        ({"short_by": 100_000, "every_time": True}, "16"),
        ({"short_by": 100_000, "every_time": True, "short_announced": True}, "16"),
        ({"cut_after": 0, "every_time": True}, "16"),
        ({"wrong_range_once": True, "every_time": True}, "1"),
    ],
    ids=["short-every-try", "short-and-announced-so-every-try", "cut", "wrong-content-range"],
)
def test_no_internal_class_name_reaches_the_user(
    hub: Hub, run: Run, monkeypatch: pytest.MonkeyPatch, faults: dict[str, object], part_mb: str
) -> None:
    monkeypatch.setenv("VITAMIN_PART_MB", part_mb)  # 1: ViTamin-L's 3 MiB file comes as ranges
    for name, value in faults.items():
        setattr(hub.proxy.faults, name, value)
    result = run("pull", "ViTamin-L")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.strip()
    assert not INTERNAL_NAME.search(result.stderr), result.stderr
    no_traceback(result.stderr)


@pytest.fixture
def released_tiny(hub: Hub, tiny: tuple[Path, Path]) -> None:
    """conftest's tiny zoo, whose Tiny-s2M the test Hub serves (the repo lives for the session)."""
    _, checkpoint = tiny
    if not (hub.mirrors / "models" / "test" / "tiny-clip-eval").exists():
        build_repo(hub.mirrors, "test/tiny-clip-eval", {"pytorch_model.bin": checkpoint.read_bytes()})


@pytest.mark.slow  # serves files, builds a tiny model
@pytest.mark.parametrize("level", [None, logging.ERROR], ids=["default", "errors-only"])
def test_load_says_it_pulls_through_logging(
    released_tiny: None, capfd: pytest.CaptureFixture[str], level: int | None
) -> None:
    import vitamin_cli

    logger = logging.getLogger("vitamin_cli")
    before = logger.level
    capfd.readouterr()
    try:
        if level is not None:
            logger.setLevel(level)
        vitamin_cli.load("Tiny-s2M", cache_dir=cache_root())
    finally:
        logger.setLevel(before)
    err = capfd.readouterr().err
    if level is None:
        assert "not in the cache" in err, err
    else:
        assert err == "", err
