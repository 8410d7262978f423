"""`vitamin verify`: re-hash pulled checkpoints, offline, and say which are intact."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli import output, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, UsageError, VitaminError

if TYPE_CHECKING:
    from vitamin_cli.verify import Check

EXAMPLES = """
Examples:

  vitamin verify                 # every pulled checkpoint
  vitamin verify ViTamin-L --json
  vitamin verify --fix           # download again whatever is broken
"""


def verify(
    names: opt.Names = None,
    all_models: opt.AllFlag = False,
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
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Re-hash pulled checkpoints and compare them with the manifest, the cache's blob names and zoo.yaml's pins.

    Offline; exit code 0 when every file is intact, 1 when any is corrupt or missing. With --deep, each intact
    checkpoint is also loaded strictly into its architecture (torch.load with weights_only=True), its
    parameter count compared with the zoo, and one forward pass must give finite embeddings of the right width.
    """
    from vitamin_cli.cache import Pulled, hub_cache_dir, read_manifest
    from vitamin_cli.verify import deep_check
    from vitamin_cli.verify import verify as run_checks

    if names and all_models:
        raise UsageError("name models or use --all, not both")
    registry = zoo.load(zoo_path)
    root = hub_cache_dir(cache_dir)
    manifest = read_manifest(root)
    if not names and not manifest:
        output.err_console().print(f"nothing pulled into {root} yet; `vitamin pull NAME` fetches a checkpoint")
        if as_json:
            output.write_json([])
        return
    wanted = {registry.get(n).name for n in names} if names else set(manifest)
    total = sum(entry.size_bytes for name, entry in manifest.items() if name in wanted)

    def check_all(manifest: dict[str, Pulled], names: list[str]) -> list[Check]:
        with output.byte_progress("hashing", total, enabled=not as_json) as on_bytes:
            checks = run_checks(registry, manifest, names, on_bytes=on_bytes)
        if deep:
            for check in checks:
                if check.status == "ok":
                    deep_check(registry, check, cache_dir=root)
        return checks

    checks = check_all(manifest, list(names or ()))
    if fix:
        mended = _mend(registry, checks, cache_dir)
        if mended:
            again = {c.name: c for c in check_all(read_manifest(root), mended)}
            checks = [again.get(c.name, c) for c in checks]
    if as_json:
        output.write_json([c.to_json() for c in checks])
    else:
        _table(checks)
    if any(c.status != "ok" for c in checks):
        raise typer.Exit(EXIT_FAILURE)


def _mend(registry: zoo.Zoo, checks: list[Check], cache_dir: Path | None) -> list[str]:
    """Download again what is damaged or missing; returns the names it downloaded. A file that only
    disagrees with a zoo.yaml pin, or that loads badly though it is what was pulled, is left as it is:
    a new download would give the same bytes."""
    from vitamin_cli import hub
    from vitamin_cli.errors import UnknownModelError

    mended = []
    for check in checks:
        if check.status == "ok":
            continue
        if not check.damaged:
            print(f"{check.name}: not downloading it again, the same file would come back", file=sys.stderr)
            continue
        try:
            model = registry.get(check.name)
        except UnknownModelError:
            print(f"{check.name}: not in this zoo file; pull it with the zoo it came from", file=sys.stderr)
            continue
        if check.path:
            Path(check.path).resolve().unlink(missing_ok=True)  # bytes that no longer match their own hash
        try:
            hub.pull(model, cache_dir=cache_dir)
            mended.append(check.name)
        except VitaminError as err:
            output.report_error(err)
    return mended


def _table(checks: list[Check]) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("Model", "Size", "sha256", "Status"):
        table.add_column(title, justify="right" if title == "Size" else "left")
    for c in checks:
        status = {"ok": "[green]ok[/]", "corrupt": "[bold red]corrupt[/]", "missing": "[bold red]missing[/]"}[c.status]
        table.add_row(c.name, output.human_bytes(c.size_bytes or 0), (c.actual_sha256 or "-")[:16], status)
    console = output.console()
    console.print(table)
    for c in checks:
        for problem in c.problems:
            print(f"{c.name}: {problem}", file=sys.stderr)
    bad = sum(c.status != "ok" for c in checks)
    console.print(f"{len(checks) - bad} intact, {bad} corrupt or missing")
