"""`vitamin eval`: the zoo's accuracy columns, measured on this machine, beside what the table reports."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vitamin_cli import output, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError, VitaminError
from vitamin_cli.output import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.evaluate import Checkpoint
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
    from vitamin_cli.hubcache import hub_dir
    from vitamin_cli.results_file import TaskResult

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    selection.require("evaluate")
    opt.check_dtype(dtype)
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
    root = hub_dir(cache_dir)
    network = hub.Network.from_environment()
    import torch

    chosen_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    settings = evaluate.Settings(
        device=chosen_device,
        dtype=dtype or ("bf16" if chosen_device.startswith("cuda") else "fp32"),
        batch_size=int(batch_size) if batch_size and batch_size != "auto" else None,
        workers=evaldata.default_workers(chosen_device) if workers is None else workers,
    )
    bench.check_device(bench.Settings(device=settings.device, dtype=settings.dtype, amp=settings.dtype != "fp32"))
    done = {r.key(): r for r in results_file.read_results(out)} if out is not None else {}

    results: list[TaskResult] = []
    failed = False
    with _Live(enabled=sys.stderr.isatty() and chosen == OutputFormat.table) as live:
        prepared: dict[str, Any] = {}
        for model in models:
            weights = _weights(model, selection, checkpoint, root, network)
            if isinstance(weights, str):
                results.append(TaskResult(model.name, None, "-", "-", status="skipped", error=weights))
                if selection.explicit:  # named, it must run; picked by a filter, it is skipped, as pull skips it
                    failed = True
                    output.report_error(VitaminError(weights))
                continue
            for t in wanted:
                if not t.evaluated:
                    results.append(TaskResult(model.name, weights.sha256, t.key, t.name, status="skipped",
                                                       error=t.why_not, main_metric=t.metric))  # fmt: skip
                    continue
                if t.key not in prepared:
                    try:
                        prepared[t.key] = evaldata.prepare(t, root, templates, network)
                    except VitaminError as err:
                        prepared[t.key] = err
                data = prepared[t.key]
                if isinstance(data, VitaminError):
                    failed = True
                    results.append(TaskResult(model.name, weights.sha256, t.key, t.name, status="failed",
                                                       error=data.message, main_metric=t.metric))  # fmt: skip
                    continue
                result = TaskResult(
                    model.name, weights.sha256, t.key, t.name, data.revision, data.templates_source,
                    data.templates_sha256, settings.dtype,
                )  # fmt: skip
                if result.key() in done:
                    results.append(done[result.key()])
                    live.finished(done[result.key()], resumed=True)
                    continue
                result = evaluate.run_task(
                    registry.path, model.name, weights, data, settings, progress=live.progress(model.name, t.key)
                )
                failed = failed or result.status == "failed"
                if out is not None:
                    results_file.append_result(out, result)
                results.append(result)
                live.finished(result)
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


def _weights(
    model: zoo.Model, selection: opt.Selection, given: Path | None, root: Path, network: Any
) -> Checkpoint | str:
    """The checkpoint to evaluate a model with, or why there is none. A released model not yet pulled is
    pulled now."""
    from vitamin_cli import hub
    from vitamin_cli.evaluate import Checkpoint
    from vitamin_cli.hashing import sha256_file
    from vitamin_cli.hubcache import read_manifest
    from vitamin_cli.loading import checkpoint_path

    if given is not None:
        if not given.is_file():
            raise UsageError(f"--checkpoint {given}: no such file")
        return Checkpoint(given.resolve(), sha256_file(given))
    if model.weights is None:
        return f"{model.name} has no public checkpoint: {model.weights_note}; give your own with --checkpoint PATH"
    try:
        path = checkpoint_path(model, root)
    except UsageError:
        hub.pull(model, root, network=network)
        path = checkpoint_path(model, root)
    entries = [e for e in read_manifest(root, warn=False).of(model.name) if e.snapshot(root) == path]
    return Checkpoint(path, entries[0].sha256 if entries else sha256_file(path))


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
