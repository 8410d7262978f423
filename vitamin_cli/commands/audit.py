"""`vitamin audit`: reported params and MACs beside the ones measured on the real architectures."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import EXIT_FAILURE, VitaminError
from vitamin_cli.views import sink
from vitamin_cli.views.sink import Column, OutputFormat

if TYPE_CHECKING:
    from vitamin_cli.models.audit import AuditRow

FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.csv, OutputFormat.markdown)
EXAMPLES = """
Examples:

  vitamin audit ViTamin-L              # one model
  vitamin audit --all --json           # all 61 (docs/json.md); 26 architectures are built, once each
  vitamin audit --size S --family vit  # the ls filters work too
  vitamin audit --all --csv > audit.csv
"""


@opt.selecting(with_all=True)
def audit_command(
    selection: opt.Selection,
    columns: opt.TableColumns = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_csv: opt.CsvFlag = False,
    as_markdown: opt.MarkdownFlag = False,
    zoo_path: opt.ZooPath = None,
) -> None:
    """Recompute image and text params and MACs from each model's real open_clip architecture.

    MACs in two conventions: the paper's (attention matmuls left out, as the zoo table counts) and the full
    count. A flag marks every number that disagrees with the table by more than its rounding
    (docs/audit.md explains the findings). Measured on the meta device; results are cached.
    """
    from vitamin_cli.models import audit

    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_csv=as_csv, as_markdown=as_markdown)
    shown = opt.table_columns(columns, COLUMNS, chosen)
    selection.require("audit")
    registry = zoo.load(zoo_path)
    models = selection.models(registry)

    def progress(architecture: str) -> None:
        if chosen == OutputFormat.table and sys.stderr.isatty():
            print(f"measuring {architecture} ...", file=sys.stderr)

    failures: dict[str, VitaminError] = {}
    rows = audit.audit(registry, models, progress=progress, failures=failures)
    for name, err in failures.items():
        console.report_error(VitaminError(f"{name}: {err.message}", hint=err.hint))

    def summary() -> None:
        sink.write_prose(
            "reported / measured, in M params and G MACs per item; MACs in the paper's convention (attention "
            "matmuls left out) unless marked full"
        )
        typer.echo(f"{sum(bool(r.flags) for r in rows)} of {len(rows)} models flagged", err=True)

    sink.write_rows(
        chosen, rows, shown, record=lambda r: r.to_json(), after=summary, markdown=lambda: audit.to_markdown(rows)
    )
    if failures:
        raise typer.Exit(EXIT_FAILURE)


COLUMNS: list[Column[AuditRow]] = [
    Column("Model", lambda r: r.model),
    Column(
        "Params img", lambda r: f"{r.params_image_m_reported:g} / {r.params_image_m_measured:.2f}", True, 2, "params"
    ),
    Column(
        "Params txt", lambda r: f"{r.params_text_m_reported:g} / {r.params_text_m_measured:.2f}", True, 4, "params_text"
    ),
    Column("MACs img", lambda r: f"{r.macs_image_g_reported:g} / {r.macs_image_g_measured_paper:.2f}", True, 1, "macs"),
    Column("MACs img full", lambda r: f"{r.macs_image_g_measured_full:.2f}", True, 5, "macs_full"),
    Column(
        "MACs txt", lambda r: f"{r.macs_text_g_reported:g} / {r.macs_text_g_measured_paper:.2f}", True, 3, "macs_text"
    ),
    Column("Flags", lambda r: ("; ".join(r.flags), "yellow")),
]
