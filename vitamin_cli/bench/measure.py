"""Inference throughput of one tower of one model on the local device, measured honestly.

Method: one fixed random input on the device; warm-up (and compilation) timed on its own and left out;
`repeats` timed runs of `iters` batches each, timed with CUDA events on a GPU (wall clock after a
synchronize on a CPU); the median run gives the throughput, the fastest and slowest its spread. An
out-of-memory error (or a kernel that cannot index the batch with 32 bits) backs the batch off
(`vitamin_cli.models.batching`) and the batch actually used is recorded. FLOPs per item are the audit's full
count (attention included); MFU is against a dense matmul roof the tool measures on the same device and dtype.

`measure(job)` is the unit of work: a plain function of plain data, which `bench.sweep` runs in this process
or as a Ray task (bench's job kind of `vitamin_cli.sweeps`). In this process it can take a `Progress` callback,
told what the tower is doing (building, warming up, each timed run) between the timed windows, never inside one.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vitamin_cli import interrupts
from vitamin_cli.bench.results import BenchResult
from vitamin_cli.models.batching import is_batch_failure, with_backoff
from vitamin_cli.models.device import check, default_dtype, empty_cache, gpu_name, on_device, torch_dtype
from vitamin_cli.sweeps import Saved, key_of
from vitamin_cli.zoo import Model, Zoo

TOWERS = ("image", "text")
MAX_BATCH = 1024  # --batch-size auto doubles up to this
VOCAB_SIZE = 49408

Progress = Callable[[str], None]
"""Told what a tower is doing, in a few words ("batch size 8: timed run 2/3"), before each step; it is never
called inside a timed window, so that it cannot change the numbers."""


@dataclass(frozen=True)
class BenchSettings:
    """How `vitamin bench` measures; `default_settings` gives a device's defaults."""

    device: str = "cpu"
    dtype: str = "fp32"
    amp: bool = False  # autocast to dtype instead of casting the weights
    batch_size: int | None = None  # None: the device's default for the tower
    auto_batch: bool = False  # the largest batch that fits and still helps
    compile: bool = False
    compile_mode: str | None = None
    channels_last: bool = False  # image towers only
    warmup: int = 3
    iters: int = 10
    repeats: int = 3  # the fewest timed runs; more until their spread is under SPREAD_TARGET (`enough_runs`)
    latency: bool = False  # also time single items (batch 1), call by call


def default_settings(device: str, **given: Any) -> BenchSettings:
    """The defaults of `vitamin bench` for a device, with what the user gave on top."""
    cuda = device.startswith("cuda")
    base = BenchSettings(
        device=device,
        dtype=default_dtype(device),
        channels_last=cuda,
        warmup=3 if cuda else 1,
        iters=10 if cuda else 2,
        repeats=3,
    )
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def default_batch(settings: BenchSettings, tower: str) -> int:
    if settings.batch_size is not None:
        return settings.batch_size
    if settings.device.startswith("cuda"):
        return 256 if tower == "image" else 1024
    return 8 if tower == "image" else 32


# ---------------------------------------------------------------------------------------------------
# One measurement


TICK_S = 1e-9  # a run the clock saw take no time (too fast for it) counts as one tick, never a division by 0
SPREAD_TARGET = 0.05  # timed runs go on until their spread (IQR over median) is under this...
MAX_RUNS_FACTOR = 2  # ...or `repeats` times this many runs were made...
BUDGET_S = {"cuda": 15.0, "cpu": 60.0}  # ...or this many seconds of timed runs were spent, per batch size


@dataclass
class Timing:
    batch_size: int
    iters: int
    runs_s: list[float]  # seconds per run of `iters` batches
    warmup_s: float
    peak_memory_gib: float | None
    busy_share: float | None = None  # other processes' share of this process's CPUs in the timed runs

    def rates(self) -> list[float]:
        """Items per second of each run, slowest first."""
        return sorted(self.batch_size * self.iters / max(s, TICK_S) for s in self.runs_s)

    def throughput(self) -> float:
        return statistics.median(self.rates())

    def spread(self) -> float:
        return relative_spread(self.rates())


