"""Progress bars write bytes as vitamin's summaries do (`console.human_bytes`: binary units), so that one download
shows one number for its size on its bar and in the summary after it."""

from __future__ import annotations

import io
from typing import Any

import pytest

from vitamin_cli.console import human_bytes
from vitamin_cli.views.progress import PullBars, transfer_progress

SIZE = 604_000_000  # rich's DownloadColumn: "604.0 MB"; vitamin's summary: "576.0 MiB"


def drawn(progress: Any) -> list[str]:
    """The rows of a rich Progress as a terminal shows them (no colour)."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(progress.make_tasks_table(progress.tasks))
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_a_pull_bar_gives_the_summarys_size_and_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PullBars, "REFRESH_S", 0.0)  # every value drawn
    clock = [100.0]
    bars = PullBars()
    bars.bars.get_time = lambda: clock[0]  # rich's clock, which its speed is measured with
    update = bars.file("pytorch_model.bin")
    update(0, SIZE)
    for done in (SIZE // 2, SIZE):
        clock[0] += 10.0
        update(done, SIZE)
    (row,) = drawn(bars.bars)
    assert human_bytes(SIZE) == "576.0 MiB"
    assert f" {human_bytes(SIZE)}/{human_bytes(SIZE)} " in row
    assert f" {human_bytes(SIZE // 20)}/s " in row  # the second half in 10 s: "28.8 MiB/s"
    assert " MB" not in row and "MB/s" not in row


def test_the_bar_of_all_files_and_the_hashing_bar_too() -> None:
    bars = PullBars()
    bars.bars.add_task("2 files", total=SIZE, completed=SIZE, speed=12.5 * 2**20, seconds=3.0)  # as PullBars adds it
    (overall,) = drawn(bars.bars)
    assert f" {human_bytes(SIZE)}/{human_bytes(SIZE)} " in overall and " 12.5 MiB/s " in overall
    hashing = transfer_progress(transient=True)  # `vitamin verify`'s
    hashing.add_task("hashing", total=SIZE, completed=SIZE // 4)
    (row,) = drawn(hashing)
    assert f" {human_bytes(SIZE // 4)}/{human_bytes(SIZE)} " in row  # "144.0 MiB/576.0 MiB"
