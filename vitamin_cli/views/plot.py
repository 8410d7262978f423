"""The zoo's trade-offs as pictures: accuracy against cost (or measured speed), with the Pareto front.

Files are drawn with matplotlib (headless), terminals with plotext.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vitamin_cli.errors import UsageError
from vitamin_cli.eval.results import Accuracy
from vitamin_cli.models.bench_results import Speeds
from vitamin_cli.zoo import METRICS, Model

X_AXES = {
    "macs": "image MACs per image (G, the paper's convention)",
    "params": "image tower parameters (M)",
    "throughput": "image tower throughput (images/s, measured)",
}
Y_AXES = {
    "imagenet": "ImageNet zero-shot accuracy (%)",
    "avg38": "average over 38 datasets (%)",
    "dist_shift": "ImageNet distribution shift (%)",
    "vtab": "VTAB (%)",
    "retrieval": "retrieval (%)",
}
FAMILY_COLOURS = {"vit": "#1f77b4", "convnext": "#2ca02c", "coatnet": "#9467bd", "vitamin": "#d62728"}


@dataclass(frozen=True)
class Point:
    name: str
    family: str
    series: tuple[str, ...]  # points of one series are joined by a line: one encoder across data scales
    order: int  # position along the series (seen samples)
    x: float
    y: float


def points(
    models: Sequence[Model], x: str, y: str, speeds: Speeds | None = None, accuracy: Accuracy | None = None
) -> list[Point]:
    """The models as points; with x = throughput, only those with a saved image-tower measurement; with
    `accuracy`, y is the measured column, and only models with one are drawn."""
    if x not in X_AXES:
        raise UsageError(f"unknown x axis {x!r}; choose one of {', '.join(X_AXES)}")
    if y not in Y_AXES:
        raise UsageError(f"unknown y axis {y!r}; choose one of {', '.join(METRICS)}")
    if x == "throughput" and speeds is None:
        raise UsageError("--x throughput needs --bench FILE, saved by `vitamin bench -o FILE`")
    found = []
    for model in models:
        if x == "throughput":
            value = speeds.get(model, "image") if speeds is not None else None
            if value is None:
                continue
        else:
            value = model.macs_image_g if x == "macs" else model.params_image_m
        y_value = getattr(model, y) if accuracy is None else accuracy.get(model, y)
        if y_value is None:
            continue
        series = (model.schedule, model.encoder, str(model.image_size))
        found.append(Point(model.name, model.family, series, model.seen_samples_total, value, y_value))
    if not found:
        raise UsageError(
            "no model to plot: the selection is empty"
            + (" or has no saved throughput" if x == "throughput" else "")
            + (f" or has no complete measured {y}" if accuracy is not None else "")
        )
    return found


def pareto_front(pts: Sequence[Point], higher_x_is_better: bool) -> list[Point]:
    """The points no other point beats on both axes (better or equal on both, better on one), by x."""
    sign = -1 if higher_x_is_better else 1

    def dominates(a: Point, b: Point) -> bool:
        return sign * a.x <= sign * b.x and a.y >= b.y and (sign * a.x < sign * b.x or a.y > b.y)

    front = [p for p in pts if not any(dominates(q, p) for q in pts)]
    return sorted(front, key=lambda p: p.x)


def use_log_x(pts: Sequence[Point]) -> bool:
    low, high = min(p.x for p in pts), max(p.x for p in pts)
    return low > 0 and high / low > 20


def draw_file(pts: Sequence[Point], x: str, y: str, path: Path, title: str) -> None:
    """A PNG or SVG (by the file's suffix) with matplotlib, headless."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from adjustText import adjust_text

    if path.suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"cannot write {path.name}: the file must end in .png or .svg")
    figure, axes = plt.subplots(figsize=(13, 8.5), dpi=120)
    for family, colour in FAMILY_COLOURS.items():
        mine = [p for p in pts if p.family == family]
        if mine:
            axes.scatter([p.x for p in mine], [p.y for p in mine], color=colour, s=28, zorder=3, label=family)
    for series in {p.series for p in pts}:
        line = sorted((p for p in pts if p.series == series), key=lambda p: p.order)
        if len(line) > 1:
            colour = FAMILY_COLOURS[line[0].family]
            axes.plot([p.x for p in line], [p.y for p in line], color=colour, alpha=0.45, lw=1, zorder=2)
    front = pareto_front(pts, higher_x_is_better=x == "throughput")
    axes.step(
        [p.x for p in front], [p.y for p in front], where="pre" if x == "throughput" else "post",
        color="black", ls="--", lw=1, alpha=0.7, zorder=1, label="Pareto front",
    )  # fmt: skip
    if use_log_x(pts):
        axes.set_xscale("log")
    axes.set_xlabel(X_AXES[x])
    axes.set_ylabel(Y_AXES[y])
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    labels = [axes.text(p.x, p.y, p.name, fontsize=6.5) for p in pts]
    adjust_text(labels, ax=axes, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.4})
    figure.tight_layout()
    figure.savefig(path, metadata={"Date": None} if path.suffix.lower() == ".svg" else None)
    plt.close(figure)


def draw_terminal(pts: Sequence[Point], x: str, y: str, title: str, width: int, height: int, color: bool) -> str:
    """The same picture as text, for a terminal on a remote machine."""
    import plotext

    plotext.clear_figure()
    plotext.plotsize(width, height)
    if not color:
        plotext.theme("clear")
    for family in FAMILY_COLOURS:
        mine = [p for p in pts if p.family == family]
        if mine:
            plotext.scatter([p.x for p in mine], [p.y for p in mine], label=family, marker="dot")
    front = pareto_front(pts, higher_x_is_better=x == "throughput")
    plotext.plot([p.x for p in front], [p.y for p in front], label="Pareto front")
    if use_log_x(pts):
        plotext.xscale("log")
    plotext.title(title)
    plotext.xlabel(X_AXES[x])
    plotext.ylabel(Y_AXES[y])
    text = str(plotext.build())
    return text if color else re.sub(r"\x1b\[[0-9;]*m", "", text)
