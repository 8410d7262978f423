"""Where output goes: data on stdout, everything else (tables for people, hints, errors) on stderr."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def console() -> Console:
    """A console on stdout, for what the command was asked to show."""
    from rich.console import Console

    return Console(highlight=False)


def err_console() -> Console:
    """A console on stderr, for progress, hints and errors."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def write_text(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
