"""Inference throughput of the zoo's image and text towers on the local device, measured honestly.

Method: one fixed random input on the device; warm-up (and compilation) timed on its own and left out;
`repeats` timed runs of `iters` batches each, timed with CUDA events on a GPU (wall clock after a
synchronize on a CPU); the median run gives the throughput, the fastest and slowest its spread. An
out-of-memory error (or a kernel that cannot index the batch with 32 bits) backs the batch off in timm's
steps (`decay_batch_step`) and the batch actually used is recorded. FLOPs per item are the audit's full count (attention
included); MFU is against a dense matmul roof the tool measures on the same device and dtype.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vitamin_cli import interrupts
from vitamin_cli.errors import UsageError
from vitamin_cli.precision import torch_dtype
from vitamin_cli.zoo import Model, Zoo

TOWERS = ("image", "text")
MAX_BATCH = 1024  # --batch-size auto doubles up to this
VOCAB_SIZE = 49408


@dataclass(frozen=True)
class Settings:
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
    repeats: int = 3


def default_settings(device: str, **given: Any) -> Settings:
    """The defaults of `vitamin bench` for a device, with what the user gave on top."""
    cuda = device.startswith("cuda")
    base = Settings(
        device=device,
        dtype="bf16" if cuda else "fp32",
        channels_last=cuda,
        warmup=3 if cuda else 1,
        iters=10 if cuda else 2,
        repeats=3,
    )
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def default_batch(settings: Settings, tower: str) -> int:
    if settings.batch_size is not None:
        return settings.batch_size
    if settings.device.startswith("cuda"):
        return 256 if tower == "image" else 1024
    return 8 if tower == "image" else 32


def check_device_name(device: object) -> None:
    """cpu, cuda or cuda:N; anything else is refused before torch sees it."""
    import re

    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:[0-9]{1,3})?", device):
        raise UsageError(f"unknown device {str(device)[:40]!r}", hint="use cpu, cuda or cuda:N")


def check_device(settings: Settings) -> None:
    """Refuse what the device cannot do, before anything is built."""
    import torch

    check_device_name(settings.device)
    if settings.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda, but this machine has no CUDA device", hint="use --device cpu")
        index = torch.device(settings.device).index or 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"no {settings.device}: this machine has {torch.cuda.device_count()} CUDA devices")
        if settings.dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise UsageError("this GPU has no bf16", hint="use --dtype fp16")
    elif settings.dtype == "fp16":
        raise UsageError("fp16 is not a CPU inference type", hint="use --dtype fp32 or bf16 on the CPU")
    if settings.amp and settings.dtype == "fp32":
        raise UsageError("--amp autocasts to a lower precision: use it with --dtype bf16 or fp16")


# A field of Result kept apart from its JSON object (and so from a results line); `--tune` adds `tried`.
APART = {"apart": True}


@dataclass
class Result:
    """One model's tower on one device; `vitamin bench --json` prints these fields (docs/json.md)."""

    model: str
    aliases: list[str]
    architecture: str
    tower: str
    device: str
    gpu_name: str | None
    node: str | None  # host name, with --ray
    node_id: str | None  # Ray's node id; null without Ray
    dtype: str
    amp: bool
    compile: bool
    channels_last: bool
    batch_size: int | None = None
    throughput: float | None = None  # items per second, the median run
    throughput_min: float | None = None
    throughput_max: float | None = None
    latency_ms: float | None = None  # per batch, the median run
    peak_memory_gib: float | None = None
    gflops_per_item: float | None = None
    tflops: float | None = None
    mfu: float | None = None
    warmup_s: float | None = None
    error: str | None = None
    tried: list[dict[str, Any]] = field(default_factory=list, repr=False, metadata=APART)  # --tune's attempts
    resumed: bool = field(default=False, repr=False, metadata=APART)  # read back from -o FILE, not measured now

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("apart")}
        if self.tried:
            data["tried"] = self.tried
        return data


