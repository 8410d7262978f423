"""The output sink and the live table: each command offers only the formats it writes and writes each of them;
CSV and markdown read back by the standard tools; the live table drawn only on a terminal."""

from __future__ import annotations

import csv
import importlib
import io
import json
import sys
from pathlib import Path

import pytest
from conftest import Run

from vitamin_cli.views import sink
from vitamin_cli.views.progress import LiveTable
from vitamin_cli.views.sink import OutputFormat

COMMANDS = ["audit", "bench", "cache", "compare", "eval", "ls", "pull", "show", "verify"]


@pytest.mark.parametrize("command", COMMANDS)
def test_format_offers_what_the_command_writes_and_refuses_the_rest(run: Run, command: str) -> None:
    offered = importlib.import_module(f"vitamin_cli.commands.{command}").FORMATS
    help_text = run(command, "--help").stdout
    assert "[" + "|".join(f.value for f in offered) + "]" in help_text
    for other in set(OutputFormat) - set(offered):
        result = run(command, "--format", other.value)
        assert result.exit_code == 2, result.stdout
        assert "is not one of" in result.stderr and other.value in result.stderr
    if OutputFormat.csv not in offered:
        assert run(command, "--csv").exit_code == 2


# Each format a light command offers, written (the torch commands are run in their own tests).
CHEAP = {
    "ls": ["--size", "S"],
    "show": ["ViTamin-S"],
    "compare": ["ViTamin-S", "ViTamin-B"],
    "cache": [],
    "verify": [],
}


@pytest.mark.parametrize("command", sorted(CHEAP))
def test_every_offered_format_is_written(run: Run, command: str, tmp_path: Path) -> None:
    args = [*CHEAP[command], *(["--cache-dir", str(tmp_path)] if command in ("cache", "verify") else [])]
    for chosen in importlib.import_module(f"vitamin_cli.commands.{command}").FORMATS:
        result = run(command, *args, "--format", chosen.value)
        assert result.exit_code == 0, (chosen, result.stderr)
        out = result.stdout
        if chosen is OutputFormat.json:
            json.loads(out)
        elif chosen is OutputFormat.csv:
            rows = list(csv.DictReader(io.StringIO(out)))
            assert rows and all(None not in row for row in rows)  # no row longer than the header
        elif chosen is OutputFormat.markdown:
            header, rule, *rows = out.split("\n\n")[0].splitlines()  # a note may follow the table
            assert rule.startswith("|---") and rows
            assert {row.replace("\\|", "").count("|") for row in rows} == {header.count("|")}
        elif command != "verify":  # an empty cache has nothing to verify: its table is empty
            assert out.strip()


def test_csv_flattens_records_and_reads_back() -> None:
    records = [
        {"name": "A", "weights": {"repo": "org/a", "filename": "m.bin"}, "aliases": ["a", "b"], "acc": None},
        {"name": 'B, "quoted"', "weights": {"repo": "org/b", "filename": "n.bin"}, "aliases": [], "acc": 1.5},
    ]
    rows = list(csv.DictReader(io.StringIO(sink.to_csv(records))))
    assert list(rows[0]) == ["name", "weights_repo", "weights_filename", "aliases", "acc"]
    assert rows[0]["aliases"] == "a;b" and rows[0]["acc"] == ""
    assert rows[1]["name"] == 'B, "quoted"' and rows[1]["acc"] == "1.5"
    assert sink.to_csv(records, fields=["acc", "name"]).splitlines()[0] == "acc,name"
    mixed = list(csv.DictReader(io.StringIO(sink.to_csv([{"metrics": {"acc1": 1}}, {"metrics": {"recall": 2}}]))))
    assert mixed == [{"metrics_acc1": "1", "metrics_recall": ""}, {"metrics_acc1": "", "metrics_recall": "2"}]
    assert sink.to_csv([]) == "\n"


def test_markdown_escapes_pipes_and_drops_styles() -> None:
    text = sink.to_markdown(["Model", "Value"], [["a|b", ("1.0", "bold green")]])
    assert text.splitlines() == ["| Model | Value |", "|---|---|", "| a\\|b | 1.0 |"]


def test_write_rows_makes_each_format_from_the_same_rows(capsys: pytest.CaptureFixture[str]) -> None:
    columns = [sink.Column("Name", lambda r: r["name"]), sink.Column("N", lambda r: str(r["n"]), right=True)]
    rows = [{"name": "x", "n": 1}, {"name": "y", "n": 22}]
    outputs = {}
    for chosen in OutputFormat:
        sink.write_rows(chosen, rows, columns, record=lambda r: r, document=lambda recs: {"rows": recs})
        outputs[chosen] = capsys.readouterr().out
    assert json.loads(outputs[OutputFormat.json]) == {"rows": rows}
    assert outputs[OutputFormat.csv] == "name,n\nx,1\ny,22\n"
    assert outputs[OutputFormat.markdown].splitlines()[2:] == ["| x | 1 |", "| y | 22 |"]
    assert outputs[OutputFormat.table].split() == ["Name", "N", "x", "1", "y", "22"]
    with pytest.raises(AssertionError):
        sink.write(OutputFormat.csv, json=lambda: {})  # a format the command does not write is a bug


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_table_draws_on_a_terminal_only_and_leaves_its_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")  # the tests' own environment says "dumb", where rich draws nothing live
    for stderr, drawn in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stderr)
        with LiveTable(["Model", "Value"], {"Value"}) as live:
            live.REFRESH_S = 0.0
            live.update(["ViTamin-S", "working"])
            live.add(["ViTamin-S", "12.5"])
            live.update(["ViTamin-B", "working"])
        assert ("12.5" in stderr.getvalue()) is drawn
        assert live.rows == [["ViTamin-S", "12.5"]]
    with LiveTable(["Model"], (), enabled=False) as live:  # --json: never drawn, even on a terminal
        live.add(["x"])
    assert live.live is None
