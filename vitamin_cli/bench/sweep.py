"""`vitamin bench` as one library call: every tower of the selected models, each distinct architecture (or,
with their weights, each pulled checkpoint) measured once, in this process or on Ray, resumed from saved
results, each result yielded as it comes. Bench's job kind of `vitamin_cli.sweeps`: `plan` makes the jobs,
`measure.measure` runs one, `results.ROWS` keys and saves the results.

    from vitamin_cli import runners, sweeps, zoo
    from vitamin_cli.bench import results, sweep

    registry = zoo.load()
    runner = runners.make("auto")
    settings = sweep.default_settings(runner)                        # cuda, bf16 where the cluster has GPUs
    log, saved = sweeps.resume(results.ROWS, Path("h200.jsonl"))     # what a rerun need not measure again
    for result in sweep.sweep(registry, registry.models, settings, saved=saved, runner=runner):
        log.add(result)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vitamin_cli import sweeps
from vitamin_cli.bench.measure import TOWERS, BenchJob, BenchSettings, Progress, default_batch, measure
from vitamin_cli.bench.measure import default_settings as device_defaults
from vitamin_cli.bench.results import BenchResult
from vitamin_cli.runners import InProcess, Resources, Runner
from vitamin_cli.zoo import Model, Zoo


def default_settings(runner: Runner, device: str | None = None, **given: Any) -> BenchSettings:
    """The settings of `vitamin bench` where the runner runs: its device (CUDA when it has a GPU) and that
    device's defaults, with what the user gave on top (None: not given); checked before anything is built."""
    from vitamin_cli.models import device as devices

    settings = device_defaults(device or devices.default_device(runner), **given)
    devices.check_for(runner, settings.device, settings.dtype, settings.amp)
    return settings


def plan(
    registry: Zoo,
    models: Sequence[Model],
    settings: BenchSettings,
    towers: Sequence[str] = TOWERS,
    hub_root: Path | None = None,
    done: frozenset[str] = frozenset(),
) -> tuple[list[BenchJob], list[list[Model]]]:
    """One job per tower of each distinct architecture (or, with `hub_root`, of each pulled checkpoint, its bytes
    checked to be what was pulled), and for each job the models that share its result."""
    from vitamin_cli.checkpoints.pull import checkpoint
    from vitamin_cli.checkpoints.store import Store

    store = Store(hub_root) if hub_root is not None else None
    flops = _flops_per_item(registry, models)
    jobs: list[BenchJob] = []
    sharing: list[list[Model]] = []
    index: dict[tuple[str, str], int] = {}
    for model in models:
        key = measured_as(registry, model, hub_root)
        weights = str(checkpoint(model, store).path(store.root)) if store is not None else None
        for tower in towers:
            if (key, tower) not in index:
                index[(key, tower)] = len(jobs)
                gflops = flops.get(model.name, {}).get(tower)
                jobs.append(BenchJob(str(registry.path), model.name, tower, settings, weights, gflops, done))
                sharing.append([])
            sharing[index[(key, tower)]].append(model)
    return jobs, sharing


def with_weights(models: Sequence[Model], cache_dir: Path | None, pulled_only: bool) -> tuple[list[Model], Path]:
    """`--weights`: the models to measure with their pulled checkpoints (with `pulled_only`, those of `models`
    that are pulled), and the hub cache they are in."""
    from vitamin_cli.checkpoints.pull import pulled_models
    from vitamin_cli.checkpoints.store import Store

    store = Store(cache_dir)
    return (pulled_models(list(models), store) if pulled_only else list(models)), store.root


def measured_as(registry: Zoo, model: Model, hub_root: Path | None = None) -> str:
    """What a model's measurement is shared by: its architecture, or with `hub_root` its own pulled checkpoint."""
    from vitamin_cli.models import audit

    if hub_root is None:
        return audit.architecture_id(registry, model)
    return model.name


def distinct(registry: Zoo, models: Sequence[Model], hub_root: Path | None = None) -> int:
    """How many measurements the models take per tower: one per architecture, or with `hub_root` per model."""
    return len({measured_as(registry, m, hub_root) for m in models})


CPU_GMACS_PER_S = 100.0  # an assumed CPU rate, for `cpu_estimate`


def cpu_estimate(
    registry: Zoo, models: Sequence[Model], towers: Sequence[str], settings: BenchSettings
) -> tuple[float, int]:
    """About how many seconds measuring the models' distinct architectures takes on the CPU, and the batches per
    tower counted: the zoo's MAC counts of each batch timed, at CPU_GMACS_PER_S."""
    seen: dict[str, Model] = {}
    for m in models:
        seen.setdefault(measured_as(registry, m), m)
    batches = settings.warmup + settings.iters * settings.repeats
    gmacs = 0.0
    for m in seen.values():
        for tower in towers:
            per_item = m.macs_image_g if tower == "image" else m.macs_text_g
            gmacs += float(per_item) * default_batch(settings, tower) * batches
    return gmacs / CPU_GMACS_PER_S, batches