def is_batch_failure(err: BaseException) -> bool:
    """Out of memory (GPU or CPU), or past 32-bit indexing: a smaller batch may work."""
    import torch

    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err).lower()
    signs = ("out of memory", "not enough memory", "32-bit", "32bit", "int_max", "canuse32bitindexmath")
    return isinstance(err, RuntimeError) and any(sign in text for sign in signs)


# ---------------------------------------------------------------------------------------------------
# One measurement


@dataclass
class Timing:
    batch_size: int
    iters: int
    runs_s: list[float]  # seconds per run of `iters` batches
    warmup_s: float
    peak_memory_gib: float | None

    def rates(self) -> list[float]:
        """Items per second of each run, slowest first."""
        return sorted(self.batch_size * self.iters / s for s in self.runs_s)

    def throughput(self) -> float:
        return statistics.median(self.rates())


def time_batches(step: Callable[[], Any], settings: Settings, batch_size: int) -> Timing:
    """Warm up, then time `repeats` runs of `iters` calls of `step` (one batch each)."""
    import torch

    cuda = settings.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(settings.device)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(settings.device)

    start = time.perf_counter()
    for _ in range(max(settings.warmup, 1)):  # the first call compiles, when compiling
        step()
    sync()
    warmup_s = time.perf_counter() - start
    runs = []
    for _ in range(settings.repeats):
        interrupts.check()  # compiling starts worker processes, which can swallow a Ctrl-C
        if cuda:
            begin = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            begin.record()
            for _ in range(settings.iters):
                step()
            end.record()
            sync()
            runs.append(begin.elapsed_time(end) / 1e3)
        else:
            begin_s = time.perf_counter()
            for _ in range(settings.iters):
                step()
            runs.append(time.perf_counter() - begin_s)
    peak = torch.cuda.max_memory_allocated(settings.device) / 2**30 if cuda else None
    return Timing(batch_size, settings.iters, runs, warmup_s, peak)


def with_backoff(attempt: Callable[[int], Timing], batch_size: int) -> Timing:
    """Run `attempt(batch)`; on an out-of-memory or indexing failure retry with the next smaller step."""
    import torch
    from timm.utils.decay_batch import decay_batch_step

    size = batch_size
    while True:
        try:
            return attempt(size)
        except Exception as err:
            if not is_batch_failure(err) or size <= 1:
                raise
        # outside the except block: its traceback no longer holds the failed batch's tensors
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        size = decay_batch_step(size)  # type: ignore[no-untyped-call]


def largest_useful_batch(attempt: Callable[[int], Timing], settings: Settings, start: int) -> Timing:
    """--batch-size auto: double the batch while it fits and raises throughput by 3% or more."""
    best = with_backoff(attempt, start)
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


def tower_step(model: Any, cfg: dict[str, Any], tower: str, settings: Settings) -> Callable[[int], Callable[[], Any]]:
    """For a batch size, a function that runs the tower once on one fixed on-device input."""
    import torch

    from vitamin_cli import arch

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


def prepare(cfg: dict[str, Any], tower: str, settings: Settings, checkpoint: Any = None) -> Any:
    """The tower on the device: the image tower alone, or the model without its image tower for the text
    tower (so that peak memory is the tower's own); its pulled weights if given (else random ones), cast to
    the dtype (unless autocast), channels_last for an image tower."""
    import torch

    from vitamin_cli import arch, loading

    model = arch.build(cfg, device="cpu" if checkpoint is not None else settings.device)
    if checkpoint is not None:
        loading.load_into(model, loading.read_state_dict(checkpoint), str(checkpoint))
    if tower == "image":
        model = model.visual
    else:
        model.visual = torch.nn.Identity()
    model = model.to(settings.device)
    if settings.device.startswith("cuda"):
        torch.cuda.empty_cache()
    if not settings.amp:
        model = model.to(dtype=torch_dtype(settings.dtype))
    if tower == "image" and settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