def relative_spread(values: Sequence[float]) -> float:
    """The interquartile range of `values` over their median (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    low, _, high = statistics.quantiles(values, n=4, method="inclusive")
    return (high - low) / statistics.median(values)


def enough_runs(runs_s: Sequence[float], settings: BenchSettings) -> bool:
    """Whether timed runs of these durations decide: at least `repeats` of them, and their spread under
    SPREAD_TARGET, or MAX_RUNS_FACTOR times `repeats` made, or the device's budget of seconds spent."""
    if len(runs_s) < settings.repeats:
        return False
    budget = BUDGET_S["cuda" if settings.device.startswith("cuda") else "cpu"]
    return (
        (len(runs_s) >= 2 and relative_spread([1 / max(s, TICK_S) for s in runs_s]) <= SPREAD_TARGET)
        or len(runs_s) >= settings.repeats * MAX_RUNS_FACTOR
        or sum(runs_s) >= budget
    )


def time_batches(
    step: Callable[[], Any],
    settings: BenchSettings,
    batch_size: int,
    progress: Progress | None = None,
    clock: Callable[[], float] | None = None,
) -> Timing:
    """Warm up, then time runs of `iters` calls of `step` (one batch each) until they decide (`enough_runs`),
    watching what other processes took of the CPUs meanwhile; `progress` is told of the warm-up and of each
    run before it starts, outside the timed window."""
    import torch

    from vitamin_cli.bench import machine
    from vitamin_cli.bench.machine import Watch

    cuda = settings.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(settings.device)
    cpu_memory = not cuda and machine.reset_peak_memory()  # the model's memory and this batch's, not others'

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(settings.device)

    if progress is not None:
        progress(f"batch size {batch_size}: {'compiling and warming up' if settings.compile else 'warm-up'}")
    start = time.perf_counter()
    for _ in range(max(settings.warmup, 1)):  # the first call compiles, when compiling
        step()
    sync()
    warmup_s = time.perf_counter() - start
    runs: list[float] = []
    watch = Watch(threads=torch.get_num_threads())
    while not enough_runs(runs, settings):
        interrupts.check()  # compiling starts worker processes, which can swallow a Ctrl-C
        if progress is not None:  # before the window opens: the last one was closed by a sync
            batches = f"{settings.iters} batch{'es' * (settings.iters != 1)}"
            progress(f"batch size {batch_size}: timed run {len(runs) + 1} ({batches})")
        with watch:
            runs.append(_timed_run(step, settings, clock or time.perf_counter))
    peak = torch.cuda.max_memory_allocated(settings.device) / 2**30 if cuda else None
    peak = machine.peak_memory_gib() if cpu_memory else peak
    return Timing(batch_size, settings.iters, runs, warmup_s, peak, watch.others_share())


def _timed_run(step: Callable[[], Any], settings: BenchSettings, clock: Callable[[], float]) -> float:
    """Seconds for `iters` calls of `step`: between CUDA events on a GPU, which time the queued work rather than
    its launch; by the clock on the CPU."""
    import torch

    if settings.device.startswith("cuda"):
        begin = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        begin.record()
        for _ in range(settings.iters):
            step()
        end.record()
        torch.cuda.synchronize(settings.device)
        return float(begin.elapsed_time(end)) / 1e3  # milliseconds, typed Any
    begin_s = clock()
    for _ in range(settings.iters):
        step()
    return clock() - begin_s


