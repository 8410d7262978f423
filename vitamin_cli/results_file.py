"""Results saved by `vitamin bench -o FILE` (or its `--json` output), read back for ls, plot and compare."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vitamin_cli.errors import UsageError
from vitamin_cli.zoo import Model


@dataclass(frozen=True)
class Speeds:
    """Measured throughput (items per second) by model and tower."""

    by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # lower-case name -> tower -> rate

    def get(self, model: Model, tower: str) -> float | None:
        return self.by_model.get(model.name.lower(), {}).get(tower)


def read_bench(path: Path) -> Speeds:
    """The throughput of each model and tower in a file written by `vitamin bench -o FILE` or `--json`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data["results"] if isinstance(data, dict) else data
        speeds: dict[str, dict[str, float]] = {}
        for row in rows:
            if row.get("throughput") is not None:
                speeds.setdefault(str(row["model"]).lower(), {})[str(row["tower"])] = float(row["throughput"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise UsageError(
            f"cannot read benchmark results from {path}: {err}", hint="pass a file written by `vitamin bench -o FILE`"
        ) from None
    return Speeds(speeds)
