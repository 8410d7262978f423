"""The one pipeline of bench and eval (`vitamin_cli.sweeps`), with a kind of job of its own, and the results files
of both kinds as earlier versions wrote them, which must still resume."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from vitamin_cli import runners, sweeps
from vitamin_cli.bench import results as bench_results
from vitamin_cli.errors import UsageError
from vitamin_cli.eval import results as eval_results


@dataclass
class Square:
    n: int
    square: int | None = None
    error: str | None = None
    node: str | None = None
    node_id: str | None = None
    resumed: bool = False


Job = tuple[int, frozenset[str]]


def square(job: Job, told: list[int] | None = None) -> Square | sweeps.Saved:
    n, done = job
    if sweeps.key_of(n) in done:
        return sweeps.Saved(sweeps.key_of(n))
    if told is not None:
        told.append(n)
    return Square(n, n * n)


KIND: sweeps.Kind[Job, Square] = sweeps.Kind(run=square, failed=lambda job, error: Square(job[0], error=error))
ROWS = sweeps.Rows(
    what="squares",
    ours=lambda row: "square" in row,
    read=lambda row: Square(**{k: row[k] for k in ("n", "square", "error")}),
    key=lambda r: sweeps.key_of(r.n) if r.error is None else None,
    line=lambda r: {"n": r.n, "square": r.square, "error": r.error},
    environment=lambda r: {"node": r.node, "gpu_name": None},
)


class OnTwoNodes(runners.InProcess):
    """Runs each job here, as Ray would on a node; the job of 3 dies with its worker."""

    in_process = False

    def run(self, function: Any, jobs: Any, resources: Any) -> Any:
        for index, job in reversed(list(enumerate(jobs))):  # as they finish: not in the order given
            assert len(job) == 1  # nothing of this process travels
            if job[0][0] == 3:
                yield runners.Finished(index, error="its worker died, and again when tried once more")
            else:
                yield runners.Finished(index, function(*job), node=f"node-{index % 2}", node_id=str(index))


def test_jobs_run_here_with_what_they_take_here_and_saved_keys_are_skipped(tmp_path: Path) -> None:
    out = tmp_path / "squares.jsonl"
    log, saved = sweeps.resume(ROWS, out)
    told: list[int] = []
    jobs = [(n, frozenset(saved)) for n in (1, 2)]
    for _, result in sweeps.run(KIND, jobs, runners.InProcess(), runners.Resources(), saved, lambda job: (told,)):
        log.add(result)
    assert told == [1, 2]
    log, saved = sweeps.resume(ROWS, out)
    assert sorted(saved) == [sweeps.key_of(1), sweeps.key_of(2)]
    jobs = [(n, frozenset(saved)) for n in (1, 2, 3)]
    found = list(sweeps.run(KIND, jobs, runners.InProcess(), runners.Resources(), saved, lambda job: (told,)))
    assert [(i, r.n, r.square, r.resumed) for i, r in found] == [(0, 1, 1, True), (1, 2, 4, True), (2, 3, 9, False)]
    assert told == [1, 2, 3]  # 1 and 2 were not run again
    assert saved[sweeps.key_of(1)].resumed is False  # the saved result itself is left as it was read
    for _, result in found:
        log.add(result)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["environment", "result", "result", "environment", "result"]
    assert [line.get("n") for line in lines] == [None, 1, 2, None, 3]  # the resumed ones not written again


def test_on_another_node_a_result_says_where_and_a_dead_worker_is_its_failure(tmp_path: Path) -> None:
    jobs = [(n, frozenset[str]()) for n in (1, 2, 3)]
    found = dict(sweeps.run(KIND, jobs, OnTwoNodes(), runners.Resources(), here=lambda job: ([],)))
    assert (found[0].node, found[0].node_id, found[1].node) == ("node-0", "0", "node-1")
    assert (found[2].square, found[2].error) == (None, "its worker died, and again when tried once more")
    out = tmp_path / "squares.jsonl"
    log = sweeps.ResultsFile(ROWS, out)
    for index in sorted(found):
        log.add(found[index])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["kind"], line.get("node")) for line in lines] == [
        ("environment", "node-0"), ("result", None), ("environment", "node-1"), ("result", None),
        ("environment", None), ("result", None),
    ]  # fmt: skip
    assert list(sweeps.read_saved(ROWS, out)) == [sweeps.key_of(1), sweeps.key_of(2)]  # a failure is tried again


def test_a_file_of_something_else_is_refused_before_any_work(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"kind": "result", "tower": "image"}\n{"kind": "result", "tower": "text"}\n')
    with pytest.raises(UsageError, match="holds no squares"):
        sweeps.resume(ROWS, other)
    assert sweeps.resume(ROWS, None)[1] == {}


BENCH_ROW: Mapping[str, Any] = {
    "model": "Tiny-s128M", "aliases": [], "architecture": "Tiny", "tower": "image", "device": "cpu",
    "gpu_name": None, "node": "n", "node_id": None, "dtype": "fp32", "amp": False, "compile": False,
    "channels_last": False, "batch_size": 2, "throughput": 10.0, "throughput_min": 9.0, "throughput_max": 11.0,
    "latency_ms": 1.0, "peak_memory_gib": None, "gflops_per_item": None, "tflops": None, "mfu": None,
    "warmup_s": 0.1, "spread": 0.01, "runs": 3, "noisy": False, "noise": None, "busy_share": 0.0,
    "latency_p50_ms": None, "latency_p90_ms": None, "latency_p99_ms": None, "error": None,
}  # fmt: skip


def test_bench_files_of_earlier_versions_resume_by_the_key_they_saved(tmp_path: Path) -> None:
    """A bench line saves its key (a JSON text), made as before: the line is read back under it, one written
    before the fields of spread, noise and latency percentiles were with those fields at their defaults."""
    from vitamin_cli.bench import measure

    key = measure.result_key("net", "image", None, measure.BenchSettings(), ("2.4", "3.0", "1.0"))
    assert json.loads(key)[:3] == ["net", "image", "cpu"] and key == json.dumps(json.loads(key), sort_keys=True)
    out = tmp_path / "bench.jsonl"
    lines = [{"kind": "environment", "node": "n", "gpu_name": None}, {"kind": "result", "key": key, **BENCH_ROW},
             {"kind": "result", "key": None, **BENCH_ROW, "tower": "text"},
             {"kind": "result", "key": "failed", **BENCH_ROW, "error": "OutOfMemoryError"}]  # fmt: skip
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    _, saved = sweeps.resume(bench_results.ROWS, out)
    assert list(saved) == [key] and saved[key].throughput == 10.0 and saved[key].key == key
    older = {k: v for k, v in BENCH_ROW.items() if k not in bench_results.RECORDED_LATER}  # before spreads were
    out.write_text(json.dumps({"kind": "result", "key": key, **older}) + "\n")
    (resumed,) = sweeps.read_saved(bench_results.ROWS, out).values()
    assert (resumed.throughput, resumed.spread, resumed.noisy, resumed.latency_p50_ms) == (10.0, None, False, None)


def test_eval_files_of_earlier_versions_resume_by_a_key_computed_from_their_fields(tmp_path: Path) -> None:
    """An eval line saves no key: it is computed from the fields, those recorded later being None."""
    result = eval_results.TaskResult("Tiny-s1M", "ab" * 32, "imagenet1k", "ImageNet 1k", "rev", "task", "cd" * 32,
                                     "fp32", "cpu", main=50.0)  # fmt: skip
    old = {k: v for k, v in asdict(result).items() if k not in ("architecture_sha256", "classnames_sha256", "resumed")}
    out = tmp_path / "runs.jsonl"
    out.write_text(json.dumps({"kind": "result", **old}) + "\n")
    log, saved = sweeps.resume(eval_results.ROWS, out)
    assert list(saved) == [result.key()] and json.loads(result.key()) == list(result.key_parts())
    log.add(replace(result, task="cars"))
    log.add(replace(result, task="-", status="skipped"))  # not saved
    (_, new) = [json.loads(line) for line in out.read_text().splitlines()]
    assert new["task"] == "cars" and "key" not in new
