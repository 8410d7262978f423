"""Write docs/cli.md, the reference of every command and option, from the app itself.

    python tools/cli_docs.py docs/cli.md

typer's generator writes help texts as HTML-escaped text (`&#x27;` for a quote); markdown needs neither,
so the entities are turned back into the characters they stand for.
"""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path


def generate() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "typer", "--app", "app", "vitamin_cli.cli", "utils", "docs", "--name", "vitamin"],
        capture_output=True,
        text=True,
        check=True,
    )
    return html.unescape(result.stdout).rstrip("\n") + "\n\n" + fields() + "\n" + columns()


def fields() -> str:
    """The table of the fields --where, --sort and --pareto name (vitamin_cli/zoo/fields.py)."""
    from vitamin_cli.zoo.fields import FIELDS, ZOO

    lines = [
        "## Fields",
        "",
        "The numbers `--where`, `--sort` and `--pareto` name, by their name or a short alias, in any case. A "
        "measured field needs the option that gives it, which `vitamin ls` takes (and `vitamin plot`, `--bench` "
        "and `--eval`). `--where` compares them with `<`, `<=`, `>`, `>=`, `==` (or `=`), `!=`, joined by `and`, "
        "`or`, `not` and parentheses; a plain number is in the field's own unit (`macs < 10`: 10 G); one ending "
        "in K, M, B (or G) or T is read into it (`macs < 10G` is the same, `samples > 1.28B`), and a percentage "
        "takes none; a model without a value of a field passes no comparison of it. `--pareto` keeps the models "
        "no other is better than on every field it names, better being lower for a cost and higher for an "
        "accuracy or a throughput.",
        "",
        "| field | aliases | what | better | needs |",
        "|---|---|---|---|---|",
    ]
    for f in FIELDS:
        aliases = ", ".join(f"`{a}`" for a in f.aliases)
        needs = "" if f.source == ZOO else f"`{f.source}`"
        lines.append(f"| `{f.name}` | {aliases} | {f.about} | {f.better or ''} | {needs} |")
    return "\n".join(lines) + "\n"


def columns() -> str:
    """The keys `--columns` takes, table by table."""
    from vitamin_cli import zoo
    from vitamin_cli.bench.results import Speeds
    from vitamin_cli.commands import audit, cache, tasks, verify
    from vitamin_cli.eval.results import Accuracy
    from vitamin_cli.views import render, results

    ls = render.ls_table(zoo.load(), [], grouped=False, measured={}, speeds=Speeds(), accuracy=Accuracy())
    tables = {
        "ls": [s.name for s in ls.specs],
        "cache": [s.name for s in cache.COLUMNS],
        "tasks": [c.spec.name for c in tasks.COLUMNS],
        "verify": [c.spec.name for c in verify.COLUMNS],
        "audit": [c.spec.name for c in audit.COLUMNS],
        "bench": [c.spec.name for c in results.BENCH_COLUMNS],
        "eval": [c.spec.name for c in results.EVAL_COLUMNS],
    }
    lines = [
        "## Table columns",
        "",
        "On a terminal too narrow for a whole table, the columns of least use are hidden and a note under the "
        "table says which. `--columns KEY,...` chooses the columns and their order; in a pipe or a file every "
        "column is there. The keys (the measured ones of `ls` with `--bench`, `--eval` or `--audit`):",
        "",
        "| command | keys |",
        "|---|---|",
    ]
    lines += [f"| `vitamin {name}` | {', '.join(f'`{k}`' for k in keys)} |" for name, keys in tables.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    Path(sys.argv[1]).write_text(generate())
