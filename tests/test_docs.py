"""docs/ stays true: the CLI reference is regenerated and compared, the JSON contract page matches the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Run

from vitamin_cli import zoo

DOCS = ROOT / "docs"


def test_cli_reference_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "cli_docs.py"), str(fresh)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert (DOCS / "cli.md").read_text() == fresh.read_text(), (
        "docs/cli.md is stale: run `python tools/cli_docs.py docs/cli.md`"
    )
    assert "&#" not in fresh.read_text() and "&quot;" not in fresh.read_text()  # plain markdown, no HTML entities


def table_keys(markdown: str, heading: str) -> list[str]:
    """The backquoted keys of the first table under a heading."""
    section = markdown.split(heading, 1)[1]
    keys = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        match = re.match(r"\| `(\w+)` \|", line)
        if match:
            keys.append(match.group(1))
        elif keys and not line.startswith("|"):
            break
    return keys


def test_json_page_lists_exactly_the_ls_keys() -> None:
    page = (DOCS / "json.md").read_text()
    model = zoo.get("ViTamin-S")
    assert table_keys(page, "## `vitamin ls --json`") == [*model.to_json(), "pulled", "checkpoint"]
    assert table_keys(page, "`weights`:") == list(model.to_json()["weights"])


def test_schema_page_lists_every_model_key() -> None:
    page = (DOCS / "zoo-schema.md").read_text()
    documented = set(re.findall(r"`(\w+)`", page.split("## `models`", 1)[1].split("## Names", 1)[0]))
    from vitamin_cli.zoo.schema import (
        MODEL_KEYS_OPTIONAL,
        MODEL_KEYS_REQUIRED,
        WEIGHTS_KEYS_OPTIONAL,
        WEIGHTS_KEYS_REQUIRED,
    )

    for key in (*MODEL_KEYS_REQUIRED, *MODEL_KEYS_OPTIONAL, *WEIGHTS_KEYS_REQUIRED, *WEIGHTS_KEYS_OPTIONAL):
        assert key in documented, key


def test_json_page_lists_exactly_the_show_keys(run: Run) -> None:
    page = (DOCS / "json.md").read_text()
    shown = json.loads(run("show", "ViTamin-S", "--json").stdout)
    extra = table_keys(page, "One object: every key of `vitamin ls --json`, plus")
    assert list(shown) == [*json.loads(run("ls", "ViTamin-S", "--json").stdout)[0], *extra]


def test_json_page_describes_the_csv_columns(run: Run) -> None:
    header = run("ls", "--csv").stdout.splitlines()[0].split(",")
    page = (DOCS / "json.md").read_text().split("## `vitamin ls --csv`", 1)[1].split("##", 1)[0]
    flattened = [f"weights_{key}" for key in zoo.get("ViTamin-S").to_json()["weights"]]
    assert header == [k for k in zoo.get("ViTamin-S").to_json() if k not in ("weights", "weights_note")] + [
        *flattened,
        "weights_note",
        "pulled",
        "checkpoint",
    ]
    for column in flattened:
        assert f"`{column}`" in page


def test_json_page_lists_the_pull_and_verify_keys() -> None:
    from vitamin_cli.checkpoints.pull import PullResult
    from vitamin_cli.checkpoints.verify import Check

    page = (DOCS / "json.md").read_text()
    assert table_keys(page, "## `vitamin pull --json`") == list(PullResult(name="x").to_json())
    assert table_keys(page, "## `vitamin verify --json`") == list(Check("x", None, None, None).to_json())
    from dataclasses import fields

    from vitamin_cli.models.audit import AuditRow

    assert table_keys(page, "## `vitamin audit --json`") == [f.name for f in fields(AuditRow)]
    from vitamin_cli.bench.results import BenchResult as Result

    assert table_keys(page, "## `vitamin bench --json`") == [
        f.name for f in fields(Result) if not f.metadata.get("apart")
    ]


def test_json_page_lists_the_eval_keys() -> None:
    from vitamin_cli.eval.results import TaskResult

    page = (DOCS / "json.md").read_text()
    assert table_keys(page, "## `vitamin eval --json`") == list(TaskResult("m", None, "t", "t").to_json())


def test_every_command_has_its_page_in_the_cli_reference() -> None:
    from vitamin_cli.cli import COMMANDS

    reference = (DOCS / "cli.md").read_text()
    for name in COMMANDS:
        assert f"## `vitamin {name}`" in reference, name


def test_json_page_lists_each_commands_formats() -> None:
    import importlib

    text = (ROOT / "docs" / "json.md").read_text().split("## Formats by command")[1].split("\n## ")[0]
    listed = dict(re.findall(r"^\| `(\w+)` \| ([a-z, ]+) \|$", text, re.MULTILINE))
    written = {}
    for path in sorted((ROOT / "vitamin_cli" / "commands").glob("*.py")):
        module = importlib.import_module(f"vitamin_cli.commands.{path.stem}")
        if hasattr(module, "FORMATS"):
            written[path.stem] = ", ".join(f.value for f in module.FORMATS)
    assert listed == written
