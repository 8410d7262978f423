"""`vitamin plot` and `vitamin compare`: files and terminal pictures of the real zoo, the Pareto front, the winners."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Run

from vitamin_cli.bench.results import Speeds, read_bench
from vitamin_cli.views import plot
from vitamin_cli.views.compare import compare
from vitamin_cli.zoo import get, load

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox


def point(name: str, x: float, y: float) -> plot.Point:
    return plot.Point(name, "vit", (name,), 0, x, y)


def marker_extents(figure: Figure) -> list[tuple[tuple[float, float], float]]:
    """Each marker's centre and radius in display pixels, as matplotlib draws it."""
    axes = figure.axes[0]
    markers = []
    for collection in axes.collections:
        (size_pt2,) = set(collection.get_sizes())
        unit = collection.get_paths()[0].get_extents()
        radius = max(abs(unit.x0), abs(unit.x1), abs(unit.y0), abs(unit.y1)) * math.sqrt(size_pt2) * figure.dpi / 72
        markers += [(tuple(c), radius) for c in axes.transData.transform(collection.get_offsets())]
    return markers


def covers(box: Bbox, centre: tuple[float, float], radius: float) -> bool:
    (cx, cy) = centre
    return box.x0 < cx + radius and cx - radius < box.x1 and box.y0 < cy + radius and cy - radius < box.y1


def test_pareto_front_of_a_known_set() -> None:
    pts = [
        point("cheap-weak", 1, 50),
        point("cheap-weaker", 1, 40),  # same cost, worse
        point("mid", 5, 60),
        point("mid-dominated", 6, 55),  # costs more than mid and is worse
        point("dear-best", 50, 80),
        point("dear-tie", 50, 80),  # a tie is on the front too
        point("dearer-same", 70, 80),  # costs more for the same
    ]
    front = plot.pareto_front(pts, higher_x_is_better=False)
    assert [p.name for p in front] == ["cheap-weak", "mid", "dear-best", "dear-tie"]
    # with throughput on x, more is better
    fast = plot.pareto_front(
        [point("slow-good", 100, 80), point("fast-ok", 1000, 60), point("slow-bad", 100, 50)], True
    )
    assert [p.name for p in fast] == ["slow-good", "fast-ok"]


