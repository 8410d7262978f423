"""Options shared by several commands, declared once.

Commands that act on a selection of models (ls, plot, audit, bench, pull) take the same names and filters:
`@selecting` adds them to the command's options and hands the command one `Selection`, so a filter is
added or changed here, for every command at once.

An option whose values are a closed set names them, in its metavar or its help, and completes them in the
shell (`complete_*` below). Completion runs at every Tab press, so it imports nothing heavy: no torch, no
huggingface_hub, only the zoo (through its memo) and the task keys.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from vitamin_cli import zoo
from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.models.device import DTYPES
from vitamin_cli.views.sink import OutputFormat

# ---------------------------------------------------------------------------------------------------
# Shell completion: the values an argument or option can take


def complete_model_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The zoo's canonical names and aliases (of --zoo or $VITAMIN_ZOO when given), not those already typed;
    each with its encoder, resolution and seen samples, which zsh and fish show beside it."""
    try:
        given = ctx.params.get("zoo_path")
        registry = zoo.load(Path(given).expanduser() if given else None)  # the shell leaves `~` to us here
    except (VitaminError, OSError):  # a broken zoo completes nothing; running the command says why
        return []
    typed = ctx.params.get("names") or []
    return [
        (name, f"{m.encoder}, {m.image_size} px, {m.seen_samples} samples" + ("" if m.released else ", unreleased"))
        for m in registry.models
        for name in (m.name, *m.aliases)
        if name.startswith(incomplete) and name not in typed
    ]


def complete_task_keys() -> list[str]:
    """DataComp's task keys, read from the bundled tasks.yaml without validating it."""
    from vitamin_cli.eval.tasks import keys

    return keys()


