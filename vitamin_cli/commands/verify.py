"""`vitamin verify`: re-hash pulled checkpoints, offline, and say which are intact."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError
from vitamin_cli.views import sink
from vitamin_cli.views.sink import Column, OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.checkpoints.store import Record
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
    columns: opt.TableColumns = None,
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
    from vitamin_cli.checkpoints.pull import network_settings
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.views.progress import byte_progress

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    shown = opt.table_columns(columns, COLUMNS, chosen)
    if names and all_models:
        raise UsageError("name models or use --all, not both")
    registry = zoo.load(zoo_path)
    store = Store(cache_dir)
    network = network_settings() if fix else None  # a bad setting is a usage error before anything is checked
    wanted = list(dict.fromkeys(opt.owner_name(registry, store, name) for name in names or ()))
    records = verify.records_to_check(registry, store, wanted)
    if not wanted and not records:
        print(f"nothing pulled into {store.root} yet; `vitamin pull NAME` fetches a checkpoint", file=sys.stderr)
        sink.write(chosen, json=lambda: [], table=lambda: None)
        return

    def check_all(names: list[str], records: list[Record]) -> list[Check]:
        total = sum(r.size_bytes for r in records)
        with byte_progress("hashing", total, enabled=chosen == OutputFormat.table) as on_bytes:
            checks = verify.verify(registry, store, records, names, on_bytes=on_bytes)
        if deep:
            _deep(registry, checks, store.root)
        return checks

    checks = check_all(wanted, records)
    if network is not None:
        mended = verify.mend(checks, store, network)
        if mended:
            again_records = verify.records_to_check(registry, store, mended, warn=False)
            again = {(c.name, c.path): c for c in check_all(mended, again_records)}
            checks = [again.get((c.name, c.path), c) for c in checks]
    sink.write_rows(chosen, checks, shown, record=lambda c: c.to_json(), after=lambda: _summary(checks, fix))
    if any(c.status != "ok" for c in checks):
        raise typer.Exit(EXIT_FAILURE)


def _deep(registry: zoo.Zoo, checks: list[Check], root: Path) -> None:
    from vitamin_cli.models.loading import deep_check

    for check in checks:
        if check.status == "ok":
            deep_check(registry, check, hub_root=root)


def _summary(checks: list[Check], fix: bool) -> None:
    """Each problem on stderr, the count on stdout, and what to do about what is broken."""
    for c in checks:
        for problem in c.problems:
            print(f"{c.name}: {problem}", file=sys.stderr)
    bad = sum(c.status != "ok" for c in checks)
    sink.write_prose(f"{len(checks) - bad} intact, {bad} corrupt or missing")
    hints = dict.fromkeys(c.hint for c in checks if c.hint)
    if any(c.damaged for c in checks) and not fix:
        hints["`vitamin verify --fix` downloads again what is damaged or gone"] = None
    for hint in hints:
        print(f"hint: {hint}", file=sys.stderr)


COLUMNS: list[Column[Check]] = [
    Column("Model", lambda c: c.name),
    Column("Size", lambda c: console.human_bytes(c.size_bytes or 0), right=True, priority=2),
    Column("sha256", lambda c: (c.actual_sha256 or "-")[:16], priority=1),
    Column("Status", lambda c: (c.status, "green" if c.status == "ok" else "bold red")),
]