@pytest.mark.slow  # the legend and label tests draw the zoo too; these write whole files
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<?xml")])
def test_a_file_of_the_whole_zoo(run: Run, tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"zoo{suffix}"
    result = run("plot", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    data = out.read_bytes()
    assert data.startswith(magic)
    assert 20_000 < len(data) < 5_000_000
    if suffix == ".png":
        from PIL import Image

        with Image.open(out) as image:
            assert image.size == (1560, 1020)
    else:
        text = data.decode()
        assert "ViTamin-XL-384-s41B" in text and "Pareto front" in text


@pytest.mark.parametrize(
    ("x", "y", "size"), [("macs", "imagenet", None), ("params", "avg38", None), ("macs", "imagenet", "L")]
)
def test_labels_keep_clear_of_markers_labels_and_leaders(x: str, y: str, size: str | None) -> None:
    """Measured by matplotlib itself after drawing, in display pixels, with no tolerance: no two labels overlap,
    no label overlaps a marker's extent (so none holds a marker's centre), no label is crossed by another's
    leader line, no two leaders cross, and every label is inside the axes and off the legend."""
    import matplotlib.pyplot as plt
    from matplotlib.path import Path as Line

    models = load().select(size=[size] if size else None)
    pts = plot.points(models, x, y)
    figure = plot.figure(pts, x, y, "test")
    try:
        axes = figure.axes[0]
        renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
        labels = {str(t.get_gid()).removeprefix("label:"): t.get_window_extent(renderer) for t in axes.texts}
        assert sorted(labels) == sorted(p.name for p in pts)
        markers = marker_extents(figure)
        assert len(markers) == len(pts)
        for (a, box), (b, other) in combinations(labels.items(), 2):
            assert not box.overlaps(other), (a, b)
        for name, box in labels.items():
            for centre, radius in markers:
                assert not box.contains(*centre), name
                assert not covers(box, centre, radius), name
        frame = axes.get_window_extent(renderer)
        legend = axes.get_legend().get_window_extent(renderer)
        for name, box in labels.items():
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, name
            assert not box.overlaps(legend), name
        leaders = {
            str(line.get_gid()).removeprefix("leader:"): Line(axes.transData.transform(line.get_xydata()))
            for line in axes.lines
            if str(line.get_gid()).startswith("leader:")
        }
        assert leaders  # the crowded top right needs some
        for name, leader in leaders.items():
            for other, box in labels.items():
                if other != name:
                    assert not leader.intersects_bbox(box, filled=True), (name, other)
        for (a, one), (b, two) in combinations(leaders.items(), 2):
            assert not one.intersects_path(two), (a, b)
    finally:
        plt.close(figure)


def test_the_legend_explains_lines_and_markers() -> None:
    import matplotlib.pyplot as plt

    figure = plot.figure(plot.points(load().select(), "macs", "imagenet"), "macs", "imagenet", "test")
    try:
        legend = figure.axes[0].get_legend()
        texts = [t.get_text() for t in legend.get_texts()]
        assert texts[:4] == list(plot.FAMILY_COLOURS)
        assert "one encoder and resolution across data scales" in texts
        assert "Pareto front" in texts
        assert any(t.startswith("benchmarked") for t in texts) and any(t.startswith("long schedule") for t in texts)
        markers = {t.get_text(): h.get_marker() for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}
        assert markers["benchmarked (128M, 512M, 1.28B samples)"] != markers["long schedule (12.8B to 41B samples)"]
        shapes = {c.get_paths()[0].vertices.shape for c in figure.axes[0].collections}
        assert len(shapes) == 2  # the long-schedule diamonds are not the benchmarked circles
    finally:
        plt.close(figure)


# Three pictures, drawn once for the tests below: with throughput on x as a bench file gives it (the slow and
# accurate models top left, where the legend used to go), every model named; a grid of points with a line
# through each column, leaving the legend no free place inside the axes, none named; and two families of one
# size, the Pareto front named.
SCENES = ("throughput", "crowded", "two-families")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Figure, list[plot.Point], str]]]:
    import matplotlib.pyplot as plt

    drawn: dict[str, tuple[Figure, list[plot.Point], str]] = {}

    def draw(scene: str) -> tuple[Figure, list[plot.Point], str]:
        if scene == "throughput":
            models = load().select(size="L")
            saved = tmp_path_factory.mktemp("bench") / "bench.json"
            rows = [{"model": m.name, "tower": "image", "throughput": 2e5 / m.macs_image_g} for m in models]
            saved.write_text(json.dumps({"environment": {}, "results": rows}))
            pts, x, label = plot.points(models, "throughput", "imagenet", read_bench(saved)), "throughput", "all"
        elif scene == "crowded":
            families = list(plot.FAMILY_COLOURS)
            pts = [
                plot.Point(f"p{i}-{j}", families[i % 4], (str(i),), j, 1 + i, 50 + 2 * j, long=j % 5 == 0)
                for i in range(12)
                for j in range(12)
            ]
            x, label = "macs", "none"
        else:
            pts, x, label = (
                plot.points(load().select(family=["vit", "vitamin"], size="B"), "macs", "imagenet"),
                "macs",
                "pareto",
            )
        return plot.figure(pts, x, "imagenet", scene, label=label), pts, label

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, scene: str) -> tuple[Figure, list[plot.Point], str]:
            self[scene] = draw(scene)
            return self[scene]

    drawn = Lazy()
    yield drawn
    for figure, _, _ in drawn.values():
        plt.close(figure)


