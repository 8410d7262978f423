"""The `vitamin` command: a thin root that assembles one module per command.

Errors raised as VitaminError become one message on stderr and the exit code of docs/exit-codes.md.
Heavy libraries (torch, open_clip, timm, huggingface_hub) are imported only inside the commands that
need them, so `vitamin ls` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
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

app = typer.Typer(
    name="vitamin",
    help="The ViTamin model zoo, managed: its 61 CLIP models listed, fetched, verified, audited, benchmarked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"vitamin {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """The ViTamin model zoo, managed: its 61 CLIP models listed, fetched, verified, audited, benchmarked."""


app.command("ls", epilog=ls.EXAMPLES)(ls.ls)
app.command("list", hidden=True, help="Alias of `vitamin ls`.")(ls.ls)
app.command("show", epilog=show.EXAMPLES)(show.show)
app.command("pull", epilog=pull.EXAMPLES)(pull.pull)
app.command("verify", epilog=verify.EXAMPLES)(verify.verify)
app.command("rm", epilog=rm.EXAMPLES)(rm.rm)
app.command("cache")(cache.cache)
app.command("pin", epilog=pin.EXAMPLES)(pin.pin)
app.command("audit", epilog=audit.EXAMPLES)(audit.audit)
app.command("bench", epilog=bench.EXAMPLES)(bench.bench)
app.command("plot", epilog=plot.EXAMPLES)(plot.plot)
app.command("compare", epilog=compare.EXAMPLES)(compare.compare)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        app(args=list(argv) if argv is not None else None, prog_name="vitamin")
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
