"""`--where EXPR` means what Python means by the same text (checked against Python's own `eval` on generated
expressions), refuses anything else with a UsageError whose carets point into the expression, and the Pareto
front is that of a sort-and-sweep over two axes. The examples pin the messages and each rule."""

from __future__ import annotations

import itertools
import math
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitamin_cli.errors import UsageError, scrub
from vitamin_cli.zoo.entries import NUMERIC_COLUMNS
from vitamin_cli.zoo.query import MAX_DEPTH, MAX_LENGTH, pareto, parse, resolve

FIELDS = ("macs_image_g", "imagenet", "params_image_m", "seen_samples")
ALIASES = {"macs": "macs_image_g", "params": "params_image_m"}

# ---------------------------------------------------------------------------------------------------
# Generated expressions, each token a pair (as written for parse, as Python reads the same)

NAMES = [(name, name) for name in FIELDS] + list(ALIASES.items())
SCALES = {"K": 3, "k": 3, "M": 6, "B": 9, "G": 9, "T": 12}
OPERATORS = [(op, op) for op in ("<", "<=", ">", ">=", "==", "!=")] + [("=", "==")]
WORD = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")

Token = tuple[str, str]


def plain(text: str) -> Token:
    return (text, text)


@st.composite
def scaled(draw: Any) -> Token:
    """`1.5K` for parse, `1.5e3` for Python; perhaps negative."""
    sign = draw(st.sampled_from(["", "-"]))
    digits = draw(st.sampled_from(["1", "1.5", ".5", "12.8", "3.", "1.28", "0"]))
    scale = draw(st.sampled_from(sorted(SCALES)))
    return (f"{sign}{digits}{scale}", f"{sign}{digits}e{SCALES[scale]}")


numbers = st.one_of(
    st.integers(-5, 5).map(str).map(plain),
    st.floats(allow_nan=False, allow_infinity=False).map(repr).map(plain),  # 1e+16, -1.5e-07, ...
    st.sampled_from(["2e3", "2E-3", "1.e2", ".25", "1500", "1280000000.0", "1e999"]).map(plain),
    scaled(),
)
operands = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), numbers)


def keyword(word: str) -> st.SearchStrategy[Token]:
    return st.sampled_from([word, word.upper(), word.title()]).map(lambda written: (written, word))


@st.composite
def comparisons(draw: Any) -> list[Token]:
    """A comparison, chained or not: `a < b`, `10 < macs <= 100 == c`."""
    tokens = [draw(operands)]
    for _ in range(draw(st.integers(1, 3))):
        tokens += [draw(st.sampled_from(OPERATORS)), draw(operands)]
    return tokens


def extended(inner: st.SearchStrategy[list[Token]]) -> st.SearchStrategy[list[Token]]:
    return st.one_of(
        st.tuples(keyword("not"), inner).map(lambda drawn: [drawn[0], *drawn[1]]),
        inner.map(lambda tokens: [plain("("), *tokens, plain(")")]),
        st.tuples(inner, st.one_of(keyword("and"), keyword("or")), inner).map(
            lambda drawn: [*drawn[0], drawn[1], *drawn[2]]
        ),
    )


expressions = st.recursive(comparisons(), extended, max_leaves=8)


SPACINGS = {"tight": ("", " "), "spaced": (" ", " "), "odd": ("\t\n", "\t")}  # (where optional, where needed)


@st.composite
def written(draw: Any) -> tuple[str, str]:
    """An expression as parse gets it (no space between tokens where none is needed, or spaces, or tabs and
    newlines) and as Python reads it (a space between every two tokens)."""
    tokens = draw(expressions)
    optional, needed = SPACINGS[draw(st.sampled_from(sorted(SPACINGS)))]
    ours = tokens[0][0]
    for (before, _), (after, _) in itertools.pairwise(tokens):
        ours += (needed if before[-1] in WORD and after[0] in WORD else optional) + after
    return ours, " ".join(reference for _, reference in tokens)


field_values = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1500, 1280000000.0, 12.8e6, -1.5e3]),
)
values_of_fields = st.fixed_dictionaries({name: field_values for name in FIELDS})


def same_as_python(expression: tuple[str, str], values: dict[str, float | int]) -> None:
    ours, reference = expression
    expected = bool(eval(reference, {"__builtins__": {}}, dict(values)))  # the reference only: never in the package
    assert parse(ours, FIELDS, ALIASES).matches(values) is expected, (ours, reference, values)


@settings(max_examples=100, deadline=None)
@given(written(), values_of_fields)
def test_generated_expressions_mean_what_python_means(expression: tuple[str, str], values: dict[str, Any]) -> None:
    same_as_python(expression, values)