@pytest.mark.parametrize("scene", SCENES)
def test_the_legend_covers_no_marker_and_no_line(scenes: dict, scene: str) -> None:  # type: ignore[type-arg]
    """Measured by matplotlib after drawing: the legend overlaps no marker's extent and no drawn line (the
    series, the Pareto front, the leaders), and stays inside the figure; with no free place inside the axes, it
    sits to their right."""
    figure, pts, _ = scenes[scene]
    axes = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    legend = axes.get_legend().get_window_extent(renderer)
    markers = marker_extents(figure)
    assert len(markers) == len(pts)
    for centre, radius in markers:
        assert not covers(legend, centre, radius), centre
    for line in axes.lines:
        drawn = line.get_transform().transform_path(line.get_path())
        assert not drawn.intersects_bbox(legend, filled=True), line.get_gid() or line.get_label()
    frame = figure.bbox
    assert frame.x0 <= legend.x0 and legend.x1 <= frame.x1 and frame.y0 <= legend.y0 and legend.y1 <= frame.y1
    outside = legend.x0 >= axes.get_window_extent(renderer).x1
    assert outside == (scene == "crowded")


@pytest.mark.parametrize("scene", SCENES)
def test_the_legend_lists_what_is_drawn(scenes: dict, scene: str) -> None:  # type: ignore[type-arg]
    figure, pts, _ = scenes[scene]
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    families = [f for f in plot.FAMILY_COLOURS if any(p.family == f for p in pts)]
    assert texts[: len(families)] == families
    assert not set(texts[len(families) :]) & set(plot.FAMILY_COLOURS)
    assert any(t.startswith("long schedule") for t in texts) == any(p.long for p in pts)
    assert any(t.startswith("benchmarked") for t in texts) == (not all(p.long for p in pts))
    front = plot.pareto_front(pts, higher_x_is_better=scene == "throughput")
    assert ("Pareto front" in texts) == (len(front) > 1)  # the crowded grid's front is one point: no line
    assert ("one encoder and resolution across data scales" in texts) == (len({p.series for p in pts}) < len(pts))


@pytest.mark.parametrize("scene", SCENES)
def test_label_names_the_chosen_points(scenes: dict, scene: str) -> None:  # type: ignore[type-arg]
    """--label all names every point, pareto the front's, none no point; a name covers no marker, named or not."""
    figure, pts, label = scenes[scene]
    axes = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    names = sorted(str(t.get_gid()).removeprefix("label:") for t in axes.texts)
    front = plot.pareto_front(pts, higher_x_is_better=scene == "throughput")
    assert names == sorted(p.name for p in {"all": pts, "pareto": front, "none": []}[label])
    for text in axes.texts:
        box = text.get_window_extent(renderer)
        assert not any(covers(box, centre, radius) for centre, radius in marker_extents(figure)), text.get_text()


def test_label_in_the_terminal() -> None:
    pts = plot.points(load().select(size="L", family="vitamin"), "macs", "imagenet")
    front = plot.pareto_front(pts, higher_x_is_better=False)
    assert 1 < len(front) < len(pts)
    shown = {
        label: plot.draw_terminal(pts, "macs", "imagenet", "t", width=150, height=40, color=False, label=label)
        for label in plot.LABELS
    }
    assert not any(p.name in shown["none"] for p in pts)
    assert all(p.name in shown["pareto"] for p in front)
    assert not any(p.name in shown["pareto"] for p in pts if p not in front)
    assert all(p.name in shown["all"] for p in pts)


def test_the_terminal_picture(run: Run) -> None:
    result = run("plot", "--size", "L", "--y", "avg38")
    assert result.exit_code == 0, result.stderr
    assert "22 models of the ViTamin zoo" in result.stdout
    assert "average over 38 datasets" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour off a terminal


