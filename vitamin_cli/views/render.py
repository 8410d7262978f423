"""Zoo rows as text: the `vitamin ls` table, markdown, CSV, and the `vitamin show` view.

Numbers are printed as the zoo table prints them: the benchmarked table gives params and MACs to two
decimals, the long-schedule table to one; every accuracy has one decimal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING

from vitamin_cli.views.texttable import TextTable
from vitamin_cli.zoo import JSON_KEYS, METRICS, Model, Weights, Zoo

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from vitamin_cli.bench.results import Speeds
    from vitamin_cli.eval.results import Accuracy

METRIC_TITLES = {
    "imagenet": "ImageNet",
    "avg38": "Avg 38",
    "dist_shift": "Dist. shift",
    "vtab": "VTAB",
    "retrieval": "Retrieval",
}
LS_TITLES = {"imagenet": "ImgNet", "avg38": "Avg38", "dist_shift": "Shift", "vtab": "VTAB", "retrieval": "Retr."}
SIZE_TITLES = {"S": "Small", "B": "Base", "L": "Large", "L2": "Large-2", "XL": "Extra-large"}


def cost_decimals(model: Model) -> int:
    return 2 if model.schedule == "benchmark" else 1


def params_text(model: Model, sep: str = "+") -> str:
    d = cost_decimals(model)
    return f"{model.params_image_m:.{d}f}{sep}{model.params_text_m:.{d}f}"


def macs_text(model: Model, sep: str = "+") -> str:
    d = cost_decimals(model)
    return f"{model.macs_image_g:.{d}f}{sep}{model.macs_text_g:.{d}f}"


def metric_text(model: Model, metric: str) -> str:
    return f"{getattr(model, metric):.1f}"


def group_title(model: Model) -> str:
    """The title of the model's group; short enough for the Model column."""
    if model.schedule == "long":
        return "Long schedule"
    return f"{SIZE_TITLES[model.size]} ({model.size})"


def block_key(model: Model) -> tuple[str, ...]:
    """Rows between two separators: one data scale of a size class, or one long-schedule encoder."""
    if model.schedule == "benchmark":
        return (model.schedule, model.size, model.seen_samples)
    return (model.schedule, model.encoder)


# The columns of `vitamin ls --csv`: the JSON keys, with `weights` flattened into one column per field.
CSV_COLUMNS = tuple(
    column
    for key in JSON_KEYS
    for column in ([f"weights_{f.name}" for f in fields(Weights)] if key == "weights" else [key])
)


def to_csv(models: Sequence[Model]) -> str:
    """The JSON objects as CSV rows: aliases joined by `;`, `weights` flattened, null as an empty cell."""
    from vitamin_cli.views.sink import to_csv as rows_to_csv

    return rows_to_csv([m.to_json() for m in models], CSV_COLUMNS)


