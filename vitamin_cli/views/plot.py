"""The zoo's trade-offs as pictures: accuracy against cost (or measured speed), with the Pareto front.

Files are drawn with matplotlib (headless), terminals with plotext.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from vitamin_cli.bench.results import Speeds
from vitamin_cli.errors import UsageError
from vitamin_cli.eval.results import Accuracy
from vitamin_cli.zoo import METRICS, Model

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.lines import Line2D

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
LABELS = ("pareto", "all", "none")  # which points have their name written beside them: the front's, all, none


@dataclass(frozen=True)
class Point:
    name: str
    family: str
    series: tuple[str, ...]  # points of one series are joined by a line: one encoder across data scales
    order: int  # position along the series (seen samples)
    x: float
    y: float
    long: bool = False  # one of the long-schedule models, drawn with its own marker


def points(
    models: Sequence[Model], x: str, y: str, speeds: Speeds | None = None, accuracy: Accuracy | None = None
) -> list[Point]:
    """The models as points; with x = throughput, only those with a saved image-tower measurement; with
    `accuracy`, y is the measured column, and only models with one are drawn."""
    if x not in X_AXES:
        raise UsageError(f"unknown x axis {x!r}", hint=f"--x takes one of {', '.join(X_AXES)}")
    if y not in Y_AXES:
        raise UsageError(f"unknown y axis {y!r}", hint=f"--y takes one of {', '.join(METRICS)}")
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
        long = model.schedule == "long"
        found.append(Point(model.name, model.family, series, model.seen_samples_total, value, y_value, long))
    if not found:
        raise UsageError(
            "no model to plot: the selection is empty"
            + (" or has no saved throughput" if x == "throughput" else "")
            + (f" or has no complete measured {y}" if accuracy is not None else "")
        )
    return found


def pareto_front(pts: Sequence[Point], higher_x_is_better: bool) -> list[Point]:
    """The points no other point beats on both axes (better or equal on both, better on one), by x: the front
    `vitamin ls --pareto` lists (zoo/query.py)."""
    from vitamin_cli.zoo.query import pareto

    return sorted(pareto(pts, [(lambda p: p.x, higher_x_is_better), (lambda p: p.y, True)]), key=lambda p: p.x)


def check_label(label: str) -> None:
    if label not in LABELS:
        raise UsageError(f"unknown --label {label!r}", hint=f"--label takes one of {', '.join(LABELS)}")


def named(pts: Sequence[Point], front: Sequence[Point], label: str) -> list[Point]:
    """The points whose names are written beside them, for --label."""
    check_label(label)
    return list(pts) if label == "all" else [p for p in pts if p in set(front)] if label == "pareto" else []


def use_log_x(pts: Sequence[Point]) -> bool:
    low, high = min(p.x for p in pts), max(p.x for p in pts)
    return low > 0 and high / low > 20


MARKER_SIZE = 28.0  # scatter's s, points squared
MARKER_RADIUS = 6.0  # pixels at 120 dpi kept clear around a marker's centre (the long schedule's diamond is the larger)
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels, y up
XY = tuple[float, float]
Segment = tuple[XY, XY]


def _overlap(a: Box, b: Box, gap: float = 0.0) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _cross(p: XY, q: XY, r: XY, s: XY) -> bool:
    """Whether segments pq and rs cross (touching at an end does not count)."""

    def turn(a: XY, b: XY, c: XY) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2, d3, d4 = turn(r, s, p), turn(r, s, q), turn(p, q, r), turn(p, q, s)
    return d1 * d2 < 0 and d3 * d4 < 0


def _hits_box(segment: Segment, box: Box, gap: float = 0.0) -> bool:
    x0, y0, x1, y1 = box[0] - gap, box[1] - gap, box[2] + gap, box[3] + gap
    p, q = segment
    if any(x0 < x < x1 and y0 < y < y1 for x, y in (p, q)):
        return True
    edges = [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))]
    return any(_cross(p, q, a, b) for a, b in edges)


def _distance(c: XY, segment: Segment) -> float:
    (px, py), (qx, qy) = segment
    dx, dy = qx - px, qy - py
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, ((c[0] - px) * dx + (c[1] - py) * dy) / length))
    return float(((px + t * dx - c[0]) ** 2 + (py + t * dy - c[1]) ** 2) ** 0.5)


def _nearest(c: XY, box: Box) -> XY:
    return (min(max(c[0], box[0]), box[2]), min(max(c[1], box[1]), box[3]))


# Where a label may go, tried nearest first: away from its marker by each distance (pixels), in each direction
# (degrees, right first).
_DIRECTIONS = [k * 22.5 for k in (0, 1, 15, 2, 14, 8, 7, 9, 4, 12, 3, 13, 5, 11, 6, 10)]
_DISTANCES = (2.0, 6, 12, 20, 30, 42, 56, 72, 90, 110, 135, 165, 200, 240, 290, 350)
_GAP = 2.0  # pixels kept between a label and anything else
_CLEAR = MARKER_RADIUS + 1.0  # half the side of the square kept free around a marker
_Place = tuple[float, Box, Segment | None]  # a label's cost, box and leader


@dataclass(frozen=True)
class _Scene:
    """What the labels are placed among: the labelled markers' centres, the labels' sizes, the plot's area,
    and the boxes, markers and lines to keep clear of."""

    centres: Sequence[XY]
    sizes: Sequence[XY]
    area: Box
    obstacles: Sequence[Box]  # the given ones and every marker's
    given: Sequence[Box]  # the given ones (the legend), which the leaders keep off too
    markers: Sequence[XY]  # every marker's centre, labelled or not
    lines: Sequence[Segment]


def _marker_box(c: XY) -> Box:
    """The square kept free around a marker."""
    return (c[0] - _CLEAR, c[1] - _CLEAR, c[0] + _CLEAR, c[1] + _CLEAR)


def place_labels(
    centres: Sequence[XY],
    sizes: Sequence[XY],
    area: Box,
    obstacles: Sequence[Box],
    lines: Sequence[Segment],
    unlabelled: Sequence[XY] = (),
) -> list[tuple[Box, Segment | None]]:
    """A box per label (display pixels) and, when it sits away from its marker, a leader from the marker's
    centre to the box. No box overlaps another box, a marker (the `unlabelled` ones' too), an obstacle or a
    leader; no leader crosses another leader, a box, an obstacle or another marker. Crowded markers are placed
    first; each label takes the nearest free place, crossing as few of the plot's lines as it can."""
    markers = [*centres, *unlabelled]
    scene = _Scene(centres, sizes, area, [*obstacles, *map(_marker_box, markers)], obstacles, markers, lines)
    order = sorted(range(len(centres)), key=lambda i: (-_crowd(centres, i), i))
    boxes, leaders, stuck = _attempt(scene, order)
    for _ in range(4):  # a label left without a free place goes first next time
        if not stuck:
            break
        order = stuck + [i for i in order if i not in stuck]
        boxes, leaders, stuck = _attempt(scene, order)
    return [(boxes[i], leaders.get(i)) for i in range(len(centres))]


def _crowd(centres: Sequence[XY], i: int) -> int:
    """How many markers (itself included) sit close enough to marker i to compete for its labels' places."""
    return sum(1 for c in centres if abs(c[0] - centres[i][0]) < 90 and abs(c[1] - centres[i][1]) < 40)


def _attempt(scene: _Scene, order: Sequence[int]) -> tuple[dict[int, Box], dict[int, Segment], list[int]]:
    """The labels placed one by one in this order: their boxes, their leaders, and those left without a free
    place (placed all the same, overlapping something)."""
    boxes: dict[int, Box] = {}
    leaders: dict[int, Segment] = {}
    stuck: list[int] = []
    for i in order:
        best, fallback = _places(scene, i, list(boxes.values()), list(leaders.values()))
        _, box, leader = best or fallback
        boxes[i] = box
        if leader is not None:
            leaders[i] = leader
        if best is None:
            stuck.append(i)
    return boxes, leaders, stuck


def _places(scene: _Scene, i: int, boxes: Sequence[Box], leaders: Sequence[Segment]) -> tuple[_Place | None, _Place]:
    """Label i's cheapest free place (None when it has none), and the place it takes without one: near its
    marker and crossing few lines, whatever it overlaps."""
    c, size = scene.centres[i], scene.sizes[i]
    best: _Place | None = None
    fallback: _Place | None = None
    for rank, d in enumerate(_DISTANCES):
        if best is not None and d > best[0]:
            break
        for turn_rank, angle in enumerate(_DIRECTIONS):
            box = _label_box(c, size, d, angle)
            end = _nearest(c, box)
            leader: Segment | None = (c, end) if math.dist(c, end) > MARKER_RADIUS + 4 else None
            cost = d + turn_rank * 0.5 + 25 * sum(_hits_box(line, box) for line in scene.lines)
            if fallback is None or cost + 1000 * rank < fallback[0]:
                fallback = (cost + 1000 * rank, box, leader)
            if (best is None or cost < best[0]) and _is_free(scene, c, box, leader, boxes, leaders):
                best = (cost, box, leader)
    assert fallback is not None
    return best, fallback


def _label_box(c: XY, size: XY, d: float, angle: float) -> Box:
    """A label's box `d` pixels beyond the edge of the marker at `c`, in the direction `angle` (degrees): its
    near side or corner faces the marker."""
    w, h = size
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ax, ay = c[0] + (MARKER_RADIUS + d) * cos, c[1] + (MARKER_RADIUS + d) * sin
    bx = ax if cos > 0.38 else ax - w if cos < -0.38 else ax - w / 2
    by = ay if sin > 0.38 else ay - h if sin < -0.38 else ay - h / 2
    return (bx, by, bx + w, by + h)


def _is_free(
    scene: _Scene, c: XY, box: Box, leader: Segment | None, boxes: Sequence[Box], leaders: Sequence[Segment]
) -> bool:
    """Whether a label's box, inside the plot's area, and its leader from the marker at `c` keep clear of
    everything already there."""
    area = scene.area
    if not (area[0] + _GAP <= box[0] and box[2] <= area[2] - _GAP):
        return False
    if not (area[1] + _GAP <= box[1] and box[3] <= area[3] - _GAP):
        return False
    if any(_overlap(box, other, _GAP) for other in (*scene.obstacles, *boxes)):
        return False
    if any(_hits_box(other, box, _GAP) for other in leaders):
        return False
    return leader is None or _is_free_leader(scene, c, leader, boxes, leaders)


def _is_free_leader(scene: _Scene, c: XY, leader: Segment, boxes: Sequence[Box], leaders: Sequence[Segment]) -> bool:
    """Whether a leader from the marker at `c` keeps off the labels' boxes, the given obstacles, the other
    leaders and the other markers."""
    if any(_hits_box(leader, other, _GAP) for other in (*boxes, *scene.given)):
        return False
    if any(_cross(*leader, *other) for other in leaders):
        return False
    return not any(_distance(o, leader) < _CLEAR for o in scene.markers if math.dist(o, c) > _CLEAR)


def _step(pts: Sequence[Point], where: str) -> list[XY]:
    """The corners of a step line through the points, as matplotlib's step draws it."""
    corners: list[XY] = [(pts[0].x, pts[0].y)]
    for a, b in zip(pts, pts[1:], strict=False):
        corners += [(b.x, a.y) if where == "post" else (a.x, b.y), (b.x, b.y)]
    return corners


def figure(pts: Sequence[Point], x: str, y: str, title: str, label: str = "all") -> Figure:
    """The picture as a matplotlib figure (headless): the legend where it covers no marker and no line (outside
    the axes when no place inside is free), and the `label` choice of points named, no name on a marker, on
    another name, on the legend or across a leader line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(13, 8.5), dpi=120)
    _draw_markers(axes, pts)
    series_lines = _draw_series(axes, pts)
    front = pareto_front(pts, higher_x_is_better=x == "throughput")
    where: Literal["pre", "post"] = "pre" if x == "throughput" else "post"
    axes.step(
        [p.x for p in front], [p.y for p in front], where=where, color="black", ls="--", lw=1, alpha=0.7, zorder=1
    )
    if use_log_x(pts):
        axes.set_xscale("log")
    axes.set_xlabel(X_AXES[x])
    axes.set_ylabel(Y_AXES[y])
    axes.set_title(title)
    axes.grid(alpha=0.3)
    low, high = axes.get_ylim()
    axes.set_ylim(low, high + (high - low) * 0.05)  # room for the labels of the best models, top right
    low, high = axes.get_xlim()
    axes.set_xlim(low, high * 1.4 if axes.get_xscale() == "log" else high + (high - low) * 0.08)
    fig.tight_layout()
    drawn = [*series_lines, _step(front, where)]
    legend = _place_legend(fig, axes, _legend_handles(pts, bool(series_lines), len(front) > 1), pts, drawn)
    _draw_labels(fig, axes, named(pts, front, label), pts, drawn, legend)
    return fig


_LegendPlace = Literal[  # matplotlib's places for a legend inside the axes, tried in this order
    "upper left", "upper right", "lower right", "lower left", "center left", "center right", "upper center",
    "lower center",
]  # fmt: skip
_LEGEND_PLACES: tuple[_LegendPlace, ...] = get_args(_LegendPlace)


def _place_legend(
    fig: Figure, axes: Axes, handles: Sequence[Line2D], pts: Sequence[Point], drawn: Sequence[Sequence[XY]]
) -> Legend:
    """The legend at the first of matplotlib's places inside the axes where it covers no marker and no `drawn`
    line (corners in data coordinates), measured after the layout; else outside the axes, at their right."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    markers = [_marker_box(c) for c in _display_points(axes, pts)]
    lines = _display_lines(axes, drawn)
    for place in _LEGEND_PLACES:
        legend = axes.legend(handles=handles, fontsize=8.5, loc=place)  # replaces the one tried before
        box: Box = tuple(legend.get_window_extent(renderer).extents)  # type: ignore[assignment]
        if not any(_overlap(box, m, _GAP) for m in markers) and not any(_hits_box(s, box, _GAP) for s in lines):
            return legend
    legend = axes.legend(handles=handles, fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()  # narrows the axes to make room for it
    return legend


def _display_points(axes: Axes, pts: Sequence[Point]) -> list[XY]:
    """The points' centres in display pixels."""
    return [(float(a), float(b)) for a, b in axes.transData.transform([(p.x, p.y) for p in pts])]


def _display_lines(axes: Axes, drawn: Sequence[Sequence[XY]]) -> list[Segment]:
    """The segments of lines given by their corners in data coordinates, in display pixels."""
    segments: list[Segment] = []
    for corners in drawn:
        shown = [(float(a), float(b)) for a, b in axes.transData.transform(corners)]
        segments += zip(shown, shown[1:], strict=False)
    return segments


def _draw_markers(axes: Axes, pts: Sequence[Point]) -> None:
    """A marker per point in its family's colour: a dot, or a diamond for the long schedule."""
    for family, colour in FAMILY_COLOURS.items():
        for long in (False, True):
            mine = [p for p in pts if p.family == family and p.long == long]
            if mine:
                axes.scatter(
                    [p.x for p in mine], [p.y for p in mine], color=colour, s=MARKER_SIZE * (0.8 if long else 1),
                    marker="D" if long else "o", edgecolors="black" if long else "none", linewidths=0.6, zorder=3,
                )  # fmt: skip


def _draw_series(axes: Axes, pts: Sequence[Point]) -> list[list[XY]]:
    """A faint line through each series of more than one point, by data scale; the corners of each line, which
    the labels keep clear of."""
    series_lines: list[list[XY]] = []
    for series in sorted({p.series for p in pts}):
        line = sorted((p for p in pts if p.series == series), key=lambda p: p.order)
        if len(line) > 1:
            colour = FAMILY_COLOURS[line[0].family]
            axes.plot([p.x for p in line], [p.y for p in line], color=colour, alpha=0.45, lw=1, zorder=2)
            series_lines.append([(p.x, p.y) for p in line])
    return series_lines


def _legend_handles(pts: Sequence[Point], series: bool, front: bool) -> list[Line2D]:
    """The legend's entries for what is drawn: the families of the points, then what their markers mean, the
    series lines (when there is one) and the Pareto front (when it is a line)."""
    from matplotlib.lines import Line2D

    drawn = {p.family for p in pts}
    handles = [
        Line2D([], [], ls="none", marker="o", color=colour, label=family)
        for family, colour in FAMILY_COLOURS.items()
        if family in drawn
    ]
    if not all(p.long for p in pts):
        handles.append(
            Line2D([], [], ls="none", marker="o", color="grey", label="benchmarked (128M, 512M, 1.28B samples)")
        )
    if any(p.long for p in pts):
        handles.append(
            Line2D(
                [], [], ls="none", marker="D", color="grey", markeredgecolor="black", markeredgewidth=0.6,
                markersize=5.5, label="long schedule (12.8B to 41B samples)",
            )
        )  # fmt: skip
    if series:
        handles.append(
            Line2D([], [], color="grey", alpha=0.6, lw=1, label="one encoder and resolution across data scales")
        )
    if front:
        handles.append(Line2D([], [], color="black", ls="--", lw=1, alpha=0.7, label="Pareto front"))
    return handles


def _draw_labels(
    fig: Figure,
    axes: Axes,
    names: Sequence[Point],
    pts: Sequence[Point],
    drawn: Sequence[Sequence[XY]],
    legend: Legend,
) -> None:
    """The names of the `names` points where `place_labels` puts them, clear of every marker, the legend and the
    `drawn` lines (their corners, in data coordinates), with a leader where a name sits away from its marker."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = [axes.text(p.x, p.y, p.name, fontsize=6.5, ha="left", va="bottom", gid=f"label:{p.name}") for p in names]
    sizes = [(t.get_window_extent(renderer).width, t.get_window_extent(renderer).height) for t in texts]
    frame = axes.get_window_extent(renderer)
    placed = place_labels(
        _display_points(axes, names),
        sizes,
        (frame.x0, frame.y0, frame.x1, frame.y1),
        [tuple(legend.get_window_extent(renderer).extents)],  # type: ignore[list-item]
        _display_lines(axes, drawn),
        _display_points(axes, [p for p in pts if p not in set(names)]),
    )
    from_display = axes.transData.inverted().transform
    for p, text, (box, leader) in zip(names, texts, placed, strict=True):
        text.set_position(tuple(from_display((box[0], box[1]))))
        if leader is not None:
            (cx, cy), end = leader
            length = math.dist(leader[0], end)
            start = (cx + (end[0] - cx) * MARKER_RADIUS / length, cy + (end[1] - cy) * MARKER_RADIUS / length)
            (x0, y0), (x1, y1) = from_display([start, end])
            axes.plot([x0, x1], [y0, y1], color="grey", lw=0.5, zorder=2.5, gid=f"leader:{p.name}")


def draw_file(pts: Sequence[Point], x: str, y: str, path: Path, title: str, label: str = "all") -> None:
    """A PNG or SVG (by the file's suffix) with matplotlib, headless."""
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"cannot write {path.name}: the file must end in .png or .svg")
    fig = figure(pts, x, y, title, label)
    fig.savefig(path, metadata={"Date": None} if path.suffix.lower() == ".svg" else None)
    plt.close(fig)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def draw_terminal(
    pts: Sequence[Point], x: str, y: str, title: str, width: int, height: int, color: bool, label: str = "pareto"
) -> str:
    """The same picture as text, for a terminal on a remote machine: the families in the file's colours (the
    long-schedule models as diamonds), the Pareto front joined, the `label` choice of models named where there
    is room, the y axis's title above the y axis and the x axis's title under the x axis."""
    import plotext

    front = pareto_front(pts, higher_x_is_better=x == "throughput")
    names = named(pts, front, label)
    log_x = use_log_x(pts)
    x_low, x_high = min(p.x for p in pts), max(p.x for p in pts)
    y_low, y_high = min(p.y for p in pts), max(p.y for p in pts)

    def picture(labels: Sequence[tuple[Point, float, float]]) -> str:
        plotext.clear_figure()
        plotext.plotsize(width, height - 2)  # two lines for the axes' titles
        if not color:
            plotext.theme("clear")
        for family, colour in FAMILY_COLOURS.items():
            for long in (False, True):
                mine = [p for p in pts if p.family == family and p.long == long]
                if mine:
                    plotext.scatter(
                        [p.x for p in mine], [p.y for p in mine], color=_rgb(colour), marker="◆" if long else "dot",
                        label=None if long else family,
                    )  # fmt: skip
        plotext.plot([p.x for p in front], [p.y for p in front], label="Pareto front", color="gray")
        if log_x:
            plotext.xscale("log")
        for p, label_x, label_y in labels:
            plotext.text(p.name, label_x, label_y, color=_rgb(FAMILY_COLOURS[p.family]), alignment="left")
        plotext.title(title)
        return str(plotext.build())

    plain = re.sub(r"\x1b\[[0-9;]*m", "", picture([])).splitlines()
    top = next(i for i, line in enumerate(plain) if "┌" in line)
    bottom = next(i for i, line in enumerate(plain) if "└" in line)
    left, right = plain[top].index("┌") + 1, plain[top].index("┐") - 1
    legend = len(FAMILY_COLOURS) + 1  # plotext's legend: the top left rows
    labels = _terminal_labels(
        pts, names, log_x, (x_low, x_high), (y_low, y_high), (left, top + 1, right, bottom - 1), legend
    )
    lines = picture(labels).splitlines()
    if not color:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
    y_title = "↑ " + Y_AXES[y]
    x_title = (X_AXES[x] + " →").center(right - left + 1)
    return "\n".join([*lines[:top], y_title, *lines[top:], " " * left + x_title.rstrip()]) + "\n"


def _terminal_labels(
    pts: Sequence[Point],
    names: Sequence[Point],
    log_x: bool,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    cells: tuple[int, int, int, int],
    legend_rows: int,
) -> list[tuple[Point, float, float]]:
    """Where each of the `names` models' name goes, in data coordinates: beside its point, or a few rows up or
    down, on no point and no other name; a name without such a place is left out."""
    left, top, right, bottom = cells
    width, height = right - left, bottom - top

    def scale(value: float) -> float:
        return math.log10(value) if log_x else value

    def unscale(value: float) -> float:
        return float(10**value) if log_x else value

    x0, x1 = scale(x_range[0]), scale(x_range[1])
    y0, y1 = y_range

    def cell(p: Point) -> tuple[int, int]:
        col = left + round((scale(p.x) - x0) / ((x1 - x0) or 1) * width)
        row = top + round((y1 - p.y) / ((y1 - y0) or 1) * height)
        return col, row

    taken = {cell(p) for p in pts}
    taken |= {(c, r) for c in range(left, left + 18) for r in range(top, top + legend_rows)}
    placed = []
    for p in sorted(names, key=lambda p: -p.y):
        col, row = cell(p)
        for shift in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6):
            spot = None
            for start in (col + 2, col - 1 - len(p.name)):
                r = row + shift
                span = {(c, r) for c in range(start - 1, start + len(p.name) + 1)}
                if start >= left and start + len(p.name) <= right and top <= r <= bottom and not span & taken:
                    spot = (start, r)
                    break
            if spot is not None:
                start, r = spot
                taken |= {(c, r) for c in range(start, start + len(p.name))}
                label_x = unscale(x0 + (start - left) / (width or 1) * (x1 - x0))
                label_y = y1 - (r - top) / (height or 1) * (y1 - y0)
                placed.append((p, label_x, label_y))
                break
    return placed
