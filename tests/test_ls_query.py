"""Budget queries and records that join: `--where`, `--sort` and `--pareto` by field names and aliases
(vitamin_cli/zoo/fields.py), and `ls --json/--csv` with what --bench, --eval and --audit measured, and where
each model's checkpoint is."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer.main
from conftest import Run, put_in_cache
from test_docs import DOCS, table_keys
from test_fit import LARGE, bench_file, eval_file

from vitamin_cli import cli, zoo
from vitamin_cli.zoo import fields
from vitamin_cli.zoo.query import pareto


def names(run: Run, *argv: str) -> list[str]:
    result = run("ls", *argv, "--json")
    assert result.exit_code == 0, result.stderr
    return [r["name"] for r in json.loads(result.stdout)]


def test_the_most_accurate_model_under_100_gmacs_is_one_command(run: Run) -> None:
    shown = run("ls", "--where", "macs_image_g < 100", "--sort", "imagenet", "--reverse")
    assert shown.exit_code == 0, shown.stderr
    first = [line.split()[0] for line in shown.stdout.splitlines()[3:]][0]
    assert first == "ViTamin-L2-256-s13.3B"
    expected = sorted((m for m in zoo.load().models if m.macs_image_g < 100), key=lambda m: -m.imagenet)
    assert names(run, "--where", "macs < 100", "--sort", "imagenet", "-r") == [m.name for m in expected]


@pytest.mark.parametrize(
    ("expr", "keep"),
    [
        ("macs < 5", lambda m: m.macs_image_g < 5),
        ("MACS_TOTAL >= 100 or params < 30", lambda m: m.macs_image_g + m.macs_text_g >= 100 or m.params_image_m < 30),
        ("samples > 1.28B and not res == 224", lambda m: m.seen_samples_total > 1.28e9 and m.image_size != 224),
        (
            "10 < macs <= 80 and (imagenet > 70 or shift > 60)",
            lambda m: 10 < m.macs_image_g <= 80 and (m.imagenet > 70 or m.dist_shift > 60),
        ),  # fmt: skip
        ("patches > 200", lambda m: m.num_patches is not None and m.num_patches > 200),
        ("not patches > 200", lambda m: not (m.num_patches is not None and m.num_patches > 200)),
    ],
)
def test_where_selects_as_the_fields_say(run: Run, expr: str, keep: object) -> None:
    assert names(run, "--where", expr) == [m.name for m in zoo.load().models if keep(m)]  # type: ignore[operator]


def test_where_combines_with_the_other_filters(run: Run) -> None:
    assert names(run, "ViTamin*", "--size", "L", "--where", "imagenet > 80") == [
        m.name for m in zoo.load().models if m.family == "vitamin" and m.size == "L" and m.imagenet > 80
    ]


def test_a_bad_expression_points_at_its_token_and_exits_2(run: Run) -> None:
    wrong = run("ls", "--where", "macs < 100 and imagenett > 80")
    assert wrong.exit_code == 2 and wrong.stdout == ""
    lines = wrong.stderr.splitlines()
    assert lines[0] == "error: --where: unknown name 'imagenett'"
    assert lines[1] == "  macs < 100 and imagenett > 80" and lines[2] == "                 ^^^^^^^^^"
    assert lines[3].startswith("hint: did you mean imagenet")
    assert "Traceback" not in wrong.stderr


def test_a_measured_field_needs_its_option(run: Run, tmp_path: Path) -> None:
    refused = run("ls", "--where", "throughput > 100")
    assert refused.exit_code == 2 and "needs --bench FILE" in refused.stderr
    bench = str(bench_file(tmp_path / "b.jsonl", ["ViTamin-L-224-s12.8B", "ViT-L-14-s1.28B"]))
    assert names(run, "--bench", bench, "--where", "throughput > 1000") == ["ViT-L-14-s1.28B", "ViTamin-L-224-s12.8B"]
    assert names(run, "--bench", bench, "--where", "images_per_s > 1234.5") == ["ViT-L-14-s1.28B"]
    assert names(run, "--bench", bench, "--sort", "texts_s", "-r")[:2] == ["ViT-L-14-s1.28B", "ViTamin-L-224-s12.8B"]


def test_every_command_that_selects_models_takes_where() -> None:
    app = typer.main.get_command(cli.build_app())
    assert isinstance(app, typer.core.TyperGroup)
    for name in ("ls", "pull", "bench", "eval", "plot", "audit"):
        assert "--where" in [o for p in app.commands[name].params for o in p.opts], name


def test_pull_selects_by_where_too(run: Run) -> None:
    result = run("pull", "--where", "macs <", "--json")
    assert result.exit_code == 2 and "--where" in result.stderr


def test_sort_takes_the_short_names(run: Run) -> None:
    assert names(run, "--sort", "macs") == [
        m.name for m in sorted(zoo.load().models, key=lambda m: m.macs_image_g)
    ]  # stable: table order among equals
    assert (
        names(run, "--sort", "macs_total", "-r")[0]
        == max(zoo.load().models, key=lambda m: m.macs_image_g + m.macs_text_g).name
    )


def test_pareto_lists_the_front(run: Run) -> None:
    models = zoo.load().models
    front = [
        m
        for m in models
        if not any(
            o.macs_image_g <= m.macs_image_g
            and o.imagenet >= m.imagenet
            and (o.macs_image_g < m.macs_image_g or o.imagenet > m.imagenet)
            for o in models
        )
    ]
    assert names(run, "--pareto", "macs,imagenet") == [m.name for m in sorted(front, key=lambda m: m.macs_image_g)]
    shown = run("ls", "--pareto", "macs,imagenet")
    assert "the Pareto front on macs_image_g (lower is better) and imagenet (higher is better)" in shown.stderr
    bad = run("ls", "--pareto", "macs,text_depth")
    assert bad.exit_code == 2 and "neither a cost nor a score" in bad.stderr
    assert run("ls", "--pareto", "macs").exit_code == 2


def test_pareto_is_the_one_plot_draws() -> None:
    from vitamin_cli.views.plot import Point, pareto_front

    pts = [Point(m.name, m.family, (m.encoder,), 0, m.macs_image_g, m.imagenet) for m in zoo.load().models]
    assert [p.name for p in pareto_front(pts, higher_x_is_better=False)] == sorted(
        (p.name for p in pareto(pts, [(lambda p: p.x, False), (lambda p: p.y, True)])),
        key=lambda n: next(p.x for p in pts if p.name == n),
    )


def test_the_fields_table_is_documented() -> None:
    page = (DOCS / "cli.md").read_text().split("## Fields", 1)[1]
    for f in fields.FIELDS:
        assert f"`{f.name}`" in page and all(f"`{a}`" in page for a in f.aliases)


# ---------------------------------------------------------------------------------------------------
# Records that join


def test_records_say_whether_each_model_is_pulled_and_where(run: Run) -> None:
    w = zoo.get("ViTamin-L-224-s12.8B").weights
    assert w is not None
    path = put_in_cache("ViTamin-L-224-s12.8B", w.repo, w.filename, b"weights", commit="f" * 40)
    records = {r["name"]: r for r in json.loads(run("ls", "--json").stdout)}
    assert records["ViTamin-L-224-s12.8B"]["pulled"] is True
    assert Path(records["ViTamin-L-224-s12.8B"]["checkpoint"]) == path and path.read_bytes() == b"weights"
    assert [n for n, r in records.items() if r["pulled"]] == ["ViTamin-L-224-s12.8B"]
    assert all(r["checkpoint"] is None for n, r in records.items() if n != "ViTamin-L-224-s12.8B")
    rows = list(csv.DictReader(io.StringIO(run("ls", "--csv").stdout)))
    assert {r["name"]: r["pulled"] for r in rows}["ViTamin-L-224-s12.8B"] == "True"
    shown = json.loads(run("show", "ViTamin-L-224-s12.8B", "--json").stdout)
    assert shown["pulled"] is True and Path(shown["checkpoint"]) == path
    assert f"pulled        {path}" in run("show", "ViTamin-L-224-s12.8B").stdout
    assert "`vitamin pull ViTamin-S-s1.28B` fetches it" in run("show", "ViTamin-S").stdout


def test_records_join_what_was_measured(run: Run, tmp_path: Path) -> None:
    bench = str(bench_file(tmp_path / "b.jsonl", LARGE))
    evaluated = str(eval_file(tmp_path / "e.jsonl", LARGE[:2]))
    result = run("ls", "--size", "L", "--bench", bench, "--eval", evaluated, "--json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    page = (DOCS / "json.md").read_text()
    first = records[0]
    assert list(first["bench"]) == table_keys(page, "`bench` (`--bench FILE [--gpu NAME]`):")
    assert first["bench"]["device"] == "NVIDIA H200" and first["bench"]["settings"].startswith("bf16, batch 256")
    assert first["bench"]["images_per_s"] == 1234.5 and first["bench"]["texts_per_s"] == 23456.7
    assert list(first["eval"]) == table_keys(page, "`eval` (`--eval FILE`):")
    assert first["eval"]["columns"] == {"imagenet": 81.25} and first["eval"]["identity"]["dtype"] == "bf16"
    assert records[2]["eval"] is None  # nothing measured of it
    rows = list(
        csv.DictReader(io.StringIO(run("ls", "--size", "L", "--bench", bench, "--eval", evaluated, "--csv").stdout))
    )
    assert rows[0]["bench_images_per_s"] == "1234.5" and rows[0]["eval_columns_imagenet"] == "81.25"
    assert rows[2]["eval_columns_imagenet"] == ""


def test_ls_start_up_imports_nothing_more_for_a_plain_listing(run: Run) -> None:
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import atexit, sys; from vitamin_cli import cli; atexit.register(lambda: print(sorted("
         "m for m in sys.modules if m.startswith(('vitamin_cli.zoo.query', 'vitamin_cli.checkpoints', 'rich', "
         "'huggingface_hub'))), file=sys.stderr)); cli.main(['ls'])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert loaded.stderr.strip() == "[]"


def test_a_scaled_number_is_read_in_the_fields_unit(run: Run) -> None:
    assert names(run, "--where", "macs < 10G") == names(run, "--where", "macs < 10")
    assert names(run, "--where", "params_total < 0.1B") == names(run, "--where", "params_total < 100")
    assert names(run, "--where", "samples > 1.28B") == [
        m.name for m in zoo.load().models if m.seen_samples_total > 1.28e9
    ]
    refused = run("ls", "--where", "imagenet > 80K")
    assert refused.exit_code == 2 and "imagenet takes no K/M/B/G/T scale" in refused.stderr
    assert "unknown name 'mäcs'" in run("ls", "--where", "mäcs < 5").stderr


def test_the_fields_a_listing_is_sorted_or_chosen_by_stay_shown(run: Run, terminal: Callable[[int], None]) -> None:
    terminal(60)
    for argv, title in (
        (["--sort", "vtab", "-r"], "VTAB"),
        (["--pareto", "macs,retr"], "Retr."),
        (["--where", "shift > 70"], "Shift"),
    ):
        shown = run("ls", *argv).stdout
        assert title in shown.splitlines()[1].split(), shown
        assert max(len(line) for line in shown.splitlines()) <= 60


def test_pareto_names_each_field_once_and_counts_in_words(run: Run) -> None:
    twice = run("ls", "--pareto", "macs,macs_image_g")
    assert twice.exit_code == 2 and "names macs_image_g twice" in twice.stderr
    one = run("ls", "--where", "imagenet > 82.8", "--pareto", "macs,imagenet")
    assert one.stderr.rstrip().endswith(": 1 model")


def test_plot_reads_where_before_any_file(run: Run, tmp_path: Path) -> None:
    wrong = run("plot", "--where", "macs <", "--bench", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "p.png"))
    assert wrong.exit_code == 2 and "--where" in wrong.stderr and "none.jsonl" not in wrong.stderr
    measured = run("plot", "--where", "throughput > 1", "-o", str(tmp_path / "p.png"))
    assert measured.exit_code == 2 and "`vitamin ls` and `vitamin plot` take it" in measured.stderr
