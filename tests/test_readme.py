"""README.md stays true: its commands are the ones CI runs, and its sample output is what the tool prints."""

from __future__ import annotations

import re
from collections.abc import Callable

from conftest import ROOT, Run

README = (ROOT / "README.md").read_text()


def commands() -> list[str]:
    """The indented commands that open the README, before the first section."""
    intro = README.split("\n## ", 1)[0]
    return [line.strip() for line in intro.splitlines() if line.startswith("    ")]


def test_readme_opens_with_install_and_test_commands() -> None:
    install, test, *torch_cpu = commands()
    assert torch_cpu == [
        "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu",
        'pip install ".[torch]"',
    ]
    assert install == "pip install . && vitamin ls --size L"
    assert test.startswith('pip install -e ".[test]"') and test.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands()[1] in ci.splitlines()


def sample(command: str) -> list[str]:
    """The output lines the README shows after `$ command`, up to the next blank line."""
    block = README.split(f"    $ {command}\n", 1)[1].split("\n\n", 1)[0]
    return [line[4:] for line in block.splitlines()]


def test_ls_sample_output_is_real(run: Run, terminal: Callable[[int], None]) -> None:
    terminal(80)  # the README shows an 80-column terminal
    actual = run("ls", "--size", "L").stdout.splitlines()
    assert max(len(line) for line in run("ls").stdout.splitlines()) <= 80
    shown = [line for line in sample("vitamin ls --size L") if line != "..."]
    assert len(shown) > 10
    for line in shown:
        assert line in actual, line


def test_show_sample_output_is_real(run: Run) -> None:
    actual = [line.rstrip() for line in run("show", "ViTamin-XL-384").stdout.splitlines()]
    for line in sample("vitamin show ViTamin-XL-384"):
        if line != "...":
            assert line.rstrip() in actual, line


def test_budget_sample_output_is_real(run: Run) -> None:
    command = "vitamin ls --where 'macs < 100' --sort imagenet --reverse --columns model,macs,imagenet | head -4"
    shown = run("ls", "--where", "macs < 100", "--sort", "imagenet", "--reverse", "--columns", "model,macs,imagenet")
    assert shown.stdout.splitlines()[:4] == sample(command)


def test_typo_sample_output_is_real(run: Run) -> None:
    result = run("show", "ViTamin-XL-348")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == sample("vitamin show ViTamin-XL-348")


def test_python_sample_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    (source,) = [block for block in blocks if "from vitamin_cli import zoo" in block]
    source = source.replace('zoo.load("lab-zoo.yaml")', "zoo.load()")
    scope: dict[str, object] = {}
    exec(source, scope)  # noqa: S102 - the README's own example
    assert scope["model"].name == "ViTamin-XL-384-s41B"  # type: ignore[attr-defined]


def test_the_readme_picture_is_there() -> None:
    assert "](docs/img/zoo.png)" in README
    assert "vitamin plot -o docs/img/zoo.png" in README
    assert (ROOT / "docs" / "img" / "zoo.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_readme_says_how_to_install_torch_without_cuda() -> None:
    """Not tried here (only PyPI is reachable): the CPU-only index is named next to the extras."""
    cpu = "    pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu\n"
    assert cpu + '    pip install ".[torch]"\n' in README
    extras = README.index('`pip install ".[torch]"`')
    assert 0 < README.index(cpu) - extras < 1200  # right after the extras are explained
    assert README.index(cpu) < README.index("\n## ")  # before the tour