def largest_useful_batch(attempt: Callable[[int], Timing], settings: BenchSettings, start: int) -> Timing:
    """--batch-size auto: double the batch while it fits and raises throughput by 3% or more."""
    best, _ = with_backoff(attempt, start)
    size = best.batch_size
    while size < MAX_BATCH:
        size *= 2
        try:
            trial = attempt(size)
        except Exception as err:
            if is_batch_failure(err):
                break
            raise
        if trial.throughput() < best.throughput() * 1.03:
            break
        best = trial
    return best


# ---------------------------------------------------------------------------------------------------
# A tower, ready to run


def tower_step(
    model: Any, cfg: dict[str, Any], tower: str, settings: BenchSettings
) -> Callable[[int], Callable[[], Any]]:
    """For a batch size, a function that runs the tower once on one fixed on-device input."""
    import torch

    from vitamin_cli.models import arch

    dtype = torch_dtype(settings.dtype)
    encode = model if tower == "image" else model.encode_text  # an image tower is prepared alone
    if settings.compile:
        # static shapes: one graph per batch size, as a user would deploy it
        encode = torch.compile(encode, mode=settings.compile_mode, dynamic=False)

    def for_batch(batch: int) -> Callable[[], Any]:
        if tower == "image":
            size = cfg["vision_cfg"]["image_size"]
            x = torch.randn(
                batch, 3, size, size, device=settings.device, dtype=torch.float32 if settings.amp else dtype
            )
            if settings.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        else:
            length = cfg["text_cfg"].get("context_length", arch.CONTEXT_LENGTH)
            x = torch.randint(0, cfg["text_cfg"].get("vocab_size", VOCAB_SIZE), (batch, length), device=settings.device)

        def step() -> Any:
            with torch.inference_mode():
                if settings.amp:
                    with torch.autocast(device_type=settings.device.split(":")[0], dtype=dtype):
                        return encode(x)
                return encode(x)

        return step

    return for_batch


def prepare(cfg: dict[str, Any], tower: str, settings: BenchSettings, checkpoint: Any = None) -> Any:
    """The tower on the device: the image tower alone, or the model without its image tower for the text
    tower (so that peak memory is the tower's own); its pulled weights if given (else random ones), cast to
    the dtype (unless autocast), channels_last for an image tower."""
    import torch

    from vitamin_cli.models import arch, loading

    model = arch.build(cfg, device="cpu" if checkpoint is not None else settings.device)
    if checkpoint is not None:
        loading.load_into(model, loading.read_state_dict(checkpoint), str(checkpoint))
    if tower == "image":
        model = model.visual
    else:
        model.visual = torch.nn.Identity()
    model = model.to(settings.device)
    empty_cache(settings.device)
    if not settings.amp:
        model = model.to(dtype=torch_dtype(settings.dtype))
    if tower == "image" and settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


# ---------------------------------------------------------------------------------------------------
# The job


# Published dense peaks, TFLOP/s, of GPUs vitamin knows (the vendor's data sheets, without sparsity): a roof is
# never below them, so that a matmul measured on a busy GPU cannot make an MFU above 100%.
PUBLISHED_TFLOPS = {
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "fp32": 51.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},
}


@dataclass(frozen=True)
class Roof:
    """The 100% of MFU: the best dense matmul throughput measured on this device and dtype (or a GPU's
    published peak, when larger), and whether the measurement it comes from was noisy."""

    tflops: float
    noisy: bool = False


def published_tflops(gpu: str | None, dtype: str) -> float:
    for name, peaks in PUBLISHED_TFLOPS.items():
        if gpu is not None and all(word in gpu for word in name.split()):
            return peaks.get(dtype, 0.0)
    return 0.0


def matmul_roof(device: str, dtype: str) -> tuple[float, Timing]:
    """Dense matmul throughput of this device and dtype, TFLOP/s: the best of runs timed by the same rules as a
    tower's, and the timing (its spread and busy share say whether to trust it)."""
    import torch

    cuda = device.startswith("cuda")
    n = 8192 if cuda else 1024
    with on_device(device):
        a = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
        b = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
        # runs long enough for the CPU counters to judge them (`machine.MIN_CPU_SECONDS`)
        settings = BenchSettings(device=device, warmup=2, iters=10 if cuda else 25, repeats=5)
        with torch.inference_mode():
            timing = time_batches(lambda: a @ b, settings, 1)
    return 2 * n**3 * max(timing.rates()) / 1e12, timing


