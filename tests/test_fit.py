"""Every table fits its terminal (60, 80 and 120 columns) without splitting a model's name or a number, and keeps
its natural width in a pipe whatever COLUMNS says (views/texttable.py)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Run, put_in_cache
from hypothesis import given, settings
from hypothesis import strategies as st

from vitamin_cli import zoo
from vitamin_cli.views.texttable import Spec, TextTable, _fit, short_path

WIDTHS = (60, 80, 120)
Terminal = Callable[[int], None]

# ---------------------------------------------------------------------------------------------------
# The fitting itself, on generated tables

NAME = st.builds(
    lambda parts, scale: "-".join(parts) + f"-s{scale}",
    st.lists(st.sampled_from(["ViTamin", "ViT", "L2", "XL", "256", "384", "CoAtNet", "0"]), min_size=1, max_size=3),
    st.sampled_from(["128M", "1.28B", "12.8B", "13.3B", "40B"]),
)
NUMBER = st.one_of(
    st.floats(0, 1e6, allow_nan=False).map(lambda v: f"{v:,.1f}"), st.integers(0, 999).map(lambda v: f"{v / 10:.1f}%")
)
PHRASE = st.lists(st.sampled_from(["the", "checkpoint", "was", "not", "pulled", "yet", "noisy", "a"]), max_size=8)
PATH = st.lists(st.sampled_from(["models--org--name", "snapshots", "a" * 40, "open_clip_model.bin"]), min_size=1)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[Spec], list[list[Any]]]:
    kinds = draw(st.lists(st.sampled_from(["name", "number", "phrase", "path"]), min_size=1, max_size=9))
    kinds[0] = "name"
    specs = [
        Spec(
            draw(st.sampled_from(["Model", "Items/s", "Warm-up s", "ms/batch", "Path", "Note", "GiB"])) + str(i),
            right=kind == "number",
            priority=0 if i == 0 else draw(st.integers(0, 5)),
            path=kind == "path",
        )
        for i, kind in enumerate(kinds)
    ]
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row: list[Any] = []
        for kind in kinds:
            if kind == "name":
                row.append(draw(NAME))
            elif kind == "number":
                row.append(draw(NUMBER))
            elif kind == "phrase":
                row.append(" ".join(draw(PHRASE)))
            else:
                path = "/root/.cache/hub/" + "/".join(draw(PATH))
                row.append((path, "", short_path(path, "/root/.cache/hub")))
        rows.append(row)
    return specs, rows


@given(tables(), st.sampled_from([*WIDTHS, 40, 200]))
@settings(max_examples=150, deadline=None)
def test_a_table_fits_and_keeps_names_and_numbers_whole(table: tuple[list[Spec], list[list[Any]]], width: int) -> None:
    specs, rows = table
    built = TextTable(specs)
    for row in rows:
        built.add_row(row)
    fit = built.layout(width)
    lines, note = built.lines(width)
    texts = ["".join(text for text, _ in line) for line in lines]
    assert all(len(line) <= width for line in texts), texts
    hidden = [i for i in range(len(specs)) if i not in fit.shown]
    assert all(specs[i].priority > 0 for i in hidden)  # a column of priority 0 is never hidden
    if not fit.broken:  # hidden only for want of room: none of them fits back beside those shown
        sizes = {short: [built._sizes(i, short) for i in range(len(specs))] for short in (False, True)}
        for h in hidden:
            assert _fit(sorted([*fit.shown, h]), sizes, True, width, "few lines") is None, (h, specs[h])
    assert (note is not None) == bool(hidden)
    if fit.broken:
        return
    for row in rows:
        for i in fit.shown:
            cell = row[i] if isinstance(row[i], str) else (row[i][2] if fit.short else row[i][0])
            words = re.findall(r"[^/\s]+/?", cell) if specs[i].path else cell.split()
            assert all(any(word in line for line in texts) for word in words), (cell, texts)


def test_a_table_too_wide_hides_its_lowest_priority_columns_with_a_note() -> None:
    built = TextTable([Spec("Model"), Spec("Items/s", right=True), Spec("Note", priority=2), Spec("GiB", priority=1)])
    built.add_row(["ViTamin-XL-384-s13.3B", "1,234.5", "x" * 40, "1.5"])
    lines, note = built.lines(60)
    assert ["".join(t for t, _ in line).split() for line in lines][1] == ["ViTamin-XL-384-s13.3B", "1,234.5", "1.5"]
    assert note is not None and "hidden to fit 60 columns: Note" in note
    assert built.lines(None)[1] is None  # a pipe has no width to fit


def test_the_least_used_columns_go_first_and_a_narrow_one_comes_back() -> None:
    built = TextTable([Spec("Model"), Spec("A", priority=3), Spec("Wide", priority=2), Spec("B", priority=1)])
    built.add_row(["ViTamin-XL-384-s13.3B", "1.0", "w" * 30, "2.0"])
    assert built.layout(55).shown == [0, 1, 3]  # Wide goes; A, hidden first, fits again beside B
    assert built.layout(30).shown == [0, 1, 3]
    assert built.layout(27).shown == [0, 3]


def test_paths_are_shortened_before_columns_go() -> None:
    path = "/cache/hub/models--jienengchen--ViTamin-L-224px/snapshots/" + "0" * 40 + "/open_clip_pytorch_model.bin"
    built = TextTable([Spec("Model"), Spec("Size", right=True), Spec("Pulled", priority=1), Spec("Path", path=True)])
    built.add_row(["ViTamin-L-224-s12.8B", "1.2 GiB", "2026-12-08", (path, "", short_path(path, "/cache/hub"))])
    lines, note = built.lines(120)
    shown = "\n".join("".join(t for t, _ in line) for line in lines)
    assert "2026-12-08" in shown and "/cache/hub" not in shown and note is None
    assert "models--jienengchen--ViTamin-L-224px/snapshots/" in shown
    assert short_path(Path.home() / "w" / "x.bin") == "~/w/x.bin"


# ---------------------------------------------------------------------------------------------------
# Every command's table, in-process, on a terminal of each width


def bench_file(path: Path, models: list[str]) -> Path:
    rows = [{"kind": "environment", "node": "n", "gpu_name": "NVIDIA H200"}]
    for n, model in enumerate(models):
        for tower, rate in (("image", 1234.5 + n), ("text", 23456.7 + n)):
            rows.append({
                "kind": "result", "key": f"{model}-{tower}", "model": model, "aliases": [], "architecture": "x",
                "tower": tower, "device": "cuda", "gpu_name": "NVIDIA H200", "node": None, "node_id": None,
                "dtype": "bf16", "amp": False, "compile": False, "channels_last": tower == "image",
                "batch_size": 256, "throughput": rate, "throughput_min": rate, "throughput_max": rate,
                "latency_ms": 10.5, "peak_memory_gib": 3.5, "gflops_per_item": 1.0, "tflops": 100.0, "mfu": 0.25,
                "warmup_s": 2.0, "error": None, "spread": 0.01, "runs": 5, "noisy": False, "noise": None,
                "busy_share": 0.0, "latency_p50_ms": 1.5, "latency_p90_ms": 1.7, "latency_p99_ms": 2.5,
            })  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def eval_file(path: Path, models: list[str]) -> Path:
    from vitamin_cli.eval import tasks

    lines = []
    for model in models:
        for task in tasks.load().suite("imagenet"):
            row = {
                "kind": "result", "model": model, "checkpoint_sha256": "c" * 64, "task": task.key,
                "task_name": task.name, "data_revision": "r", "templates": "task", "templates_sha256": "t",
                "dtype": "bf16", "device": "cuda", "architecture_sha256": "a", "classnames_sha256": "n",
                "samples": 50000, "undecodable": 0, "metrics": {"acc1": 81.25}, "main_metric": "acc1",
                "main": 81.25, "seconds": 100.0, "images_per_s": 500.0, "classifier_s": 1.0,
                "classifier_cached": False, "node": None, "node_id": None, "status": "ok", "error": None,
            }  # fmt: skip
            lines.append(json.dumps(row) + "\n")
    path.write_text("".join(lines))
    return path


LARGE = [m.name for m in zoo.load().models if m.size == "L"]


@pytest.fixture
def measured(tmp_path: Path) -> tuple[str, str]:
    return str(bench_file(tmp_path / "b.jsonl", LARGE)), str(eval_file(tmp_path / "e.jsonl", LARGE))


def pulled() -> list[str]:
    """Three models in the cache, as `vitamin pull` leaves them."""
    names = ["ViTamin-L-224-s12.8B", "ViTamin-XL-384-s13.3B", "ViTamin-S-s1.28B"]
    for name in names:
        w = zoo.get(name).weights
        assert w is not None
        put_in_cache(name, w.repo, w.filename, name.encode(), commit="f" * 40)
    return names


def commands(measured: tuple[str, str]) -> list[tuple[list[str], list[str]]]:
    """Each command that prints a table, and the model names its output must hold whole."""
    bench, evaluated = measured
    four = ["ViTamin-L-224-s12.8B", "ViT-L-14-s1.28B", "ViTamin-XL-384-s13.3B", "ViTamin-B-s1.28B"]
    return [
        (["ls"], [m.name for m in zoo.load().models]),
        (["ls", "--size", "L", "--bench", bench, "--eval", evaluated], LARGE),
        (["ls", "--where", "macs < 100", "--sort", "imagenet", "--reverse"], ["ViTamin-L2-256-s13.3B"]),
        (["show", "ViTamin-XL-384"], ["ViTamin-XL-384-s41B", "ViTamin-XL-256-s13.3B", "ViTamin-XL-384-s13.3B"]),
        (["compare", *four], four),
        (["tasks"], []),
        (["cache"], ["ViTamin-L-224-s12.8B", "ViTamin-XL-384-s13.3B"]),
        (["verify", "--all"], ["ViTamin-L-224-s12.8B", "ViTamin-XL-384-s13.3B"]),
    ]


def check_fits(text: str, width: int | None, names: list[str]) -> None:
    lines = text.splitlines()
    if width is not None:
        assert max(len(line) for line in lines) <= width, "\n".join(line for line in lines if len(line) > width)
    words = set(text.split())
    assert [n for n in names if n not in words] == [], text
    numbers = re.findall(r"(?<![\w.,-])\d[\d,]*\.\d+(?![\w.])", text)
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*\.\d+|\d+\.\d+", n) for n in numbers), numbers  # none cut in two


@pytest.mark.parametrize("width", WIDTHS)
def test_every_command_table_fits_the_terminal(
    run: Run, terminal: Terminal, measured: tuple[str, str], width: int
) -> None:
    pulled()
    terminal(width)
    for argv, names in commands(measured):
        result = run(*argv)
        assert result.exit_code in (0, 1), (argv, result.stderr)
        # show's open_clip snippet is code to paste, left as it is (a terminal wraps it, a copy joins it again)
        check_fits(result.stdout.split("\nopen_clip\n")[0], width, names)
        if argv[0] == "cache":  # the repo's folder whole, the path from the cache
            assert "models--jienengchen--ViTamin-L-224px/" in result.stdout, result.stdout
        if argv[0] == "show":  # a label and its value on one line
            assert any("Dist. shift 74.1*" in line for line in result.stdout.splitlines()), result.stdout
        if argv[0] == "tasks":  # the longest key, whole
            assert "vtab/clevr_closest_object_distance" in result.stdout.split()


@pytest.mark.parametrize("columns", ["80", "40"])
def test_in_a_pipe_rows_keep_their_natural_width_whatever_columns_says(
    run: Run, monkeypatch: pytest.MonkeyPatch, measured: tuple[str, str], columns: str
) -> None:
    pulled()
    monkeypatch.setenv("COLUMNS", columns)
    for argv, names in commands(measured):
        result = run(*argv)
        assert result.exit_code in (0, 1), (argv, result.stderr)
        check_fits(result.stdout, None, names)
        assert "hidden to fit" not in result.stdout
        if argv[0] == "ls":  # one line a model, never folded
            rows = [line for line in result.stdout.splitlines() if line.split()[:1] and line.split()[0] in names]
            assert len(rows) == len(names)


def test_the_ls_table_at_60_columns_keeps_one_line_a_model(run: Run, terminal: Terminal) -> None:
    terminal(60)
    shown = run("ls", "--size", "L").stdout
    rows = [line for line in shown.splitlines() if line.split()[:1] and line.split()[0] in LARGE]
    assert len(rows) == len(LARGE)
    assert "hidden to fit 60 columns" in shown and "--columns" in shown


def test_columns_chooses_the_table_columns(run: Run, terminal: Terminal) -> None:
    terminal(60)
    shown = run("ls", "--size", "L", "--columns", "model,imagenet,hub").stdout
    assert shown.splitlines()[0].split() == ["Model", "ImgNet", "Hub"]
    assert "hidden" not in shown
    wrong = run("ls", "--columns", "model,imgnet")
    assert wrong.exit_code == 2 and "no column 'imgnet'" in wrong.stderr and "imagenet" in wrong.stderr
    assert run("tasks", "--columns", "key,size").stdout.splitlines()[0].split() == ["Key", "Size"]
    refused = run("ls", "--json", "--columns", "model")
    assert refused.exit_code == 2 and "--columns" in refused.stderr


def test_the_cache_table_shows_paths_from_the_cache(run: Run, terminal: Terminal) -> None:
    pulled()
    terminal(80)
    shown = run("cache").stdout
    rows = [line for line in shown.splitlines() if line.startswith("ViTamin-")]
    assert len(rows) == 3 and all("models--jienengchen--" in row for row in rows), shown
    terminal(300)
    assert str(Path.home()) in run("cache").stdout  # wide enough: the whole path


# ---------------------------------------------------------------------------------------------------
# A real terminal: tmux


@pytest.mark.slow
@pytest.mark.parametrize("width", [60, 80])
def test_tables_in_tmux(tmp_path: Path, width: int) -> None:
    """The console script in a tmux window of a server of the test's own (never the user's)."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is not installed: CI must run this test")
        pytest.skip("needs tmux")
    vitamin = shutil.which("vitamin")
    assert vitamin is not None
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")} | {"TERM": "xterm"}
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    for argv, last in (
        (["ls", "--size", "L"], "ViTamin-L-384-s13B"),
        (["compare", "ViTamin-L", "ViT-L-14-s1.28B", "ViTamin-XL-384-s13.3B"], "best of the row"),
    ):
        command = " ".join([vitamin, *argv]) + "; sleep 30"
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", "fit", "-x", str(width), "-y", "80", command], env=env, check=True
        )
        try:
            deadline = time.monotonic() + 20
            screen = ""
            while time.monotonic() < deadline and last not in screen:
                time.sleep(0.2)
                screen = subprocess.run(
                    [*tmux, "capture-pane", "-p", "-J", "-t", "fit"], capture_output=True, text=True
                ).stdout
        finally:
            subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
        assert last in screen, screen
        assert max(len(line) for line in screen.splitlines()) <= width, screen
        words = screen.split()
        assert "ViTamin-L-224-s12.8B" in words or "ViTamin-L-s128M" in words, screen