def complete_devices() -> list[str]:
    """cpu, cuda, and cuda:N for each GPU that $CUDA_VISIBLE_DEVICES names, else that the NVIDIA driver lists
    (asking torch would take seconds)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # CUDA counts the entries up to the first invalid one, such as -1
        gpus = len(list(itertools.takewhile(lambda d: d.strip() and not d.strip().startswith("-"), visible.split(","))))
    else:
        try:
            gpus = len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
        except OSError:
            gpus = 0
    return ["cpu", "cuda", *(f"cuda:{n}" for n in range(gpus))]


def _values(*values: str) -> Callable[[], list[str]]:
    return lambda: list(values)


ZooPath = Annotated[
    Path | None,
    typer.Option(
        "--zoo",
        envvar=zoo.ZOO_ENV,
        help="Zoo file to use instead of the bundled zoo.yaml (also $VITAMIN_ZOO).",
        show_default=False,
    ),
]
Names = Annotated[
    list[str] | None,
    typer.Argument(
        help="Model names, aliases, Hugging Face repos or globs such as 'ViTamin-L*'.",
        autocompletion=complete_model_names,
        show_default=False,
    ),
]
SizeFilter = Annotated[
    list[zoo.Size] | None,
    typer.Option("--size", case_sensitive=False, help="Size class (repeatable).", show_default=False),
]
FamilyFilter = Annotated[
    list[zoo.Family] | None,
    typer.Option("--family", case_sensitive=False, help="Model family (repeatable).", show_default=False),
]
SamplesFilter = Annotated[
    list[str] | None,
    typer.Option(
        "--samples",
        help="Seen samples, as printed or as a total: 128M, 1.28B, 12.8B+0.5B, 13.3B (repeatable).",
        show_default=False,
    ),
]
ResolutionFilter = Annotated[
    list[int] | None,
    typer.Option("--resolution", min=1, help="Image size in pixels (repeatable).", show_default=False),
]
ReleasedFilter = Annotated[
    bool | None,
    typer.Option("--released/--unreleased", help="Only models with (or without) public weights.", show_default=False),
]
WhereFilter = Annotated[
    str | None,
    typer.Option(
        "--where",
        metavar="EXPR",
        help="Only models whose numbers pass EXPR: comparisons joined by and/or/not, e.g. 'macs < 100 and "
        "imagenet >= 80' (fields and aliases: docs/cli.md#fields).",
        show_default=False,
    ),
]
PulledFilter = Annotated[
    bool | None,
    typer.Option(
        "--pulled/--not-pulled", help="Only models whose checkpoint is (or is not) in the cache.", show_default=False
    ),
]
AllFlag = Annotated[bool, typer.Option("--all", help="Every model of the zoo.")]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Hugging Face cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).",
        file_okay=False,
        show_default=False,
    ),
]
OutputFile = Annotated[Path | None, typer.Option("-o", "--output", help="Also save the results to this file.")]

# ---------------------------------------------------------------------------------------------------
# Running models: bench and eval


def _batch_size(value: str | None) -> str | None:
    if value is not None and value != "auto" and not (value.isascii() and value.isdigit() and int(value) > 0):
        raise typer.BadParameter(f"'{value}' is neither a positive whole number nor 'auto'")
    return value


def _device(value: str | None) -> str | None:
    from vitamin_cli.models.device import check_name

    if value is not None:
        try:
            check_name(value)
        except UsageError as err:
            raise typer.BadParameter(f"{err.message}: {err.hint}") from None
    return value


Device = Annotated[
    str | None,
    typer.Option(
        metavar="[cpu|cuda|cuda:N]",
        callback=_device,
        autocompletion=complete_devices,
        help="Where to run: the CPU, the current GPU or GPU number N (default: cuda when there is one).",
    ),
]
Dtype = Annotated[
    str | None,
    typer.Option(
        metavar="[" + "|".join(DTYPES) + "]",
        autocompletion=_values(*DTYPES),
        help="Number format (default: bf16 on CUDA, fp32 on the CPU).",
        show_default=False,
    ),
]
BatchSize = Annotated[
    str | None,
    typer.Option(
        metavar="[N|auto]",
        callback=_batch_size,
        autocompletion=_values("auto"),
        help="Batch size, or 'auto' for the largest that fits and still helps.",
    ),
]


Tasks = Annotated[
    list[str] | None,
    typer.Option(
        "--task",
        metavar="KEY",
        autocompletion=complete_task_keys,
        help="An evaluation task (DataComp's key: imagenet1k, vtab/cifar100, ...; `vitamin tasks` lists them), or "
        "folder:PATH / wds:PATH / retrieval:PATH for your own data (repeatable).",
        show_default=False,
    ),
]
Suites = Annotated[
    list[str] | None,
    typer.Option(
        "--suite",
        metavar="NAME",
        autocompletion=_values(*zoo.METRICS),  # the suites are the zoo's accuracy columns (eval/tasks.py)
        help="The tasks behind a zoo column: imagenet, dist_shift, vtab, retrieval or avg38 (repeatable).",
        show_default=False,
    ),
]


# eval
Templates = Annotated[
    Path | None,
    typer.Option("--templates", metavar="FILE", help="Templates to use, one per line, {c} for the class name."),
]
Checkpoint = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        metavar="PATH",
        help="Your own weights for the (one) selected model's architecture, loaded strictly, weights only.",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(min=0, help="Processes decoding images (default: all cores but one on CUDA, half on the CPU)."),
]
EvalOutput = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="Append each finished task to this JSON-lines file; a rerun skips them."),
]


# bench
TOWERS = ("image", "text", "both")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
Tower = Annotated[
    str,
    typer.Option(
        metavar="[" + "|".join(TOWERS) + "]",
        autocompletion=_values(*TOWERS),
        help="The image tower, the text tower or both.",
    ),
]
Amp = Annotated[bool, typer.Option("--amp", help="Autocast to the dtype instead of casting the model.")]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the tower (compile time reported apart).")]
CompileMode = Annotated[
    str | None,
    typer.Option(
        metavar="MODE",
        autocompletion=_values(*COMPILE_MODES),
        help="torch.compile mode: " + ", ".join(COMPILE_MODES[:-1]) + " or " + COMPILE_MODES[-1] + ".",
    ),
]
ChannelsLast = Annotated[
    bool | None, typer.Option("--channels-last/--no-channels-last", help="Image towers (default: on for CUDA).")
]
Warmup = Annotated[int | None, typer.Option(min=0, help="Warm-up batches, not timed.")]
Iters = Annotated[int | None, typer.Option(min=1, help="Batches per timed run.")]
Repeats = Annotated[
    int | None,
    typer.Option(min=1, help="The fewest timed runs; more, up to twice, until they spread under 5%. Median reported."),
]
Latency = Annotated[
    bool, typer.Option("--latency", help="Also time one item at a time (batch 1): p50, p90 and p99 milliseconds.")
]
Tune = Annotated[bool, typer.Option("--tune", help="Search dtype, compile and batch size; report the fastest.")]
Weights = Annotated[bool, typer.Option("--weights", help="Use the pulled checkpoint, not random weights.")]
BenchOutput = Annotated[
    Path | None,
    typer.Option(
        "-o", "--output", help="Append the environment and each result to this JSON-lines file; a rerun skips them."
    ),
]


BenchGpu = Annotated[
    str | None,
    typer.Option(
        "--gpu",
        metavar="NAME",
        help="With --bench: the device whose results to show, when the file holds several (`cpu` for the CPU).",
        show_default=False,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        autocompletion=_values("local", "auto"),
        help="Run each task on Ray: local (this machine, all its GPUs), auto (the running cluster) or "
        "ray://host:port (docs/scale.md).",
        show_default=False,
    ),
]


def check_dtype(dtype: str | None) -> None:
    from vitamin_cli.models.device import check_dtype as check

    if dtype is not None:
        check(dtype)


# ---------------------------------------------------------------------------------------------------
# Output formats: `--format` and its shortcuts


def format_option(*supported: OutputFormat) -> Any:
    """The `--format` option, offering only the formats this command writes."""
    names = [f.value for f in supported]

    def check(value: str | None) -> str | None:
        if value is not None and value.lower() not in names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(names)}")
        return value

    return typer.Option(
        "--format",
        metavar="[" + "|".join(names) + "]",
        callback=check,
        autocompletion=lambda: names,
        help="Output format (default: table).",
        show_default=False,
    )


TableColumns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        metavar="KEY,...",
        help="The table's columns, by key, in this order; a narrowed table's note lists the keys (docs/cli.md).",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Same as --format json (docs/json.md).")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="Same as --format csv.")]
MarkdownFlag = Annotated[bool, typer.Option("--markdown", help="Same as --format markdown.")]


def output_format(
    chosen: str | None,
    supported: Sequence[OutputFormat],
    *,
    as_json: bool = False,
    as_csv: bool = False,
    as_markdown: bool = False,
) -> OutputFormat:
    """The one format asked for by --format or a shortcut (default: table); two different ones, or one this
    command does not write, is a usage error."""
    shortcuts = (
        (OutputFormat.json, as_json),
        (OutputFormat.csv, as_csv),
        (OutputFormat.markdown, as_markdown),
    )
    asked = {f for f, on in shortcuts if on} | ({OutputFormat(chosen.lower())} if chosen is not None else set())
    if len(asked) > 1:
        raise UsageError(f"choose one output format, not {' and '.join(sorted(f.value for f in asked))}")
    picked = asked.pop() if asked else OutputFormat.table
    if picked not in supported:
        raise UsageError(
            f"this command writes {', '.join(f.value for f in supported)}, not {picked.value}",
            hint="see `--help` for its --format values",
        )
    return picked


def table_columns(chosen: str | None, columns: Sequence[Any], output: OutputFormat) -> list[Any]:
    """The table's columns `--columns a,b,c` picks (all of them when not given), checked before any work: a key
    the table lacks is a usage error, and so is --columns with JSON or CSV, whose records keep every field."""
    from vitamin_cli.views.sink import picked

    if chosen is not None and output in (OutputFormat.json, OutputFormat.csv):
        raise UsageError(
            f"--columns chooses a table's columns; {output.value} records keep every field",
            hint="pick fields with jq (JSON) or cut (CSV)",
        )
    return picked(columns, chosen)


# ---------------------------------------------------------------------------------------------------
# Model selection


@dataclass(frozen=True)
class Selection:
    """Names and filters as given on the command line."""

    names: list[str] = field(default_factory=list)
    all_models: bool = False
    size: list[zoo.Size] = field(default_factory=list)
    family: list[zoo.Family] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    resolution: list[int] = field(default_factory=list)
    released: bool | None = None
    where: str | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.all_models or self.size or self.family or self.samples or self.resolution or self.where) or (
            self.released is not None
        )

    @property
    def explicit(self) -> bool:
        """Models named one by one (no glob, no filter): a name that cannot be served is then an error."""
        return bool(self.names) and not any(any(ch in n for ch in "*?[") for n in self.names)

    def models(
        self,
        registry: zoo.Zoo,
        measured: Callable[[zoo.Model], Mapping[str, float | int | None]] | None = None,
        given: Collection[str] = (),
    ) -> list[zoo.Model]:
        """The selected models of the zoo, in table order; nothing given selects every model. `--where` reads
        the zoo's fields and those `measured` gives, from the options `given` (`--bench`, `--eval`, `--audit`)."""
        if self.where is not None:
            from vitamin_cli.zoo import fields

            test = fields.where(self.where, given)  # a mistake in it is said before the zoo is read
        found = self._selected(registry)
        if self.where is None:
            return found
        return [m for m in found if test.matches(fields.values_of(m, measured))]

    def _selected(self, registry: zoo.Zoo) -> list[zoo.Model]:
        return registry.select(
            self.names,
            size=[s.value for s in self.size],
            family=[f.value for f in self.family],
            samples=self.samples,
            resolution=self.resolution,
            released=self.released,
        )

    def require(self, verb: str) -> None:
        """For commands that act on models: names, --all or a filter, never nothing."""
        if not self.names and not self.filtered:
            raise UsageError(f"name the models to {verb}, or use --all or a filter such as --size L")


