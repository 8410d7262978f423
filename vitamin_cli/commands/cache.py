"""`vitamin cache`: what is on disk, with sizes and the total."""

from __future__ import annotations

from typing import Annotated

from vitamin_cli import output
from vitamin_cli.commands import _options as opt
from vitamin_cli.output import OutputFormat

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin cache                       # pulled models and partial downloads, with sizes
  vitamin cache --cache-dir /data/hf --json
"""


def cache_command(
    cache_dir: opt.CacheDir = None,
    format_: Annotated[OutputFormat | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
) -> None:
    """Show the pulled checkpoints and interrupted downloads in the cache, with sizes and the total."""
    from vitamin_cli.hubcache import hub_dir, manifest_path, partial_downloads, read_manifest

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    root = hub_dir(cache_dir)
    pulled = sorted(read_manifest(root).values(), key=lambda e: e.name)
    partials = partial_downloads(root)
    total = sum(e.size_bytes for e in pulled) + sum(p.size_bytes for p in partials)
    if chosen == OutputFormat.json:
        output.write_json(
            {
                "cache_dir": str(root),
                "manifest": str(manifest_path(root)),
                "models": [vars(e) for e in pulled],
                "partial": [{"repo": p.repo, "path": str(p.path), "size_bytes": p.size_bytes} for p in partials],
                "total_bytes": total,
            }
        )
        return
    console = output.console()
    output.write_text(f"cache {root}")
    if not pulled and not partials:
        output.write_text("nothing pulled yet; `vitamin pull NAME` fetches a checkpoint")
        return
    rows: list[list[output.Cell]] = [
        [e.name, output.human_bytes(e.size_bytes), e.revision[:10], e.pulled_at, e.path] for e in pulled
    ]
    rows += [
        [(f"{p.repo} (partial)", "yellow"), output.human_bytes(p.size_bytes), "", "", str(p.path)] for p in partials
    ]
    console.print(output.table(("Model", "Size", "Revision", "Pulled", "Path"), rows, right={"Size"}, fold=True))
    output.write_text(
        f"total {output.human_bytes(total)} in {len(pulled)} models"
        + (f" and {len(partials)} partial downloads" if partials else "")
    )
