"""`vitamin cache`: what is on disk, with sizes and the total."""

from __future__ import annotations

from typing import Annotated

from vitamin_cli import console
from vitamin_cli.commands import _options as opt
from vitamin_cli.views import sink
from vitamin_cli.views.sink import Cell, OutputFormat

FORMATS = (OutputFormat.table, OutputFormat.json)
EXAMPLES = """
Examples:

  vitamin cache                       # pulled models and partial downloads, with sizes
  vitamin cache --cache-dir /data/hf --json
"""


def cache_command(
    cache_dir: opt.CacheDir = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Show the zoo's checkpoints in the cache (each revision of each model), whether vitamin pulled them or
    found them there (put by open_clip, timm, `hf download`), interrupted downloads, and the total on disk. A
    file deleted by another tool is listed as gone."""
    from vitamin_cli import zoo
    from vitamin_cli.checkpoints.pull import with_found
    from vitamin_cli.hub.cache import hub_dir, manifest_path, partial_downloads

    chosen = opt.output_format(format_, FORMATS, as_json=as_json)
    root = hub_dir(cache_dir)
    released = [m for m in zoo.load(zoo_path).models if m.released]
    pulled = sorted(with_found(root, released).entries, key=lambda e: (e.name, e.pulled_at))
    partials = partial_downloads(root)
    present = [e for e in pulled if e.snapshot(root).exists()]
    # a blob two entries share is counted once, as the cache scanner counts it
    blobs = {(e.repo_type, e.repo, e.etag): e.size_bytes for e in present}
    total = sum(blobs.values()) + sum(p.size_bytes for p in partials)

    def table() -> None:
        console.write_text(f"cache {root}")
        if not pulled and not partials:
            console.write_text("nothing pulled yet; `vitamin pull NAME` fetches a checkpoint")
            return
        rows: list[list[Cell]] = []
        for e in pulled:
            gone = e not in present
            rows.append(
                [
                    (f"{e.name} (gone)", "yellow") if gone else e.name,
                    console.human_bytes(e.size_bytes),
                    e.revision[:10],
                    f"found {e.pulled_at}" if e.adopted else e.pulled_at,
                    str(e.snapshot(root)),
                ]
            )
        for p in partials:
            rows.append([(f"{p.repo} (partial)", "yellow"), console.human_bytes(p.size_bytes), "", "", str(p.path)])
        console.console().print(sink.table(("Model", "Size", "Revision", "Pulled", "Path"), rows, right={"Size"}))
        vanished = len(pulled) - len(present)
        console.write_text(
            f"total {console.human_bytes(total)} in {len(present)} files"
            + (f" and {len(partials)} partial downloads" if partials else "")
            + (f"; {vanished} deleted outside vitamin (`vitamin rm` forgets them)" if vanished else "")
        )

    sink.write(
        chosen,
        json=lambda: {
            "cache_dir": str(root),
            "manifest": str(manifest_path(root)),
            "models": [e.to_json(root) for e in pulled],
            "partial": [
                {"repo": p.repo, "repo_type": p.repo_type, "path": str(p.path), "size_bytes": p.size_bytes}
                for p in partials
            ],
            "total_bytes": total,
        },
        table=table,
    )
