"""Diagnostics from library code, through one path: the `vitamin_cli` logger.

Library code never prints. A warning (`warn`: something is wrong, and the work goes on) or a note (`note`:
what vitamin is doing on the user's behalf, such as pulling a missing checkpoint) goes to this logger, whose
handler writes `warning: ...` or `note: ...` (and a `hint: ...`) to stderr as it is at that moment: the CLI's
stderr, a Ray worker's (which Ray forwards to the driver), a Python user's. A Python user silences them with
`logging.getLogger("vitamin_cli").setLevel(logging.ERROR)`, or replaces the handler. Credentials in a URL are
never written (`errors.scrub`).
"""

from __future__ import annotations

import logging
import sys

from vitamin_cli.errors import scrub

LOGGER = logging.getLogger("vitamin_cli")


class _Stderr(logging.Handler):
    """Writes to sys.stderr as it is when a message comes (a test's capture, a redirected stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed stderr: nowhere left to say it
            pass


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = scrub(record.getMessage())
        return f"warning: {text}" if record.levelno >= logging.WARNING else f"note: {text}"


def warn(message: str, hint: str | None = None) -> None:
    """Something is wrong, and the work goes on."""
    LOGGER.warning(message + (f"\nhint: {hint}" if hint else ""))


def note(message: str) -> None:
    """What vitamin does on the user's behalf that they did not ask for in so many words."""
    LOGGER.info(message)


if not any(isinstance(h, _Stderr) for h in LOGGER.handlers):
    _handler = _Stderr()
    _handler.setFormatter(_Format())
    LOGGER.addHandler(_handler)
    LOGGER.propagate = False  # shown once, by this handler, whatever the root logger is set up to do
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)
