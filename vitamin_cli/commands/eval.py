"""`vitamin eval`: the zoo's accuracy columns, measured on this machine, beside what the table reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, VitaminError
from vitamin_cli.views import results as views
from vitamin_cli.views import sink
from vitamin_cli.views.sink import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.eval.results import TaskResult
    from vitamin_cli.sweeps import ResultsFile
    from vitamin_cli.views.progress import LiveTable

FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.csv)
EXAMPLES = """
Examples:

  vitamin eval ViTamin-S                            # ImageNet 1k, zero-shot, the pulled checkpoint
  vitamin eval ViTamin-L --suite vtab -o runs.jsonl # the 13 VTAB tasks; a rerun skips what is done
  vitamin eval ViT-B-32-s128M --checkpoint mine.pt --suite avg38
  vitamin eval ViTamin-S --task folder:~/photos     # your own images: one sub-folder per class
  vitamin eval ViTamin-S --task retrieval:~/pairs   # your own image-text pairs: a CSV beside a zip
  vitamin ls --eval runs.jsonl                      # measured columns beside the reported ones
"""


@opt.selecting(with_all=True)
def eval_command(
    selection: opt.Selection,
    task: opt.Tasks = None,
    suite: opt.Suites = None,
    templates: opt.Templates = None,
    checkpoint: opt.Checkpoint = None,
    device: opt.Device = None,
    dtype: opt.Dtype = None,
    batch_size: opt.BatchSize = None,
    workers: opt.Workers = None,
    columns: opt.TableColumns = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_csv: opt.CsvFlag = False,
    out: opt.EvalOutput = None,
    ray: opt.RayAddress = None,
    cache_dir: opt.CacheDir = None,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Evaluate models zero-shot on the zoo's tasks and set the measured columns beside the reported ones.

    Each model's pulled checkpoint (pulled first if missing), or --checkpoint. DataComp's method: the model's
    own preprocessing, a classifier from the class names and templates, its main metric per task (ImageNet 1k
    when no --task or --suite is given); fp32 on the CPU (as DataComp ran), bf16 autocast on CUDA unless
    --dtype fp32. Task data is fetched into the Hugging Face cache like checkpoints (`vitamin pull --task KEY`
    fetches it ahead). docs/eval.md.
    """
    from vitamin_cli import runners, sweeps
    from vitamin_cli.eval import results as eval_results
    from vitamin_cli.eval import sweep, tasks
    from vitamin_cli.views.progress import LiveTable

    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_csv=as_csv)
    shown = opt.table_columns(columns, views.EVAL_COLUMNS, chosen)
    selection.require("evaluate")
    opt.check_dtype(dtype)
    registry = zoo.load(zoo_path)
    models = selection.models(registry)
    log, saved = sweeps.resume(eval_results.ROWS, out)
    wanted = tasks.load().resolve(task or [], suite or [])
    runner = runners.make(ray)
    settings = sweep.default_settings(
        runner,
        device,
        dtype=dtype,
        batch_size=int(batch_size) if batch_size and batch_size != "auto" else None,
        workers=workers,
    )
    with LiveTable(views.EVAL_PROGRESS_TITLES, views.EVAL_PROGRESS_RIGHT, enabled=chosen == OutputFormat.table) as live:
        progress = views.eval_progress(live)
        found = sweep.sweep(registry, models, wanted, settings, checkpoint=checkpoint, templates=templates,
                            cache_dir=cache_dir, saved=saved, runner=runner, progress=progress)  # fmt: skip
        results = _collected(found, log, live, explicit=selection.explicit)
    summaries = eval_results.newest_columns(models, [r for r in results if r.task != "-"])

    def document(records: object) -> object:
        columns = [
            {"model": name, "identity": identity and identity.to_json(), "columns": [c.to_json() for c in cols]}
            for name, (identity, cols) in summaries.items()
        ]
        return {"results": records, "models": columns}

    shown = shown if columns else views.eval_columns(results)
    sink.write_rows(chosen, results, shown, record=lambda r: r.to_json(), document=document,
                    after=lambda: views.print_columns({n: cols for n, (_, cols) in summaries.items()}))  # fmt: skip
    for note in views.eval_notes(results, out):
        sink.write_note(note)
    if any(r.status == "failed" for r in results) or (selection.explicit and any(r.task == "-" for r in results)):
        raise typer.Exit(EXIT_FAILURE)


def _collected(
    found: Iterable[TaskResult], log: ResultsFile[TaskResult], live: LiveTable, *, explicit: bool
) -> list[TaskResult]:
    """Each result appended to the results file and shown as it comes; a model named but not evaluable said on
    stderr (picked by a filter, it is skipped quietly)."""
    results: list[TaskResult] = []
    for result in found:
        if result.task == "-" and explicit:
            console.report_error(VitaminError(result.error or ""))
        log.add(result)
        if result.status != "skipped":
            live.add(views.eval_finished_row(result))
        results.append(result)
    return results
