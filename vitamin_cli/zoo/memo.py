"""Validated zoo files, kept in vitamin's memo folder so that a start does not validate the same bytes again.

Validating node by node takes most of `vitamin ls`'s own time. An entry is JSON named after a hash of the
file's bytes and of every module that validates them (their content, not their times: builds that fix every
file's time still get a new entry), so a change to either makes a new entry. An entry starts with the sha256 of
the rest; one that cannot be read (a FIFO or a folder in its place, garbage, another shape) or does not match it
is ignored, the file is validated again and the entry written anew.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from vitamin_cli.files import memo_dir, read_memo, write_atomic
from vitamin_cli.zoo.entries import SCHEMA_VERSION, Model, Weights, freeze, thaw
from vitamin_cli.zoo.registry import Zoo

ENTRIES = 8  # validated zoo files kept: the bundled one and a few of a lab's own
MAX_ENTRY_BYTES = 64 * 2**20  # far above any zoo's; a larger entry is not read, but validated again
# The modules whose code decides what a valid zoo is and what it loads into, relative to the package.
_VALIDATORS = ("zoo/entries.py", "zoo/registry.py", "zoo/schema.py", "zoo/memo.py", "hub/ids.py", "yamlschema.py")


@functools.lru_cache(maxsize=8)
def load(path: str, data: bytes) -> Zoo:
    """The zoo in these bytes: from the memo when it holds them, else validated (and then remembered)."""
    entry = memo_dir() / f"zoo-{_key(data)}.json"
    kept = read_memo(entry, MAX_ENTRY_BYTES)
    if kept is not None:
        digest, _, body = kept.partition(b"\n")
        try:
            if digest.decode("ascii") == hashlib.sha256(body).hexdigest():
                return _from_json(path, json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            pass  # an entry of another shape: validated again, and the entry written anew
    from vitamin_cli.zoo import schema

    registry = schema.parse(data, path)
    _remember(entry, registry)
    return registry


def _key(data: bytes) -> str:
    package = Path(__file__).parent.parent
    digest = hashlib.sha256(f"{SCHEMA_VERSION}:".encode())
    for name in _VALIDATORS:
        digest.update((package / name).read_bytes())
    digest.update(data)
    return digest.hexdigest()[:32]


def _from_json(path: str, cached: dict[str, Any]) -> Zoo:
    models = tuple(
        Model(**{**m, "aliases": tuple(m["aliases"]), "weights": m["weights"] and Weights(**m["weights"])})
        for m in cached["models"]
    )
    return Zoo(path=Path(path), models=models, architectures=freeze(cached["architectures"]))


def _remember(entry: Path, registry: Zoo) -> None:
    """Best effort: a read-only or full disk only costs the next start its speed."""
    import dataclasses

    payload = {
        "models": [dataclasses.asdict(m) for m in registry.models],
        "architectures": thaw(registry.architectures),
    }
    try:
        body = json.dumps(payload)
        write_atomic(entry, hashlib.sha256(body.encode()).hexdigest() + "\n" + body)
        older = sorted(entry.parent.glob("zoo-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in older[ENTRIES:]:
            stale.unlink()
    except OSError:
        pass
