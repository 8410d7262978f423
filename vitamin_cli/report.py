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
from collections.abc import Iterator
from contextlib import contextmanager

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


class _Keep(logging.Handler):
    def __init__(self, kept: list[tuple[int, str]]) -> None:
        super().__init__()
        self.kept = kept

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append((record.levelno, record.getMessage()))


@contextmanager
def kept() -> Iterator[list[tuple[int, str]]]:
    """The messages reported while the block runs, kept rather than written: a Ray worker's go back to the
    driver with its job's result (`replay`), where the user sees them."""
    messages: list[tuple[int, str]] = []
    handlers = LOGGER.handlers[:]
    LOGGER.handlers = [_Keep(messages)]
    try:
        yield messages
    finally:
        LOGGER.handlers = handlers


def replay(messages: list[tuple[int, str]]) -> None:
    """Report again, here, what `kept` kept elsewhere."""
    for level, message in messages:
        LOGGER.log(level, message)


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
