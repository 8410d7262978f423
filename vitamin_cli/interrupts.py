"""Ctrl-C that is never lost, and termination that unwinds like it.

Python raises KeyboardInterrupt wherever the main thread happens to be. Where that is a fork hook (a DataLoader
starting its workers), a finalizer or a weakref callback, the exception is printed as "Exception ignored" and
the program carries on as if nothing was pressed. While `recorded()` is active the signal is also remembered,
such swallowed interrupts are not printed, and `check()`, called by the long loops (batches, tasks, towers),
raises the interrupt again where it can stop the run.

SIGTERM and SIGHUP (`kill`, `timeout`, a closed terminal) end a Python program at once, which is all vitamin
needs, except while it holds Ray: Ray's native code turns SIGTERM into a stack dump and an abort, and leaves
the Ray it started behind. While `unwinding()` is active they raise `Terminated` instead, a KeyboardInterrupt,
so that the run stops the way Ctrl-C stops it and what was started is shut down on the way out.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

# The signals that ask a program to end, which `unwinding()` turns into Terminated.
TERMINATING = (signal.SIGTERM, signal.SIGHUP)

_seen: int | None = None  # the signal that stopped the block of `recorded()`
_recording = False


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that the same code stops the run and keeps what finished."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop(signum: int, frame: FrameType | None = None) -> NoReturn:
    """What a signal does while vitamin handles it: Ctrl-C raises KeyboardInterrupt, SIGTERM and SIGHUP raise
    Terminated, and `recorded()` remembers which."""
    global _seen
    if _recording:
        _seen = signum
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


class Pressed:
    """What stopped the block `recorded()` ran, kept after the block ends: Ctrl-C (`pressed`), or a signal of
    `TERMINATING` (`signum`, while `unwinding()` was active)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def pressed(self) -> bool:
        return self.signum == signal.SIGINT


@contextmanager
def recorded() -> Iterator[Pressed]:
    """Remember Ctrl-C for `check()` while the block runs, and what stopped the block: Ctrl-C, or SIGTERM or
    SIGHUP while `unwinding()` is active. Outside the main thread it changes nothing; where SIGINT is ignored or
    already handled by the program embedding vitamin, Ctrl-C is left to it."""
    global _seen, _recording
    state = Pressed()
    if threading.current_thread() is not threading.main_thread() or _recording:  # nested: the outer one records
        yield state
        return
    _seen, _recording = None, True
    takes_ctrl_c = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not ignored, nor someone's own
    handler = signal.signal(signal.SIGINT, stop) if takes_ctrl_c else None
    printer = sys.unraisablehook

    def unraisable(args: Any) -> None:
        if not (isinstance(args.exc_value, KeyboardInterrupt) and _seen is not None):  # check() raises it again
            printer(args)

    sys.unraisablehook = unraisable
    try:
        yield state
    finally:
        if takes_ctrl_c:
            signal.signal(signal.SIGINT, handler)
        sys.unraisablehook = printer
        state.signum, _seen, _recording = _seen, None, False  # a later call of the library starts afresh


def check() -> None:
    """Raise KeyboardInterrupt (or Terminated) if Ctrl-C (or SIGTERM, SIGHUP) came inside `recorded()`, even
    where its first raise was swallowed."""
    if _seen is not None:
        raise KeyboardInterrupt if _seen == signal.SIGINT else Terminated(_seen)


def termination_handlers() -> dict[int, Any]:
    """The handlers of the `TERMINATING` signals as they are now, for `unwinding()`."""
    return {signum: signal.getsignal(signum) for signum in TERMINATING}


@contextmanager
def unwinding(before: Mapping[int, Any]) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise Terminated in the main thread where `before` (taken with
    `termination_handlers()`) left them to their default action; a handler of the program's own, or an ignored
    signal (`nohup`), is put back as it was, even if something replaced it since (Ray's start replaces
    SIGTERM's). Afterwards, `before` again. Outside the main thread it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    known = {signum: handler for signum, handler in before.items() if handler is not None}  # None: set natively
    for signum, handler in known.items():
        signal.signal(signum, stop if handler == signal.SIG_DFL else handler)
    try:
        yield
    finally:
        for signum, handler in known.items():
            signal.signal(signum, handler)
