"""`vitamin pull`: fetch checkpoints into the Hugging Face cache, resumable and hashed, several files at once.

Models, and tasks, are pulled up to `--jobs` at once (8, as huggingface_hub's snapshot_download), each in a
thread of its own; a task's files come one after another. Ctrl-C reaches the main thread only: it cancels what
has not started, and the running pulls stop at their next chunk of bytes, where the download loops call
`interrupts.check()`, which raises once the main thread has recorded the interrupt (docs/checkpoints.md).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from vitamin_cli import console, interrupts
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError, VitaminError
from vitamin_cli.views import sink
from vitamin_cli.views.sink import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.checkpoints.pull import Network, PullResult
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.zoo import Model

ProgressCallback = Callable[[int, int], None]

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin pull ViTamin-L                    # the 224 px, 12.8B model
  vitamin pull --size L --released          # every released large model
  vitamin pull --all --json                 # all 15 released checkpoints; 46 unreleased are skipped
  HF_ENDPOINT=https://my-mirror vitamin pull ViTamin-XL-384
  vitamin pull --all -j 2 --connections 1   # 2 files at once, one stream each
  vitamin pull ViTamin-B --local-dir weights/ViTamin-B   # and a plain copy there
"""
JOBS = 8  # files at once by default, as huggingface_hub's snapshot_download
MOST_JOBS = 32
MOST_CONNECTIONS = 64  # as VITAMIN_CONNECTIONS allows
STOP_WAIT_S = 2.0  # after Ctrl-C, how long the running pulls have to stop before vitamin leaves without them


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
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=MOST_JOBS,
            metavar="N",
            help="Files fetched at once: models, and tasks (a task's files one after another); 1: one at a time.",
        ),
    ] = JOBS,
    connections: Annotated[
        int | None,
        typer.Option(
            "--connections",
            min=1,
            max=MOST_CONNECTIONS,
            metavar="N",
            help="Byte ranges of one large file fetched at once; 1: one stream "
            "(default: $VITAMIN_CONNECTIONS, else 8).",
            show_default=False,
        ),
    ] = None,
    local_dir: Annotated[
        Path | None,
        typer.Option(
            "--local-dir",
            metavar="DIR",
            file_okay=False,
            help="Also write a plain copy of the one model's file into DIR, as `hf download --local-dir` does.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; only the summary.")] = False,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Download checkpoints (and, with --task or --suite, evaluation data) into the Hugging Face cache, where
    open_clip, timm and `vitamin eval` find them.

    A file already present and intact is not downloaded again; an interrupted download continues where it
    stopped. Every file is checked against the Hub's ETag (sha256, or git blob id) and zoo.yaml's pin before it
    is kept. Up to --jobs files come at once, a large one as --connections byte ranges at once.
    """
    import logging

    from vitamin_cli.checkpoints.pull import check_revision, network_settings
    from vitamin_cli.checkpoints.store import Store

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    check_revision(revision)
    network = network_settings(connections)  # a bad setting is a usage error before any model is tried
    # huggingface_hub's retry warnings would break the progress bars; what finally fails is reported below.
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    store = Store(cache_dir)
    models, wanted = _what_to_pull(selection, task, suite, zoo_path)
    if local_dir is not None:
        _check_local_dir(local_dir, store, models, wanted)
    try:
        with _progress_display(quiet or chosen == OutputFormat.json) as show:
            calls = [_model_call(m, store, revision, network, selection.explicit, show, local_dir) for m in models]
            calls += [_task_call(t, store, network, show) for t in wanted]
            results = _at_once(calls, jobs)
    except _Stranded as stopped:
        _leave_now(stopped.signum)

    sink.write(chosen, json=lambda: [r.to_json() for r in results], table=lambda: _summary(results))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(EXIT_FAILURE)


def _what_to_pull(
    selection: opt.Selection, task: list[str] | None, suite: list[str] | None, zoo_path: Path | None
) -> tuple[list[Model], list[Any]]:
    """The models and the tasks asked for: tasks (with models only where named or filtered), or models."""
    from vitamin_cli import zoo

    if task or suite:
        from vitamin_cli.eval import tasks

        wanted = tasks.load().resolve(task or [], suite or [])
        return (selection.models(zoo.load(zoo_path)) if selection.names or selection.filtered else []), wanted
    selection.require("pull")
    return selection.models(zoo.load(zoo_path)), []


def _check_local_dir(local_dir: Path, store: Store, models: list[Model], wanted: list[Any]) -> None:
    from vitamin_cli.checkpoints.pull import check_local_dir

    if wanted or len(models) != 1:
        raise UsageError(
            "--local-dir takes one model (every checkpoint is named pytorch_model.bin), not tasks",
            hint="pull each model into a folder of its own: vitamin pull NAME --local-dir weights/NAME",
        )
    check_local_dir(local_dir, store)


def _model_call(
    model: Model,
    store: Store,
    revision: str | None,
    network: Network,
    explicit: bool,
    show: Callable[[str], ProgressCallback | None],
    local_dir: Path | None = None,
) -> Callable[[], PullResult]:
    """Pulling one model (and copying it into `local_dir`), as a call that gives its result (a failure too) and
    reports its error on stderr."""
    from vitamin_cli.checkpoints.pull import PullResult, copy_to, pull

    def call() -> PullResult:
        try:
            result = pull(model, store, revision=revision, progress=show(model.name), network=network)
            if local_dir is not None and result.path is not None:
                try:
                    result.local_path = str(copy_to(result, local_dir))
                except OSError as err:
                    raise VitaminError(
                        f"{model.name}: cannot write its copy into {local_dir}: {err.strerror or err}",
                        hint="give a --local-dir you may write, with room for the file",
                    ) from err
        except VitaminError as err:
            _report(err)
            return PullResult(name=model.name, status="failed", error=err.message)
        if result.status == "unreleased" and explicit:
            _report(
                VitaminError(
                    f"{model.name} has no public checkpoint: {result.error}",
                    hint="`vitamin ls --released` lists the 15 models whose weights are published",
                )
            )
            result.status = "failed"
        return result

    return call


def _task_call(
    task: Any, store: Store, network: Network, show: Callable[[str], ProgressCallback | None]
) -> Callable[[], PullResult]:
    """Pulling one task's files, as a call that gives its result (a failure too) and reports its error."""
    from vitamin_cli.checkpoints.owners import TaskOwner
    from vitamin_cli.checkpoints.pull import PullResult
    from vitamin_cli.eval import layouts

    def call() -> PullResult:
        try:
            return layouts.pull(task, store.root, network=network, progress=show)
        except VitaminError as err:
            _report(err)
            return PullResult(name=TaskOwner.name_of(task.key), repo=task.repo, status="failed", error=err.message)

    return call