_FILTER_OPTIONS: dict[str, Any] = {
    "size": SizeFilter,
    "family": FamilyFilter,
    "samples": SamplesFilter,
    "resolution": ResolutionFilter,
    "released": ReleasedFilter,
    "where": WhereFilter,
}

Command = TypeVar("Command", bound=Callable[..., None])


def selecting(with_all: bool) -> Callable[[Command], Command]:
    """Give a command the model names and filters of `vitamin ls` (and `--all` when `with_all`) as options;
    the command itself takes one `selection: Selection` parameter instead."""
    options = {"names": Names, **({"all_models": AllFlag} if with_all else {}), **_FILTER_OPTIONS}

    def decorate(command: Command) -> Command:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(command).parameters.values()
            if p.name != "selection"
        ]
        default = Selection()
        added = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=False if name == "all_models" else None,
                annotation=annotation,
            )
            for name, annotation in options.items()
        ]

        @functools.wraps(command)
        def run(**given: Any) -> None:
            chosen = {name: given.pop(name) for name in options}
            values = {name: getattr(default, name) if value is None else value for name, value in chosen.items()}
            if values.get("all_models") and values["names"]:
                raise UsageError(
                    "name models or use --all, not both", hint="drop --all to act on the named models only"
                )
            command(selection=Selection(**values), **given)

        return _with_parameters(typing.cast(Command, run), [*added, *own])

    return decorate


