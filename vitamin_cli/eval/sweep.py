"""`vitamin eval` as one library call: models × tasks, each pair a job run in this process or on Ray, resumed
from saved results, each result yielded as it finishes. Eval's job kind of `vitamin_cli.sweeps`: `sweep` plans
the jobs, `run_job` runs one, `results.ROWS` keys and saves the results.

    from pathlib import Path
    from vitamin_cli import runners, sweeps, zoo
    from vitamin_cli.eval import results, sweep, tasks

    registry = zoo.load()
    runner = runners.make("auto")                       # the running Ray cluster; runners.make(None): here
    settings = sweep.default_settings(runner)           # cuda and bf16 where the cluster has GPUs
    log, saved = sweeps.resume(results.ROWS, Path("runs.jsonl"))
    for result in sweep.sweep(registry, registry.select("ViTamin-L"), tasks.load().suite("vtab"), settings,
                              saved=saved, runner=runner):
        log.add(result)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli import sweeps
from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.eval.kinds import run_task
from vitamin_cli.eval.results import TaskResult
from vitamin_cli.eval.zeroshot import Checkpoint, EvalSettings, Progress, started
from vitamin_cli.runners import InProcess, Resources, Runner
from vitamin_cli.zoo import Model, Zoo

if TYPE_CHECKING:
    from vitamin_cli.eval.data import TaskData
    from vitamin_cli.eval.tasks import Task


def default_settings(runner: Runner, device: str | None = None, **given: Any) -> EvalSettings:
    """The settings of `vitamin eval` where the runner runs: its device (CUDA when it has a GPU), that device's
    dtype and decoding workers, with what the user gave on top; checked before anything is built."""
    from vitamin_cli.eval import zeroshot
    from vitamin_cli.models import device as devices

    chosen = device or devices.default_device(runner)
    settings = zeroshot.default_settings(chosen, **given)
    devices.check_for(runner, settings.device, settings.dtype, amp=settings.dtype != "fp32")
    return settings


@dataclass(frozen=True)
class EvalJob:
    """One model on one task, as plain data: `run_job` finds the data, the weights and the device where it
    runs (this process, or a Ray worker on another machine, with its own cache)."""

    zoo_path: Path
    model: str
    task: Task
    settings: EvalSettings
    checkpoint: Path | None = None  # the user's own weights; None: the pulled checkpoint
    templates: Path | None = None
    cache_dir: Path | None = None  # None: the cache of the machine it runs on
    done: frozenset[str] = frozenset()  # result keys a rerun with -o FILE skips


@dataclass
class Reuse:
    """What the jobs of one sweep in this process share, and release when the sweep ends: the model of the last
    job (loading is the slow part) and each task's data. A checkpoint's sha256 is remembered across runs by
    `checkpoints.identity`, and checked again for each job."""

    model_key: tuple[Any, ...] | None = None
    model: tuple[Any, Any, Any] | None = None
    data: dict[tuple[Any, ...], TaskData] = field(default_factory=dict)

    def loaded(self, key: tuple[Any, ...], load: Callable[[], tuple[Any, Any, Any]]) -> tuple[Any, Any, Any]:
        if key != self.model_key:
            self.model_key, self.model = None, None  # the last model goes before the next one is loaded
            self.model, self.model_key = load(), key
        assert self.model is not None
        return self.model


def run_job(job: EvalJob, progress: Progress | None = None, reuse: Reuse | None = None) -> TaskResult | sweeps.Saved:
    """Fetch the task's data and the model's weights (into this machine's cache), then `run_task`; a result
    with the key of one already saved is not measured (`sweeps.Saved`)."""
    from vitamin_cli import zoo
    from vitamin_cli.models import loading

    reuse = reuse or Reuse()
    try:
        data = _prepared(job, reuse)
        weights = _weights(job, reuse)
        architecture = _architecture(job)
    except VitaminError as err:
        return _failed(job, err.one_line())
    result = started(job.model, weights, architecture, data, job.settings)
    if result.key() in job.done:
        return sweeps.Saved(result.key())

    def load() -> tuple[Any, Any, Any]:
        registry = zoo.load(job.zoo_path)
        return loading.load(registry, job.model, checkpoint=weights.path, device=job.settings.device, dtype="fp32")

    try:
        loaded = reuse.loaded((job.zoo_path, job.model, weights.path, weights.sha256, job.settings.device), load)
    except VitaminError as err:
        result.status, result.error = "failed", err.one_line()
        return result
    if weights.changed():
        result.status, result.error = "failed", f"{weights.path} changed while it was being loaded; run it again"
        return result
    return run_task(job.model, loaded, weights, data, job.settings, progress, architecture=architecture)


def sweep(
    registry: Zoo,
    models: Sequence[Model],
    tasks: Sequence[Task],
    settings: EvalSettings,
    *,
    checkpoint: Path | None = None,
    templates: Path | None = None,
    cache_dir: Path | None = None,
    saved: Mapping[str, TaskResult] | None = None,
    runner: Runner | None = None,
    progress: Callable[[str, str], Progress | None] | None = None,
) -> Iterator[TaskResult]:
    """Evaluate each model on each task; yield a result for each pair as it finishes.

    A model without public weights and without `checkpoint` gives a `skipped` result first, with task "-". A
    pair whose key is in `saved` (`sweeps.read_saved`: those with status ok, read back from `-o FILE`) is not
    evaluated again: the saved result is yielded, marked `resumed`. `checkpoint` holds one model's own weights;
    `progress(model, task)` gives a callback for a job's images, in this process only."""
    runner = runner or InProcess()
    checkpoint = _checked_first(models, tasks, checkpoint, templates)
    done = frozenset(saved or {})
    jobs: list[EvalJob] = []
    for model in models:
        if model.weights is None and checkpoint is None:
            why = f"{model.name} has no public checkpoint: {model.weights_note}; give your own with --checkpoint PATH"
            yield TaskResult(model.name, None, "-", "-", status="skipped", error=why)
            continue
        jobs += [
            EvalJob(registry.path, model.name, task, settings, checkpoint, templates, cache_dir, done) for task in tasks
        ]
    reuse = Reuse()

    def here(job: EvalJob) -> tuple[Any, ...]:
        return (progress(job.model, job.task.key) if progress else None, reuse)

    cuda = settings.device.startswith("cuda")
    resources = Resources(num_gpus=1 if cuda else 0, num_cpus=1, fresh_worker=cuda)
    for _, result in sweeps.run(KIND, jobs, runner, resources, saved, here):
        yield result


def _failed(job: EvalJob, error: str) -> TaskResult:
    """The result of a job that failed before it measured anything, or whose worker died, twice."""
    return TaskResult(job.model, None, job.task.key, job.task.name, main_metric=job.task.metric, status="failed",
                      error=error)  # fmt: skip


KIND = sweeps.Kind(run=run_job, failed=_failed)


def _checked_first(
    models: Sequence[Model], tasks: Sequence[Task], checkpoint: Path | None, templates: Path | None
) -> Path | None:
    """What would fail a sweep half-way, as a usage error before anything runs: a bad templates file, a folder of
    your own that lacks what its layout needs, a bad network setting, a checkpoint that is no file of one
    model's weights. The checkpoint, resolved."""
    from vitamin_cli.checkpoints.pull import network_settings
    from vitamin_cli.eval import data, layouts
    from vitamin_cli.models.loading import check_checkpoint_file

    if templates is not None:
        data.read_templates(templates)
    for task in tasks:
        layouts.check_local(task)
    network_settings()
    if checkpoint is None:
        return None
    if len(models) != 1:
        raise UsageError(f"--checkpoint holds the weights of one model; {len(models)} are selected")
    check_checkpoint_file(checkpoint, label=f"--checkpoint {checkpoint}")
    return checkpoint.resolve()


def _prepared(job: EvalJob, reuse: Reuse) -> TaskData:
    """A task's data, once per sweep: the next model on the same task reuses it."""
    from vitamin_cli.checkpoints.pull import network_settings
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.eval import layouts

    key = (job.task, job.cache_dir, job.templates)
    if key not in reuse.data:
        root = Store(job.cache_dir).root
        reuse.data[key] = layouts.prepare(job.task, root, job.templates, network_settings())
    return reuse.data[key]


def _weights(job: EvalJob, reuse: Reuse) -> Checkpoint:
    """The user's checkpoint, or the model's pulled one (pulled now into this machine's cache if missing), with
    the sha256 of its bytes as they are now."""
    from vitamin_cli import zoo
    from vitamin_cli.checkpoints import identity
    from vitamin_cli.checkpoints.pull import ensure_checkpoint, network_settings
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.models.loading import check_checkpoint_file

    if job.checkpoint is not None:
        check_checkpoint_file(job.checkpoint, VitaminError, label=f"--checkpoint {job.checkpoint} on {_host()}")
        try:
            return Checkpoint(job.checkpoint, identity.sha256_of(job.checkpoint), identity.key_of(job.checkpoint))
        except OSError as err:
            raise VitaminError(f"--checkpoint {job.checkpoint}: cannot read it: {err.strerror or err}") from err
    model = zoo.load(job.zoo_path).get(job.model)
    store = Store(job.cache_dir)
    record = ensure_checkpoint(model, store, network_settings())
    path = record.path(store.root)
    return Checkpoint(path, record.sha256, identity.key_of(path))


def _architecture(job: EvalJob) -> str:
    """The fingerprint of the model's architecture and preprocessing as the zoo file gives them now."""
    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    registry = zoo.load(job.zoo_path)
    return arch.fingerprint(arch.config(registry, registry.get(job.model)))


def _host() -> str:
    import socket

    return socket.gethostname()
