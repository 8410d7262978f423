"""`vitamin eval`: the zoo's accuracy columns, measured on this machine, beside what the table reports."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vitamin_cli import interrupts, output, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError, VitaminError
from vitamin_cli.output import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.results_file import TaskResult

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin eval ViTamin-S                            # ImageNet 1k, zero-shot, the pulled checkpoint
  vitamin eval ViTamin-L --suite vtab -o runs.jsonl # the 13 VTAB tasks; a rerun skips what is done
  vitamin eval ViT-B-32-s128M --checkpoint mine.pt --suite avg38
  vitamin eval ViTamin-S --task folder:~/photos     # your own images: one sub-folder per class
  vitamin ls --eval runs.jsonl                      # measured columns beside the reported ones
"""


@opt.selecting(with_all=True)
def eval_command(
    selection: opt.Selection,
    task: opt.Tasks = None,
    suite: opt.Suites = None,
    templates: Annotated[
        Path | None,
        typer.Option("--templates", metavar="FILE", help="Templates to use, one per line, {c} for the class name."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            metavar="PATH",
            help="Your own weights for the (one) selected model's architecture, loaded strictly, weights only.",
        ),
    ] = None,
    device: opt.Device = None,
    dtype: opt.Dtype = None,
    batch_size: opt.BatchSize = None,
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="Processes decoding images (default: all cores but one on CUDA, half on the CPU)."),
    ] = None,
    format_: Annotated[OutputFormat | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Append each finished task to this JSON-lines file; a rerun skips them."),
    ] = None,
    ray: opt.RayAddress = None,
    cache_dir: opt.CacheDir = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Evaluate models zero-shot on the zoo's tasks and set the measured columns beside the reported ones.

    Each model's pulled checkpoint (pulled first if missing), or --checkpoint. DataComp's method: the model's
    own preprocessing, a classifier from the class names and templates, its main metric per task (ImageNet 1k
    when no --task or --suite is given); fp32 on the
    CPU (as DataComp ran), bf16 autocast on CUDA unless --dtype fp32. Task data is fetched into the Hugging
    Face cache like checkpoints (`vitamin pull --task KEY` fetches it ahead). docs/eval.md.
    """
    from vitamin_cli import bench, evaldata, evaluate, hub, results_file, tasks
    from vitamin_cli.results_file import TaskResult

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    selection.require("evaluate")
    opt.check_dtype(dtype)
    opt.check_ray_device(ray, device)
    registry = zoo.load(zoo_path)
    models = selection.models(registry)
    wanted = tasks.load().resolve(task or [], suite or [])
    if checkpoint is not None and len(models) != 1:
        raise UsageError(f"--checkpoint holds the weights of one model; {len(models)} are selected")
    if out is not None:
        from vitamin_cli.files import check_writable

        check_writable(out)
    if templates is not None:
        evaldata.read_templates(templates)  # a bad file is a usage error before anything runs
    hub.Network.from_environment()  # a bad setting is a usage error before anything runs
    import torch

    if ray is not None:
        from vitamin_cli import sweep

        sweep.connect(ray)
        chosen_device = device or ("cuda" if sweep.gpu_count() else "cpu")
    else:
        chosen_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    settings = evaluate.Settings(
        device=chosen_device,
        dtype=dtype or ("bf16" if chosen_device.startswith("cuda") else "fp32"),
        batch_size=int(batch_size) if batch_size and batch_size != "auto" else None,
        workers=evaldata.default_workers(chosen_device) if workers is None else workers,
    )
    if ray is None:  # with Ray, each worker checks its own device
        bench.check_device(bench.Settings(device=settings.device, dtype=settings.dtype, amp=settings.dtype != "fp32"))
    earlier = results_file.read_results(out) if out is not None else []
    saved = {r.key(): r for r in earlier if r.status == "ok"}  # a failure is tried again

    results: list[TaskResult] = []
    jobs: list[evaluate.Job] = []
    for model in models:
        reason = _no_weights(model, checkpoint)
        if reason is not None:
            results.append(TaskResult(model.name, None, "-", "-", status="skipped", error=reason))
            if selection.explicit:  # named, it must run; picked by a filter, it is skipped, as pull skips it
                output.report_error(VitaminError(reason))
            continue
        for t in wanted:
            if not t.evaluated:
                results.append(TaskResult(model.name, None, t.key, t.name, main_metric=t.metric, status="skipped",
                                          error=t.why_not))  # fmt: skip
                continue
            own = checkpoint.resolve() if checkpoint is not None else None
            jobs.append(
                evaluate.Job(registry.path, model.name, t, settings, own, templates, cache_dir, frozenset(saved))
            )

    with _Live(enabled=sys.stderr.isatty() and chosen == OutputFormat.table) as live:

        def finished(result: TaskResult, node: str | None = None, node_id: str | None = None) -> None:
            if result.status == "done":
                result = saved[result.key()]
                live.finished(result, resumed=True)
            else:
                result.node, result.node_id = node, node_id
                if out is not None:
                    results_file.append_result(out, result)
                live.finished(result)
            results.append(result)

        if ray is None:
            for job in jobs:
                interrupts.check()
                finished(evaluate.run_job(job, progress=live.progress(job.model, job.task.key)))
        else:
            from vitamin_cli import sweep

            cuda = settings.device.startswith("cuda")
            resources = sweep.Resources(num_gpus=1 if cuda else 0, num_cpus=1, fresh_worker=cuda)
            sweep.run(
                evaluate.run_job,
                [(job,) for job in jobs],
                resources,
                on_finished=lambda f: finished(_from_worker(f, jobs), f.node, f.node_id),
            )
    failed = any(r.status == "failed" for r in results) or (selection.explicit and any(r.task == "-" for r in results))
    measured = [r for r in results if r.task != "-"]
    summaries = {
        m.name: results_file.columns(m, measured, tasks.load().tasks)
        for m in models
        if any(r.model == m.name for r in measured)
    }
    if chosen == OutputFormat.json:
        output.write_json(
            {
                "results": [r.to_json() for r in results],
                "models": [{"model": name, "columns": [c.to_json() for c in cols]} for name, cols in summaries.items()],
            }
        )
    else:
        _print(results, summaries)
    for r in results:
        if r.status == "failed":
            print(f"{r.model} {r.task}: {r.error}", file=sys.stderr)
    if failed:
        raise typer.Exit(EXIT_FAILURE)


def _no_weights(model: zoo.Model, checkpoint: Path | None) -> str | None:
    """Why a model cannot be evaluated, if it cannot: no public weights and no --checkpoint."""
    if checkpoint is not None:
        if not checkpoint.is_file():
            raise UsageError(f"--checkpoint {checkpoint}: no such file")
        return None
    if model.weights is None:
        return f"{model.name} has no public checkpoint: {model.weights_note}; give your own with --checkpoint PATH"
    return None


def _from_worker(finished: Any, jobs: list[Any]) -> TaskResult:
    """A Ray task's result, or, when its worker died twice, a failed result that says so."""
    from vitamin_cli.results_file import TaskResult

    if finished.value is not None:
        result: TaskResult = finished.value
        return result
    job = jobs[finished.index]
    return TaskResult(job.model, None, job.task.key, job.task.name, main_metric=job.task.metric, status="failed",
                      error=finished.error)  # fmt: skip


