"""`vitamin audit`: reported params and MACs beside the ones measured on the real architectures."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli import output, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, VitaminError
from vitamin_cli.output import OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.audit import AuditRow

FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.markdown)
EXAMPLES = """
Examples:

  vitamin audit ViTamin-L              # one model
  vitamin audit --all --json           # all 61 (docs/json.md); 26 architectures are built, once each
  vitamin audit --size S --family vit  # the ls filters work too
"""


@opt.selecting(with_all=True)
def audit_command(
    selection: opt.Selection,
    format_: Annotated[OutputFormat | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_markdown: opt.MarkdownFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Recompute image and text params and MACs from each model's real open_clip architecture.

    MACs in two conventions: the paper's (attention matmuls left out, as the zoo table counts) and the full
    count. A flag marks every number that disagrees with the table by more than its rounding
    (docs/audit.md explains the findings). Measured on the meta device; results are cached.
    """
    from vitamin_cli import audit

    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_markdown=as_markdown)
    selection.require("audit")
    registry = zoo.load(zoo_path)
    models = selection.models(registry)

    def progress(architecture: str) -> None:
        if chosen == OutputFormat.table and sys.stderr.isatty():
            print(f"measuring {architecture} ...", file=sys.stderr)

    failures: dict[str, VitaminError] = {}
    rows = audit.audit(registry, models, progress=progress, failures=failures)
    for name, err in failures.items():
        output.report_error(VitaminError(f"{name}: {err.message}", hint=err.hint))
    if chosen == OutputFormat.json:
        output.write_json([r.to_json() for r in rows])
    elif chosen == OutputFormat.markdown:
        output.write_text(audit.to_markdown(rows))
    else:
        _table(rows)
    if failures:
        raise typer.Exit(EXIT_FAILURE)


def _table(rows: list[AuditRow]) -> None:
    cells: list[list[output.Cell]] = [
        [
            r.model,
            f"{r.params_image_m_reported:g} / {r.params_image_m_measured:.2f}",
            f"{r.params_text_m_reported:g} / {r.params_text_m_measured:.2f}",
            f"{r.macs_image_g_reported:g} / {r.macs_image_g_measured_paper:.2f}",
            f"{r.macs_image_g_measured_full:.2f}",
            f"{r.macs_text_g_reported:g} / {r.macs_text_g_measured_paper:.2f}",
            ("; ".join(r.flags), "yellow"),
        ]
        for r in rows
    ]
    titles = ("Model", "Params img", "Params txt", "MACs img", "MACs img full", "MACs txt", "Flags")
    output.console().print(output.table(titles, cells, right=set(titles[1:-1])))
    output.write_text(
        "reported / measured, in M params and G MACs per item; MACs in the paper's convention (attention "
        "matmuls left out) unless marked full"
    )
    typer.echo(f"{sum(bool(r.flags) for r in rows)} of {len(rows)} models flagged", err=True)
