"""`vitamin pull`: fetch checkpoints into the Hugging Face cache, resumable and hashed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vitamin_cli import console
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, VitaminError
from vitamin_cli.views import sink
from vitamin_cli.views.sink import OutputFormat

if TYPE_CHECKING:
    from rich.progress import TaskID

    from vitamin_cli.checkpoints.pull import PullResult
    from vitamin_cli.hub.fetch import ProgressCallback

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin pull ViTamin-L                    # the 224 px, 12.8B model
  vitamin pull --size L --released          # every released large model
  vitamin pull --all --json                 # all 15 released checkpoints; 46 unreleased are skipped
  HF_ENDPOINT=https://my-mirror vitamin pull ViTamin-XL-384
"""


@opt.selecting(with_all=True)
def pull_command(
    selection: opt.Selection,
    revision: Annotated[
        str | None,
        typer.Option("--revision", help="Branch, tag or commit to fetch (default: zoo.yaml's pin, else main)."),
    ] = None,
    task: opt.Tasks = None,
    suite: opt.Suites = None,
    cache_dir: opt.CacheDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; only the summary.")] = False,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Download checkpoints (and, with --task or --suite, evaluation data) into the Hugging Face cache, where
    open_clip, timm and `vitamin eval` find them.

    A file already present and intact is not downloaded again; an interrupted download continues where it
    stopped. Every file is checked against the Hub's ETag (sha256, or git blob id) and zoo.yaml's pin before it
    is kept.
    """
    import logging

    from vitamin_cli import zoo
    from vitamin_cli.checkpoints.pull import PullResult, pull
    from vitamin_cli.hub.cache import hub_dir
    from vitamin_cli.hub.fetch import Network, check_revision

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    check_revision(revision)
    network = Network.from_environment()  # a bad setting is a usage error before any model is tried
    # huggingface_hub's retry warnings would break the progress bars; what finally fails is reported below.
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    root = hub_dir(cache_dir)
    if task or suite:
        from vitamin_cli.eval import tasks

        wanted = tasks.load().resolve(task or [], suite or [])
        models = selection.models(zoo.load(zoo_path)) if selection.names or selection.filtered else []
    else:
        selection.require("pull")
        wanted, models = [], selection.models(zoo.load(zoo_path))

    results: list[PullResult] = []
    with _progress_display(quiet or chosen == OutputFormat.json) as show:
        for model in models:
            try:
                result = pull(model, root, revision=revision, progress=show(model.name), network=network)
            except VitaminError as err:
                result = PullResult(name=model.name, status="failed", error=err.message)
                console.report_error(err)
            if result.status == "unreleased" and selection.explicit:
                console.report_error(
                    VitaminError(
                        f"{model.name} has no public checkpoint: {result.error}",
                        hint="`vitamin ls --released` lists the 15 models whose weights are published",
                    )
                )
                result.status = "failed"
            results.append(result)
        for t in wanted:
            results.append(_pull_task(t, root, network, show))

    sink.write(chosen, json=lambda: [r.to_json() for r in results], table=lambda: _summary(results))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(EXIT_FAILURE)


def _pull_task(task: Any, root: Any, network: Any, show: Callable[[str], ProgressCallback | None]) -> PullResult:
    """Fetch a task's data files; one result for the task (its files summed), recorded as `task:<key>`."""
    from vitamin_cli.checkpoints.pull import PullResult
    from vitamin_cli.eval import layouts
    from vitamin_cli.hub.cache import read_manifest

    name = f"task:{task.key}"
    if task.repo is None:
        return PullResult(name=name, status="failed", error=f"{task.key} is local data: there is nothing to pull")
    before = {e.etag for e in read_manifest(root, warn=False).of(name)}
    try:
        commit, paths = layouts.fetch(task, root, network=network, progress=show)
    except VitaminError as err:
        console.report_error(err)
        return PullResult(name=name, repo=task.repo, status="failed", error=err.message)
    entries = [e for e in read_manifest(root, warn=False).of(name) if e.revision == commit]
    fresh = {e.etag for e in entries} - before
    return PullResult(
        name=name,
        repo=task.repo,
        revision=commit,
        filename=f"{len(paths)} files",
        path=str(next(iter(paths.values())).parent),
        size_bytes=sum(e.size_bytes for e in entries),
        status="downloaded" if fresh else "cached",
    )


def _summary(results: list[PullResult]) -> None:
    from collections import Counter

    lines = []
    for r in results:
        if r.status in ("downloaded", "resumed", "cached"):
            lines.append(f"{r.status:10s} {r.name:24s} {console.human_bytes(r.size_bytes or 0):>10s}  {r.path}")
    counts = Counter(r.status for r in results)
    done = counts["downloaded"] + counts["resumed"] + counts["cached"]
    how = f"{counts['downloaded']} downloaded, {counts['resumed']} resumed, {counts['cached']} already cached"
    parts = [f"{done} present ({how})"]
    if counts["unreleased"]:
        parts.append(f"{counts['unreleased']} skipped without public weights")
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    lines.append(", ".join(parts))
    console.write_text("\n".join(lines))


@contextmanager
def _progress_display(silent: bool) -> Iterator[Callable[[str], ProgressCallback | None]]:
    """Per model, a callback that draws its download as a bar on stderr (when that is a terminal)."""
    if silent or not sys.stderr.isatty():
        yield lambda name: None
        return
    from vitamin_cli.views.progress import transfer_progress

    with transfer_progress(transient=False) as bars:

        def for_model(name: str) -> ProgressCallback:
            task: list[TaskID] = []  # the bar appears with the first bytes: a cached model draws none

            def update(done: int, total: int) -> None:
                if not task:
                    task.append(bars.add_task(name, total=total))
                bars.update(task[0], completed=done, total=total)

            return update

        yield for_model