# ---------------------------------------------------------------------------------------------------
# The sweep


def matmul_roof_tflops(device: str, dtype: str) -> float:
    """Dense matmul throughput of this device and dtype, TFLOP/s: the 100% of MFU."""
    import torch

    cuda = device.startswith("cuda")
    n = 8192 if cuda else 1024
    with on_device(device):
        a = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
        b = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
        settings = Settings(device=device, warmup=2, iters=10 if cuda else 3, repeats=3)
        with torch.inference_mode():
            timing = time_batches(lambda: a @ b, settings, 1)
    return 2 * n**3 * max(timing.rates()) / 1e12


def on_device(device: str) -> Any:
    """Make a CUDA device current, so that events, streams and the allocator act on it (cuda:1 and up)."""
    import contextlib

    import torch

    return torch.cuda.device(torch.device(device)) if device.startswith("cuda") else contextlib.nullcontext()


def device_name(device: str) -> str | None:
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None


@dataclass(frozen=True)
class Job:
    """One tower of one architecture (or of one pulled checkpoint), for `measure`: in this process, or as a Ray
    task on another machine. Plain data: everything that depends on the device is found out where it runs."""

    zoo_path: str
    model: str  # the first model of the architecture; the others share its result
    tower: str
    settings: Settings
    checkpoint: str | None = None  # the pulled file, with --weights
    gflops_per_item: float | None = None  # the audit's full count (computed where the zoo is)
    done: frozenset[str] = frozenset()  # keys of results a rerun with -o FILE skips


@dataclass
class Measured:
    """What `measure` gives back: the result (None when it was done before), the environment and the key."""

    result: Result | None
    environment: dict[str, Any]
    key: str


def measure(job: Job) -> Measured:
    """Measure one tower: the device check, the matmul roof and the environment record are all made here,
    on the machine that measures."""
    import torch

    from vitamin_cli import arch, zoo

    registry = zoo.load(job.zoo_path)
    model = registry.get(job.model)
    settings = job.settings
    check_device(settings)
    roof = _roof(settings.device, settings.dtype)
    env = environment(settings, roof)
    key = result_key(_identity(registry, model, job.checkpoint), job.tower, env["gpu_name"], settings)
    if key in job.done:
        return Measured(None, env, key)
    result = Result(
        model.name,
        list(model.aliases),
        model.arch,
        job.tower,
        settings.device,
        env["gpu_name"],
        None,
        None,
        settings.dtype,
        settings.amp,
        settings.compile,
        settings.channels_last and job.tower == "image",
    )
    try:
        with on_device(settings.device):
            _measure(result, arch.config(registry, model), job.tower, settings, job.checkpoint)
    except Exception as err:  # noqa: BLE001 - recorded; the sweep goes on
        result.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
    if settings.compile:
        torch.compiler.reset()  # each model compiles afresh, never against a recompile limit
    if torch.cuda.is_available():
        with on_device(settings.device):
            torch.cuda.empty_cache()
    _add_flops(result, job.gflops_per_item, roof)
    return Measured(result, env, key)


def _identity(zoo: Zoo, model: Model, checkpoint: str | None) -> str:
    """What was measured: the architecture's config (its zoo entry or open_clip's name), and with --weights
    the checkpoint file's blob as well."""
    from vitamin_cli import audit

    network = audit.architecture_id(zoo, model)
    return network if checkpoint is None else f"{network} {model.name} {Path(checkpoint).resolve().name}"


def result_key(measured: str, tower: str, gpu_name: str | None, settings: Settings) -> str:
    """What makes two measurements the same: the network (or checkpoint), the tower, the GPU and the settings.
    A rerun with the same -o FILE skips a key it holds; on another GPU it measures again."""
    import json

    return json.dumps([measured, tower, gpu_name or "cpu", sorted(vars(settings).items())], sort_keys=True)


