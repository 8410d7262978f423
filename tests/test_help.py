"""`--help` of every command: prose that the terminal wraps at its own width (no line breaks of the source in
the middle of a paragraph), the allowed values of every option whose values are a closed set, and at any width
no line wider than the terminal, every option name whole and the examples indented; and the usage errors of
click's parser said as vitamin's own errors are."""

from __future__ import annotations

import importlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main
from conftest import Run, put_in_cache

from vitamin_cli import cli, helptext
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


# ---------------------------------------------------------------------------------------------------
# Help that fits: at any width, no line wider than the terminal, every option name whole, examples indented


@pytest.fixture(scope="module")
def app() -> typer.core.TyperGroup:
    built = typer.main.get_command(cli.build_app())
    assert isinstance(built, typer.core.TyperGroup)
    return built


def option_names(app: typer.core.TyperGroup, argv: list[str]) -> list[str]:
    """Every name of every option of `vitamin ARGV`, `--x` and `--no-x` and the short ones, as click knows them."""
    command = app.commands[argv[0]] if argv else app
    names = list(app.context_settings["help_option_names"])
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            names += [*param.opts, *param.secondary_opts]
    return names


def examples_given(argv: list[str]) -> list[tuple[int, str, str]]:
    """The examples of a command's EXAMPLES: (indentation, command, comment) of each line."""
    if not argv or argv[0] != cli.COMMANDS[argv[0]]:
        return []
    text = importlib.import_module(f"vitamin_cli.commands.{argv[0]}").EXAMPLES
    given = []
    for line in text.splitlines():
        if line[:1].isspace() and line.strip():
            command, _, comment = line.strip().partition(" #")
            given.append((len(line) - len(line.lstrip()), " ".join(command.split()), " ".join(comment.split())))
    return given


def examples_shown(shown: str) -> list[tuple[int, str, str]]:
    """The examples as the help shows them, (indentation, command, comment): a command wrapped after ` \\` is
    joined again, and its comment, beside it or on the lines under it, too. A line that goes on an example must
    be indented deeper than the example's command."""
    if "Examples:" not in shown:
        return []
    examples: list[tuple[int, str, str]] = []
    continued = False
    for line in shown.split("Examples:", 1)[1].splitlines():
        body = line.strip()
        if not body:
            continue
        depth = len(line) - len(line.lstrip())
        if continued or body.startswith("#"):
            assert examples and depth > examples[-1][0], f"not indented under its command: {line!r}"
            indent, command, comment = examples.pop()
        else:
            indent, command, comment = depth, "", ""
        code, _, said = body.partition("#") if body.startswith("#") else body.partition(" #")
        continued = code.endswith(" \\")
        code = code.removesuffix(" \\")
        examples.append(
            (indent, " ".join([*command.split(), *code.split()]), " ".join([*comment.split(), *said.split()]))
        )
    return examples


def test_the_check_joins_what_the_help_wrapped() -> None:
    shown = " Examples:\n\n   vitamin a b \\\n       c\n     # one\n     # two\n   vitamin d  # three\n"
    assert examples_shown(shown) == [(3, "vitamin a b c", "one two"), (3, "vitamin d", "three")]
    with pytest.raises(AssertionError, match="not indented"):
        examples_shown(" Examples:\n   vitamin a b \\\nc\n")
    with pytest.raises(AssertionError, match="not indented"):
        examples_shown(" Examples:\n   vitamin a\n   # a comment at the command's depth reads as the next one's\n")


def check_fits(shown: str, columns: int, names: list[str], argv: list[str]) -> None:
    """What the help must show at `columns`: no line wider, every option name whole, the examples indented."""
    wide = [line for line in shown.splitlines() if len(line) > columns]
    assert not wide, f"wider than {columns}: {wide}"
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w…-])", shown), f"{name} is not shown whole:\n{shown}"
    given = examples_given(argv)
    assert examples_shown(shown) == [(helptext.MARGIN + i, c, s) for i, c, s in given], shown


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("argv", [[], *([name] for name in cli.COMMANDS)], ids=lambda argv: " ".join(argv) or "root")
def test_help_fits_the_terminal(
    run: Run, monkeypatch: pytest.MonkeyPatch, app: typer.core.TyperGroup, argv: list[str], columns: int
) -> None:
    shown = help_text(run, monkeypatch, argv, columns)
    check_fits(shown, columns, option_names(app, argv), argv)


