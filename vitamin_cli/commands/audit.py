"""`vitamin audit`: reported params and MACs beside the ones measured on the real architectures."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vitamin_cli import output
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import UsageError

EXAMPLES = """
Examples:

  vitamin audit ViTamin-L              # one model
  vitamin audit --all --json           # all 61 (docs/json.md); 26 architectures are built, once each
  vitamin audit --size S --family vit  # the ls filters work too
"""


def audit(
    names: opt.Names = None,
    all_models: opt.AllFlag = False,
    size: opt.SizeFilter = None,
    family: opt.FamilyFilter = None,
    samples: opt.SamplesFilter = None,
    resolution: opt.ResolutionFilter = None,
    released: opt.ReleasedFilter = None,
    as_json: opt.JsonFlag = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Write a markdown table to stdout.")] = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Recompute image and text params and MACs from each model's real open_clip architecture.

    MACs in two conventions: the paper's (attention matmuls left out, as the zoo table counts) and the full
    count. A flag marks every number that disagrees with the table by more than its rounding
    (docs/audit.md explains the findings). Measured on the meta device; results are cached.
    """
    from vitamin_cli.audit import audit as run_audit
    from vitamin_cli.audit import to_markdown

    if as_json and as_markdown:
        raise UsageError("choose one of --json and --markdown")

    registry, models = opt.select_some(
        "audit", names, all_models, zoo_path, size, family, samples, resolution, released
    )
    stderr = output.err_console() if sys.stderr.isatty() and not (as_json or as_markdown) else None

    def progress(architecture: str) -> None:
        if stderr is not None:
            stderr.print(f"measuring {architecture} ...")

    rows = run_audit(registry, models, progress=progress)
    if as_json:
        output.write_json([r.to_json() for r in rows])
        return
    if as_markdown:
        output.write_text(to_markdown(rows))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("Model", "Params img", "Params txt", "MACs img", "MACs img full", "MACs txt", "Flags"):
        table.add_column(title, justify="left" if title in ("Model", "Flags") else "right")
    for r in rows:
        table.add_row(
            r.model,
            f"{r.params_image_m_reported:g} / {r.params_image_m_measured:.2f}",
            f"{r.params_text_m_reported:g} / {r.params_text_m_measured:.2f}",
            f"{r.macs_image_g_reported:g} / {r.macs_image_g_measured_paper:.2f}",
            f"{r.macs_image_g_measured_full:.2f}",
            f"{r.macs_text_g_reported:g} / {r.macs_text_g_measured_paper:.2f}",
            "[yellow]" + "; ".join(r.flags) + "[/]" if r.flags else "",
        )
    console = output.console()
    console.print(table)
    console.print(
        "reported / measured, in M params and G MACs per item; MACs in the paper's convention (attention "
        "matmuls left out) unless marked full"
    )
    typer.echo(f"{sum(bool(r.flags) for r in rows)} of {len(rows)} models flagged", err=True)
