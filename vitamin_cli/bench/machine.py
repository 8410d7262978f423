"""What the machine gave a measurement: how much of this process's CPUs other processes used while it was timed
(Linux's `/proc/stat`), its peak resident memory (`VmHWM`), and on a GPU whether other processes ran on it or
its clocks were held back (NVML, through `nvidia-ml-py` when it is installed), so that `vitamin bench` can mark
a number taken on a busy machine instead of printing it as if it were true.

Nothing here imports torch: `bench` calls it around its timed windows, never inside one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BUSY_LIMIT = 0.15  # other processes using more than this share of our CPUs make a measurement noisy
MIN_CPU_SECONDS = 1.0  # timed windows shorter than this (times our CPUs) are too short to judge: 100 ticks
_STAT = Path("/proc/stat")


def _our_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def _busy_seconds(cpus: list[int]) -> float | None:
    """Seconds the CPUs `cpus` have spent busy since boot (every process's), or None where /proc/stat is not."""
    try:
        lines = _STAT.read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{n}" for n in cpus}
    ticks, found = 0, 0
    for line in lines:
        name, *values = line.split() or [""]
        if name in wanted:
            try:  # older kernels give fewer columns: the missing ones count as 0
                user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (values + ["0"] * 8)[:8])
            except ValueError:
                return None
            ticks, found = ticks + user + nice + system + irq + softirq + steal, found + 1
    return ticks / os.sysconf("SC_CLK_TCK") if found == len(wanted) else None  # a CPU not listed: not known


def _our_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Watch:
    """Around each timed window (`with watch:`): the CPU time every process spent on this process's CPUs, and
    this process's own; `others_share()` is the share of the CPU time the work could use in the windows that
    went to other processes (what they took of CPUs the work leaves idle, with fewer threads, is theirs)."""

    cpus: list[int] = field(default_factory=_our_cpus)
    threads: int | None = None  # how many of the CPUs the work uses (torch's threads); None: all of them
    wall: float = 0.0
    busy: float = 0.0
    ours: float = 0.0
    measured: bool = True
    _start: tuple[float | None, float, float] | None = None

    def __enter__(self) -> Watch:
        import time

        self._start = (_busy_seconds(self.cpus), _our_seconds(), time.perf_counter())
        return self

    def __exit__(self, *_: object) -> None:
        import time

        assert self._start is not None
        busy, ours, began = self._start
        now = _busy_seconds(self.cpus)
        if busy is None or now is None:
            self.measured = False
            return
        self.busy += now - busy
        self.ours += _our_seconds() - ours
        self.wall += time.perf_counter() - began

    def others_share(self) -> float | None:
        """Other processes' share of this process's CPUs during the windows (0 to 1); None where not measured, or
        where the windows were too short for the kernel's counters (which tick every 10 ms) to say."""
        if not self.measured or self.wall * len(self.cpus) < MIN_CPU_SECONDS:
            return None
        used = min(self.threads or len(self.cpus), len(self.cpus))
        spare = (len(self.cpus) - used) * self.wall  # CPUs the work leaves idle: others may use them freely
        return min(1.0, max(0.0, (self.busy - self.ours - spare) / (self.wall * used)))


def busy_reason(share: float | None, during: str = "the timed runs") -> str | None:
    """Why a measurement is noisy, when other processes used more than BUSY_LIMIT of its CPUs."""
    if share is None or share <= BUSY_LIMIT:
        return None
    return f"other processes used {share:.0%} of the CPU during {during}"


# ---------------------------------------------------------------------------------------------------
# Peak resident memory (Linux)


def reset_peak_memory() -> bool:
    """Start counting this process's peak resident memory afresh; False where the system cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory_gib() -> float | None:
    """This process's peak resident memory since the last reset (VmHWM), GiB; None where not known."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 2**30
    except (OSError, ValueError, IndexError):
        return None
    return None


# ---------------------------------------------------------------------------------------------------
# The GPU, through NVML


_IDLE_OR_SET = 0x1 | 0x2  # nvmlClocksThrottleReasonGpuIdle, ApplicationsClocksSetting: not a slow-down


def gpu_reason(index: int) -> tuple[str | None, bool]:
    """Why a GPU measurement is noisy (other processes computing on the GPU, clocks held back by power or heat),
    and whether NVML could say (False: `nvidia-ml-py` is not installed or NVML does not answer)."""
    try:
        import pynvml
    except ImportError:
        return None, False
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        others = [p for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid != os.getpid()]
        throttled = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle) & ~_IDLE_OR_SET
    except Exception:  # noqa: BLE001 - NVML's errors are its own class per cause; any means "not known"
        return None, False
    reasons = []
    if others:
        reasons.append(f"{len(others)} other process{'es' * (len(others) > 1)} computed on the GPU")
    if throttled:
        reasons.append(f"its clocks were held back (NVML throttle reasons {throttled:#x})")
    return "; ".join(reasons) if reasons else None, True
