"""The `vitamin` command: a thin root that assembles one module per command.

Errors raised as VitaminError become one message on stderr and the exit code of docs/exit-codes.md;
VITAMIN_DEBUG=1 adds the chain of exceptions behind them. Heavy libraries (torch, open_clip, timm,
huggingface_hub, Ray) are imported only inside the commands that need them, so `vitamin ls` stays fast.
A command that starts or joins Ray leaves it before it exits, and meanwhile keeps stdout for its own output.

Shell completion is typer's (vitamin_cli/completion.py): `main` builds only the command being typed, as for
a run, and its options complete their own values (commands/_options.py).
"""

from __future__ import annotations

import importlib
import inspect
import os
import signal
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated

import typer

from vitamin_cli import console, interrupts
from vitamin_cli.completion import RootGroup, command_asked
from vitamin_cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    VitaminError,
)

HELP = "The ViTamin model zoo, managed: its 61 CLIP models listed, fetched, verified, audited, benchmarked."
EPILOG = (
    "Shell completion: `vitamin --install-completion` adds it to your shell (bash, zsh or fish; restart the "
    "shell after), `vitamin --show-completion` prints the script instead. Tab then completes commands, options, "
    "model names, task keys and the values of options such as --device, --dtype and --format."
)

# name -> the module of vitamin_cli.commands that defines it (its `<module>_command` function and EXAMPLES)
COMMANDS = {
    "ls": "ls",
    "list": "ls",
    "show": "show",
    "pull": "pull",
    "verify": "verify",
    "rm": "rm",
    "cache": "cache",
    "pin": "pin",
    "audit": "audit",
    "bench": "bench",
    "plot": "plot",
    "compare": "compare",
    "eval": "eval",
    "tasks": "tasks",
}


def _version(value: bool) -> None:
    if value:
        from vitamin_cli.extras import version

        print(f"vitamin {version()}")
        raise typer.Exit()


def root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """The ViTamin model zoo, managed: its 61 CLIP models listed, fetched, verified, audited, benchmarked."""


def build_app(names: Sequence[str] = tuple(COMMANDS)) -> typer.Typer:
    """The `vitamin` app with these commands (all of them by default)."""
    built = typer.Typer(
        name="vitamin",
        cls=RootGroup,
        help=HELP,
        epilog=EPILOG,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    from vitamin_cli.commands._options import expanding_paths

    built.callback()(root)
    for name in names:
        module = importlib.import_module(f"vitamin_cli.commands.{COMMANDS[name]}")
        function = getattr(module, f"{COMMANDS[name]}_command")
        alias = name != COMMANDS[name]
        built.command(
            name,
            epilog=None if alias else module.EXAMPLES,
            hidden=alias,
            help=f"Alias of `vitamin {COMMANDS[name]}`." if alias else prose(function.__doc__),
        )(expanding_paths(function))
    return built


def prose(docstring: str | None) -> str | None:
    """A docstring as help text: each paragraph on one line, which the terminal wraps at its own width (typer
    keeps the docstring's own line breaks after the first paragraph, where they break sentences mid-line)."""
    if not docstring:
        return None
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in inspect.cleandoc(docstring).split("\n\n"))