# ---------------------------------------------------------------------------------------------------
# The eval tables: recalls in the table, the live table's result apart from the time left


def task_result(task: str, metrics: dict[str, float]) -> Any:
    from vitamin_cli.eval.results import TaskResult

    return TaskResult("ViTamin-L-224-s12.8B", "c" * 64, task, task, metrics=metrics, main=metrics.get("acc1"))


def test_retrieval_recalls_are_in_the_eval_table(run: Run, terminal: Terminal) -> None:
    from rich.console import Console

    from vitamin_cli.views import results, sink

    recalls = {f"{kind}_retrieval_recall@{k}": v for kind, base in (("image", 50.0), ("text", 70.0))
               for k, v in ((1, base), (5, base + 20), (10, base + 25))}  # fmt: skip
    rows = [
        task_result("retrieval/flickr_1k_test_image_text_retrieval", recalls),
        task_result("cifar10", {"acc1": 90.0}),
    ]
    columns = results.eval_columns(rows)
    assert [c.key for c in columns if c.key in ("r5", "r10")] == ["r5", "r10"]
    assert "r5" not in [c.key for c in results.eval_columns(rows[1:])]  # no retrieval task, no recall columns
    out = io.StringIO()
    Console(file=out, width=120).print(
        sink.table([c.spec for c in columns], [[c.cell(r) for c in columns] for r in rows])
    )
    line = next(line for line in out.getvalue().splitlines() if "flickr" in line)
    assert "70.0/90.0" in line.split() and "75.0/95.0" in line.split()


def test_the_live_table_keeps_results_and_time_left_apart() -> None:
    from vitamin_cli.views import results

    titles = list(results.EVAL_PROGRESS_TITLES)
    doing = dict(zip(titles, results.eval_progress_row("M", "cifar10", 50, 100, 5.0), strict=True))
    assert doing["Left"] == "5 s" and doing["Result"] == ""
    done = task_result("cifar10", {"acc1": 91.25})
    finished = dict(zip(titles, results.eval_finished_row(done), strict=True))
    assert finished["Result"] == "91.2%" and finished["Left"] == ""
