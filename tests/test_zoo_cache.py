"""The memo of validated zoo files: same result as parsing, and never trusted for other bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ZOO_YAML

from vitamin_cli import zoo
from vitamin_cli.files import memo_dir
from vitamin_cli.zoo import memo as zoo_memo
from vitamin_cli.zoo import schema as zoo_schema


def cache_files() -> list[Path]:
    return sorted(memo_dir().glob("zoo-*.json"))


def fresh_load(path: Path) -> zoo.Zoo:
    zoo_memo.load.cache_clear()
    return zoo.load(path)


def test_cached_zoo_equals_parsed_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = fresh_load(ZOO_YAML)
    (cache_file,) = cache_files()

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed although the cache holds these bytes")

    monkeypatch.setattr(zoo_schema, "parse", no_parsing)
    cached = fresh_load(ZOO_YAML)
    assert cached == parsed
    assert cached.models[0].line == parsed.models[0].line
    assert isinstance(cached.get("ViTamin-S").weights, zoo.Weights)
    assert cached.get("ViTamin-S").aliases == ("ViTamin-S",)
    assert cached.inline_architecture(cached.get("ViTamin-XL-384")) == parsed.inline_architecture(
        parsed.get("ViTamin-XL-384")
    )
    assert cache_files() == [cache_file]


def test_changed_bytes_are_parsed_again(zoo_copy: Path) -> None:
    fresh_load(zoo_copy)
    zoo_copy.write_text(zoo_copy.read_text().replace("imagenet: 32.1", "imagenet: 32.2"))
    assert fresh_load(zoo_copy).get("ViT-S-32-s128M").imagenet == 32.2
    assert len(cache_files()) == 2
    zoo_copy.write_text(zoo_copy.read_text().replace("imagenet: 32.2", "imagenet: high"))
    with pytest.raises(zoo.ZooFileError):
        fresh_load(zoo_copy)


def test_corrupt_cache_is_ignored() -> None:
    fresh_load(ZOO_YAML)
    (cache_file,) = cache_files()
    cache_file.write_text('{"models": [{"name": 1}]')
    assert len(fresh_load(ZOO_YAML).models) == 61
    assert len(fresh_load(ZOO_YAML).models) == 61


def test_memo_dir_that_is_a_file_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert len(fresh_load(ZOO_YAML).models) == 61
    assert list(tmp_path.iterdir()) == [blocker]


def test_a_change_to_any_validating_module_makes_a_new_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The memo key covers the code of every module that decides what a valid zoo is, not only zoo.py; and
    their content, not their times (builds that set every file's time alike still get a new entry)."""
    import os
    import shutil

    package = Path(zoo_memo.__file__).parent.parent
    for name in zoo_memo._VALIDATORS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(package / name, tmp_path / name)
    monkeypatch.setattr(zoo_memo, "__file__", str(tmp_path / "zoo" / "memo.py"))
    fresh_load(ZOO_YAML)
    (first,) = cache_files()
    schema_file = tmp_path / "zoo" / "schema.py"
    os.utime(schema_file, ns=(1, 1))  # the time alone: the same code, the same entry
    fresh_load(ZOO_YAML)
    assert cache_files() == [first]
    with open(schema_file, "a") as schema:
        schema.write("# a change\n")
    os.utime(schema_file, ns=(1, 1))
    fresh_load(ZOO_YAML)
    assert len(cache_files()) == 2 and first in cache_files()


def test_an_entry_edited_into_other_valid_json_is_not_trusted() -> None:
    fresh_load(ZOO_YAML)
    (entry,) = cache_files()
    digest, _, body = entry.read_bytes().partition(b"\n")
    entry.write_bytes(digest + b"\n" + body.replace(b'"imagenet": 82.9', b'"imagenet": "abc"'))
    assert fresh_load(ZOO_YAML).get("ViTamin-XL-384-s41B").imagenet == 82.9
    entry.write_bytes(b'{"models": [], "architectures": {}}')
    assert len(fresh_load(ZOO_YAML).models) == 61
