"""`vitamin bench`'s progress inside a tower: what the tower is doing (building, warm-up, each timed run) is told
before its result, never inside a timed window; on a terminal it is a line under the live table with a clock,
through a pipe nothing; towers measured on Ray say nothing until their row. On the CPU, with a tiny model."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Run, tiny_model, tiny_zoo_text

from vitamin_cli import runners, zoo
from vitamin_cli.bench import measure
from vitamin_cli.bench import sweep as bench_sweep
from vitamin_cli.views.progress import LiveTable

FAST = measure.BenchSettings(device="cpu", warmup=1, iters=2, repeats=3, batch_size=2)


@pytest.fixture
def tiny_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zoo.Zoo:
    path = tmp_path / "tiny-zoo.yaml"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-s128M", samples="128M")]))
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    # no matmul timed but the towers'
    monkeypatch.setattr(measure, "roof_tflops", lambda device, dtype, fresh=False: measure.Roof(1.0))
    return zoo.load(path)


def tower_steps(batch: int, runs: int, iters: int) -> list[str]:
    """What a tower tells, in order, with the clock readings of `time_batches` between: the warm-up's two, then
    each timed run's window (opened and closed) after the run is told."""
    steps = ["building the tower", f"batch size {batch}: warm-up", "clock", "clock"]
    for run in range(1, runs + 1):
        steps += [f"batch size {batch}: timed run {run} ({iters} batches)", "clock", "clock"]
    return steps


def test_a_tower_tells_each_step_before_its_result_and_never_inside_a_timed_window(
    tiny_zoo: zoo.Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []

    class Clock:  # bench's time module, noting each reading: on the CPU a timed window is two readings
        @staticmethod
        def perf_counter() -> float:
            log.append("clock")
            return time.perf_counter()

    monkeypatch.setattr(measure, "time", Clock)
    monkeypatch.setattr(measure, "enough_runs", lambda runs, settings: len(runs) >= settings.repeats)  # no more

    def progress(model: str, tower: str) -> measure.Progress:
        return lambda text: log.append(f"{model} {tower}: {text}")

    for result in bench_sweep.sweep(tiny_zoo, tiny_zoo.models, FAST, progress=progress):
        assert result.error is None and result.throughput
        log.append(f"result {result.tower}")
    steps = tower_steps(batch=2, runs=3, iters=2)
    assert log == [
        *(step if step == "clock" else f"Tiny-s128M image: {step}" for step in steps),
        "result image",
        *(step if step == "clock" else f"Tiny-s128M text: {step}" for step in steps),
        "result text",
    ]


def test_the_batch_size_search_tells_each_batch_it_tries(tiny_zoo: zoo.Zoo) -> None:
    told: list[str] = []
    auto = measure.BenchSettings(device="cpu", warmup=1, iters=1, repeats=1, batch_size=1, auto_batch=True)
    (result,) = bench_sweep.sweep(tiny_zoo, tiny_zoo.models, auto, ("image",), progress=lambda m, t: told.append)
    tried = [text.split(":")[0] for text in told if text.endswith("warm-up")]
    assert tried[:2] == ["batch size 1", "batch size 2"]  # each batch it tries, each with its warm-up and run
    assert f"batch size {result.batch_size}" in tried


class OnRay:
    """A runner that runs its jobs elsewhere, as Ray does: a job is plain data, no callback travels with it."""

    in_process = False

    def gpus(self) -> float:
        return 0.0

    def cpus_per_node(self) -> float:
        return 1.0

    def run(self, function, jobs, resources):  # type: ignore[no-untyped-def]
        for index, job in enumerate(jobs):
            assert len(job) == 1 and isinstance(job[0], measure.BenchJob)
            yield runners.Finished(index, function(*job), node="node-a", node_id="id-a")


def test_towers_on_ray_take_no_callback_and_still_measure(tiny_zoo: zoo.Zoo) -> None:
    asked: list[tuple[str, str]] = []

    def progress(model: str, tower: str) -> measure.Progress:
        asked.append((model, tower))
        return lambda text: None

    results = sorted(bench_sweep.sweep(tiny_zoo, tiny_zoo.models, FAST, runner=OnRay(), progress=progress),
                     key=lambda r: r.tower)  # fmt: skip
    assert [(r.tower, r.error, bool(r.throughput)) for r in results] == [("image", None, True), ("text", None, True)]
    assert asked == []


def test_the_command_tells_the_live_table_and_prints_nothing_of_it_into_a_pipe(
    tiny_zoo: zoo.Zoo, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[tuple[str, float]] = []
    real = LiveTable.status

    def status(self: LiveTable, text: str, since: float) -> None:
        told.append((text, since))
        real(self, text, since)

    monkeypatch.setattr(LiveTable, "status", status)
    monkeypatch.setattr(measure, "enough_runs", lambda runs, settings: len(runs) >= settings.repeats)  # no more
    result = run("bench", "Tiny-s128M", "--device", "cpu", "--batch-size", "2", "--iters", "2", "--repeats", "3",
                 "--warmup", "1", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [row["tower"] for row in json.loads(result.stdout)] == ["image", "text"]  # stdout: the JSON alone
    assert ": warm-up" not in result.stderr and "timed run 1 (" not in result.stderr  # stderr is no terminal here
    steps = [step for step in tower_steps(batch=2, runs=3, iters=2) if step != "clock"]
    assert [text for text, _ in told] == [f"Tiny-s128M {tower} tower: {step}" for tower in ("image", "text")
                                          for step in steps]  # fmt: skip
    image, text = (sorted({since for words, since in told if f" {tower} " in words}) for tower in ("image", "text"))
    assert len(image) == len(text) == 1 and image[0] < text[0]  # each tower's clock starts with it


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_status_line_shows_under_the_table_with_its_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")  # the tests' own environment says "dumb", where rich draws nothing live
    monkeypatch.setenv("COLUMNS", "100")
    drawn: list[Any] = []
    for stderr in (io.StringIO(), Terminal()):
        monkeypatch.setattr(sys, "stderr", stderr)
        with LiveTable(["Model", "Tower"], ()) as live:
            live.add(["ViTamin-S", "image"])
            live.status("ViTamin-S text tower: batch size 32: timed run 2/3 (2 batches)", since=time.monotonic() - 65)
        drawn.append(stderr.getvalue())
    assert drawn[0] == ""  # a pipe: nothing
    assert "ViTamin-S text tower: batch size 32: timed run 2/3 (2 batches)  1:05" in drawn[1]
    with LiveTable(["Model", "Tower"], ()) as live:
        live.status("ViTamin-S text tower: warm-up", since=time.monotonic())
        live.add(["ViTamin-S", "text"])  # the tower's row: its status line goes
        assert live.doing is None
