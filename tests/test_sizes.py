"""Functions stay short enough to read whole: none in the package is longer than MAX_LINES.

Ruff holds complexity, branches and statements; a long function of simple statements passes those, so its
length, from its first decorator to its last line, is counted here.
"""

from __future__ import annotations

import ast

from conftest import ROOT

MAX_LINES = 80
PACKAGE = ROOT / "vitamin_cli"


def long_functions(source: str, path: str) -> list[str]:
    """The functions (methods and nested ones too) of `source` longer than MAX_LINES, as `path:line name (n
    lines)`, `line` being that of the `def`."""
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > MAX_LINES:
                found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_the_limit() -> None:
    found = [
        function
        for path in sorted(PACKAGE.rglob("*.py"))
        for function in long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not found, f"functions longer than {MAX_LINES} lines; split them:\n" + "\n".join(found)


def test_the_count_starts_at_the_first_decorator() -> None:
    def source(body_lines: int) -> str:
        body = "".join(f"        x{i} = {i}\n" for i in range(body_lines))
        return f"class C:\n    @first\n    @second(2)\n    async def long(self):\n{body}"

    assert long_functions(source(MAX_LINES - 3), "c.py") == []  # 2 decorators, the def and its body: 80 lines
    assert long_functions(source(MAX_LINES - 2), "c.py") == [f"c.py:4 long ({MAX_LINES + 1} lines)"]