@pytest.mark.slow  # 2,000 examples: about five seconds
@settings(max_examples=2000, deadline=None)
@given(written(), values_of_fields)
def test_2000_generated_expressions_mean_what_python_means(expression: tuple[str, str], values: dict[str, Any]) -> None:
    same_as_python(expression, values)


# ---------------------------------------------------------------------------------------------------
# Any text: read, or refused with carets inside the echoed expression

PIECES = [
    *FIELDS, *ALIASES, "MACS", "1.5", "-3", "- 3", "2e3", "1.28B", ".5", "100", "1e999",
    "<", "<=", ">", ">=", "==", "!=", "=", "and", "OR", "Not", "(", ")", " ", "\t",
    "&&", "||", "&", "|", "!", "-", "+", "=<", "=>", ".", "inf", "nan", "macss", "1x", "1_000", "2b",
    "中", "\u3000", "\u0301", "\u200b", "\x00", "\n", "\x1b[31m", "://u:p@h",
]  # fmt: skip
junk = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=2)), max_size=40).map("".join)


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def refusal_shown(error: UsageError, text: str) -> tuple[int, int]:
    """The caret column and count of the error's message, after checking its form: a first line naming the
    option, the expression echoed with each character kept or shown as ' ' or '?', carets inside it."""
    first, echo, carets = error.message.split("\n")
    assert first.startswith("--where: ") and echo.startswith("  ") and carets.startswith("  ")
    shown, given = echo[2:], scrub(text[:MAX_LENGTH])  # a URL's credentials are scrubbed from every message
    assert len(shown) == len(given)
    assert all(s == t or s in " ?" for s, t in zip(shown, given, strict=True))
    assert all(c.isprintable() for c in shown), "a control character in the echo"
    column = len(carets) - len(carets[2:].lstrip(" ")) - 2
    count = len(carets) - 2 - column
    assert count >= 1 and carets[2 + column :] == "^" * count
    assert column + count <= width(shown) or (column == width(shown) and count == 1), (column, count, shown)
    assert error.hint
    return column, count


def read_or_refused(text: str) -> None:
    try:
        where = parse(text, FIELDS, ALIASES)
    except UsageError as error:
        refusal_shown(error, text)
    else:
        assert where.fields <= set(FIELDS)
        assert where.matches(dict.fromkeys(FIELDS, 1.0)) in (True, False)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(), junk))
def test_any_text_is_read_or_refused_with_carets_in_the_expression(text: str) -> None:
    read_or_refused(text)


@pytest.mark.slow  # 2,000 examples: about five seconds
@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(), junk, st.text(min_size=900, max_size=1100)))
def test_2000_texts_are_read_or_refused_with_carets_in_the_expression(text: str) -> None:
    read_or_refused(text)


# ---------------------------------------------------------------------------------------------------
# Examples


def refused(expr: str) -> UsageError:
    with pytest.raises(UsageError) as caught:
        parse(expr, FIELDS, ALIASES)
    return caught.value


@pytest.mark.parametrize(
    ("expr", "problem", "carets"),
    [
        ("macss < 100 and imagenet >= 80", "unknown name 'macss'", "^^^^^"),
        ("macs 100", "expected a comparison operator after 'macs'", "     ^^^"),
        ("(macs < 100", "unbalanced '('", "^"),
        ("macs < 100)", "unexpected ')'", "          ^"),
        ("macs <", "expected a name or a number at the end", "      ^"),
        ("macs < ) ", "expected a name or a number before ')'", "       ^"),
        ("macs < 1 && imagenet > 2", "'&&' is not an operator; use and/or", "         ^^"),
        ("macs < 1 || imagenet > 2", "'||' is not an operator; use and/or", "         ^^"),
        ("macs", "'macs' alone compares nothing; write e.g. macs < 100", "^^^^"),
        ("imagenet > 80 and (macs)", "'macs' alone compares nothing; write e.g. macs < 100", "                   ^^^^"),
        ("macs < 1 imagenet > 2", "expected and/or before 'imagenet'", "         ^^^^^^^^"),
        ("(macs < 1 not imagenet > 2)", "expected and/or or ')' before 'not'", "          ^^^"),
        ("(macs < 1) < 2", "'<' cannot compare a group in parentheses, only names and numbers", "           ^"),
        ("macs =< 3", "'=<' is not an operator; use <=", "     ^^"),
        ("macs ! 3", "'!' is not an operator; use not, or != for not equal", "     ^"),
        ("1.5.3 < macs", "'1.5.3' is not a number", "^^^^^"),
        ("macs < 1_000", "'1_000' is not a number", "       ^^^^^"),
        ("macs < 2b", "'2b' is not a number", "       ^^"),
        ("macs < - imagenet", "'-' goes only before a number", "       ^"),
        ("macs < inf", "unknown name 'inf'", "       ^^^"),
        ("macs > nan", "unknown name 'nan'", "       ^^^"),
        ("macs < 1\tand\nmacss > 2", "unknown name 'macss'", "             ^^^^^"),  # tab, newline: one column
        ("macs < 1 and 中 > 2", "unknown name '中'", "             ^^"),  # letters of any script make a name
        ("macs\u3000< 1 and\u3000名 > 2", "unknown name '名'", "             ^^"),
        ("macs < 1 and ＜ 2", "unexpected character '＜' (U+FF1C)", "             ^^"),
        ("macs < 1 and \x1b[31m", "unexpected character U+001B", "             ^"),
        ("  ", "the expression is empty", "  ^"),
    ],
)
def test_a_refusal_points_at_the_token(expr: str, problem: str, carets: str) -> None:
    error = refused(expr)
    assert error.message.split("\n")[0] == f"--where: {problem}"
    assert error.message.split("\n")[2] == f"  {carets}"
    refusal_shown(error, expr)


