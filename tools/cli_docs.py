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
    return html.unescape(result.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    Path(sys.argv[1]).write_text(generate())
