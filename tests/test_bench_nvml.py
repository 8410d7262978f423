"""On a GPU, NVML says whether other processes computed on it or its clocks were held back; without
`nvidia-ml-py` that goes unchecked and is said once. NVML itself is faked: no GPU here."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import pytest

from vitamin_cli.bench import machine
from vitamin_cli.bench.results import BenchResult
from vitamin_cli.views.results import bench_notes


def fake_nvml(monkeypatch: pytest.MonkeyPatch, pids: list[int], throttle: int) -> None:
    nvml: Any = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda handle: [types.SimpleNamespace(pid=p) for p in pids]
    nvml.nvmlDeviceGetCurrentClocksThrottleReasons = lambda handle: throttle
    monkeypatch.setitem(sys.modules, "pynvml", nvml)


def test_other_processes_on_the_gpu_and_held_back_clocks_are_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml(monkeypatch, [os.getpid()], 0x1)  # only this process; the GPU idle between runs: nothing to say
    assert machine.gpu_reason(0) == (None, True)
    fake_nvml(monkeypatch, [os.getpid(), 4242, 4343], 0x20)  # two others; a thermal slow-down
    reason, checked = machine.gpu_reason(0)
    assert checked and reason is not None
    assert "2 other processes computed on the GPU" in reason and "clocks were held back" in reason
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert machine.gpu_reason(0) == (None, False)


def test_unchecked_gpus_are_said_once() -> None:
    rows = [BenchResult(model=m, aliases=[], architecture="a", tower="image", device="cuda", gpu_name="H100",
                        node=None, node_id=None, dtype="bf16", amp=False, compile=False, channels_last=True,
                        environment={"gpu_checked": False}) for m in ("A", "B")]  # fmt: skip
    notes = bench_notes(rows, None)
    assert sum("not checked" in note for note in notes) == 1 and "nvidia-ml-py" in notes[0]
