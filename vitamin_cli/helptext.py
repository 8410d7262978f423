"""`--help`, drawn as typer draws it (usage, prose, boxed panels of arguments, options and commands, then the
epilog) but laid out for the terminal's width, COLUMNS where set, as rich reads it. typer's option table
squeezes names to fit (`--resoluti…`) and its epilog wraps an example back to column 0; here an option's names
and values are never cut, a term too long for its column has a line of its own with its help on the next, and
an example that does not fit keeps its indentation: the command goes on under a deeper indent after a `\\`,
as a shell would take it, and its `# comment` on the next line.

rich is imported when help is drawn, not when the app is built: `vitamin ls` never pays for it."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

from typer._click import Context, HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text
    from typer.rich_utils import MarkupModeStrict

GAP = 2  # spaces between an option's names and its help
TERM_SHARE = 0.4  # the most of a panel's width that the names column takes; a longer term gets a line of its own
CONTINUED = 4  # how much deeper than its command a wrapped command goes on
COMMENTED = 2  # how much deeper than its command a comment moved under it goes
PANEL_EDGES = 4  # a panel's borders and their padding: `│ ` and ` │`
MARGIN = 1  # the space before and after prose and examples, as typer pads them

# An example line: its indentation, the command, and a shell comment (a `#` that starts a word) if any
EXAMPLE = re.compile(r"(?P<indent>\s*)(?P<command>.*?)(?:\s+(?P<comment>#.*))?")


class HelpCommand(TyperCommand):
    """A command whose `--help` is laid out for the terminal's width."""

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        print_help(self, ctx)


class HelpGroup(TyperGroup):
    """A group whose `--help` is laid out for the terminal's width."""

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        print_help(self, ctx)


def print_help(command: TyperCommand | TyperGroup, ctx: Context) -> None:
    """The help of `command` on stdout, as typer prints it (it writes nothing into click's formatter)."""
    from rich.align import Align
    from rich.padding import Padding
    from typer import rich_utils as typer_rich

    mode: MarkupModeStrict = "markdown" if command.rich_markup_mode == "markdown" else "rich"
    console = typer_rich._get_rich_console()  # typer's: its theme, and its reading of TERMINAL_WIDTH and FORCE_COLOR
    usage = typer_rich.highlighter(command.get_usage(ctx))
    console.print(Padding(usage, MARGIN), style=typer_rich.STYLE_USAGE_COMMAND)
    if command.help:
        prose = typer_rich._get_help_text(obj=command, markup_mode=mode)
        console.print(Padding(Align(prose, pad=False), (0, MARGIN, 1, MARGIN)))
    for panel in _params_panels(command, ctx, console, mode):
        console.print(panel)
    if isinstance(command, TyperGroup):
        commands = [c for name in command.list_commands(ctx) if (c := command.get_command(ctx, name)) and not c.hidden]
        typer_rich._print_commands_panel(
            name=typer_rich.COMMANDS_PANEL_TITLE,
            commands=commands,
            markup_mode=mode,
            console=console,
            cmd_len=max(len(c.name or "") for c in commands),
        )
    if command.epilog:
        console.print(Padding(_epilog(command.epilog, console.width - 2 * MARGIN, mode), MARGIN))


def _params_panels(
    command: TyperCommand | TyperGroup, ctx: Context, console: Console, mode: MarkupModeStrict
) -> list[RenderableType]:
    """The Arguments and the Options panels: one names column for both, as wide as the longest term up to
    TERM_SHARE of the width, and the help beside it."""
    from rich.console import Group
    from rich.panel import Panel
    from typer import rich_utils as typer_rich

    shown = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    rows = [(p, _term(p, ctx)) for p in shown if isinstance(p, (TyperArgument, TyperOption))]
    if not rows:
        return []
    inner = console.width - PANEL_EDGES
    width = min(max(t.cell_len for _, t in rows), int((inner - GAP) * TERM_SHARE))
    panels: list[RenderableType] = []
    for title, kind in (
        (typer_rich.ARGUMENTS_PANEL_TITLE, TyperArgument),
        (typer_rich.OPTIONS_PANEL_TITLE, TyperOption),
    ):
        lines = [
            _row(names, typer_rich._get_parameter_help(param=p, ctx=ctx, markup_mode=mode), width)
            for p, names in rows
            if isinstance(p, kind)
        ]
        if lines:
            border = typer_rich.STYLE_OPTIONS_PANEL_BORDER
            panels.append(Panel(Group(*lines), border_style=border, title=title, title_align="left"))
    return panels


