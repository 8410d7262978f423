"""Parse the seed table (tests/data/seed_zoo.md), the zoo's source of reported values.

The parser is deliberately independent of `vitamin_cli`: the tests compare what the package loads from
zoo.yaml with what this module reads straight from the markdown the project was created from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEED = Path(__file__).parent / "data" / "seed_zoo.md"

SIZE_TITLES = {"Small": "S", "Base": "B", "Large": "L"}


@dataclass(frozen=True)
class SeedRow:
    schedule: str  # "benchmark" (first table) or "long" (second table)
    size_group: str | None  # S, B or L from the group title row; None in the long table
    encoder: str
    image_size: str
    num_patches: str | None
    text: str  # "12 / 384" or "12/768", as printed
    seen_samples: str  # "128M" or "12.8+0.5", as printed
    params: str  # "21.81 + 40.44", as printed
    macs: str
    imagenet: str
    avg38: str
    dist_shift: str
    vtab: str
    retrieval: str
    bold: frozenset[str]  # which of the five metric cells the seed prints in bold
    has_link: bool

    @property
    def canonical_name(self) -> str:
        encoder = self.encoder.replace("/", "-")
        if self.schedule == "benchmark":
            return f"{encoder}-s{self.seen_samples}"
        total = sum(float(part) for part in self.seen_samples.split("+"))
        return f"{encoder}-{self.image_size}-s{total:g}B"


METRICS = ("imagenet", "avg38", "dist_shift", "vtab", "retrieval")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _plain(cell: str) -> tuple[str, bool]:
    bold = cell.startswith("**") and cell.endswith("**")
    return cell.strip("*").strip(), bold


def parse_seed(path: Path = SEED) -> list[SeedRow]:
    rows: list[SeedRow] = []
    schedule = None
    size_group = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        first = cells[0].strip("*").strip()
        if first.lower() == "image encoder":
            schedule = "long" if "num patches" in line else "benchmark"
            continue
        if set(first) <= {"-"}:
            continue
        if first.endswith("Model Variants"):
            size_group = SIZE_TITLES[first.split()[0]]
            continue
        assert schedule is not None
        if schedule == "benchmark":
            encoder, image_size, text, samples, params, macs, *metric_cells = cells[:11]
            patches = None
            has_link = len(cells) > 11 and "checkpoint" in cells[11]
        else:
            encoder, image_size, patches, text, samples, params, macs, *metric_cells = cells[:12]
            has_link = False
        plain = [_plain(cell) for cell in metric_cells]
        rows.append(
            SeedRow(
                schedule=schedule,
                size_group=size_group if schedule == "benchmark" else None,
                encoder=_plain(encoder)[0],
                image_size=image_size,
                num_patches=patches,
                text=text,
                seen_samples=samples,
                params=params,
                macs=macs,
                imagenet=plain[0][0],
                avg38=plain[1][0],
                dist_shift=plain[2][0],
                vtab=plain[3][0],
                retrieval=plain[4][0],
                bold=frozenset(m for m, (_, is_bold) in zip(METRICS, plain, strict=True) if is_bold),
                has_link=has_link,
            )
        )
    return rows


def split_pair(cell: str) -> tuple[str, str]:
    """'21.81 + 40.44' or '333.3+123.7' -> ('21.81', '40.44')."""
    image, text = re.split(r"\s*\+\s*", cell.strip())
    return image, text


def split_text(cell: str) -> tuple[str, str]:
    """'12 / 384' -> ('12', '384')."""
    depth, width = re.split(r"\s*/\s*", cell.strip())
    return depth, width
