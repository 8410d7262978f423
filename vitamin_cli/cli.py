"""The `vitamin` command: a thin root that assembles one module per command.

Errors raised as VitaminError become one message on stderr and the exit code of docs/exit-codes.md.
Heavy libraries (torch, open_clip, timm, huggingface_hub) are imported only inside the commands that
need them, so `vitamin ls` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Annotated

import typer

from vitamin_cli import __version__, output
from vitamin_cli.commands import audit, bench, cache, compare, ls, pin, plot, pull, rm, show, verify
from vitamin_cli.errors import UsageError, VitaminError

# The optional dependencies, by the extra of pyproject.toml that installs them.
EXTRAS = {
    "huggingface_hub": "hub",
    "filelock": "hub",
    "torch": "torch",
    "torchvision": "torch",
    "open_clip": "torch",
    "timm": "torch",
    "matplotlib": "plot",
    "plotext": "plot",
    "adjustText": "plot",
}

HELP = "The ViTamin model zoo, managed: its 61 CLIP models listed, fetched, verified, audited, benchmarked."

# name -> (function, epilog, hidden)
COMMANDS: dict[str, tuple[Callable[..., None], str | None, bool]] = {
    "ls": (ls.ls, ls.EXAMPLES, False),
    "list": (ls.ls, None, True),
    "show": (show.show, show.EXAMPLES, False),
    "pull": (pull.pull, pull.EXAMPLES, False),
    "verify": (verify.verify, verify.EXAMPLES, False),
    "rm": (rm.rm, rm.EXAMPLES, False),
    "cache": (cache.cache, None, False),
    "pin": (pin.pin, pin.EXAMPLES, False),
    "audit": (audit.audit, audit.EXAMPLES, False),
    "bench": (bench.bench, bench.EXAMPLES, False),
    "plot": (plot.plot, plot.EXAMPLES, False),
    "compare": (compare.compare, compare.EXAMPLES, False),
}


def _version(value: bool) -> None:
    if value:
        print(f"vitamin {__version__}")
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
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(root)
    for name in names:
        function, epilog, hidden = COMMANDS[name]
        help_text = "Alias of `vitamin ls`." if name == "list" else None
        built.command(name, epilog=epilog, hidden=hidden, help=help_text)(function)
    return built


app = build_app()


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    # Turning a command's signature into a parser takes a few milliseconds: build only the one asked for.
    runner = build_app([args[0]]) if args and args[0] in COMMANDS else app
    try:
        runner(args=args, prog_name="vitamin")
    except VitaminError as err:
        output.report_error(err)
        sys.exit(err.exit_code)
    except ModuleNotFoundError as err:
        extra = EXTRAS.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        output.report_error(
            UsageError(
                f"this command needs {err.name}, which is not installed",
                hint=f'pip install "vitamin-zoo[{extra}]" (or [all])',
            )
        )
        sys.exit(UsageError.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