def _term(param: TyperArgument | TyperOption, ctx: Context) -> Text:
    """What the names column shows of a parameter, as typer's table does: an argument's name, an option's long
    names, its short ones and its `--no-` names, then the values it takes."""
    from rich.text import Text
    from typer import rich_utils as typer_rich
    from typer._click import types

    if isinstance(param, TyperArgument):
        names = Text(param.metavar or param.name or "")
        kind = param.type.get_metavar(param=param, ctx=ctx) or f"<{param.type.name}>"
    else:
        first = sorted(param.opts, key=lambda opt: not opt.startswith("--"))  # long names first, as typer shows them
        names = typer_rich.highlighter(Text(", ".join(first)))
        if param.secondary_opts:
            names.append(" / ").append_text(typer_rich.negative_highlighter(Text(", ".join(param.secondary_opts))))
        kind = param.make_metavar(ctx=ctx)
        if isinstance(param.type, types._NumberRangeBase) and param.type._describe_range():
            kind += typer_rich.RANGE_STRING.format(param.type._describe_range())
    if kind and "bool" not in kind.lower():
        names.append(" ").append_text(typer_rich.types_highlighter(Text(kind, style=typer_rich.STYLE_TYPES)))
    return names


def _row(names: Text, help_: RenderableType, width: int) -> RenderableType:
    """One parameter: its names in a column `width` wide and its help beside them; names wider than that on a
    line of their own, the help under them where the column would have put it."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table

    if names.cell_len > width:
        return Group(names, Padding(help_, (0, 0, 0, width + GAP)))
    row = Table.grid(padding=(0, GAP, 0, 0), expand=True)
    row.add_column(width=width)
    row.add_column(ratio=1)
    row.add_row(names, help_)
    return row


def _epilog(text: str, width: int, mode: MarkupModeStrict) -> RenderableType:
    """A command's epilog: paragraphs of prose, wrapped by the terminal, and blocks of indented example lines,
    laid out by `example_lines` (never read as markup: an example is typed as it is shown)."""
    from rich.console import Group
    from rich.text import Text
    from typer import rich_utils as typer_rich

    shown: list[RenderableType] = []
    for paragraph in text.strip("\n").split("\n\n"):
        lines = paragraph.split("\n")
        if shown:
            shown.append(Text())
        if all(line[:1].isspace() for line in lines):
            for command, comment in example_lines(lines, width):
                shown.append(Text.assemble(typer_rich.highlighter(Text(command)), (comment, typer_rich.STYLE_HELPTEXT)))
        else:
            shown.append(typer_rich._make_rich_text(text=" ".join(lines), markup_mode=mode))
    return Group(*shown)


def example_lines(lines: list[str], width: int) -> list[tuple[str, str]]:
    """Example lines laid out in `width` columns, each as (command, comment) text. When every comment fits
    beside its command, the comments line up one column after the longest command; else each goes under its
    command, COMMENTED deeper. A command too long goes on after ` \\`, CONTINUED deeper."""
    parsed = [EXAMPLE.fullmatch(line.rstrip()) for line in lines]
    examples = [(m["indent"], m["command"], m["comment"] or "") for m in parsed if m]
    column = max((len(indent + command) for indent, command, comment in examples if comment), default=0) + 2
    beside = all(column + len(comment) <= width for _, _, comment in examples if comment)
    shown: list[tuple[str, str]] = []
    for indent, command, comment in examples:
        if beside and comment:
            shown.append(((indent + command).ljust(column), comment))
            continue
        shown += [(line, "") for line in _wrapped(indent, command, width)]
        below = " " * (len(indent) + COMMENTED)
        wrap = textwrap.wrap(comment[1:].strip(), width - len(below) - 2, break_on_hyphens=False)
        shown += [(below, "# " + piece) for piece in wrap]
    return shown


def _wrapped(indent: str, command: str, width: int) -> list[str]:
    """A command in lines of at most `width`, broken between words, each but the last ending in ` \\`."""
    if len(indent + command) <= width:
        return [indent + command]
    lines = [indent]
    for word in command.split():
        if lines[-1].strip() and len(lines[-1]) + 1 + len(word) + 2 > width:
            lines[-1] += " \\"
            lines.append(indent + " " * CONTINUED)
        lines[-1] += (" " if lines[-1].strip() else "") + word
    return lines
