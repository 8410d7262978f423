"""How vitamin is installed and started: the bundled zoo, `python -m`, and light commands staying light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, ZOO_YAML

HEAVY = ("torch", "open_clip", "timm", "huggingface_hub", "requests", "numpy")


def python(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["ls"],
        ["ls", "--json"],
        ["show", "ViTamin-L"],
        ["--help"],
        ["ls", "nope"],
        ["ls", "--pulled"],
        ["verify"],
        ["cache"],
    ],
)
def test_light_commands_never_import_heavy_libraries(argv: list[str], tmp_path: Path) -> None:
    """In a fresh interpreter: the heavy libraries are installed, and `vitamin ls` must not load them."""
    code = (
        "import sys\n"
        "from vitamin_cli.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    result = python("-c", code, cwd=tmp_path)
    assert "HEAVY []" in result.stderr, result.stderr


def test_heavy_libraries_are_installed() -> None:
    """Without them the test above could not fail; the test extras install them."""
    for name in ("torch", "open_clip", "timm", "huggingface_hub"):
        __import__(name)


def test_python_m_from_a_source_checkout() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VITAMIN_ZOO"}
    result = python("-m", "vitamin_cli", "ls", "--json", cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 61


def test_version(tmp_path: Path) -> None:
    result = python("-m", "vitamin_cli", "--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("vitamin ")


@pytest.mark.slow
def test_wheel_bundles_the_zoo_and_runs_from_anywhere(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "vitamin_cli/zoo.yaml" in names
        assert archive.read("vitamin_cli/zoo.yaml") == ZOO_YAML.read_bytes()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "vitamin = vitamin_cli.cli:main" in archive.read(entry_points).decode()
        assert not any(n.startswith("tests/") for n in names)
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("VITAMIN_ZOO", None)
    code = (
        "import sys, vitamin_cli.zoo as z; print(z.default_path()); "
        "from vitamin_cli.cli import main; main(['ls', '--json'])"
    )
    result = python("-c", code, cwd=elsewhere, env=env)
    assert result.returncode == 0, result.stderr
    first_line, rest = result.stdout.split("\n", 1)
    assert first_line == str(site / "vitamin_cli" / "zoo.yaml")
    assert len(json.loads(rest)) == 61


def test_a_missing_extra_is_named(tmp_path: Path) -> None:
    """Without huggingface_hub, `vitamin pull` says which extra to install instead of a traceback."""
    blocker = tmp_path / "huggingface_hub"
    blocker.mkdir()
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'huggingface_hub'\", name='huggingface_hub')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = python("-m", "vitamin_cli", "pull", "ViTamin-S", cwd=ROOT, env=env)
    assert result.returncode == 2
    assert 'pip install "vitamin-zoo[hub]"' in result.stderr
    assert "Traceback" not in result.stderr