@functools.lru_cache(maxsize=8)
def roof_tflops(device: str, dtype: str, fresh: bool = False) -> Roof:
    """The roof of a device, dtype and thread count: kept in vitamin's memo once measured on a quiet machine
    (`fresh` measures again, and keeps the larger), else measured here, once per process."""
    import torch

    from vitamin_cli.bench.machine import BUSY_LIMIT

    key = f"{device_model(device)}|{dtype}|{torch.get_num_threads()} threads"
    kept = _kept_roofs().get(key)
    if kept is not None and not fresh:
        return Roof(kept)
    measured, timing = matmul_roof(device, dtype)
    # kept only when measured quiet: a share not measured (windows too short to judge) is not known to be quiet
    noisy = timing.busy_share is None or timing.busy_share > BUSY_LIMIT or timing.spread() > SPREAD_TARGET
    best = max(measured, kept or 0.0, published_tflops(gpu_name(device), dtype))
    if not noisy:
        _keep_roof(key, best)
    return Roof(best, noisy)


def device_model(device: str) -> str:
    """The GPU's name, or the CPU's model (Linux's /proc/cpuinfo; the platform's word elsewhere)."""
    import platform

    gpu = gpu_name(device)
    if gpu is not None:
        return gpu
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _roofs_path() -> Path:
    from vitamin_cli.files import memo_dir

    return memo_dir() / "roofs.json"


def _kept_roofs() -> dict[str, float]:
    import json

    from vitamin_cli.files import read_memo

    data = read_memo(_roofs_path(), limit=1 << 20)
    try:
        found = json.loads(data) if data is not None else {}
    except (ValueError, RecursionError):
        return {}
    if not isinstance(found, dict):
        return {}
    # A TFLOP/s figure no device reaches (1e5: fifty times the fastest GPU's dense peak) is a damaged entry
    return {k: float(v) for k, v in found.items() if type(v) in (int, float) and 0 < v < 1e5}


def _keep_roof(key: str, tflops: float) -> None:
    """Best effort: a memo that cannot be written only costs the next run a measurement."""
    import json

    from vitamin_cli.files import write_atomic

    try:
        write_atomic(_roofs_path(), json.dumps({**_kept_roofs(), key: tflops}))
    except OSError:
        pass


@dataclass(frozen=True)
class BenchJob:
    """One tower of one architecture (or of one pulled checkpoint), for `measure`: in this process, or as a Ray
    task on another machine. Plain data: everything that depends on the device is found out where it runs."""

    zoo_path: str
    model: str  # the first model of the architecture; the others share its result
    tower: str
    settings: BenchSettings
    checkpoint: str | None = None  # the pulled file, with --weights
    gflops_per_item: float | None = None  # the audit's full count (computed where the zoo is)
    done: frozenset[str] = frozenset()  # keys of results a rerun with -o FILE skips


