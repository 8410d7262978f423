"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from vitamin_cli import zoo
from vitamin_cli.errors import UsageError


class Size(str, Enum):
    S = "S"
    B = "B"
    L = "L"
    L2 = "L2"
    XL = "XL"


class Family(str, Enum):
    vit = "vit"
    convnext = "convnext"
    coatnet = "coatnet"
    vitamin = "vitamin"


ZooPath = Annotated[
    Path | None,
    typer.Option(
        "--zoo",
        envvar=zoo.ZOO_ENV,
        help="Zoo file to use instead of the bundled zoo.yaml (also $VITAMIN_ZOO).",
        show_default=False,
    ),
]
Names = Annotated[
    list[str] | None,
    typer.Argument(help="Model names, aliases, Hugging Face repos or globs such as 'ViTamin-L*'.", show_default=False),
]
SizeFilter = Annotated[
    list[Size] | None,
    typer.Option("--size", case_sensitive=False, help="Size class (repeatable).", show_default=False),
]
FamilyFilter = Annotated[
    list[Family] | None,
    typer.Option("--family", case_sensitive=False, help="Model family (repeatable).", show_default=False),
]
SamplesFilter = Annotated[
    list[str] | None,
    typer.Option(
        "--samples",
        help="Seen samples, as printed or as a total: 128M, 1.28B, 12.8B+0.5B, 13.3B (repeatable).",
        show_default=False,
    ),
]
ResolutionFilter = Annotated[
    list[int] | None,
    typer.Option("--resolution", min=1, help="Image size in pixels (repeatable).", show_default=False),
]
ReleasedFilter = Annotated[
    bool | None,
    typer.Option("--released/--unreleased", help="Only models with (or without) public weights.", show_default=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Write JSON to stdout (docs/json.md).")]
AllFlag = Annotated[bool, typer.Option("--all", help="Every model of the zoo (or every pulled one, for verify).")]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Hugging Face cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).",
        file_okay=False,
        show_default=False,
    ),
]


PulledFilter = Annotated[
    bool | None,
    typer.Option(
        "--pulled/--not-pulled", help="Only models whose checkpoint is (or is not) in the cache.", show_default=False
    ),
]


def select(
    names: list[str] | None,
    zoo_path: Path | None,
    size: list[Size] | None,
    family: list[Family] | None,
    samples: list[str] | None,
    resolution: list[int] | None,
    released: bool | None,
    pulled: bool | None = None,
    cache_dir: Path | None = None,
) -> tuple[zoo.Zoo, list[zoo.Model]]:
    """Load the zoo and apply the `vitamin ls` filters, as every command that takes them does."""
    registry = zoo.load(zoo_path)
    models = registry.select(
        names or (),
        size=[s.value for s in size or ()],
        family=[f.value for f in family or ()],
        samples=samples or (),
        resolution=resolution or (),
        released=released,
    )
    if pulled is not None:
        from vitamin_cli.cache import hub_cache_dir, read_manifest

        present = read_manifest(hub_cache_dir(cache_dir))
        models = [m for m in models if (m.name in present) == pulled]
    return registry, models


def select_some(
    verb: str,
    names: list[str] | None,
    all_models: bool,
    zoo_path: Path | None,
    size: list[Size] | None,
    family: list[Family] | None,
    samples: list[str] | None,
    resolution: list[int] | None,
    released: bool | None,
) -> tuple[zoo.Zoo, list[zoo.Model]]:
    """`select` for commands that act on models: they need names, --all or a filter, never nothing."""
    filtered = bool(all_models or size or family or samples or resolution or released is not None)
    if not names and not filtered:
        raise UsageError(f"name the models to {verb}, or use --all or a filter such as --size L")
    return select(names, zoo_path, size, family, samples, resolution, released)
