"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be. Where that is a fork hook (a DataLoader
starting its workers), a finalizer or a weakref callback, the exception is printed as "Exception ignored" and
the program carries on as if nothing was pressed. While `recorded()` is active the signal is also remembered,
such swallowed interrupts are not printed, and `check()`, called by the long loops (batches, tasks, towers),
raises the interrupt again where it can stop the run.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_seen = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _seen
    _seen = True
    raise KeyboardInterrupt


class Pressed:
    """Whether Ctrl-C was pressed inside `recorded()`, kept after the block ends."""

    def __init__(self) -> None:
        self.pressed = False


@contextmanager
def recorded() -> Iterator[Pressed]:
    """Remember Ctrl-C for `check()` while the block runs. Outside the main thread, or where SIGINT is ignored
    or already handled by the program embedding vitamin, it changes nothing."""
    global _seen
    state = Pressed()
    ours = threading.current_thread() is threading.main_thread()
    if not ours or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:  # ignored, or someone's own
        yield state
        return
    _seen = False
    handler = signal.signal(signal.SIGINT, _on_sigint)
    printer = sys.unraisablehook

    def unraisable(args: Any) -> None:
        if not isinstance(args.exc_value, KeyboardInterrupt):  # a swallowed Ctrl-C: check() raises it again
            printer(args)

    sys.unraisablehook = unraisable
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, handler)
        sys.unraisablehook = printer
        state.pressed, _seen = _seen, False  # a later call of the library starts afresh


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed inside `recorded()`, even where its first raise was
    swallowed."""
    if _seen:
        raise KeyboardInterrupt