def test_the_echo_replaces_what_prints_as_nothing_or_moves_the_cursor() -> None:
    error = refused("macs\t<\r1\x00\u200b\u0301")
    assert error.message.split("\n")[1:] == ["  macs < 1???", "          ^"]


def test_an_unknown_name_suggests_the_closest_and_lists_all() -> None:
    hint = refused("imagnet > 80").hint
    assert hint == (
        "did you mean imagenet? names: macs_image_g, imagenet, params_image_m, seen_samples; "
        "aliases: macs = macs_image_g, params = params_image_m"
    )
    assert refused("zzz < 1").hint == (
        "names: macs_image_g, imagenet, params_image_m, seen_samples; "
        "aliases: macs = macs_image_g, params = params_image_m"
    )


def test_resolve_gives_the_canonical_field() -> None:
    assert resolve("macs", FIELDS, ALIASES) == "macs_image_g"
    assert resolve("MACS_image_G", FIELDS, ALIASES) == "macs_image_g"
    assert resolve("imagenet", NUMERIC_COLUMNS, {}) == "imagenet"
    with pytest.raises(UsageError) as caught:
        resolve("mac", FIELDS, ALIASES, option="--sort")
    assert caught.value.message == "--sort: unknown name 'mac'"
    assert caught.value.hint is not None and caught.value.hint.startswith("did you mean macs? names: macs_image_g")


def test_aliases_and_any_case_name_the_canonical_field() -> None:
    where = parse("MACS < 100 and Params_Image_M > 5 and macs_image_g > 1", FIELDS, ALIASES)
    assert where.fields == {"macs_image_g", "params_image_m"}
    assert where.matches({"macs_image_g": 50, "params_image_m": 10})
    assert not where.matches({"macs_image_g": 150, "params_image_m": 10})


def test_keywords_in_any_case() -> None:
    where = parse("macs < 1 AND imagenet > 2 Or NOT macs > 3 and nOt (imagenet < 0)", FIELDS, ALIASES)
    assert where.matches({"macs_image_g": 0, "imagenet": 5})
    assert where.matches({"macs_image_g": 2, "imagenet": 5})
    assert not where.matches({"macs_image_g": 4, "imagenet": 5})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.28B", 1_280_000_000),
        ("12.8B", 12_800_000_000),
        ("1.5k", 1500),
        ("1.5K", 1500),
        ("2M", 2_000_000),
        ("3G", 3e9),
        ("1T", 1e12),
        ("2e3", 2000),
        ("2E-3", 0.002),
        (".5", 0.5),
        ("-3", -3),
        ("- 3", -3),
        ("-.5K", -500),
        ("1e3K", 1e6),
        ("1.15B", 1_150_000_000),  # the float nearest, not 1.15 * 1e9 (1149999999.9999998)
    ],
)
def test_numbers_and_their_scales(text: str, value: float) -> None:
    assert parse(f"seen_samples == {text}", FIELDS).matches({"seen_samples": value})
    assert parse(f"seen_samples={text}", FIELDS).matches({"seen_samples": value})


def test_no_space_is_needed_between_tokens() -> None:
    assert parse("macs<100", FIELDS, ALIASES).matches({"macs_image_g": 5})
    assert parse("(macs<=-1)or(not(imagenet!=2))", FIELDS, ALIASES).matches({"macs_image_g": 5, "imagenet": 2})


def test_a_chain_means_each_pair() -> None:
    where = parse("10 < macs <= 100", FIELDS, ALIASES)
    assert [where.matches({"macs_image_g": v}) for v in (10, 11, 100, 101)] == [False, True, True, False]


