"""The cache folder vitamin finds without importing huggingface_hub is the one huggingface_hub uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vitamin_cli.hub.cache import hub_dir


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HF_HOME": "/tmp/hf-home"},
        {"HF_HUB_CACHE": "/tmp/hub-cache"},
        {"HF_HOME": "/tmp/hf-home", "HF_HUB_CACHE": "/tmp/hub-cache"},
        {"HUGGINGFACE_HUB_CACHE": "/tmp/legacy"},
        {"XDG_CACHE_HOME": "/tmp/xdg"},
        {"HF_HOME": "~/hf"},
    ],
)
def test_same_folder_as_huggingface_hub(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    theirs = subprocess.run(
        [sys.executable, "-c", "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    ).stdout.strip()
    assert hub_dir() == Path(theirs).expanduser().absolute()


def test_a_relative_folder_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert hub_dir("rel") == tmp_path / "rel"