def measure(job: BenchJob, progress: Progress | None = None) -> BenchResult | Saved:
    """Measure one tower: the device check, the matmul roof and the environment record are all made here,
    on the machine that measures; a tower whose key is in `job.done` is not measured (`Saved`). `progress`, in
    this process only, is told what the tower is doing."""
    import torch

    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    registry = zoo.load(job.zoo_path)
    model = registry.get(job.model)
    settings = job.settings
    check(settings.device, settings.dtype, settings.amp)
    roof = roof_tflops(settings.device, settings.dtype)
    env = environment(settings, roof.tflops)
    versions = (env["torch"], env["open_clip"], env["timm"])
    key = result_key(_identity(registry, model, job.checkpoint), job.tower, env["gpu_name"], settings, versions)
    if key in job.done:
        return Saved(key)
    result = BenchResult.started(model, job.tower, settings, env)
    try:
        if progress is not None:
            progress("loading the weights" if job.checkpoint else "building the tower")
        with on_device(settings.device):
            _measure(result, arch.config(registry, model), job.tower, settings, job.checkpoint, progress=progress)
    except Exception as err:  # noqa: BLE001 - recorded; the sweep goes on
        result.error = _said(err)
    if settings.compile:
        torch.compiler.reset()  # each model compiles afresh, never against a recompile limit
    empty_cache(settings.device)
    _add_flops(result, job.gflops_per_item, roof)
    if settings.device.startswith("cuda") and result.error is None:
        env["gpu_checked"] = _check_gpu(result, settings.device)
    result.key, result.environment = key, env
    return result


def _said(err: Exception) -> str:
    """A failed measurement in one line: vitamin's own message, or the library's error with its kind (torch's
    `OutOfMemoryError: ...`)."""
    from vitamin_cli.errors import VitaminError

    if isinstance(err, VitaminError):
        return err.message[:300]
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]


def _identity(registry: Zoo, model: Model, checkpoint: str | None) -> str:
    """What was measured: the architecture's config as open_clip builds it (`arch.fingerprint`: the zoo's entry,
    or open_clip's own config of the installed version), and with --weights the checkpoint file's blob as well."""
    from vitamin_cli.models import arch

    network = arch.fingerprint(arch.config(registry, model))
    return network if checkpoint is None else f"{network} {model.name} {Path(checkpoint).resolve().name}"


def result_key(
    measured: str, tower: str, gpu: str | None, settings: BenchSettings, versions: Sequence[str] = ()
) -> str:
    """What makes two measurements the same: the network (or checkpoint), the tower, the GPU, the settings and
    the versions of torch, open_clip and timm that ran it. A rerun with the same -o FILE skips a key it holds;
    on another GPU, or after an upgrade, it measures again."""
    chosen = [(k, v) for k, v in sorted(vars(settings).items()) if k != "latency" or v]  # keys saved before stay
    return key_of(measured, tower, gpu or "cpu", chosen, list(versions))


def _measure(
    result: BenchResult,
    cfg: dict[str, Any],
    tower: str,
    settings: BenchSettings,
    checkpoint: Any = None,
    progress: Progress | None = None,
) -> None:
    from vitamin_cli.bench import machine

    model = prepare(cfg, tower, settings, checkpoint)
    for_batch = tower_step(model, cfg, tower, settings)
    settings = replace(settings, channels_last=settings.channels_last and tower == "image")

    def attempt(batch: int) -> Timing:
        return time_batches(for_batch(batch), settings, batch, progress)

    start = default_batch(settings, tower)
    timing = largest_useful_batch(attempt, settings, start) if settings.auto_batch else with_backoff(attempt, start)[0]
    rates = timing.rates()
    result.batch_size = timing.batch_size
    result.throughput = timing.throughput()
    result.throughput_min, result.throughput_max = rates[0], rates[-1]
    result.latency_ms = statistics.median(timing.runs_s) / settings.iters * 1e3
    result.peak_memory_gib = timing.peak_memory_gib
    result.warmup_s = timing.warmup_s
    result.spread = timing.spread() if len(timing.runs_s) >= 2 else None  # one run has no spread to tell
    result.runs, result.busy_share = len(timing.runs_s), timing.busy_share
    _mark(result, machine.busy_reason(timing.busy_share))
    if timing.spread() > SPREAD_TARGET:
        _mark(result, f"the timed runs spread {timing.spread():.0%} (target {SPREAD_TARGET:.0%}) after "
                      f"{len(timing.runs_s)} runs")  # fmt: skip
    if settings.latency:
        _latency(result, for_batch(1), settings, progress)


