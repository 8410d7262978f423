"""Every test runs with its own temporary home, cache and config folders, no colour and a wide terminal."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vitamin_cli import cli

ROOT = Path(__file__).resolve().parent.parent
ZOO_YAML = ROOT / "zoo.yaml"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    for var in ("VITAMIN_ZOO", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "dumb")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `vitamin ARGS...` in this process, as the console script does, and capture what it prints."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            cli.main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def zoo_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled zoo.yaml, for tests that break it."""
    path = tmp_path / "zoo.yaml"
    shutil.copy(ZOO_YAML, path)
    return path