def sweep(
    registry: Zoo,
    models: Sequence[Model],
    settings: BenchSettings,
    towers: Sequence[str] = TOWERS,
    *,
    hub_root: Path | None = None,
    saved: Mapping[str, BenchResult] | None = None,
    runner: Runner | None = None,
    progress: Callable[[str, str], Progress | None] | None = None,
) -> Iterator[BenchResult]:
    """Measure each tower of each distinct architecture once, yielding a result for every model that shares
    it as each finishes. With `hub_root`, each model runs with its own checkpoint pulled into that cache. A
    job whose key is in `saved` (results read back from `-o FILE`) is not measured again: its saved result is
    yielded, marked `resumed`. `runner` says where jobs run (default: here, one after another).
    `progress(model, tower)` gives a tower's `bench.Progress` callback, when jobs run in this process."""
    saved = saved or {}
    runner = runner or InProcess()
    jobs, sharing = plan(registry, models, settings, towers, hub_root, frozenset(saved))
    order = list(range(len(jobs)))
    if not runner.in_process:  # the longest first (by FLOPs in the timed batches): no GPU is left with one last
        order.sort(key=lambda i: -(jobs[i].gflops_per_item or 0) * default_batch(settings, jobs[i].tower))

    def here(job: BenchJob) -> tuple[Any, ...]:
        return (progress(job.model, job.tower),) if progress is not None else ()

    ordered = [jobs[i] for i in order]
    for index, base in sweeps.run(KIND, ordered, runner, resources(runner, settings), saved, here):
        for model in sharing[order[index]]:
            yield replace(base, model=model.name, aliases=list(model.aliases))


def _failed(job: BenchJob, error: str) -> BenchResult:
    """The row of a tower that was not measured: its worker died, twice."""
    from vitamin_cli import zoo

    return replace(BenchResult.started(zoo.load(job.zoo_path).get(job.model), job.tower, job.settings), error=error)


KIND = sweeps.Kind(run=measure, failed=_failed)


def resources(runner: Runner, settings: BenchSettings) -> Resources:
    """On CUDA a GPU of its own and a fresh worker; on the CPU every CPU of a node, so that no two
    measurements share one."""
    if settings.device.startswith("cuda"):
        return Resources(num_gpus=1, num_cpus=1, fresh_worker=True)
    return Resources(num_gpus=0, num_cpus=runner.cpus_per_node())


def in_table_order(results: Sequence[BenchResult], models: Sequence[Model]) -> list[BenchResult]:
    order = {m.name: i for i, m in enumerate(models)}
    return sorted(results, key=lambda r: (order[r.model], TOWERS.index(r.tower)))


def _flops_per_item(registry: Zoo, models: Sequence[Model]) -> dict[str, dict[str, float]]:
    """Full FLOPs (2 per MAC, attention included) per image and per text, from the audit (cached)."""
    from vitamin_cli.models import audit

    flops = {}
    for model in models:
        try:
            (row,) = audit.audit(registry, [model])
        except Exception:  # noqa: BLE001 - a model that cannot be built is reported by its measurement
            continue
        flops[model.name] = {"image": 2 * row.macs_image_g_measured_full, "text": 2 * row.macs_text_g_measured_full}
    return flops


def tune(
    registry: Zoo,
    models: Sequence[Model],
    settings: BenchSettings,
    towers: Sequence[str],
    progress: Callable[[str, str], Progress | None] | None = None,
) -> list[BenchResult]:
    """The fastest settings of each tower, each result with what was tried (`tried`), in this process.

    First each fast dtype in eager mode, with the largest useful batch; then torch.compile with the
    winning dtype and batch (compiling costs tens of seconds per batch size, so it is not searched over).
    `progress` as for `sweep`.
    """
    from vitamin_cli.bench.measure import environment, roof_tflops

    cuda = settings.device.startswith("cuda")
    dtypes = ("bf16", "fp16") if cuda else ("fp32", "bf16")
    roofs = {dtype: roof_tflops(settings.device, dtype).tflops for dtype in dtypes}
    best: dict[tuple[str, str], BenchResult] = {}
    tried: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def keep(result: BenchResult) -> None:
        key = (result.model, result.tower)
        tried.setdefault(key, []).append(
            {k: getattr(result, k) for k in ("dtype", "compile", "batch_size", "throughput", "error")}
        )
        if key not in best or (result.throughput or 0) > (best[key].throughput or 0):
            best[key] = result

    for dtype in dtypes:
        eager = replace(settings, dtype=dtype, compile=False, auto_batch=True, amp=False)
        for result in sweep(registry, models, eager, towers, progress=progress):
            keep(result)
    for model in models:
        for tower in towers:
            winner = best[(model.name, tower)]
            if winner.throughput is None:
                continue
            compiled = replace(
                settings, dtype=winner.dtype, compile=True, auto_batch=False, batch_size=winner.batch_size, amp=False
            )
            for result in sweep(registry, [model], compiled, [tower], progress=progress):
                keep(result)
    where = environment(settings, roofs.get(settings.dtype))
    return [replace(result, tried=tried[key], key="", environment=where) for key, result in best.items()]