def __getattr__(name: str) -> typer.Typer:
    # `app`, with every command, for `typer vitamin_cli.cli utils docs`; `main` builds only the one it runs.
    if name == "app":
        return build_app()
    raise AttributeError(f"module 'vitamin_cli.cli' has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    # Turning a command's signature into a parser takes a few milliseconds: build only the one asked for.
    asked = command_asked(args, tuple(COMMANDS))
    runner = build_app([asked]) if asked is not None else build_app()
    _exit_if_stdout_closed()
    stdout = sys.stdout
    sys.stdout = console.GuardedStream(stdout)
    try:
        try:
            with interrupts.recorded() as stopped, _ray_scope(args):
                runner(args=args, prog_name="vitamin")
        finally:
            try:
                sys.stdout.flush()  # what is still buffered fails here, where it can be reported
            finally:
                sys.stdout = stdout
    except console.OutputError as err:
        sys.exit(_output_failed(err))
    except VitaminError as err:
        console.report_error(err)
        sys.exit(err.exit_code)
    except ModuleNotFoundError as err:
        missing = _missing_extra(err)
        if missing is None:  # not a module an extra installs: a bug, shown with its traceback
            raise
        console.report_error(missing)
        sys.exit(EXIT_USAGE)
    except PermissionError as err:  # a folder or file of the cache (or the user's) that this user may not read
        denied = _permission_denied(err)
        console.report_error(denied)
        sys.exit(denied.exit_code)
    except KeyboardInterrupt as err:
        sys.exit(_stopped_by(err.signum if isinstance(err, interrupts.Terminated) else signal.SIGINT))
    except SystemExit as done:
        signum = _signal_behind(done, stopped)
        if signum is None:
            raise
        sys.exit(_stopped_by(signum))


def _exit_if_stdout_closed() -> None:
    """Started with stdout closed (`vitamin ls >&-`), the command has nowhere to write: say so, where stderr is open."""
    if sys.stdout is None:
        if sys.stderr is not None:
            console.report_error(VitaminError("stdout is closed", hint="send the output somewhere, e.g. > file"))
        sys.exit(EXIT_FAILURE)


def _output_failed(err: console.OutputError) -> int:
    """The exit code when stdout failed: EXIT_BROKEN_PIPE, quietly, when its reader went away (`| head`), as other
    command-line tools do; else EXIT_FAILURE, with the reason."""
    if err.broken_pipe:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing left to flush at exit
        return EXIT_BROKEN_PIPE
    console.report_error(VitaminError(f"cannot write the output: {err}", hint="check the disk or file it goes to"))
    return EXIT_FAILURE


def _missing_extra(err: ModuleNotFoundError) -> UsageError | None:
    """The error that names the extra to install for a missing module; None when no extra installs it."""
    from vitamin_cli.extras import extra_of, install_command

    extra = extra_of(err.name)
    if extra is None:
        return None
    missing = UsageError(f"this command needs {err.name}, from the '{extra}' extra", hint=install_command(extra))
    missing.__cause__ = err
    return missing


def _permission_denied(err: PermissionError) -> VitaminError:
    """The error for a path this user may not read, saying where to point vitamin instead."""
    denied = VitaminError(
        f"permission denied: {err.filename or err}",
        hint="ask the owner of that path for access, or point --cache-dir (or HF_HUB_CACHE) at your own folder",
    )
    denied.__cause__ = err
    return denied


def _signal_behind(done: SystemExit, stopped: interrupts.Pressed) -> int | None:
    """The signal that stopped the command when typer exits for it (it turns a KeyboardInterrupt into a silent
    130); None for an ordinary exit."""
    if stopped.signum is not None:
        return stopped.signum
    if done.code == EXIT_INTERRUPTED:
        return signal.SIGINT
    return None


def _ray_scope(args: Sequence[str]) -> AbstractContextManager[object]:
    """Around a command given --ray: stdout kept for vitamin's output while Ray runs, and Ray left before the
    command exits (`runners.scope`). Other commands never import the runners module (a start-up cost)."""
    if not any(a == "--ray" or a.startswith("--ray=") for a in args):
        return nullcontext()
    from vitamin_cli import runners

    return runners.scope(console.keep_stdout_apart)


def _stopped_by(signum: int) -> int:
    """Say that a signal stopped the command, and give its exit code: 130 for Ctrl-C, and as a shell gives a
    process its signal ended, 128 + the signal for the others (143 for SIGTERM, 129 for SIGHUP)."""
    if signum == signal.SIGINT:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"terminated ({signal.Signals(signum).name})", file=sys.stderr)
    return 128 + signum
