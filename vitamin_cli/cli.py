"""The `vitamin` command: a thin root that assembles one module per command.

Errors raised as VitaminError become one message on stderr and the exit code of docs/exit-codes.md;
VITAMIN_DEBUG=1 adds the chain of exceptions behind them. Heavy libraries (torch, open_clip, timm,
huggingface_hub, Ray) are imported only inside the commands that need them, so `vitamin ls` stays fast.
A command that starts or joins Ray leaves it before it exits, and meanwhile keeps stdout for its own output.

Shell completion is typer's (vitamin_cli/completion.py): `main` builds only the command being typed, as for
a run, and its options complete their own values (commands/_options.py). `--help` is typer's too, laid out for
the terminal's width (vitamin_cli/helptext.py); a usage error of click's parser (an unknown option, a missing
argument, a bad value) is said as vitamin's own errors are, `error:` and `hint:`, with exit code 2.
"""

from __future__ import annotations

import importlib
import inspect
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Annotated, Any

import typer
from typer._click import Context
from typer._click import exceptions as click_errors

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
from vitamin_cli.helptext import HelpCommand, HelpGroup

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


class Root(HelpGroup, RootGroup):
    """The `vitamin` group: help laid out for the terminal, completion of the commands (and of the alias when
    nothing else fits), and the usage errors of click's parser, its own and its commands', raised as vitamin's
    UsageError, which `main` reports."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any
    ) -> Context:
        with _usage_errors(None):
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _usage_errors(ctx):  # a command's own parsing and callbacks (typer.BadParameter) run in here
            return super().invoke(ctx)


@contextmanager
def _usage_errors(root: Context | None) -> Iterator[None]:
    try:
        yield
    except click_errors.NoArgsIsHelpError:  # `vitamin` alone: the help is printed, and it exits 2, as click does
        raise typer.Exit(EXIT_USAGE) from None
    except click_errors.UsageError as err:
        raise _usage_error(err, root) from err


def _usage_error(err: click_errors.UsageError, root: Context | None) -> UsageError:
    """click's usage error as vitamin says one: the message, and the `--help` of the command that refused it, the
    closest names first when it did not know a name. `root` is the root's context once a command is chosen."""
    if err.ctx is not None:
        path, by_root = err.ctx.command_path, err.ctx.parent is None
    else:  # the parser's own errors (an option without its value) come without a context
        command = root.invoked_subcommand if root is not None else None
        path, by_root = (f"{root.command_path} {command}", False) if root and command else ("vitamin", True)
    if isinstance(err, click_errors.NoSuchOption):
        close = f"did you mean {' or '.join(err.possibilities)}? " if err.possibilities else ""
        return UsageError(_plain(err.message), hint=f"{close}`{path} --help` lists the options")
    if by_root:  # not a command; typer names the closest ones
        message, _, close = err.format_message().partition(". Did you mean ")
        suggested = f"did you mean {close} " if close else ""
        return UsageError(_plain(message), hint=f"{suggested}`{path} --help` lists the commands")
    return UsageError(_plain(err.format_message()), hint=f"`{path} --help` lists its arguments and options")


def _plain(message: str) -> str:
    """click's sentence as vitamin's messages read: lower case first (unless a name or acronym), no full stop."""
    if message[1:2].islower():
        message = message[0].lower() + message[1:]
    return message.removesuffix(".")


def build_app(names: Sequence[str] = tuple(COMMANDS)) -> typer.Typer:
    """The `vitamin` app with these commands (all of them by default)."""
    built = typer.Typer(
        name="vitamin",
        cls=Root,
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
            cls=HelpCommand,
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