@pytest.mark.parametrize("missing", [None, math.nan, "absent"])
def test_a_comparison_with_a_missing_value_is_false_and_its_negation_true(missing: Any) -> None:
    values = {"imagenet": 90} if missing == "absent" else {"macs_image_g": missing, "imagenet": 90}
    for false in ["macs < 100", "macs >= 100", "macs == macs", "macs != 3", "1 < macs < 100", "macs < 1 and 1 < 2"]:
        assert not parse(false, FIELDS, ALIASES).matches(values), false
    for true in ["not macs < 100", "not macs != 3", "macs < 100 or imagenet > 80", "macs < 1 or not macs < 1"]:
        assert parse(true, FIELDS, ALIASES).matches(values), true


def test_the_length_is_held() -> None:
    assert parse("macs < 1" + " " * (MAX_LENGTH - 8), FIELDS, ALIASES).fields == {"macs_image_g"}
    error = refused("macs < 1" + " " * (MAX_LENGTH - 7))
    assert error.message.split("\n")[0] == "--where: the expression is 1,001 characters long, more than 1,000"
    assert refusal_shown(error, "macs < 1" + " " * (MAX_LENGTH - 7)) == (MAX_LENGTH, 1)
    assert refusal_shown(refused("中" * 100_000), "中" * 100_000) == (2 * MAX_LENGTH, 1)  # wide: two columns each


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("(", ")"), ("not ", ""), ("not (", ")"), ("(not ", ")")],
)
def test_the_depth_is_held(opening: str, closing: str) -> None:
    levels = MAX_DEPTH // (opening.count("(") + opening.count("not"))  # `not (` is two levels
    assert parse(opening * levels + "macs < 1" + closing * levels, FIELDS, ALIASES).fields == {"macs_image_g"}
    deep = opening * (levels + 1) + "macs < 1" + closing * (levels + 1)
    error = refused(deep)
    assert error.message.split("\n")[0] == f"--where: nested deeper than {MAX_DEPTH} parentheses and nots"
    assert refusal_shown(error, deep) == (len(opening) * levels, 1 if opening.startswith("(") else 3)


def test_no_recursion_error_however_deep() -> None:
    for deep in ["(" * 999, "not " * 249 + "(", "(" * 100 + "macs < 1" + ")" * 100]:
        refusal_shown(refused(deep), deep)


# ---------------------------------------------------------------------------------------------------
# Pareto


def front_by_sweep(points: list[tuple[Any, Any]], higher: tuple[bool, bool]) -> list[int]:
    """The indexes of the front of 2-D points, by a sort and a sweep: best first along x, an x-group's best y
    is on the front when it beats every y seen at a better x."""
    turned = [
        (index, x if higher[0] else -x, y if higher[1] else -y)
        for index, (x, y) in enumerate(points)
        if x is not None and y is not None and x == x and y == y
    ]
    turned.sort(key=lambda point: (-point[1], -point[2]))
    front, best_y = [], -math.inf
    for _, group in itertools.groupby(turned, key=lambda point: point[1]):
        members = list(group)
        top = members[0][2]
        if top > best_y:
            front += [index for index, _, y in members if y == top]
            best_y = top
    return sorted(front)


coordinates = st.one_of(st.integers(0, 4), st.integers(0, 4), st.none(), st.just(math.nan), st.floats(-1e9, 1e9))


def same_front_as_the_sweep(points: list[tuple[Any, Any]], higher: tuple[bool, bool]) -> None:
    items = list(range(len(points)))  # an item is its index
    axes = [(lambda i: points[i][0], higher[0]), (lambda i: points[i][1], higher[1])]
    assert pareto(items, axes) == front_by_sweep(points, higher)


@pytest.mark.parametrize("higher", list(itertools.product([True, False], repeat=2)))
@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(coordinates, coordinates), max_size=12))
def test_the_pareto_front_is_the_sweeps(higher: tuple[bool, bool], points: list[tuple[Any, Any]]) -> None:
    same_front_as_the_sweep(points, higher)


@pytest.mark.slow  # 500 examples each: about a second each
@pytest.mark.parametrize("higher", list(itertools.product([True, False], repeat=2)))
@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(coordinates, coordinates), max_size=40))
def test_500_pareto_fronts_are_the_sweeps(higher: tuple[bool, bool], points: list[tuple[Any, Any]]) -> None:
    same_front_as_the_sweep(points, higher)


def test_the_pareto_front_of_models() -> None:
    models = [("a", 80.0, 50), ("b", 82.0, 100), ("c", 79.0, 60), ("d", 82.0, 100), ("e", None, 1), ("f", 85, 300)]
    front = pareto(models, [(lambda m: m[1], True), (lambda m: m[2], False)])
    assert [m[0] for m in front] == ["a", "b", "d", "f"]  # c: worse than a on both; e: no accuracy; b, d: equal
    assert pareto(models, []) == models  # no axis: none is better