@functools.lru_cache(maxsize=8)
def _roof(device: str, dtype: str) -> float:
    return matmul_roof_tflops(device, dtype)


def plan(
    zoo: Zoo,
    models: Sequence[Model],
    settings: Settings,
    towers: Sequence[str] = TOWERS,
    hub_root: Path | None = None,
    done: frozenset[str] = frozenset(),
) -> tuple[list[Job], list[list[Model]]]:
    """One job per tower of each distinct architecture (or, with `hub_root`, of each pulled checkpoint), and
    for each job the models that share its result."""
    from vitamin_cli import audit, loading

    flops = _flops_per_item(zoo, models)
    jobs: list[Job] = []
    sharing: list[list[Model]] = []
    index: dict[tuple[str, str], int] = {}
    for model in models:
        key = model.name if hub_root is not None else audit.architecture_id(zoo, model)
        checkpoint = str(loading.checkpoint_path(model, hub_root)) if hub_root is not None else None
        for tower in towers:
            if (key, tower) not in index:
                index[(key, tower)] = len(jobs)
                gflops = flops.get(model.name, {}).get(tower)
                jobs.append(Job(str(zoo.path), model.name, tower, settings, checkpoint, gflops, done))
                sharing.append([])
            sharing[index[(key, tower)]].append(model)
    return jobs, sharing


def bench(
    zoo: Zoo,
    models: Sequence[Model],
    settings: Settings,
    towers: Sequence[str] = TOWERS,
    on_result: Callable[[Result], None] | None = None,
    hub_root: Path | None = None,
    runner: Runner | None = None,
    on_measured: Callable[[Measured | None], None] | None = None,
    saved: dict[str, Result] | None = None,
) -> list[Result]:
    """Measure each tower of each distinct architecture once; rows sharing an architecture share results.
    With `hub_root`, each model runs with its own checkpoint pulled into that cache instead. `runner` runs the
    jobs elsewhere (Ray); by default they run here, one after another. Results come in table order. A job whose
    key is in `saved` (a rerun with -o FILE) is not measured again: its saved result stands."""
    saved = saved or {}
    jobs, sharing = plan(zoo, models, settings, towers, hub_root, frozenset(saved))
    results: list[Result] = []

    def finished(
        index: int, measured: Measured | None, node: str | None, node_id: str | None, error: str | None
    ) -> None:
        if on_measured is not None:
            on_measured(measured)
        base = measured.result if measured is not None else None
        if measured is not None and base is None:
            base = replace(saved[measured.key], resumed=True)  # measured before, and saved
        if base is None:
            first = sharing[index][0]
            base = Result(
                first.name, [], first.arch, jobs[index].tower, settings.device, None, None, None, settings.dtype,
                settings.amp, settings.compile, settings.channels_last, error=error,
            )  # fmt: skip
        for model in sharing[index]:
            row = replace(base, model=model.name, aliases=list(model.aliases))
            if not base.resumed:
                row.node, row.node_id = node, node_id
            results.append(row)
            if on_result is not None:
                on_result(row)

    if runner is None:
        for index, job in enumerate(jobs):
            interrupts.check()
            finished(index, measure(job), None, None, None)
    else:
        runner(jobs, finished)
    order = {m.name: i for i, m in enumerate(models)}
    return sorted(results, key=lambda r: (order[r.model], TOWERS.index(r.tower)))


# A way to run jobs elsewhere: it calls back (job index, what `measure` gave, node, node id, error) per job.
Runner = Callable[[list[Job], Callable[[int, "Measured | None", "str | None", "str | None", "str | None"], None]], None]


