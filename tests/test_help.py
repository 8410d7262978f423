"""`--help` of every command: prose that the terminal wraps at its own width (no line breaks of the source in
the middle of a paragraph), and the allowed values of every option whose values are a closed set."""

from __future__ import annotations

import re

import pytest
import typer.main
from conftest import Run

from vitamin_cli import cli
from vitamin_cli.models.device import DTYPES

COMMANDS = [name for name, module in cli.COMMANDS.items() if name == module]


def help_text(run: Run, monkeypatch: pytest.MonkeyPatch, argv: list[str], columns: int) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    result = run(*argv, "--help")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def early_breaks(shown: str, columns: int) -> list[str]:
    """Lines of prose (outside the option boxes and the examples) that end although the next line's first word
    would have fitted: the terminal never breaks there, a line break of the source does."""
    prose: list[str] = []
    for line in shown.splitlines():
        if line.strip() == "Examples:":  # one command per line, on purpose
            break
        boxed = line.lstrip()[:1] in ("╭", "│", "╰")
        prose.append("" if boxed else line.rstrip())
    return [
        line.strip()
        for line, after in zip(prose, prose[1:], strict=False)
        if line.strip() and after.strip() and len(line) + 1 + len(after.split()[0]) <= columns - 2
    ]


@pytest.mark.parametrize("columns", [200, 80])
@pytest.mark.parametrize("argv", [[], *([name] for name in COMMANDS)], ids=lambda argv: " ".join(argv) or "root")
def test_prose_is_wrapped_by_the_terminal(run: Run, monkeypatch: pytest.MonkeyPatch, argv: list[str], columns: int):
    shown = help_text(run, monkeypatch, argv, columns)
    assert early_breaks(shown, columns) == [], shown


def test_the_check_finds_an_early_break() -> None:
    shown = " Usage: vitamin x\n\n A sentence that the source\n broke early.\n"
    assert early_breaks(shown, 80) == ["A sentence that the source"]
    assert early_breaks(" " + "word " * 15 + "\n on.\n", 80) == []  # 76 characters: "on." would not fit


def test_help_texts_carry_no_line_breaks_inside_paragraphs() -> None:
    """What typer is given: a command's paragraphs each on one line, an option's help on one line."""
    app = typer.main.get_command(cli.build_app())
    assert isinstance(app, typer.core.TyperGroup)
    for name, command in app.commands.items():
        assert not re.search(r"(?<!\n)\n(?!\n)", command.help or ""), name
        for param in command.params:
            assert "\n" not in (getattr(param, "help", None) or ""), f"{name} {param.name}"


def option_line(shown: str, option: str) -> str:
    (line,) = [line for line in shown.splitlines() if re.search(rf"│ {re.escape(option)}\b", line)]
    return line


@pytest.mark.parametrize(
    ("command", "option", "values"),
    [
        ("eval", "--device", "[cpu|cuda|cuda:N]"),
        ("bench", "--device", "[cpu|cuda|cuda:N]"),
        ("eval", "--dtype", "[" + "|".join(DTYPES) + "]"),
        ("bench", "--dtype", "[" + "|".join(DTYPES) + "]"),
        ("bench", "--tower", "[image|text|both]"),
        ("bench", "--batch-size", "[N|auto]"),
        ("bench", "--compile-mode", "default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs"),
        ("plot", "--x", "[macs|params|throughput]"),
        ("plot", "--y", "[imagenet|avg38|dist_shift|vtab|retrieval]"),
        ("ls", "--format", "[table|json|csv|markdown]"),
        ("ls", "--size", "<s|b|l|l2|xl>"),
        ("eval", "--suite", "imagenet, dist_shift, vtab, retrieval or avg38"),
    ],
)
def test_options_show_their_values(
    run: Run, monkeypatch: pytest.MonkeyPatch, command: str, option: str, values: str
) -> None:
    shown = help_text(run, monkeypatch, [command], 200)
    assert values in option_line(shown, option)
