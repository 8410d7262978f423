"""`vitamin tasks`: the registry's tasks and what of their data is cached; the hints an unknown `--task` gets;
and what a rerun of `vitamin eval -o FILE` says it skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Run, put_in_cache
from test_docs import table_keys

from vitamin_cli.eval import tasks

COMMIT = "c" * 40


def put_task_files(key: str, files: dict[str, bytes]) -> dict[str, Path]:
    """A task's files in the cache and the manifest, recorded under `task:KEY` as `vitamin pull --task` does."""
    task = tasks.load().get(key)
    assert task.repo is not None
    return {
        filename: put_in_cache(f"task:{key}", task.repo, filename, data, repo_type="dataset", commit=COMMIT)
        for filename, data in files.items()
    }


def listed(run: Run, *args: str) -> list[dict[str, Any]]:
    result = run("tasks", "--json", *args)
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_every_task_of_the_registry(run: Run) -> None:
    rows = listed(run)
    assert len(rows) == 40
    assert [r["key"] for r in rows] == [t.key for t in tasks.load().tasks]
    cifar = next(r for r in rows if r["key"] == "vtab/cifar100")
    assert cifar["columns"] == ["vtab", "avg38"] and cifar["metric"] == "acc1" and cifar["examples"] == 10000
    assert {(r["cached"], r["size_bytes"]) for r in rows} == {("no", 0)}
    table = run("tasks")
    assert table.exit_code == 0, table.stderr
    assert "vtab/cifar100" in table.stdout and "vtab, avg38" in table.stdout and "10,000" in table.stdout
    assert "40 tasks, none in" in table.stdout


def test_a_suite(run: Run) -> None:
    rows = listed(run, "--suite", "vtab")
    assert len(rows) == 13
    assert all("vtab" in r["columns"] for r in rows)
    assert "sun397" in [r["key"] for r in rows]
    both = listed(run, "--suite", "imagenet", "--suite", "dist_shift")
    assert [r["key"] for r in both] == [t.key for t in tasks.load().tasks if {"imagenet", "dist_shift"} & set(t.groups)]
    unknown = run("tasks", "--suite", "vtabb")
    assert unknown.exit_code == 2 and "did you mean: vtab" in unknown.stderr
    task_as_suite = run("tasks", "--suite", "imagenet1k")
    assert task_as_suite.exit_code == 2 and "--task imagenet1k" in task_as_suite.stderr


def test_a_pulled_task_shows_yes_and_its_size_and_a_damaged_one_partial(run: Run) -> None:
    put_task_files("vtab/eurosat", {"classnames.txt": b"a\nb\n", "test/0.tar": b"x" * 3000})
    damaged = put_task_files("vtab/dtd", {"classnames.txt": b"c\n", "test/0.tar": b"y" * 5000})
    damaged["test/0.tar"].unlink()  # deleted by another tool
    rows = {r["key"]: r for r in listed(run)}
    assert (rows["vtab/eurosat"]["cached"], rows["vtab/eurosat"]["size_bytes"]) == ("yes", 3004)
    assert (rows["vtab/dtd"]["cached"], rows["vtab/dtd"]["size_bytes"]) == ("partial", 2)
    assert (rows["cifar10"]["cached"], rows["cifar10"]["size_bytes"]) == ("no", 0)
    table = run("tasks", "--suite", "vtab").stdout
    eurosat = next(line for line in table.splitlines() if line.startswith("vtab/eurosat"))
    assert eurosat.split()[-3:] == ["yes", "2.9", "KiB"]
    dtd = next(line for line in table.splitlines() if line.startswith("vtab/dtd"))
    assert dtd.split()[-3:] == ["partial", "2", "B"]
    assert next(line for line in table.splitlines() if line.startswith("vtab/pcam")).split()[-1] == "-"
    assert "13 tasks, 2 with data in" in table


def test_another_cache_dir(run: Run, tmp_path: Path) -> None:
    put_task_files("vtab/eurosat", {"classnames.txt": b"a\nb\n"})
    assert {r["cached"] for r in listed(run, "--cache-dir", str(tmp_path / "elsewhere"))} == {"no"}


def test_json_keys_are_documented(run: Run) -> None:
    page = (ROOT / "docs" / "json.md").read_text()
    assert table_keys(page, "## `vitamin tasks --json`") == list(listed(run)[0])


def test_csv_is_not_offered(run: Run) -> None:
    result = run("tasks", "--csv")
    assert result.exit_code == 2


# ---------------------------------------------------------------------------------------------------
# Hints for a --task that is not a key


def eval_task(run: Run, task: str) -> str:
    result = run("eval", "ViTamin-S", "--task", task)
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_an_unknown_task_points_to_vitamin_tasks(run: Run) -> None:
    stderr = eval_task(run, "vtab/cifar1000")
    assert "unknown task 'vtab/cifar1000'" in stderr
    assert "did you mean: vtab/cifar100" in stderr and "`vitamin tasks` lists them" in stderr
    far = eval_task(run, "nothing-like-a-task")
    assert "`vitamin tasks` lists them" in far and "did you mean" not in far


def test_a_folder_given_as_a_task_suggests_its_prefix(run: Run, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "cat").mkdir(parents=True)
    stderr = eval_task(run, str(photos))
    assert f"folder:{photos}" in stderr and "wds:" not in stderr and "retrieval:" not in stderr
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "classnames.txt").write_text("a\nb\n")
    assert f"wds:{shards}" in eval_task(run, str(shards))
    captions = tmp_path / "captions"
    captions.mkdir()
    (captions / "test.csv").write_text("image,caption\n")
    assert f"retrieval:{captions}" in eval_task(run, str(captions))
    assert f"folder:{photos}" in eval_task(run, f"dir:{photos}")  # a prefix vitamin does not know


def test_a_suite_given_as_a_task_suggests_suite(run: Run) -> None:
    stderr = eval_task(run, "imagenet")
    assert "--suite imagenet" in stderr and "imagenet1k" in stderr and "`vitamin tasks`" in stderr


def test_keys_and_suites_win_over_folders_of_the_same_name(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imagenet1k").mkdir()
    (tmp_path / "vtab").mkdir()
    assert tasks.load().resolve(["imagenet1k"], []) == [tasks.load().get("imagenet1k")]
    stderr = eval_task(run, "vtab")
    assert "--suite vtab" in stderr and "folder:" not in stderr


# ---------------------------------------------------------------------------------------------------
# A rerun of `vitamin eval -o FILE` says what it skipped


def test_a_rerun_says_how_many_tasks_it_skipped(run: Run, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from test_eval import image_folder

    _, checkpoint = tiny
    folder = image_folder(tmp_path / "photos", ["a", "b"], 2)
    runs = tmp_path / "runs.jsonl"
    args = ("eval", "Tiny-s1M", "--checkpoint", str(checkpoint), "--task", f"folder:{folder}", "-o", str(runs))
    first = run(*args, "--workers", "0")
    assert first.exit_code == 0, first.stderr
    assert "skipped" not in first.stderr
    assert runs.read_text().count("\n") == 1
    again = run(*args, "--workers", "0")
    assert again.exit_code == 0, again.stderr
    message = f"skipped 1 task already in {runs} (status ok, same key); delete their lines to measure again"
    assert again.stderr.count(message) == 1
    assert runs.read_text().count("\n") == 1  # nothing measured again, nothing appended
