"""`vitamin bench` tells a number it can stand behind from one it cannot: timed runs go on until they agree
(or a bound is reached), a busy machine and a wide spread mark the row noisy and say why, an MFU above 100% is
never shown, batch-1 latency has its percentiles, and a rerun says what it reused. None of it is timed: clocks
and the machine's counters are faked where the rule is the point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Run, tiny_model, tiny_zoo_text

from vitamin_cli import zoo
from vitamin_cli.bench import machine, measure
from vitamin_cli.bench import sweep as bench_sweep

FAST = measure.BenchSettings(device="cpu", batch_size=2, warmup=1, iters=1, repeats=3)


def fake_clock(durations: list[float]) -> Iterator[float]:
    """Readings of a clock whose timed runs (two readings each) last `durations`."""
    now = 0.0
    for duration in durations:
        yield now
        now += duration
        yield now


@pytest.mark.parametrize(
    ("durations", "runs"),
    [([1.0, 1.01, 0.99, 5.0], 3),  # three that agree: enough
     ([1.0, 2.0, 1.0, 1.0, 1.0, 9.0], 5),  # one wide run: more, until the quartiles agree
     ([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0], 6),  # never agreeing: twice the runs asked for, no more
     ([30.0, 15.0, 20.0, 30.0, 30.0, 30.0], 3)],  # 65 s of CPU runs: the budget is spent
)  # fmt: skip
def test_timed_runs_go_on_until_they_agree_or_a_bound_is_reached(durations: list[float], runs: int) -> None:
    readings = fake_clock(durations)
    timing = measure.time_batches(lambda: None, FAST, 2, clock=lambda: next(readings))
    assert timing.runs_s == pytest.approx(durations[:runs])
    assert timing.spread() == measure.relative_spread(timing.rates())


def test_the_share_other_processes_took_is_measured_from_the_cpus_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = iter([100.0, 103.0])  # all processes' busy seconds on our 2 CPUs, before and after the window
    monkeypatch.setattr(machine, "_busy_seconds", lambda cpus: next(busy))
    ours = iter([10.0, 11.0])  # ours: 1 of the 3 busy seconds
    monkeypatch.setattr(machine, "_our_seconds", lambda: next(ours))
    watch = machine.Watch(cpus=[0, 1])
    with watch:
        pass
    watch.wall = 2.0  # a window of 2 s on 2 CPUs: 4 CPU-seconds, 2 of them others'
    assert watch.others_share() == pytest.approx(0.5)
    assert machine.busy_reason(0.5) == "other processes used 50% of the CPU during the timed runs"
    assert machine.busy_reason(0.1) is None and machine.busy_reason(None) is None
    watch.wall = 0.2  # 0.4 CPU-seconds: 40 ticks of the counters, too few to say
    assert watch.others_share() is None


@pytest.fixture
def tiny_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zoo.Zoo:
    path = tmp_path / "tiny-zoo.yaml"
    path.write_text(tiny_zoo_text([tiny_model("Tiny-s128M", samples="128M")]))
    monkeypatch.setenv("VITAMIN_ZOO", str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    roof = measure.roof_tflops  # the real one, whatever a test puts in its place
    roof.cache_clear()
    yield zoo.load(path)
    roof.cache_clear()


def busy_machine(monkeypatch: pytest.MonkeyPatch, share: float) -> None:
    """Every timed window sees other processes take `share` of the CPUs."""

    def exit_(self: machine.Watch, *_: object) -> None:
        self.wall += 1.0
        self.busy += len(self.cpus) * share
        self.measured = True

    monkeypatch.setattr(machine.Watch, "__enter__", lambda self: self)
    monkeypatch.setattr(machine.Watch, "__exit__", exit_)


@pytest.mark.slow  # it keeps both cores busy for seconds on purpose
def test_a_busy_machine_marks_the_row_noisy_and_says_why(
    tiny_zoo: zoo.Zoo, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy_machine(monkeypatch, 0.55)
    monkeypatch.setattr(bench_sweep, "_flops_per_item", lambda registry, models: {})  # no FLOPs counted: no MFU
    args = ("bench", "Tiny-s128M", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--warmup", "1")
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert "~" in result.stdout and "~ marks a number not to be believed" in result.stderr
    assert "Tiny-s128M image: other processes used 55% of the CPU during the timed runs" in result.stderr
    rows = json.loads(run(*args, "--tower", "text", "--json").stdout)
    assert all(r["noisy"] and r["busy_share"] == pytest.approx(0.55) and r["runs"] >= 3 for r in rows)
    busy_machine(monkeypatch, 0.0)
    quiet = json.loads(run(*args, "--tower", "text", "--json").stdout)
    assert quiet[0]["busy_share"] == 0.0 and "other processes" not in (quiet[0]["noise"] or "")


def roof_measured(monkeypatch: pytest.MonkeyPatch, tflops: float, share: float) -> list[int]:
    """The matmul roof measures `tflops`, with other processes taking `share` of the CPU; how often it ran."""
    calls: list[int] = []

    def measured(device: str, dtype: str) -> tuple[float, measure.Timing]:
        calls.append(1)
        return tflops, measure.Timing(1, 1, [1.0, 1.0, 1.0], 0.0, None, share)

    monkeypatch.setattr(measure, "matmul_roof", measured)
    return calls


def test_an_mfu_above_100_percent_is_never_shown_and_a_noisy_roof_is_not_kept(
    tiny_zoo: zoo.Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = roof_measured(monkeypatch, 1e-9, 0.6)  # a roof far below any tower: measured on a busy machine
    (result,) = bench_sweep.sweep(tiny_zoo, tiny_zoo.models, FAST, ("image",))
    assert result.tflops and result.tflops > 1e-9
    assert result.mfu is None and result.noisy and "above the matmul roof" in (result.noise or "")
    assert "measured on a busy machine" in (result.noise or "")
    assert len(calls) == 2  # measured again once before the MFU was left out
    assert not (Path(tiny_zoo.path).parent / "xdg" / "vitamin" / "roofs.json").exists()

    measure.roof_tflops.cache_clear()
    calls = roof_measured(monkeypatch, 1e4, 0.0)  # a quiet roof: kept, and used by the next process
    (result,) = bench_sweep.sweep(tiny_zoo, tiny_zoo.models, FAST, ("image",))
    assert result.mfu is not None and 0 < result.mfu <= 1 and "roof" not in (result.noise or "")
    measure.roof_tflops.cache_clear()
    assert measure.roof_tflops("cpu", "fp32").tflops == 1e4 and len(calls) == 1


def test_latency_percentiles_and_a_rerun_says_what_it_reused(
    tiny_zoo: zoo.Zoo, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(measure, "SPREAD_TARGET", 10.0)  # a tiny model's runs spread widely: noisy, measured again
    out = tmp_path / "bench.jsonl"
    args = ("bench", "Tiny-s128M", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--latency", "-o", str(out))
    first = run(*args, "--json")
    assert first.exit_code == 0, first.stderr
    for row in json.loads(first.stdout):
        assert 0 < row["latency_p50_ms"] <= row["latency_p90_ms"] <= row["latency_p99_ms"]
        assert row["peak_memory_gib"] > 0.01  # on the CPU: the process's peak resident memory
    again = run(*args)
    assert f"skipped 2 results already in {out} (same key); delete their lines to measure again" in again.stderr
    assert "p50/p99 ms" in again.stdout


def test_what_a_review_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spread needs two runs; a busy share counts only the CPUs the work can use; a damaged roofs memo is
    ignored; a noisy result kept in -o FILE says how to measure it again; a latency cell never in scientific
    notation."""
    from vitamin_cli.bench import results
    from vitamin_cli.views.results import _ms, bench_notes

    one = measure.BenchSettings(device="cpu", repeats=1)
    assert not measure.enough_runs([1.0], one) and measure.enough_runs([1.0, 1.01], one)
    busy = iter([100.0, 102.0])  # another process kept one of our 2 CPUs busy for the whole 2 s window
    monkeypatch.setattr(machine, "_busy_seconds", lambda cpus: next(busy))
    monkeypatch.setattr(machine, "_our_seconds", lambda: 0.0)
    watch = machine.Watch(cpus=[0, 1], threads=1)  # the work uses one thread: the other CPU is theirs to use
    with watch:
        pass
    watch.wall = 2.0
    assert watch.others_share() == 0.0
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "vitamin").mkdir()
    for damaged in ("[" * 100_000, '{"cpu|fp32|2 threads": true}', '{"cpu|fp32|2 threads": 9999999}'):
        (tmp_path / "vitamin" / "roofs.json").write_text(damaged)
        assert measure._kept_roofs() == {}
    noisy = measure.BenchResult.started(zoo.load().models[0], "image", FAST, {})
    noisy.key, noisy.noisy, noisy.resumed = "k", True, True
    assert results.ROWS.key(noisy) == "k"  # kept, marked: a rerun shows it with its mark, and says how to redo it
    assert "delete their lines from runs.jsonl first" in bench_notes([noisy], Path("runs.jsonl"))[-2]
    assert [_ms(v) for v in (0.456, 45.6, 456.7, 4567.0, None)] == ["0.46", "45.6", "457", "4,567", "-"]
