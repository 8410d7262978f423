"""`vitamin verify`: re-hash pulled checkpoints, offline, and say which are intact."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError, VitaminError
from vitamin_cli.views import sink
from vitamin_cli.views.sink import Column, OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.checkpoints.verify import Check

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin verify                 # every pulled checkpoint
  vitamin verify ViTamin-L --json
  vitamin verify --fix           # download again whatever is broken
"""


def verify_command(
    names: opt.Names = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every pulled model (the default).")] = False,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep", help="Also load each checkpoint strictly and run one forward pass (needs torch, open_clip)."
        ),
    ] = False,
    fix: Annotated[
        bool, typer.Option("--fix", help="Download again what is corrupt or missing (needs the network).")
    ] = False,
    cache_dir: opt.CacheDir = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Re-hash the checkpoints in the cache (pulled by vitamin, or found there: put by open_clip, timm or `hf
    download`) and compare them with the manifest, the cache's blob names and zoo.yaml's pins.

    Offline; exit code 0 when every file is intact, 1 when any is corrupt or missing. With --deep, each intact
    checkpoint is also loaded strictly into its architecture (torch.load with weights_only=True), its
    parameter count compared with the zoo, and one forward pass must give finite embeddings of the right width.
    """
    from vitamin_cli.checkpoints import verify
    from vitamin_cli.checkpoints.pull import with_found
    from vitamin_cli.hub.cache import hub_dir
    from vitamin_cli.views.progress import byte_progress

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    if names and all_models:
        raise UsageError("name models or use --all, not both")
    registry = zoo.load(zoo_path)
    root = hub_dir(cache_dir)
    network = _network() if fix else None
    released = [m for m in registry.models if m.released]
    manifest = with_found(root, released)
    if not names and not manifest.entries:
        print(f"nothing pulled into {root} yet; `vitamin pull NAME` fetches a checkpoint", file=sys.stderr)
        sink.write(chosen, json=lambda: [], table=lambda: None)
        return

    def check_all(names: list[str]) -> list[Check]:
        manifest = with_found(root, released, warn=False)
        wanted = set(names) or {e.name for e in manifest.entries}
        total = sum(e.size_bytes for e in manifest.entries if e.name in wanted)
        with byte_progress("hashing", total, enabled=chosen == OutputFormat.table) as on_bytes:
            checks = verify.verify(registry, root, manifest, names, on_bytes=on_bytes)
        if deep:
            from vitamin_cli.models.loading import deep_check

            for check in checks:
                if check.status == "ok":
                    deep_check(registry, check, hub_root=root)
        return checks

    checks = check_all(list(names or ()))
    if fix:
        mended = _mend(checks, root, network)
        if mended:
            again = {(c.name, c.path): c for c in check_all(mended)}
            checks = [again.get((c.name, c.path), c) for c in checks]

    def summary() -> None:
        for c in checks:
            for problem in c.problems:
                print(f"{c.name}: {problem}", file=sys.stderr)
        bad = sum(c.status != "ok" for c in checks)
        console.write_text(f"{len(checks) - bad} intact, {bad} corrupt or missing")
        if any(c.damaged for c in checks) and not fix:
            print("hint: `vitamin verify --fix` downloads again what is damaged or gone", file=sys.stderr)

    sink.write_rows(chosen, checks, COLUMNS, record=lambda c: c.to_json(), after=summary)
    if any(c.status != "ok" for c in checks):
        raise typer.Exit(EXIT_FAILURE)


def _network() -> Any:
    from vitamin_cli.hub.fetch import Network

    return Network.from_environment()  # a bad setting is a usage error before anything is checked


def _mend(checks: list[Check], hub_root: Path, network: Any) -> list[str]:
    """Download again each file that is damaged or gone, at the commit it was pulled at, and put it in place
    once it hashes as recorded; returns the names it mended. Nothing is deleted first: a download that fails
    leaves the cache as it was. A file that only disagrees with a zoo.yaml pin is left as it is: a new
    download would give the same bytes."""
    from vitamin_cli.hub import fetch

    mended: list[str] = []
    for check in checks:
        if check.status == "ok" or check.entry is None:
            if check.status != "ok":
                print(f"{check.name}: not pulled, so nothing to mend; `vitamin pull` it", file=sys.stderr)
            continue
        if not check.damaged:
            print(f"{check.name}: not downloading it again, the same file would come back", file=sys.stderr)
            continue
        e = check.entry
        wanted = fetch.HubFile(e.repo, e.filename, e.revision, e.repo_type, sha256=e.sha256)  # exactly what was pulled
        try:
            fetch.fetch(
                wanted, hub_root, label=e.name, on_present=fetch.record_for(e.name), network=network, force=True
            )
        except VitaminError as err:
            console.report_error(err)
            continue
        if e.name not in mended:
            mended.append(e.name)
    return mended


COLUMNS: list[Column[Check]] = [
    Column("Model", lambda c: c.name),
    Column("Size", lambda c: console.human_bytes(c.size_bytes or 0), right=True),
    Column("sha256", lambda c: (c.actual_sha256 or "-")[:16]),
    Column("Status", lambda c: (c.status, "green" if c.status == "ok" else "bold red")),
]