_reporting = threading.Lock()


def _report(err: VitaminError) -> None:
    """An error on stderr, its hint right below it whatever the other pulls print meanwhile."""
    with _reporting:
        console.report_error(err)


class _Stranded(KeyboardInterrupt):
    """Ctrl-C, with pulls still running STOP_WAIT_S later: blocked where they cannot see it (a server that
    says nothing, the lock of a file another process is downloading, a pause between tries)."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum


def _at_once(calls: Sequence[Callable[[], PullResult]], jobs: int) -> list[PullResult]:
    """Each call's result, in the order of `calls`, with up to `jobs` of them running at once. One call, or
    --jobs 1, runs in this thread, where Ctrl-C stops it at once.

    On Ctrl-C (or SIGTERM while interrupts.unwinding() holds), the calls not started are cancelled, and the
    running ones stop at their next chunk of bytes; the interrupt is raised again once they have, or raised as
    _Stranded if some are still running STOP_WAIT_S later, or when it is pressed again."""
    if jobs == 1 or len(calls) < 2:
        return [call() for call in calls]
    from concurrent.futures import Future, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(calls)), thread_name_prefix="vitamin-pull")
    futures: list[Future[PullResult]] = []
    try:
        futures += [pool.submit(call) for call in calls]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.25)  # short waits: Ctrl-C is seen here on every platform
            interrupts.check()  # one that a finalizer of this thread swallowed
    except KeyboardInterrupt as err:
        pool.shutdown(wait=False, cancel_futures=True)
        try:
            wait(futures, timeout=STOP_WAIT_S)
        except KeyboardInterrupt:  # pressed again: wait no longer
            pass
        if not all(f.done() for f in futures):
            raise _Stranded(err.signum if isinstance(err, interrupts.Terminated) else signal.SIGINT) from err
        raise
    pool.shutdown()
    return [f.result() for f in futures]


def _leave_now(signum: int) -> NoReturn:
    """End the process now, as vitamin ends on Ctrl-C (exit 130, "interrupted"), without waiting for the pulls
    still running: Python would wait for their threads at exit. Their partial files stay: what arrived is on
    disk, and the next pull continues from it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, console.OutputError):
            pass
    if signum == signal.SIGINT:
        print("interrupted", file=sys.stderr, flush=True)
    else:
        print(f"terminated ({signal.Signals(signum).name})", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def _summary(results: list[PullResult]) -> None:
    from collections import Counter

    lines = []
    for r in results:
        if r.status in ("downloaded", "resumed", "restarted", "cached"):
            path = r.local_path or r.path
            lines.append(f"{r.status:10s} {r.name:24s} {console.human_bytes(r.size_bytes or 0):>10s}  {path}")
    counts = Counter(r.status for r in results)
    done = counts["downloaded"] + counts["resumed"] + counts["restarted"] + counts["cached"]
    restarted = f", {counts['restarted']} restarted (the server does not serve ranges)" if counts["restarted"] else ""
    how = (
        f"{counts['downloaded']} downloaded, {counts['resumed']} resumed{restarted}, {counts['cached']} already cached"
    )
    parts = [f"{done} present ({how})"]
    if counts["unreleased"]:
        parts.append(f"{counts['unreleased']} skipped without public weights")
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    lines.append(", ".join(parts))
    console.write_text("\n".join(lines))


@contextmanager
def _progress_display(silent: bool) -> Iterator[Callable[[str], ProgressCallback | None]]:
    """Per file, a callback that draws its download as a bar on stderr (when that is a terminal), with a bar of
    all files below once there are two (views/progress.py's PullBars)."""
    if silent or not sys.stderr.isatty():
        yield lambda name: None
        return
    from vitamin_cli.views.progress import PullBars

    with PullBars() as bars:
        yield bars.file