def _mark(result: BenchResult, reason: str | None) -> None:
    """The result is noisy, for this reason (added to any other)."""
    if reason is not None and reason not in (result.noise or ""):
        result.noisy, result.noise = True, reason if result.noise is None else f"{result.noise}; {reason}"


LATENCY_CALLS = 10  # single calls per timed run of --latency


def _latency(result: BenchResult, step: Callable[[], Any], settings: BenchSettings, progress: Progress | None) -> None:
    """--latency: one item at a time, each call timed alone (synchronized on a GPU), in runs of LATENCY_CALLS
    until the runs' medians decide (`enough_runs`); the percentiles of every call."""
    import torch

    from vitamin_cli.bench import machine

    one = replace(settings, iters=1)
    if progress is not None:
        progress("batch size 1: latency")
    for _ in range(max(settings.warmup, 1)):
        step()
    calls: list[float] = []
    medians: list[float] = []
    watch = machine.Watch(threads=torch.get_num_threads())
    while not enough_runs(medians, settings):
        interrupts.check()
        with watch:
            times = [_timed_run(step, one, time.perf_counter) for _ in range(LATENCY_CALLS)]
        calls += times
        medians.append(statistics.median(times))
    p = statistics.quantiles(calls, n=100, method="inclusive")
    result.latency_p50_ms, result.latency_p90_ms, result.latency_p99_ms = p[49] * 1e3, p[89] * 1e3, p[98] * 1e3
    _mark(result, machine.busy_reason(watch.others_share(), "the batch-1 calls"))


def _check_gpu(result: BenchResult, device: str) -> bool:
    """Mark the result when NVML says other processes used the GPU or its clocks were held back; whether NVML
    could say (the command notes once when it could not)."""
    import torch

    from vitamin_cli.bench import machine

    reason, checked = machine.gpu_reason(torch.device(device).index or 0)
    _mark(result, reason)
    return checked


def _add_flops(result: BenchResult, gflops: float | None, roof: Roof) -> None:
    """TFLOP/s and MFU. An MFU above 100% is impossible: the roof is measured again, once; still above, the MFU
    is left out (null, "-") and the result marked noisy, never shown capped."""
    if gflops is None or result.throughput is None:
        return
    result.gflops_per_item = gflops
    result.tflops = gflops * result.throughput / 1e3
    if result.tflops > roof.tflops:
        roof = roof_tflops(result.device, result.dtype, fresh=True)
    if result.tflops <= roof.tflops:
        result.mfu = result.tflops / roof.tflops
        return
    how = "measured on a busy machine" if roof.noisy else "measured twice"
    _mark(result, f"{result.tflops:.3g} TFLOP/s is above the matmul roof of {roof.tflops:.3g} TFLOP/s ({how}), "
                  "which cannot be; MFU left out")  # fmt: skip


def environment(settings: BenchSettings, roof: float | None) -> dict[str, Any]:
    """What the results were measured with, for `-o FILE`."""
    import platform
    import subprocess
    from importlib import metadata

    import torch

    driver = None
    if settings.device.startswith("cuda"):
        try:
            driver = (
                subprocess.run(
                    ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                    check=False,
                )
                .stdout.strip()
                .splitlines()[0]
            )
        except (OSError, IndexError, subprocess.SubprocessError):
            driver = None
    import socket

    return {
        "node": socket.gethostname(),
        "device": settings.device,
        "gpu_name": gpu_name(settings.device),
        "cuda": None if torch.version.cuda is None else str(torch.version.cuda),
        "driver": driver,
        "torch": str(torch.__version__),  # a TorchVersion would make the reader import torch to unpickle it
        "open_clip": metadata.version("open_clip_torch"),
        "timm": metadata.version("timm"),
        "python": platform.python_version(),
        "matmul_roof_tflops": roof,
        "dtype": settings.dtype,
        "settings": {k: v for k, v in vars(settings).items()},
    }
