"""Ctrl-C swallowed by Python (here in a finalizer) is raised again by `interrupts.check()`, inside the block only."""

from __future__ import annotations

import os
import signal

import pytest

from vitamin_cli import interrupts


class PressesCtrlCWhenCollected:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(10_000))  # the Python handler runs inside __del__, where its exception is only "ignored"


def still_pressed() -> bool:
    try:
        interrupts.check()
    except KeyboardInterrupt:
        return True
    return False


# pytest turns an "ignored" exception into this warning: there must be none
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_is_raised_again_by_check_then_forgotten() -> None:
    with interrupts.recorded() as ctrl_c:
        PressesCtrlCWhenCollected()  # collected at once; its KeyboardInterrupt goes nowhere
        assert still_pressed()
    assert ctrl_c.pressed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert not still_pressed()  # a later call of the library is not stopped by it


def test_outside_the_block_ctrl_c_is_left_to_python() -> None:
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(10_000))
    assert not still_pressed()
