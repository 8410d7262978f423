"""What a user sees first: output that survives a pipe, errors said once and plainly, numbers that keep their
digits, winners that follow the full values, and the same audit for one model as for the zoo."""

from __future__ import annotations

import io

import pytest
from conftest import Run

# ---------------------------------------------------------------------------------------------------
# 1. Tables in a pipe are not wrapped; on a terminal they fold between words


def test_a_table_in_a_pipe_keeps_its_natural_width(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    result = run("compare", "ViTamin-L", "ViT-L-14-s1.28B", "ViTamin-XL-384-s13.3B", "ViTamin-B")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0]
    for name in ("ViTamin-L-224-s12.8B", "ViT-L-14-s1.28B", "ViTamin-XL-384-s13.3B", "ViTamin-B-s1.28B"):
        assert name in header
    assert max(len(line) for line in result.stdout.splitlines()) > 80


def test_a_pipe_keeps_the_natural_width_whatever_columns_says(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many shells and IDEs export COLUMNS: into a pipe it is no terminal's width, and no cell is split for it."""
    monkeypatch.setenv("COLUMNS", "70")
    result = run("compare", "ViTamin-L", "ViT-L-14-s1.28B", "ViTamin-XL-384-s13.3B", "ViTamin-B")
    header = result.stdout.splitlines()[0].split()
    assert header == ["ViTamin-L-224-s12.8B", "ViT-L-14-s1.28B", "ViTamin-XL-384-s13.3B", "ViTamin-B-s1.28B"]


def test_a_table_without_rows_prints_its_headings_at_any_width() -> None:
    """The live table of bench and eval starts with no rows; so does `audit` of a selection that matches none."""
    from rich.console import Console

    from vitamin_cli.views import sink

    for width in (200, 30):
        out = io.StringIO()
        Console(file=out, width=width, highlight=False).print(sink.table(["Model", "ms/batch", "Warm-up s"], []))
        assert "Model" in out.getvalue()


def test_a_narrow_table_folds_between_words_not_inside_them() -> None:
    from rich.console import Console

    from vitamin_cli.views import sink

    titles = ["note", "ViTamin-L-224-s12.8B", "ViT-L-14-s1.28B"]
    rows = [["a rather long note that can fold between its words", "1", "2"]]
    out = io.StringIO()
    Console(file=out, width=50, highlight=False).print(sink.side_by_side(titles, rows))
    text = out.getvalue()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 50
    assert "ViTamin-L-224-s12.8B" in text and "ViT-L-14-s1.28B" in text
    words = [w for line in text.splitlines() for w in line.split()]
    for word in "a rather long note that can fold between its words".split():
        assert word in words


def test_a_word_that_must_fold_folds_after_a_slash_or_a_hyphen() -> None:
    """bench's ten columns do not fit 80 columns at their longest words: the headings give way first ("ms/"
    "batch", "Warm-" "up"), the model names under them stay whole; and a name that must fold folds at a hyphen."""
    from rich.console import Console

    from vitamin_cli.views import sink

    titles = ["Model", "ms/batch", "TFLOP/s", "Warm-up s"]
    rows = [["ViT-S-16-s128M", "748.6", "0.0985", "2.2"]]
    for width, folded in ((36, False), (30, True)):
        out = io.StringIO()
        Console(file=out, width=width, highlight=False).print(sink.table(titles, rows))
        lines = out.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width
        words = out.getvalue().split()
        assert {"ms/", "batch", "TFLOP/", "Warm-"} <= set(words), out.getvalue()
        pieces = [w for w in words if w.startswith(("ViT", "S-", "16", "s128"))]
        assert ("ViT-S-16-s128M" not in words) == folded, out.getvalue()
        if folded:  # each piece but the last ends at a hyphen
            assert "".join(pieces) == "ViT-S-16-s128M" and all(p.endswith("-") for p in pieces[:-1]), pieces


def test_a_repo_folds_at_its_slash_before_its_hyphens() -> None:
    from rich.console import Console

    from vitamin_cli.views import sink

    out = io.StringIO()
    rows = [["weights", "jienengchen/ViTamin-L-224px", "jienengchen/ViTamin-XL-384px"]]
    Console(file=out, width=50, highlight=False).print(sink.side_by_side(["field", "A", "B"], rows))
    words = out.getvalue().split()
    assert {"jienengchen/", "ViTamin-L-224px", "ViTamin-XL-384px"} <= set(words), out.getvalue()


def test_a_word_longer_than_any_room_still_folds() -> None:
    from rich.console import Console

    from vitamin_cli.views import sink

    out = io.StringIO()
    Console(file=out, width=12, highlight=False).print(sink.table(["x"], [["abcdefghijklmnopqrstuvwxyz"]]))
    assert "".join(out.getvalue().split()) == "xabcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------------------------------
# 2. Errors said plainly: reasons cut at a word, a file that is no checkpoint called that


def test_a_bench_rows_reason_is_cut_at_a_word() -> None:
    from types import SimpleNamespace

    from vitamin_cli.views.results import BENCH_COLUMNS, EVAL_COLUMNS

    reason = "CUDA out of memory while allocating the activations of the image tower at batch 256"
    bench_cell = BENCH_COLUMNS[3].cell(SimpleNamespace(error=reason, throughput=0.0))  # type: ignore[arg-type]
    eval_cell = EVAL_COLUMNS[-1].cell(SimpleNamespace(error=reason, status="failed", task="vtab/cifar100"))  # type: ignore[arg-type]
    for cell in (bench_cell, eval_cell):
        text = cell[0] if isinstance(cell, tuple) else cell
        assert text.endswith("...") and len(text) <= 70
        shown = text.removesuffix("...").removeprefix("failed: ").split()
        assert shown == reason.split()[: len(shown)], text


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"version: 1\narchitectures:\n  Tiny: {}\n", "it is text, not a zip or pickle file"),
        (b"these are not weights\n", "it is text, not a zip or pickle file"),
        (b"", "it is empty"),
        (b"\x00\x01\x02\x03garbage", "it is not a zip or pickle file"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_called_that(tmp_path, content: bytes, kind: str) -> None:  # type: ignore[no-untyped-def]
    from vitamin_cli.models import loading

    path = tmp_path / "zoo.yaml"
    path.write_bytes(content)
    with pytest.raises(loading.CheckpointError) as caught:
        loading.read_state_dict(path)
    assert caught.value.message == f"{path} is not a PyTorch checkpoint: {kind}"
    assert "pickled" not in caught.value.message and caught.value.hint


def test_load_with_a_yaml_checkpoint_says_it_is_text(tiny: tuple, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    import vitamin_cli
    from vitamin_cli.models import loading

    path, _ = tiny
    with pytest.raises(loading.CheckpointError, match="is not a PyTorch checkpoint: it is text"):
        vitamin_cli.load("Tiny-s1M", checkpoint=path)


def test_a_checkpoint_still_loads(tiny: tuple) -> None:  # type: ignore[type-arg]
    from vitamin_cli.models import loading

    _, checkpoint = tiny
    assert loading.read_state_dict(checkpoint)


# ---------------------------------------------------------------------------------------------------
# 3. bench: numbers that keep their digits, counts that agree, the whole zoo on a CPU announced


def test_small_throughputs_keep_significant_digits() -> None:
    from types import SimpleNamespace

    from vitamin_cli.views.results import BENCH_COLUMNS

    columns = {c.title: c for c in BENCH_COLUMNS}
    saved_before_spreads = {"error": None, "noisy": False, "spread": None}  # the range of the runs is shown
    slow = SimpleNamespace(**saved_before_spreads, throughput=2.43, throughput_min=2.12, throughput_max=2.61)
    fast = SimpleNamespace(**saved_before_spreads, throughput=12345.6, throughput_min=12001.0, throughput_max=12999.0)
    assert columns["Items/s"].cell(slow) == "2.43"  # type: ignore[arg-type]
    assert columns["Spread"].cell(slow) == "2.12-2.61"  # type: ignore[arg-type]
    assert columns["Items/s"].cell(fast) == "12,346"  # type: ignore[arg-type]
    assert columns["Spread"].cell(fast) == "12,001-12,999"  # type: ignore[arg-type]


def test_counts_agree_in_number(capsys: pytest.CaptureFixture[str]) -> None:
    from vitamin_cli import zoo
    from vitamin_cli.commands.bench import _announce

    registry = zoo.load()
    _announce(registry, [registry.get("ViTamin-S")], ("image",), "cpu", None)
    assert "measuring 1 architecture x 1 tower (1 model) on cpu" in capsys.readouterr().err
    _announce(registry, [registry.get("ViTamin-S")], ("image", "text"), "cpu", None)
    assert "measuring 1 architecture x 2 towers (1 model) on cpu" in capsys.readouterr().err


@pytest.mark.slow  # two bench runs on the CPU, one of them of every model of its zoo
def test_the_whole_zoo_on_a_cpu_is_announced_with_an_estimate(tiny: tuple, run: Run) -> None:  # type: ignore[type-arg]
    result = run("bench", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--repeats", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert "the whole zoo on the CPU takes about" in result.stderr
    assert "GMAC/s" in result.stderr and "--device cuda" in result.stderr and "name a model" in result.stderr
    named = run("bench", "Tiny-s1M", "--device", "cpu", "--batch-size", "2", "--iters", "1", "--repeats", "1")
    assert named.exit_code == 0 and "takes about" not in named.stderr


# ---------------------------------------------------------------------------------------------------
# 4. compare: the mark follows the full values, and the printed values show why


def test_a_winner_by_a_fraction_prints_the_fraction() -> None:
    from vitamin_cli import zoo
    from vitamin_cli.views import compare

    registry = zoo.load()
    a, b, c = (registry.get(n) for n in ("ViTamin-S", "ViTamin-B", "ViTamin-L"))
    columns = [
        compare.Entry(a, speeds={"image": 1234.4}, label="a"),
        compare.Entry(b, speeds={"image": 1234.2}, label="b"),
        compare.Entry(c, speeds={"image": 1000.0}, label="c"),
    ]
    row = next(r for r in compare.rows(columns, True, False) if r.key == "throughput_image")
    assert row.best == ["a"]
    assert compare.texts(row) == ["1,234.4", "1,234.2", "1,000.0"]


def test_rates_that_print_apart_stay_whole_and_ties_are_not_marked() -> None:
    from vitamin_cli import zoo
    from vitamin_cli.views import compare

    registry = zoo.load()
    a, b = registry.get("ViTamin-S"), registry.get("ViTamin-B")
    apart = [
        compare.Entry(a, speeds={"image": 1500.3}, label="a"),
        compare.Entry(b, speeds={"image": 900.0}, label="b"),
    ]
    row = next(r for r in compare.rows(apart, True, False) if r.key == "throughput_image")
    assert compare.texts(row) == ["1,500", "900"] and row.best == ["a"]
    tied = [compare.Entry(a, speeds={"image": 900.0}, label="a"), compare.Entry(b, speeds={"image": 900.0}, label="b")]
    row = next(r for r in compare.rows(tied, True, False) if r.key == "throughput_image")
    assert compare.texts(row) == ["900", "900"] and row.best == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["bench", "ViT-S-16-s128M", "--device", "cpu", "--compile", "--compile-mode", "fast"], "not a mode of"),
        (["bench", "ViT-S-16-s128M", "--device", "cpu", "--compile-mode", "default"], "without --compile"),
        (["bench", "ViT-S-16-s128M", "--device", "cpu", "--tower", "head"], "--tower must be"),
        (["pull", "ViTamin-S", "--all"], "not both"),
        (["bench", "ViTamin-S", "--all", "--device", "cpu"], "not both"),
        (["ls", "--bench", "no-such-results.json"], "no such file"),
        (["compare", "ViTamin-S"], "at least two"),
    ],
)
def test_a_bad_flag_is_a_usage_error_before_any_work(run: Run, args: list[str], said: str) -> None:
    result = run(*args)
    assert result.exit_code == 2 and said in result.stderr, result.stderr
    assert "\nhint: " in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args", [["show", "ViTamin-XL-384"], ["ls", "--size", "L"], ["compare", "ViTamin-L", "ViTamin-S"]]
)
def test_into_a_pipe_no_line_ends_in_padding(run: Run, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    """In a pager or `head`, lines padded past the terminal's width read as blank lines between the rows."""
    monkeypatch.delenv("COLUMNS")
    lines = run(*args).stdout.splitlines()
    assert len(lines) > 3 and not [line for line in lines if line.endswith(" ")]