def to_markdown(registry: Zoo, models: Sequence[Model]) -> str:
    """A markdown table in the zoo table's own columns, its winners in bold."""
    header = (
        "| name | image encoder | image size | num patches | text depth/width | seen samples "
        "| params Image+Text (M) | MACs Image+Text (G) | "
        + " | ".join(METRIC_TITLES[m] for m in METRICS)
        + " | weights |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for model in models:
        wins = registry.winners[model.name]
        metrics = [f"**{metric_text(model, m)}**" if m in wins else metric_text(model, m) for m in METRICS]
        cells = [
            model.name,
            model.encoder,
            str(model.image_size),
            "" if model.num_patches is None else str(model.num_patches),
            f"{model.text_depth} / {model.text_width}",
            model.seen_samples,
            params_text(model, " + "),
            macs_text(model, " + "),
            *metrics,
            model.weights.repo if model.weights else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


OTHERS = "+"  # after a measured value: the file holds results of other settings for this model too


def others_note(models: Sequence[Model], speeds: Speeds | None, accuracy: Accuracy | None) -> str | None:
    """The line under the ls table that explains OTHERS, when a row has it."""
    marked = [m for m in models if (speeds and speeds.others(m)) or (accuracy and accuracy.others(m))]
    if not marked:
        return None
    flags = " ".join(f for f, given in (("--bench FILE", speeds), ("--eval FILE", accuracy)) if given)
    return (
        f"{OTHERS} the newest results shown; the file also holds results of other settings or checkpoints for "
        f"{len(marked)} model{'s' * (len(marked) > 1)}, never averaged together: "
        f"`vitamin compare {marked[0].name} {flags}` shows each"
    )


def ls_table(
    registry: Zoo,
    models: Sequence[Model],
    grouped: bool,
    measured: Mapping[str, Mapping[str, float]] | None = None,
    speeds: Speeds | None = None,
    accuracy: Accuracy | None = None,
) -> TextTable:
    """The `vitamin ls` table, under 80 columns; grouped like the zoo table unless the rows were sorted.

    Names carry the data scale (and the resolution of the long-schedule rows), so no column repeats them.
    """
    titles = ["Model", "Params M\nimg+txt", "MACs G\nimg+txt", *(LS_TITLES[m] for m in METRICS), "Hub"]
    if measured is not None:
        titles[3:3] = ["Params M\nmeasured", "MACs G\nmeasured"]
    if speeds is not None:
        titles[-1:-1] = ["Images\n/s", "Texts\n/s"]
    if accuracy is not None:
        titles[-1:-1] = [f"{LS_TITLES[m]}\nmeas." for m in METRICS]
    table = TextTable(titles, right=set(range(1, len(titles) - 1)))
    for index, model in enumerate(models):
        previous = models[index - 1] if index else None
        if grouped and previous is not None and block_key(previous) != block_key(model):
            table.add_gap()
        if grouped and (previous is None or group_title(previous) != group_title(model)):
            table.add_title(group_title(model))
        table.add_row(_ls_row(registry, model, measured, speeds, accuracy))
    return table


def _ls_row(
    registry: Zoo,
    model: Model,
    measured: Mapping[str, Mapping[str, float]] | None,
    speeds: Speeds | None,
    accuracy: Accuracy | None,
) -> list[tuple[str, str]]:
    """A model's cells in the ls table: the zoo's columns, with what was measured (in cyan) beside them."""
    wins = registry.winners[model.name]
    cells = [
        (model.name, "bold" if model.family == "vitamin" else ""),
        (params_text(model), ""),
        (macs_text(model), ""),
        *((metric_text(model, m), "bold green" if m in wins else "") for m in METRICS),
        ("yes", "") if model.released else ("-", "dim"),
    ]
    if speeds is not None:
        rates = [speeds.get(model, tower) for tower in ("image", "text")]
        more = OTHERS if speeds.others(model) else ""
        cells[-1:-1] = [("-" if rate is None else f"{rate:,.0f}{more}", "cyan") for rate in rates]
    if accuracy is not None:
        values = [accuracy.get(model, m) for m in METRICS]
        more = OTHERS if accuracy.others(model) else ""
        cells[-1:-1] = [("-" if value is None else f"{value:.1f}{more}", "cyan") for value in values]
    if measured is not None:
        c = measured[model.name]
        d = cost_decimals(model)
        cells[3:3] = [
            (f"{c['params_image_m']:.{d}f}+{c['params_text_m']:.{d}f}", "cyan"),
            (f"{c['macs_image_g_paper']:.{d}f}+{c['macs_text_g_paper']:.{d}f}", "cyan"),
        ]
    return cells


# ---------------------------------------------------------------------------------------------------
# vitamin show


def show_json(registry: Zoo, model: Model) -> dict[str, object]:
    inline = registry.inline_architecture(model)
    return {
        **model.to_json(),
        "schedule": model.schedule,
        "architecture": {"name": model.arch, "upstream": inline is None, "config": inline},
        "wins": [m for m in METRICS if m in registry.winners[model.name]],
        "siblings": [m.name for m in registry.siblings(model)],
        "snippet": open_clip_snippet(registry, model),
    }


def show_view(registry: Zoo, model: Model) -> list[RenderableType]:
    """The `vitamin show` view. Text from the zoo file goes in as plain Text, never parsed as rich markup."""
    from rich.text import Text

    from vitamin_cli.views.sink import Cell, table

    parts: list[RenderableType] = [Text(model.name, style="bold"), _facts(registry, model)]
    siblings = registry.siblings(model)
    if siblings:
        rows: list[list[Cell]] = [
            [
                other.name,
                str(other.image_size),
                other.seen_samples,
                metric_text(other, "imagenet"),
                ("same", "yellow") if other.arch == model.arch else "other",
                "hub" if other.released else "-",
            ]
            for other in siblings
        ]
        titles = ("Model", "Res", "Samples", "ImageNet", "Network", "Weights")
        parts.append(Text("Same encoder, other data scales or resolutions", style="italic"))
        parts.append(table(titles, rows, right={"Res", "Samples", "ImageNet"}))
    parts.append(Text("open_clip", style="bold"))
    return parts


def _facts(registry: Zoo, model: Model) -> Table:
    """The model's facts as a grid of labelled lines: its names, sizes, costs, accuracy, network and weights."""
    from rich.table import Table
    from rich.text import Text

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()

    def fact(label: str, *parts: str | tuple[str, str]) -> None:
        facts.add_row(label, Text.assemble(*parts))

    schedule = "benchmarked table" if model.schedule == "benchmark" else "long-schedule table"
    fact("encoder", f"{model.encoder} · family {model.family} · size {model.size} · {schedule}")
    if model.aliases:
        fact("aliases", ", ".join(model.aliases))
    others = registry.names_of(model)
    if others:
        fact("also", ", ".join(others))
    patches = "" if model.num_patches is None else f", {model.num_patches} patches"
    fact("image", f"{model.image_size} px{patches}")
    fact("text", f"{model.text_depth} layers, width {model.text_width}")
    fact("seen samples", f"{model.seen_samples} ({model.seen_samples_total:,} in all)")
    fact("params (M)", f"image {params_text(model, ' + text ')}")
    fact("MACs (G)", f"image {macs_text(model, ' + text ')}")
    fact("", ("the paper's convention: attention matmuls left out", "dim"))
    wins = registry.winners[model.name]
    scores: list[str | tuple[str, str]] = []
    for metric in METRICS:
        scores.append(f"  {METRIC_TITLES[metric]} " if scores else f"{METRIC_TITLES[metric]} ")
        scores.append(
            (metric_text(model, metric) + "*", "bold green") if metric in wins else metric_text(model, metric)
        )
    fact("accuracy (%)", *scores)
    if wins:
        fact("", ("* best of its block (docs/zoo-schema.md, Winners)", "dim"))
    inline = registry.inline_architecture(model)
    where = f"defined in {registry.path.name}, as open_clip's own is missing or wrong"
    fact("architecture", f"open_clip config '{model.arch}'" + ("" if inline is None else f", {where}"))
    fact("weights", _weights_line(model))
    if model.weights_note:
        fact("", model.weights_note)
    return facts


def _weights_line(model: Model) -> str:
    if model.weights is None:
        return "none published"
    w = model.weights
    pins = ", ".join(
        f"{label} {value}"
        for label, value in (("revision", w.revision), ("sha256", w.sha256), ("size", w.size_bytes))
        if value
    )
    return f"hf://{w.repo}/{w.filename} ({pins or 'not pinned yet'})"


def open_clip_snippet(registry: Zoo, model: Model) -> str:
    """Python that builds the model with plain open_clip (and huggingface_hub for released weights)."""
    import json
    import pprint

    lines = ["import open_clip"]
    inline = registry.inline_architecture(model)
    if inline is not None:
        lines[0:0] = ["import json", "import pathlib", "import tempfile", ""]
        lines += [
            "",
            f"# open_clip has no correct config for '{model.arch}': register the one from zoo.yaml",
            "config = " + pprint.pformat(inline, width=100, sort_dicts=False).replace("\n", "\n         "),
            "config_dir = pathlib.Path(tempfile.mkdtemp())",
            f"(config_dir / {json.dumps(model.arch + '.json')}).write_text(json.dumps(config))",
            "open_clip.add_model_config(config_dir)",
        ]
    if model.weights is not None:
        w = model.weights
        revision = f", revision={json.dumps(w.revision)}" if w.revision else ""
        lines.insert(lines.index("import open_clip") + 1, "from huggingface_hub import hf_hub_download")
        lines += [
            "",
            f"checkpoint = hf_hub_download({json.dumps(w.repo)}, {json.dumps(w.filename)}{revision})",
            f"model, _, preprocess = open_clip.create_model_and_transforms({json.dumps(model.arch)}, "
            "pretrained=checkpoint)",
        ]
    else:
        lines += [
            "",
            "# no public checkpoint: this builds the architecture with random weights",
            f"model, _, preprocess = open_clip.create_model_and_transforms({json.dumps(model.arch)})",
        ]
    lines.append(f"tokenizer = open_clip.get_tokenizer({json.dumps(model.arch)})")
    return "\n".join(lines) + "\n"
