"""`vitamin ls`: filters, sorting, the table and the machine-readable outputs."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from conftest import Run
from seed import parse_seed

JSON_KEYS = [
    "name",
    "aliases",
    "encoder",
    "family",
    "size",
    "image_size",
    "num_patches",
    "text_depth",
    "text_width",
    "seen_samples",
    "seen_samples_total",
    "params_image_m",
    "params_text_m",
    "macs_image_g",
    "macs_text_g",
    "imagenet",
    "avg38",
    "dist_shift",
    "vtab",
    "retrieval",
    "weights",
    "weights_note",
]
WEIGHTS_KEYS = ["repo", "filename", "revision", "sha256", "size_bytes"]


def names(run: Run, *args: str) -> list[str]:
    result = run("ls", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return [row["name"] for row in json.loads(result.stdout)]


def table_names(stdout: str) -> list[str]:
    """Model names in the rows of the text table (group titles and the header excluded)."""
    rows = [line.split()[0] for line in stdout.splitlines()[3:] if line.strip()]
    return [r for r in rows if "-s" in r and r[0].isupper() and not r.startswith(("Small", "Base", "Large", "Long"))]


def test_json_contract(run: Run) -> None:
    result = run("ls", "--json")
    assert result.exit_code == 0
    assert result.stderr == ""
    rows = json.loads(result.stdout)
    assert len(rows) == 61
    for row in rows:
        assert list(row) == [*JSON_KEYS, "pulled", "checkpoint"]
        assert row["weights"] is None or list(row["weights"]) == WEIGHTS_KEYS
    by_name = {row["name"]: row for row in rows}
    xl = by_name["ViTamin-L2-384-s13.3B"]
    assert xl["seen_samples"] == "12.8B+0.5B"
    assert xl["seen_samples_total"] == 13.3e9
    assert xl["encoder"] == "ViTamin-L2" and xl["num_patches"] == 576
    assert by_name["ViT-S-32-s128M"]["encoder"] == "ViT-S/32"
    assert by_name["ViT-S-32-s128M"]["num_patches"] is None
    assert by_name["ViTamin-XL-384-s41B"]["aliases"] == ["ViTamin-XL-384"]
    assert by_name["ViTamin-XL-384-s41B"]["weights"]["repo"] == "jienengchen/ViTamin-XL-384px"


def test_table_is_grouped_like_the_seed(run: Run) -> None:
    result = run("ls")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    titles = [line for line in lines if line in ("Small (S)", "Base (B)", "Large (L)", "Long schedule")]
    assert titles == ["Small (S)", "Base (B)", "Large (L)", "Long schedule"]
    assert table_names(result.stdout) == [r.canonical_name for r in parse_seed()]
    assert "ImgNet" in lines[1]
    assert "\x1b[" not in result.stdout  # NO_COLOR


def test_size_L_shows_22_rows(run: Run) -> None:
    rows = names(run, "--size", "L")
    assert len(rows) == 22
    assert sum(name.startswith("ViTamin-L-") and "-s1" in name and name.count("-") == 3 for name in rows) == 4
    result = run("ls", "--size", "L")
    assert len(table_names(result.stdout)) == 22


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--size", "S"], 15),
        (["--size", "s"], 15),
        (["--size", "S", "--size", "B"], 30),
        (["--size", "L2"], 4),
        (["--size", "XL"], 5),
        (["--family", "vitamin"], 22),
        (["--family", "coatnet", "--family", "convnext"], 18),
        (["--samples", "128M"], 16),
        (["--samples", "1.28b"], 16),
        (["--samples", "12.8B+0.5B"], 5),
        (["--samples", "13.3B"], 5),
        (["--samples", "12.8B"], 2),
        (["--samples", "41B"], 2),
        (["--resolution", "384"], 4),
        (["--resolution", "224", "--family", "vitamin"], 11),
        (["--released"], 15),
        (["--unreleased"], 46),
        (["--released", "--size", "L"], 4),
        (["--size", "L", "--released", "--resolution", "336"], 1),
        (["ViTamin-L*"], 11),
        (["vitamin-xl-*"], 5),
        (["*-s512M"], 16),
        (["ViTamin-XL-384"], 1),
        (["ViTamin-XL-384*"], 2),
        (["ViTamin-S", "ViTamin-B"], 2),
    ],
)
def test_filters(run: Run, args: list[str], expected: int) -> None:
    assert len(names(run, *args)) == expected


def test_filters_keep_table_order(run: Run) -> None:
    assert names(run, "ViTamin-XL-384", "ViTamin-S") == ["ViTamin-S-s1.28B", "ViTamin-XL-384-s41B"]


def test_glob_matches_aliases(run: Run) -> None:
    assert names(run, "ViTamin-XL-3*", "--released") == [
        "ViTamin-XL-384-s13.3B",
        "ViTamin-XL-336-s41B",
        "ViTamin-XL-384-s41B",
    ]


def test_sort(run: Run) -> None:
    result = run("ls", "--json", "--sort", "imagenet", "--reverse")
    rows = json.loads(result.stdout)
    values = [row["imagenet"] for row in rows]
    assert values == sorted(values, reverse=True)
    assert rows[0]["name"] == "ViTamin-XL-384-s41B"
    ascending = json.loads(run("ls", "--json", "--sort", "macs_image_g").stdout)
    assert ascending[0]["name"] == "ViT-S-32-s128M"
    by_samples = json.loads(run("ls", "--json", "--sort", "seen_samples", "--family", "vitamin").stdout)
    totals = [row["seen_samples_total"] for row in by_samples]
    assert totals == sorted(totals)


def test_sort_puts_missing_values_last(run: Run) -> None:
    rows = json.loads(run("ls", "--json", "--sort", "num_patches", "--reverse").stdout)
    patches = [row["num_patches"] for row in rows]
    assert patches[:13] == sorted(patches[:13], reverse=True)
    assert patches[13:] == [None] * 48


def test_sorted_table_is_flat(run: Run) -> None:
    result = run("ls", "--sort", "avg38", "--size", "S")
    assert "Small (S)" not in result.stdout
    assert table_names(result.stdout)[0] == "ViT-S-32-s128M"


def test_csv(run: Run) -> None:
    result = run("ls", "--csv", "--released")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 15
    assert rows[0]["name"] == "ViTamin-S-s1.28B"
    assert rows[0]["weights_repo"] == "jienengchen/ViTamin-S"
    assert rows[0]["aliases"] == "ViTamin-S"
    assert rows[0]["imagenet"] == "62.2"


def test_markdown_reproduces_the_seed_cells(run: Run) -> None:
    result = run("ls", "--markdown")
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 61
    seed = parse_seed()
    for line, row in zip(lines[2:], seed, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == row.canonical_name
        assert cells[1] == row.encoder
        assert cells[6].replace(" ", "") == row.params.replace(" ", "")
        assert cells[7].replace(" ", "") == row.macs.replace(" ", "")
        assert [c.strip("*") for c in cells[8:13]] == [row.imagenet, row.avg38, row.dist_shift, row.vtab, row.retrieval]


def test_machine_output_is_only_on_stdout(run: Run) -> None:
    for flag in ("--json", "--csv", "--markdown"):
        result = run("ls", flag, "--size", "XL")
        assert result.exit_code == 0 and result.stderr == ""


def test_list_is_an_alias(run: Run) -> None:
    assert run("list", "--json").stdout == run("ls", "--json").stdout


def test_empty_selection(run: Run) -> None:
    result = run("ls", "--size", "XL", "--resolution", "224")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no model matches" in result.stderr
    assert run("ls", "--json", "--size", "XL", "--resolution", "224").stdout.strip() == "[]"


def test_colour_only_on_request(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from vitamin_cli import zoo
    from vitamin_cli.views import render, texttable

    registry = zoo.load()
    table = render.ls_table(registry, registry.models, grouped=True)
    coloured = table.render(color=True, width=200)
    assert "\x1b[1;32m" in coloured  # winners in bold green
    assert "\x1b[" not in table.render(color=False, width=200)
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "xterm")
    assert texttable.use_color(io.StringIO()) is False  # not a terminal


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "M"], "--size"),
        (["--family", "resnet"], "--family"),
        (["--sort", "name"], "--sort"),
        (["--resolution", "abc"], "--resolution"),
        (["--resolution", "0"], "--resolution"),
        (["--samples", "lots"], "--samples"),
        (["--json", "--csv"], "choose one output format"),
        (["--format", "json", "--markdown"], "choose one output format"),
        (["--reverse"], "--reverse needs --sort"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_flags_are_usage_errors(run: Run, args: list[str], message: str) -> None:
    result = run("ls", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_unknown_name_suggests_close_names(run: Run) -> None:
    result = run("ls", "ViTamin-XL-348")
    assert result.exit_code == 2
    assert "unknown model 'ViTamin-XL-348'" in result.stderr
    assert "ViTamin-XL-384" in result.stderr
    result = run("show", "vitamn-s")
    assert result.exit_code == 2
    assert "ViTamin-S" in result.stderr


def test_output_that_cannot_be_written_is_one_message() -> None:
    """A full disk behind stdout, a reader that went away, an encoding without box-drawing characters."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "vitamin_cli"]
    with open("/dev/full", "w") as full:
        for args in (["ls", "--json"], ["ls"], ["show", "ViTamin-L"], ["compare", "ViTamin-L", "ViTamin-B"]):
            done = subprocess.run([*command, *args], stdout=full, stderr=subprocess.PIPE, text=True)
            assert done.returncode == 1, (args, done.stderr)
            assert done.stderr.startswith("error: cannot write the output: No space left on device"), done.stderr
    # a reader that went away (`vitamin ls | head -1`): this sandbox's pipes do not report it, so the stream
    # is given one that does
    from vitamin_cli.console import GuardedStream, OutputError

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(OutputError) as caught:
        GuardedStream(Closed()).write("ViTamin-L\n")
    assert caught.value.broken_pipe
    narrow = subprocess.run([*command, "ls", "--size", "XL"], capture_output=True,
                            env={**os.environ, "PYTHONIOENCODING": "cp1252"})  # fmt: skip
    assert narrow.returncode == 0 and b"-----" in narrow.stdout, narrow.stderr
