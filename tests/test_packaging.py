"""How vitamin is installed and started: the bundled zoo, `python -m`, and light commands staying light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, ZOO_YAML, Hub

HEAVY = ("torch", "open_clip", "timm", "huggingface_hub", "requests", "numpy", "ray")


def python(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def build_wheel(folder: Path) -> Path:
    """The project's wheel, built from this checkout into `folder`."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = folder.glob("*.whl")
    return wheel


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
        ["tasks"],
        ["tasks", "--suite", "vtab", "--json"],
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
    wheel = build_wheel(tmp_path)
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


def test_a_missing_extra_is_named_with_a_command_that_installs_it(tmp_path: Path) -> None:
    """Without torch, `vitamin bench` names the extra and a pip command for this very installation (the
    checkout it was installed from), never a package index entry that does not exist."""
    blocker = tmp_path / "torch"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = python("-m", "vitamin_cli", "bench", "--device", "cuda", cwd=ROOT, env=env)
    assert result.returncode == 2, result.stderr
    assert "error: this command needs torch, from the 'torch' extra" in result.stderr
    assert f'hint: pip install -e "{ROOT}[torch]"' in result.stderr  # the test extras install it editable
    assert "vitamin-zoo[" not in result.stderr
    assert "Traceback" not in result.stderr
    debug = python("-m", "vitamin_cli", "bench", cwd=ROOT, env={**env, "VITAMIN_DEBUG": "1"})
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr and "ModuleNotFoundError" in debug.stderr


@pytest.mark.slow
def test_the_core_install_pulls_and_names_the_torch_extra(tmp_path: Path, hub: Hub) -> None:
    """README's first command, as a new user runs it: the wheel alone (no extras) in a fresh virtual
    environment lists the zoo, pulls a checkpoint from the test Hub, and `vitamin bench` says how to add torch."""
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    vitamin = str(venv / "bin" / "vitamin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [vitamin, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    listed = run("ls", "--size", "L", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 22
    pulled = run("pull", "ViTamin-L", "--json")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)[0]["status"] == "downloaded"
    no_torch = run("bench", "--device", "cuda")
    assert no_torch.returncode == 2, no_torch.stderr
    assert "error: this command needs torch, from the 'torch' extra" in no_torch.stderr
    hint = no_torch.stderr.splitlines()[1]
    assert hint.startswith("hint: pip install ")  # the packages: a wheel has no checkout to install from
    assert all(f'"{package}>=' in hint for package in ("torch", "open-clip-torch", "timm"))
    assert "Traceback" not in no_torch.stderr