def test_examples_keep_their_indentation_however_narrow() -> None:
    lines = ["  vitamin bench ViTamin-L --device cuda --tune   # search dtype, compile and batch size"]
    for width in range(30, 100):
        shown = "\n".join(command + comment for command, comment in helptext.example_lines(lines, width))
        assert max(len(line) for line in shown.splitlines()) <= width, shown
        assert examples_shown("Examples:\n" + shown) == [
            (2, "vitamin bench ViTamin-L --device cuda --tune", "search dtype, compile and batch size")
        ]


@pytest.mark.slow
@pytest.mark.parametrize("columns", [60, 80])
def test_help_fits_a_real_terminal(tmp_path: Path, app: typer.core.TyperGroup, columns: int) -> None:
    """`vitamin bench --help`, the console script, in a tmux window `columns` wide: what a terminal shows."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is not installed: CI must run this test")
        pytest.skip("tmux is not installed")
    vitamin = Path(sys.executable).with_name("vitamin")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")} | {"TERM": "xterm"}
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    script = f"{vitamin} bench --help; echo exit=$?; sleep 60"
    subprocess.run([*tmux, "new-session", "-d", "-x", str(columns), "-y", "50", script], env=env, check=True)
    try:
        deadline, screen = time.monotonic() + 30, ""
        while "exit=" not in screen and time.monotonic() < deadline:
            time.sleep(0.2)
            # -J joins the lines the terminal wrapped (and keeps their spaces): a line too wide shows as one
            capture = [*tmux, "capture-pane", "-p", "-J", "-S", "-", "-E", "-"]
            screen = subprocess.run(capture, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, check=False)
    shown, _, status = screen.partition("exit=")
    assert status.split()[:1] == ["0"], screen
    assert "Usage: vitamin bench" in shown
    check_fits(shown, columns, option_names(app, ["bench"]), ["bench"])


# ---------------------------------------------------------------------------------------------------
# Usage errors: vitamin's `error:` and `hint:`, exit code 2, whatever click's parser refused


USAGE_ERRORS = [
    (["ls", "--fromat", "json"], "error: no such option: --fromat", "did you mean --format?"),
    (["show"], "error: missing argument", "`vitamin show --help`"),
    (["ls", "--format", "xml"], "error: invalid value for '--format': 'xml'", "`vitamin ls --help`"),
    (["ls", "--sort", "nope"], "--sort: unknown name 'nope'", "docs/cli.md#fields"),
    (["bench", "--iters", "0"], "error: invalid value for '--iters'", "`vitamin bench --help`"),
    (["ls", "--sort"], "error: option '--sort' requires an argument", "`vitamin ls --help`"),  # click gives no context
    (["lss"], "error: no such command 'lss'", "did you mean 'ls'? `vitamin --help` lists the commands"),
    (["--bogus"], "error: no such option: --bogus", "`vitamin --help` lists the options"),
]


@pytest.mark.parametrize(("argv", "said", "hint"), [pytest.param(*case, id=" ".join(case[0])) for case in USAGE_ERRORS])
def test_a_usage_error_is_said_as_vitamin_says_errors(run: Run, argv: list[str], said: str, hint: str) -> None:
    result = run(*argv)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), result.stderr
    assert said in lines[0] and hint in lines[1], result.stderr
    assert not set("╭│╰─") & set(result.stderr), result.stderr


def test_vitamin_alone_prints_its_help_and_exits_2(run: Run) -> None:
    result = run()
    assert result.exit_code == 2 and "Usage: vitamin" in result.stdout and "Commands" in result.stdout
    assert result.stderr == ""


def test_help_and_version_exit_0(run: Run) -> None:
    for argv in (["--help"], ["ls", "-h"], ["--version"]):
        result = run(*argv)
        assert result.exit_code == 0 and result.stdout and result.stderr == "", argv


class Answering(io.StringIO):
    """stdin as a terminal that answers a prompt with what it was given."""

    def isatty(self) -> bool:
        return True


def test_a_prompt_answered_no_aborts_as_before(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from vitamin_cli import zoo

    model = zoo.get("ViTamin-L")
    assert model.weights is not None
    path = put_in_cache(model.name, model.weights.repo, model.weights.filename, b"weights")
    monkeypatch.setattr("sys.stdin", Answering("n\n"))
    result = run("rm", "ViTamin-L")
    assert result.exit_code == 1 and "Aborted" in result.stderr and "error:" not in result.stderr, result.stderr
    assert path.exists()
