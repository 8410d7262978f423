"""Zoo rows as text: the `vitamin ls` table, markdown, CSV, and the `vitamin show` view.

Numbers are printed as the zoo table prints them: the benchmarked table gives params and MACs to two
decimals, the long-schedule table to one; every accuracy has one decimal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING

from vitamin_cli.views.texttable import Spec, TextTable, short_path
from vitamin_cli.zoo import JSON_KEYS, METRICS, Model, Weights, Zoo

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

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


# Where the ls table is too wide for the terminal, the columns of highest priority number are hidden first.
LS_PRIORITY = {"imagenet": 0, "avg38": 4, "dist_shift": 7, "vtab": 6, "retrieval": 5}


def ls_table(
    registry: Zoo,
    models: Sequence[Model],
    grouped: bool,
    measured: Mapping[str, Mapping[str, float]] | None = None,
    speeds: Speeds | None = None,
    accuracy: Accuracy | None = None,
) -> TextTable:
    """The `vitamin ls` table; grouped like the zoo table unless the rows were sorted. On a narrow terminal the
    columns of least use go first: the hub flag, then the other accuracy columns, params, MACs.

    Names carry the data scale (and the resolution of the long-schedule rows), so no column repeats them.
    """
    specs = [
        Spec("Model", key="model"),
        Spec("Params M\nimg+txt", right=True, priority=3, key="params"),
        Spec("MACs G\nimg+txt", right=True, priority=2, key="macs"),
        *(Spec(LS_TITLES[m], right=True, priority=LS_PRIORITY[m], key=m) for m in METRICS),
        Spec("Hub", priority=8, key="hub"),
    ]
    if measured is not None:
        specs[3:3] = [
            Spec("Params M\nmeasured", right=True, priority=3, key="params_measured"),
            Spec("MACs G\nmeasured", right=True, priority=2, key="macs_measured"),
        ]
    if speeds is not None:
        specs[-1:-1] = [
            Spec("Images\n/s", right=True, priority=1, key="images_s"),
            Spec("Texts\n/s", right=True, priority=4, key="texts_s"),
        ]
    if accuracy is not None:
        specs[-1:-1] = [
            Spec(f"{LS_TITLES[m]}\nmeas.", right=True, priority=max(LS_PRIORITY[m], 1), key=f"{m}_measured")
            for m in METRICS
        ]
    table = TextTable(specs, choosable=True)
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


def show_view(registry: Zoo, model: Model, pulled: str | None = None, cache: object = None) -> list[RenderableType]:
    """The `vitamin show` view, with where the model's checkpoint is in the cache (`pulled`: its path, "" when it
    is not pulled, None when it has no weights; `cache`: the cache's folder, which a narrow terminal shows the
    path from). Text from the zoo file goes in as plain Text, never parsed as rich markup."""
    from rich.text import Text

    from vitamin_cli.views.sink import Cell, table

    parts: list[RenderableType] = [Text(model.name, style="bold"), _facts(registry, model, pulled, cache)]
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
        titles = [
            Spec("Model"),
            Spec("Res", right=True, priority=3),
            Spec("Samples", right=True, priority=1),
            Spec("ImageNet", right=True),
            Spec("Network", priority=2),
            Spec("Weights", priority=4),
        ]
        parts.append(Text("Same encoder, other data scales or resolutions", style="italic"))
        parts.append(table(titles, rows))
    parts.append(Text("open_clip", style="bold"))
    return parts


class _Facts:
    """Labelled lines, fitted to the console's width: text folds between words; a path (`kind` "path") takes its
    short form where it does not fit (`short`: from the cache) and folds after its slashes; a hash too long for
    the line (`kind` "hash") is shown by its prefix and marked with an ellipsis; pairs of a label and its value
    (`kind` "pairs") fold between pairs, never inside one."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, tuple[str | tuple[str, str], ...], str, str | None]] = []

    def add(self, label: str, *parts: str | tuple[str, str], kind: str = "text", short: str | None = None) -> None:
        self.rows.append((label, parts, kind, short))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.table import Table
        from rich.text import Text

        from vitamin_cli.views.sink import room_of
        from vitamin_cli.views.texttable import fold

        labels = max(len(row[0]) for row in self.rows)
        width = room_of(options)
        room = None if width is None else max(width - labels - 2, 8)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, parts, kind, short in self.rows:
            plain = "".join(p if isinstance(p, str) else p[0] for p in parts)
            if room is not None and kind == "path":
                shown = short if short is not None and len(plain) > room else plain
                parts = ("\n".join(fold(shown, room, path=True)),)
            elif room is not None and kind == "hash" and len(plain) > room:
                parts = (plain[: room - 1] + "…",)
            elif room is not None and kind == "pairs":
                parts = _pairs_folded(parts, room)
            grid.add_row(label, Text.assemble(*parts))
        yield grid


def _pairs_folded(parts: tuple[str | tuple[str, str], ...], room: int) -> tuple[str | tuple[str, str], ...]:
    """Label and value pairs (each label after the first led by two spaces) over lines of at most `room`: a new
    line starts before a pair that does not fit, without its leading spaces."""

    def text(part: str | tuple[str, str]) -> str:
        return part if isinstance(part, str) else part[0]

    folded: list[str | tuple[str, str]] = []
    width = 0
    for label, value in zip(parts[::2], parts[1::2], strict=True):
        size = len(text(label)) + len(text(value))
        if folded and width + size > room:
            folded.append("\n")
            label, width = text(label).lstrip(" "), 0
            size = len(label) + len(text(value))
        folded += [label, value]
        width += size
    return tuple(folded)


def _facts(registry: Zoo, model: Model, pulled: str | None, cache: object) -> _Facts:
    """The model's facts as labelled lines: its names, sizes, costs, accuracy, network, weights and whether they
    are in the cache."""
    facts = _Facts()
    fact = facts.add

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
    fact("accuracy (%)", *scores, kind="pairs")
    if wins:
        fact("", ("* best of its block (docs/zoo-schema.md, Winners)", "dim"))
    inline = registry.inline_architecture(model)
    where = f"defined in {registry.path.name}, as open_clip's own is missing or wrong"
    fact("architecture", f"open_clip config '{model.arch}'" + ("" if inline is None else f", {where}"))
    _weights_facts(facts, model)
    if pulled is not None:
        not_yet = ("no: `vitamin pull " + model.name + "` fetches it", "dim")
        fact("pulled", pulled or not_yet, kind="path", short=short_path(pulled, cache) if pulled else None)
    return facts


def _weights_facts(facts: _Facts, model: Model) -> None:
    fact = facts.add
    w = model.weights
    if w is None:
        fact("weights", "none published")
    else:
        fact("weights", f"hf://{w.repo}/{w.filename}", kind="path")
        if not (w.revision or w.sha256 or w.size_bytes):
            fact("", ("not pinned yet: `vitamin pin` records its revision, sha256 and size", "dim"))
        if w.revision:
            fact("revision", w.revision, kind="hash")
        if w.sha256:
            fact("sha256", w.sha256, kind="hash")
        if w.size_bytes:
            fact("size", f"{w.size_bytes:,} bytes")
    if model.weights_note:
        fact("", model.weights_note)


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
