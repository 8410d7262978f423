"""`vitamin ls`: the zoo as a table, or as JSON, CSV or markdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from vitamin_cli import console, zoo
from vitamin_cli.commands import _options as opt
from vitamin_cli.errors import UsageError
from vitamin_cli.views import render, sink
from vitamin_cli.views.measured import Measured, options_given
from vitamin_cli.views.sink import OutputFormat
from vitamin_cli.views.texttable import columns_asked, rule_char, use_color

if TYPE_CHECKING:
    from vitamin_cli.zoo import fields as fields_

FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.csv, OutputFormat.markdown)
EXAMPLES = """
Examples:

  vitamin ls --size L                  # the 22 large models
  vitamin ls 'ViTamin-L*' --released   # released ViTamin-L and -L2 models
  vitamin ls --sort imagenet --reverse # best ImageNet accuracy first
  vitamin ls --where 'macs < 100' --sort imagenet -r  # most accurate under 100 GMACs
  vitamin ls --pareto macs,imagenet    # the models no other beats on both
  vitamin ls --family vitamin --json   # machine-readable (docs/json.md)
"""


def _field_names() -> list[str]:
    from vitamin_cli.zoo.fields import ALIASES, NAMES

    return [*ALIASES, *NAMES]


SortField = Annotated[
    str | None,
    typer.Option(
        "--sort",
        metavar="FIELD",
        autocompletion=_field_names,
        help="Sort by a number (ascending): imagenet, macs, params, ... or a measured one (docs/cli.md#fields).",
        show_default=False,
    ),
]
ParetoFields = Annotated[
    str | None,
    typer.Option(
        "--pareto",
        metavar="X,Y",
        help="Only the Pareto front on these fields: the models no other beats on all of them (costs lower, "
        "accuracy and throughput higher), by X.",
        show_default=False,
    ),
]
BenchFile = Annotated[
    Path | None,
    typer.Option("--bench", metavar="FILE", help="Add throughput saved by `vitamin bench -o FILE` (or --json)."),
]
EvalFile = Annotated[
    Path | None, typer.Option("--eval", metavar="FILE", help="Add the accuracy measured by `vitamin eval -o FILE`.")
]
WithAudit = Annotated[
    bool, typer.Option("--audit", help="Add the params and MACs measured by `vitamin audit` (from its cache).")
]


@opt.selecting(with_all=False)
def ls_command(
    selection: opt.Selection,
    pulled: opt.PulledFilter = None,
    sort: SortField = None,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Sort descending.")] = False,
    pareto: ParetoFields = None,
    bench_file: BenchFile = None,
    gpu: opt.BenchGpu = None,
    eval_file: EvalFile = None,
    with_audit: WithAudit = False,
    columns: opt.TableColumns = None,
    format_: Annotated[str | None, opt.format_option(*FORMATS)] = None,
    as_json: opt.JsonFlag = False,
    as_csv: opt.CsvFlag = False,
    as_markdown: opt.MarkdownFlag = False,
    zoo_path: opt.ZooPath = None,
    cache_dir: opt.CacheDir = None,
) -> None:
    """List the zoo: one row per model, grouped like the zoo table, winners of each block highlighted. With
    --bench, --eval or --audit, what was measured beside what the zoo reports, in the table and in every JSON or
    CSV record; each record also says whether the model is pulled, and where."""
    chosen = opt.output_format(format_, FORMATS, as_json=as_json, as_csv=as_csv, as_markdown=as_markdown)
    _refuse_conflicts(chosen, sort=sort, reverse=reverse, pareto=pareto, columns=columns)
    given = options_given(bench_file, gpu, eval_file, with_audit)
    order, axes, named = _query(selection, sort, pareto, given)  # a mistake in them is said before any file is read
    registry = zoo.load(zoo_path)
    everything = replace(selection, where=None).models(registry)
    measured = Measured.read(registry, everything, bench_file, gpu, eval_file, with_audit)
    models = selection.models(registry, measured.values, given)
    if pulled is not None:
        present = _pulled_paths(models, cache_dir)
        models = [m for m in models if (m.name in present) == pulled]
    models = _arranged(models, order, axes, measured, reverse)
    if chosen == OutputFormat.table and not models:
        console.err_console().print("no model matches these filters; `vitamin ls` shows them all")
        return

    def table() -> None:
        shown = render.ls_table(
            registry,
            models,
            grouped=sort is None and pareto is None,
            measured=measured.audit,
            speeds=measured.speeds,
            accuracy=measured.accuracy,
        )
        shown.keep(named)  # the columns the listing is sorted or chosen by stay, however narrow the terminal
        if columns is not None:
            shown.choose(columns_asked(columns))
        console.write_text(shown.render(color=use_color(), width=console.width(), rule=rule_char()))
        note = render.others_note(models, measured.speeds, measured.accuracy)
        if note:
            sink.write_prose(note)
        if pareto is not None:
            said = " and ".join(f"{f.name} ({f.better} is better)" for f in axes)
            count = f"{len(models)} model{'s' * (len(models) != 1)}"
            sink.write_note(f"the Pareto front on {said}: {count}")

    def records() -> list[dict[str, object]]:
        paths = _pulled_paths(models, cache_dir)
        return [measured.record(m, paths.get(m.name)) for m in models]

    sink.write(
        chosen,
        json=records,
        table=table,
        csv=lambda: sink.to_csv(records(), [*render.CSV_COLUMNS, *measured.csv_extra()]),
        markdown=lambda: render.to_markdown(registry, models),
    )


def _refuse_conflicts(
    chosen: OutputFormat, *, sort: str | None, reverse: bool, pareto: str | None, columns: str | None
) -> None:
    """Options that make no sense together, refused before the zoo is read."""
    if reverse and sort is None and pareto is None:
        raise UsageError("--reverse needs --sort FIELD (or --pareto X,Y)")
    if columns is not None and chosen != OutputFormat.table:
        raise UsageError(f"--columns chooses the table's columns; {chosen.value} has them all")


def _query(
    selection: opt.Selection, sort: str | None, pareto: str | None, given: list[str]
) -> tuple[fields_.Field | None, list[fields_.Field], set[str]]:
    """The field --sort names and those --pareto names, checked with --where: names, and the options that give
    the measured ones; and the table columns of all the fields they name."""
    if selection.where is None and sort is None and pareto is None:  # plain ls imports none of this
        return None, [], set()
    from vitamin_cli.zoo import fields

    used = sorted(fields.where(selection.where, given).fields) if selection.where is not None else []
    order = fields.resolve(sort, given, "--sort") if sort is not None else None
    axes = _pareto_fields(pareto, given) if pareto is not None else []
    named = [fields.BY_NAME[n] for n in used] + ([order] if order else []) + axes
    return order, axes, {f.column for f in named if f.column}


def _pareto_fields(value: str, given: list[str]) -> list[fields_.Field]:
    from vitamin_cli.zoo import fields

    names = [n.strip() for n in value.split(",") if n.strip()]
    if len(names) < 2:
        raise UsageError("--pareto needs two fields or more, e.g. --pareto macs,imagenet")
    found = [fields.resolve(n, given, "--pareto") for n in names]
    twice = [f.name for i, f in enumerate(found) if f in found[:i]]
    if twice:
        raise UsageError(f"--pareto names {twice[0]} twice", hint="name each field once, e.g. --pareto macs,imagenet")
    for f in found:
        if f.better is None:
            raise UsageError(
                f"--pareto: {f.name} is neither a cost nor a score, so no value of it is better",
                hint="use costs (macs, params, ...) and scores (imagenet, throughput, ...)",
            )
    return found


def _arranged(
    models: list[zoo.Model], order: fields_.Field | None, axes: list[fields_.Field], measured: Measured, reverse: bool
) -> list[zoo.Model]:
    """The models on the Pareto front of `axes` (all of them without), sorted by `order`, else by the first axis."""
    if axes:
        models = _front(models, axes, measured)
    if order is not None or axes:
        models = _sorted(models, order or axes[0], measured, reverse)
    return models


def _front(models: list[zoo.Model], axes: list[fields_.Field], measured: Measured) -> list[zoo.Model]:
    from vitamin_cli.zoo import fields
    from vitamin_cli.zoo.query import pareto

    values = {m.name: fields.values_of(m, measured.values) for m in models}

    def axis(name: str) -> Callable[[zoo.Model], float | int | None]:
        return lambda m: values[m.name].get(name)

    return pareto(models, [(axis(f.name), f.better == fields.HIGHER) for f in axes])


def _sorted(models: list[zoo.Model], by: fields_.Field, measured: Measured, reverse: bool) -> list[zoo.Model]:
    """The models with a value of the field, sorted by it; then those without one, in their order."""
    from vitamin_cli.zoo import fields

    value = {m.name: fields.values_of(m, measured.values).get(by.name) for m in models}
    present = [m for m in models if value[m.name] is not None]
    present.sort(key=lambda m: cast(float, value[m.name]), reverse=reverse)
    return present + [m for m in models if value[m.name] is None]


def _pulled_paths(models: list[zoo.Model], cache_dir: Path | None) -> dict[str, Path]:
    """The path of each released model's checkpoint in the cache, by name."""
    from vitamin_cli.checkpoints.owners import ModelOwner
    from vitamin_cli.checkpoints.store import Store

    return Store(cache_dir).pulled_paths(ModelOwner(m) for m in models if m.released)
