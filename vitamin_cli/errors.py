"""The one error hierarchy of vitamin, and its exit codes (docs/exit-codes.md)."""

from __future__ import annotations

import re

EXIT_FAILURE = 1  # the command ran and something is wrong: a checksum mismatch, a failed download
EXIT_USAGE = 2  # the command cannot run as asked: a bad flag, an unknown model, a malformed zoo.yaml
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away: 128 + SIGPIPE, what `yes | head -1` leaves


_CREDENTIALS = re.compile(r"(?<=://)[^/\s@]+@")


def scrub(text: str) -> str:
    """`text` with the credentials of any URL in it (`http://user:password@host`) replaced by `***`."""
    return _CREDENTIALS.sub("***@", text)


class VitaminError(Exception):
    """An error that the CLI turns into a one-paragraph message and an exit code, never a traceback. Its message
    and hint never carry the credentials of a URL."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        message, hint = scrub(message), scrub(hint) if hint is not None else None
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The error as a result or a table carries it: the message, and what to do about it."""
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def __str__(self) -> str:
        # what a traceback shows a user of the library: the hint too, on a line of its own
        return self.message + (f"\nhint: {self.hint}" if self.hint else "")


class UsageError(VitaminError):
    """The user asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class UnknownModelError(UsageError):
    """A model name that is neither a canonical name nor an alias."""


class ZooFileError(UsageError):
    """zoo.yaml cannot be read, or it breaks the schema (docs/zoo-schema.md)."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        subject = f"field '{field}': " if field else ""
        super().__init__(
            f"{where}: {subject}{problem}",
            hint="fix the file (docs/zoo-schema.md describes every field), or drop --zoo / VITAMIN_ZOO "
            "to use the bundled zoo",
        )
        self.path = path
        self.line = line
        self.field = field