def _measure(result: Result, cfg: dict[str, Any], tower: str, settings: Settings, checkpoint: Any = None) -> None:
    model = prepare(cfg, tower, settings, checkpoint)
    for_batch = tower_step(model, cfg, tower, settings)
    settings = replace(settings, channels_last=settings.channels_last and tower == "image")

    def attempt(batch: int) -> Timing:
        return time_batches(for_batch(batch), settings, batch)

    start = default_batch(settings, tower)
    timing = largest_useful_batch(attempt, settings, start) if settings.auto_batch else with_backoff(attempt, start)
    rates = timing.rates()
    result.batch_size = timing.batch_size
    result.throughput = timing.throughput()
    result.throughput_min, result.throughput_max = rates[0], rates[-1]
    result.latency_ms = statistics.median(timing.runs_s) / settings.iters * 1e3
    result.peak_memory_gib = timing.peak_memory_gib
    result.warmup_s = timing.warmup_s


def _flops_per_item(zoo: Zoo, models: Sequence[Model]) -> dict[str, dict[str, float]]:
    """Full FLOPs (2 per MAC, attention included) per image and per text, from the audit (cached)."""
    from vitamin_cli import audit

    flops = {}
    for model in models:
        try:
            (row,) = audit.audit(zoo, [model])
        except Exception:  # noqa: BLE001 - a model that cannot be built is reported by its measurement
            continue
        flops[model.name] = {"image": 2 * row.macs_image_g_measured_full, "text": 2 * row.macs_text_g_measured_full}
    return flops


def _add_flops(result: Result, gflops: float | None, roof_tflops: float | None) -> None:
    if gflops is None or result.throughput is None:
        return
    result.gflops_per_item = gflops
    result.tflops = gflops * result.throughput / 1e3
    if roof_tflops:
        result.mfu = result.tflops / roof_tflops


def tune(
    zoo: Zoo,
    models: Sequence[Model],
    settings: Settings,
    towers: Sequence[str],
    on_result: Callable[[Result], None] | None = None,
) -> tuple[list[Result], dict[str, float]]:
    """Search for the fastest settings of each tower, and keep them with what was tried.

    First each fast dtype in eager mode, with the largest useful batch; then torch.compile with the
    winning dtype and batch (compiling costs tens of seconds per batch size, so it is not searched over).
    """
    cuda = settings.device.startswith("cuda")
    dtypes = ("bf16", "fp16") if cuda else ("fp32", "bf16")
    roofs = {dtype: _roof(settings.device, dtype) for dtype in dtypes}
    best: dict[tuple[str, str], Result] = {}
    tried: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def keep(result: Result) -> None:
        key = (result.model, result.tower)
        tried.setdefault(key, []).append(
            {k: getattr(result, k) for k in ("dtype", "compile", "batch_size", "throughput", "error")}
        )
        if key not in best or (result.throughput or 0) > (best[key].throughput or 0):
            best[key] = result

    for dtype in dtypes:
        eager = replace(settings, dtype=dtype, compile=False, auto_batch=True, amp=False)
        for result in bench(zoo, models, eager, towers):
            keep(result)
    for model in models:
        for tower in towers:
            winner = best[(model.name, tower)]
            if winner.throughput is None:
                continue
            compiled = replace(
                settings, dtype=winner.dtype, compile=True, auto_batch=False, batch_size=winner.batch_size, amp=False
            )
            for result in bench(zoo, [model], compiled, [tower]):
                keep(result)
    results = []
    for key, result in best.items():
        result.tried = tried[key]
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results, roofs


def environment(settings: Settings, roof_tflops: float | None) -> dict[str, Any]:
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
        "gpu_name": device_name(settings.device),
        "cuda": None if torch.version.cuda is None else str(torch.version.cuda),
        "driver": driver,
        "torch": str(torch.__version__),  # a TorchVersion would make the reader import torch to unpickle it
        "open_clip": metadata.version("open_clip_torch"),
        "timm": metadata.version("timm"),
        "python": platform.python_version(),
        "matmul_roof_tflops": roof_tflops,
        "dtype": settings.dtype,
        "settings": {k: v for k, v in vars(settings).items()},
    }