def _print(results: list[TaskResult], summaries: dict[str, list[Any]]) -> None:
    rows: list[list[output.Cell]] = []
    for r in results:
        main = "-" if r.main is None else f"{r.main:.1f}"
        state = r.status if r.status != "ok" else ""
        rows.append(
            [
                r.model,
                r.task,
                r.main_metric or "-",
                (main, "bold"),
                str(r.samples),
                "-" if r.images_per_s is None else f"{r.images_per_s:,.0f}",
                ((state + (": " + (r.error or "")[:60] if r.error else "")), "yellow" if state else ""),
            ]
        )
    titles = ("Model", "Task", "Metric", "%", "Images", "Images/s", "")
    console = output.console()
    console.print(output.table(titles, rows, right={"%", "Images", "Images/s"}))
    for name, cols in summaries.items():
        cols = [c for c in cols if len(c.missing) < c.tasks]  # columns with at least one of their tasks run
        if not cols:
            continue
        lines: list[list[output.Cell]] = []
        for c in cols:
            measured = "-" if c.measured is None else f"{c.measured:.1f}"
            diff = "-" if c.difference is None else f"{c.difference:+.1f}"
            note = "" if not c.missing else f"incomplete: {len(c.missing)} of {c.tasks} tasks missing"
            lines.append([c.column, f"{c.reported:.1f}", (measured, "bold"), diff, (note, "yellow")])
        output.write_text(f"\n{name}")
        console.print(
            output.table(
                ("Column", "Reported", "Measured", "Points", ""), lines, right={"Reported", "Measured", "Points"}
            )
        )


class _Live:
    """Progress on stderr while tasks run: task, images done, images/s, time left; finished tasks stay."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rows: list[list[output.Cell]] = []
        self.current: list[output.Cell] | None = None
        self.live: Any = None
        self.shown = 0.0

    def __enter__(self) -> _Live:
        if self.enabled:
            from rich.live import Live

            self.live = Live(self._table(), console=output.err_console(), transient=True, refresh_per_second=4)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def _table(self) -> Any:
        rows = self.rows + ([self.current] if self.current else [])
        return output.table(("Model", "Task", "Images", "Images/s", "Left"), rows, right={"Images", "Images/s", "Left"})

    def progress(self, model: str, task: str) -> Any:
        def update(done: int, total: int, seconds: float) -> None:
            if self.live is None or time.monotonic() - self.shown < 0.25:
                return
            self.shown = time.monotonic()
            rate = done / seconds if seconds else 0.0
            left = f"{(total - done) / rate:,.0f} s" if rate and total > done else "-"
            shown_done = f"{done:,}" + (f" / {total:,}" if total else "")
            self.current = [model, task, shown_done, f"{rate:,.0f}", left]
            self.live.update(self._table())

        return update

    def finished(self, result: TaskResult, resumed: bool = False) -> None:
        if self.live is None:
            return
        self.current = None
        note = "done before" if resumed else (result.status if result.status != "ok" else f"{result.main or 0:.1f}%")
        self.rows.append([result.model, result.task, f"{result.samples:,}", f"{result.images_per_s or 0:,.0f}", note])
        self.live.update(self._table())