def expanding_paths(command: Command) -> Command:
    """The command, with `~` expanded in every path it is given: a quoted `~/w`, or one from an environment
    variable, reaches vitamin as it is (the shell expands only an unquoted one)."""
    hints = typing.get_type_hints(command, include_extras=True)
    parameters = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values()]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        command(**{name: _expanded(value) for name, value in given.items()})

    return _with_parameters(typing.cast(Command, run), parameters)


def _with_parameters(run: Command, parameters: list[inspect.Parameter]) -> Command:
    """A wrapper of a command that typer reads by these parameters (resolved annotations), not the command's own."""
    del run.__wrapped__  # type: ignore[attr-defined]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


def _expanded(value: Any) -> Any:
    if isinstance(value, Path):
        return value.expanduser()
    if isinstance(value, list):
        return [_expanded(item) for item in value]
    return value


def owner_name(registry: zoo.Zoo, store: Any, name: str) -> str:
    """What `rm` and `verify` take: a model by any of its names, a task (`task:KEY`, a task vitamin knows or has
    records of; another is a usage error), or a name recorded in the cache (pulled with another zoo file)."""
    from vitamin_cli.checkpoints.owners import TaskOwner, task_key
    from vitamin_cli.checkpoints.verify import canonical_name

    key = task_key(name)
    if key is None:
        return canonical_name(registry, store, name)
    from vitamin_cli.eval import tasks

    if key not in {t.key for t in tasks.load().tasks} and name not in store.recorded_names():
        raise UsageError(f"unknown task {key[:80]!r}", hint="`vitamin tasks` lists the task keys")
    return TaskOwner.name_of(key)