def test_the_terminal_picture_names_the_front_and_titles_its_axes() -> None:
    pts = plot.points(load().select(), "macs", "imagenet")
    lines = plot.draw_terminal(pts, "macs", "imagenet", "61 models", width=150, height=40, color=False).splitlines()
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    assert lines[top - 1] == "↑ " + plot.Y_AXES["imagenet"]  # above the y axis, at its left
    assert lines[-1].strip() == plot.X_AXES["macs"] + " →"  # under the x axis and its ticks
    assert bottom < len(lines) - 1 and lines[-1].startswith(" " * 10)  # centred under the axis
    inside = "\n".join(lines[top : bottom + 1])
    assert plot.X_AXES["macs"] not in inside and plot.Y_AXES["imagenet"] not in inside
    for p in plot.pareto_front(pts, higher_x_is_better=False):
        assert p.name in inside, p.name
    coloured = plot.draw_terminal(pts, "macs", "imagenet", "61 models", width=150, height=40, color=True)
    for colour in plot.FAMILY_COLOURS.values():
        red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert f"38;2;{red};{green};{blue}m" in coloured, colour  # the PNG's colours


def test_throughput_axis_needs_saved_results(run: Run, tmp_path: Path) -> None:
    assert run("plot", "--x", "throughput").exit_code == 2
    saved = tmp_path / "bench.json"
    rows = [
        {"model": "ViTamin-S-s1.28B", "tower": "image", "throughput": 6453.0},
        {"model": "ViTamin-B-s1.28B", "tower": "image", "throughput": 3556.0},
    ]
    saved.write_text(json.dumps({"environment": {}, "results": rows}))
    result = run("plot", "--x", "throughput", "--bench", str(saved), "-o", str(tmp_path / "speed.png"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "speed.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--x", "latency"], "unknown x axis"),
        (["--label", "some"], "unknown --label"),
        (["--y", "mmlu"], "unknown y axis"),
        (["--size", "XL", "--resolution", "224"], "the selection is empty"),
        (["-o", "zoo.jpg"], "must end in .png or .svg"),
        (["-o", "no/such/folder/zoo.png"], "create the folder first"),
        (["-o", "a-file/zoo.png"], "a-file"),
    ],
)
def test_bad_plot_input(
    run: Run, args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("a file where a folder should be\n")
    result = run("plot", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    if "axis" in message or "label" in message:
        assert "\nhint: --" in result.stderr  # the values the option takes


def test_compare_marks_the_best_of_each_row() -> None:
    models = [get("ViTamin-L"), get("ViT-L-14-s1.28B"), get("ConvNeXt-XL-s1.28B")]
    rows = {row.key: row for row in compare(models)}
    assert rows["imagenet"].best == ["ViTamin-L-224-s12.8B"]
    assert rows["params_image_m"].best == ["ViT-L-14-s1.28B"]  # fewest params
    assert rows["macs_image_g"].best == ["ViTamin-L-224-s12.8B"]  # fewest MACs
    assert rows["params_text_m"].best == ["ViT-L-14-s1.28B", "ConvNeXt-XL-s1.28B"]  # a tie: both marked
    assert rows["image_size"].best == []  # nothing to win
    assert "throughput_image" not in rows
    speeds = Speeds({"vit-l-14-s1.28b": {"image": 2673.0}, "vitamin-l-224-s12.8b": {"image": 1823.0}})
    rows = {row.key: row for row in compare(models, speeds)}
    assert rows["throughput_image"].values == [1823.0, 2673.0, None]
    assert rows["throughput_image"].best == ["ViT-L-14-s1.28B"]


def test_compare_cli(run: Run) -> None:
    result = run("compare", "ViTamin-S", "ViT-S-16-s1.28B", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["models"] == ["ViTamin-S-s1.28B", "ViT-S-16-s1.28B"]
    row = next(r for r in data["rows"] if r["field"] == "imagenet")
    assert row == {"field": "imagenet", "label": "ImageNet (%)", "values": [62.2, 59.8], "best": ["ViTamin-S-s1.28B"]}
    text = run("compare", "ViTamin-S", "ViT-S-16-s1.28B").stdout
    assert "62.2 *" in text
    assert run("compare", "ViTamin-S").exit_code == 2
    assert run("compare", "ViTamin-S", "vitamin-s-s1.28b").exit_code == 2  # the same model twice
    assert run("compare", "ViTamin-S", "nope").exit_code == 2
