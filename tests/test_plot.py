"""`vitamin plot` and `vitamin compare`: files and terminal pictures of the real zoo, the Pareto front, the winners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Run

from vitamin_cli.models.bench_results import Speeds
from vitamin_cli.views import plot
from vitamin_cli.views.compare import compare
from vitamin_cli.zoo import get


def point(name: str, x: float, y: float) -> plot.Point:
    return plot.Point(name, "vit", (name,), 0, x, y)


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


def test_the_terminal_picture(run: Run) -> None:
    result = run("plot", "--size", "L", "--y", "avg38")
    assert result.exit_code == 0, result.stderr
    assert "22 models of the ViTamin zoo" in result.stdout
    assert "average over 38 datasets" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour off a terminal


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
