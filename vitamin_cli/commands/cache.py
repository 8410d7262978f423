"""`vitamin cache`: what is on disk, with sizes and the total."""

from __future__ import annotations

from vitamin_cli import output
from vitamin_cli.commands import _options as opt


def cache(cache_dir: opt.CacheDir = None, as_json: opt.JsonFlag = False) -> None:
    """Show the pulled checkpoints and interrupted downloads in the cache, with sizes and the total."""
    from vitamin_cli.cache import hub_cache_dir, manifest_path, partial_downloads, read_manifest

    root = hub_cache_dir(cache_dir)
    pulled = sorted(read_manifest(root).values(), key=lambda e: e.name)
    partials = partial_downloads(root)
    total = sum(e.size_bytes for e in pulled) + sum(p.size_bytes for p in partials)
    if as_json:
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
    from rich.table import Table

    console = output.console()
    console.print(f"cache {root}")
    if not pulled and not partials:
        console.print("nothing pulled yet; `vitamin pull NAME` fetches a checkpoint")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("Model", "Size", "Revision", "Pulled", "Path"):
        table.add_column(title, justify="right" if title == "Size" else "left", overflow="fold")
    for e in pulled:
        table.add_row(e.name, output.human_bytes(e.size_bytes), e.revision[:10], e.pulled_at, e.path)
    for p in partials:
        table.add_row(f"[yellow]{p.repo} (partial)[/]", output.human_bytes(p.size_bytes), "", "", str(p.path))
    console.print(table)
    console.print(
        f"total {output.human_bytes(total)} in {len(pulled)} models"
        + (f" and {len(partials)} partial downloads" if partials else "")
    )
