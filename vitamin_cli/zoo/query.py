"""`--where EXPR`, a small filter over numeric fields, and the Pareto front of a list of items.

    where = parse("macs < 100 and imagenet >= 80", NUMERIC_COLUMNS, aliases={"macs": "macs_image_g"})
    kept = [m for m in models if where.matches({f: m.value(f) for f in where.fields})]
    front = pareto(kept, [(lambda m: m.imagenet, True), (lambda m: m.macs_image_g, False)])

The language is a piece of Python's expression grammar, with Python's precedence (`or` below `and` below `not`
below a comparison): comparisons with `<`, `<=`, `>`, `>=`, `==`, `!=` (and `=`, which means `==`), chained as in
Python (`10 < macs <= 100` is `10 < macs and macs <= 100`), joined by `and`, `or`, `not` and parentheses.
Keywords and names may be written in any case. An operand is a field name or one of its aliases, or a number:
`100`, `1.5`, `.5`, `2e3`, `-3`, with an optional scale `K` or `k` (1e3), `M` (1e6), `B` or `G` (1e9), `T` (1e12),
so that `seen_samples > 1.28B` works. `inf` and `nan` are not numbers here, only names that no field has. Values are
compared as floats.

A missing value (None, NaN, or a field the values do not hold) makes every comparison that uses it false, `!=`
included, as SQL's NULL does. So `not macs < 100` holds for a model whose MACs are unknown, and so does
`macs < 100 or not macs < 100`.

The text is read by hand, never by `eval` or `ast`, so an expression can only compare numbers. Every problem is
a UsageError whose message shows the expression with carets under the token at fault; an expression longer
than MAX_LENGTH characters, or nested deeper than MAX_DEPTH parentheses and `not`s, is one too.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from vitamin_cli.errors import UsageError, scrub

OPTION = "--where"
MAX_LENGTH = 1000  # characters
MAX_DEPTH = 50  # parentheses and `not`s, one inside the other
MAX_LISTED = 20  # names a hint lists; more are left to the docs

Values = Mapping[str, float | int | None]
Test = Callable[[Values], bool]
T = TypeVar("T")

_NO_ALIASES: Mapping[str, str] = MappingProxyType({})
_KEYWORDS = ("and", "or", "not")
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "=": operator.eq,
}
_SCALES = {"k": 3, "K": 3, "M": 6, "B": 9, "G": 9, "T": 12}  # powers of ten

_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"(-\s*)?([0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?([kKMBGT])?")
_NAME = re.compile(r"[^\W\d]\w*")  # letters of any script: `mäcs` is one (unknown) name
_OPERATOR = re.compile(r"<=|>=|==|!=|=<|=>|<|>|=")
_STUCK = re.compile(r"[A-Za-z0-9_.]+")  # what, stuck to a number, makes it no number: `100x`, `1.5.3`, `1_000`

_GRAMMAR_HINT = (
    "compare names and numbers with < <= > >= == != (or =), and join comparisons with and, or, not and "
    "parentheses, e.g. macs < 100 and imagenet >= 80"
)
_NUMBER_HINT = "a number is like 100, 1.5, .5, 2e3 or -3, with an optional K (1e3), M (1e6), B or G (1e9), T (1e12)"


@dataclass(frozen=True)
class Where:
    """A parsed `--where` expression: the canonical fields it reads, and a test of their values."""

    text: str
    fields: frozenset[str]
    _test: Test = field(repr=False, compare=False)

    def matches(self, values: Mapping[str, float | int | None]) -> bool:
        """Whether the values (by canonical field name) pass; a missing one fails every comparison it is in."""
        return self._test(values)


def parse(
    expr: str,
    fields: Collection[str],
    aliases: Mapping[str, str] = _NO_ALIASES,
    units: Mapping[str, int | None] = MappingProxyType({}),
) -> Where:
    """The expression, read against the fields it may name (canonical names, or aliases of them); a UsageError
    pointing at the first token at fault if it cannot be read. `units`: the power of ten of a field's unit (9
    for a count in G), so that a scaled number compared with it is read in that unit (`macs < 10G` is `macs <
    10`); None for a field no scale means anything for (a percentage), which refuses one. A field not in
    `units` counts in ones."""
    if len(expr) > MAX_LENGTH:
        shown = scrub(expr[:MAX_LENGTH])  # as the message will show it, so that the caret lands just past it
        raise _error(
            shown,
            len(shown),
            len(shown),
            f"the expression is {len(expr):,} characters long, more than {MAX_LENGTH:,}",
            "filter in several steps, or with a shorter expression",
        )
    if not expr.strip():
        raise _error(expr, len(expr), len(expr), "the expression is empty", _GRAMMAR_HINT)
    parser = _Parser(expr, fields, aliases, units)
    test = parser.either()
    if parser.token.kind != "end":
        raise parser.leftover("")
    return Where(expr, frozenset(parser.used), test)


def resolve(name: str, fields: Collection[str], aliases: Mapping[str, str], option: str = OPTION) -> str:
    """The canonical field a name stands for: itself, or the field it is an alias of, in any case. An unknown
    name is a UsageError whose hint suggests the closest names and lists them all."""
    found = _lookup(name, fields, aliases)
    if found is None:
        raise UsageError(f"{option}: unknown name {name!r}", hint=_names_hint(name, fields, aliases))
    return found


def pareto(items: Sequence[T], axes: Sequence[tuple[Callable[[T], float | int | None], bool]]) -> list[T]:
    """The items no other item dominates, in their input order. Each axis is (the item's value, whether higher
    is better); an item dominates another when it is as good on every axis and better on one. Items with a
    missing value (None or NaN) on an axis are not on the front. Quadratic: meant for hundreds of items."""
    points = [(item, point) for item in items if (point := _point(item, axes)) is not None]
    return [item for item, point in points if not any(_dominates(other, point) for _, other in points)]


def _point(item: T, axes: Sequence[tuple[Callable[[T], float | int | None], bool]]) -> tuple[float, ...] | None:
    """The item's values, each turned so that higher is better; None if one is missing."""
    point = []
    for value_of, higher_is_better in axes:
        value = value_of(item)
        if value is None or value != value:  # NaN is the one value unequal to itself
            return None
        point.append(value if higher_is_better else -value)
    return tuple(point)


def _dominates(one: tuple[float, ...], other: tuple[float, ...]) -> bool:
    return one != other and all(a >= b for a, b in zip(one, other, strict=True))


class _Token(NamedTuple):
    kind: str  # "name", "number", "op", "(", ")", "and", "or", "not", or "end"
    text: str
    start: int
    end: int
    number: float = 0.0


class _Parser:
    """A recursive-descent reader of the grammar, one method a rule, each returning a test of values:

    either     := both ('or' both)*
    both       := negation ('and' negation)*
    negation   := 'not' negation | '(' either ')' | comparison
    comparison := operand (OP operand)+
    """

    def __init__(
        self, expr: str, fields: Collection[str], aliases: Mapping[str, str], units: Mapping[str, int | None]
    ) -> None:
        self.expr = expr
        self.fields = fields
        self.aliases = aliases
        self.units = units
        self.tokens = _tokens(expr)
        self.token = next(self.tokens)  # the next token, not yet taken
        self.depth = 0
        self.used: set[str] = set()

    def take(self) -> _Token:
        token, self.token = self.token, next(self.tokens)
        return token

    def either(self) -> Test:
        parts = [self.both()]
        while self.token.kind == "or":
            self.take()
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else lambda values: any(part(values) for part in parts)

    def both(self) -> Test:
        parts = [self.negation()]
        while self.token.kind == "and":
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda values: all(part(values) for part in parts)

    def negation(self) -> Test:
        opening = self.token
        if opening.kind not in ("not", "("):
            return self.comparison()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(opening, f"nested deeper than {MAX_DEPTH} parentheses and nots", "nest less deeply")
        self.take()
        if opening.kind == "not":
            test = _negated(self.negation())
        else:
            test = self.either()
            if self.token.kind == "end":
                raise self.fail(opening, "unbalanced '('", "close every '(' with a ')'")
            if self.token.kind != ")":
                raise self.leftover(" or ')'")
            self.take()
        self.depth -= 1
        return test

    def comparison(self) -> Test:
        first = self.token
        tokens = [self.token]
        operands = [self.operand()]
        compares = []
        while self.token.kind == "op":
            compares.append(_COMPARISONS[self.take().text])
            tokens.append(self.token)
            operands.append(self.operand())
        if not compares:
            raise self.no_comparison(first)
        operands = [self.in_unit(tokens, operands, i) for i in range(len(operands))]

        def test(values: Values) -> bool:
            numbers = [_number(values, operand) for operand in operands]
            pairs = zip(compares, numbers[:-1], numbers[1:], strict=True)
            return all(a is not None and b is not None and compare(a, b) for compare, a, b in pairs)

        return test

    def in_unit(self, tokens: list[_Token], operands: list[str | float], i: int) -> str | float:
        """The operand, a scaled number read in the unit of the fields beside it (`10G` beside MACs in G: 10)."""
        token = tokens[i]
        if token.kind != "number" or token.text[-1] not in _SCALES:
            return operands[i]
        beside = {n for n in (operands[j] for j in (i - 1, i + 1) if 0 <= j < len(operands)) if isinstance(n, str)}
        powers = {self.units.get(name, 0) for name in beside}
        unitless = sorted(n for n in beside if self.units.get(n, 0) is None)
        if unitless:
            hint = f"write {unitless[0]} as a plain number"
            raise self.fail(token, f"{token.text!r}: {unitless[0]} takes no K/M/B/G/T scale", hint)
        if len(powers) > 1:
            raise self.fail(token, f"{token.text!r} sits between fields of different units", "compare it with one")
        return _read_number(token.text, shift=-(next(iter(powers), 0) or 0))

    def operand(self) -> str | float:
        """A canonical field name, or a number."""
        token = self.token
        if token.kind == "number":
            self.take()
            return token.number
        if token.kind == "name":
            found = _lookup(token.text, self.fields, self.aliases)
            if found is None:
                hint = _names_hint(token.text, self.fields, self.aliases)
                raise self.fail(token, f"unknown name {token.text!r}", hint)
            self.used.add(found)
            self.take()
            return found
        where = "at the end" if token.kind == "end" else f"before {token.text!r}"
        raise self.fail(token, f"expected a name or a number {where}", _GRAMMAR_HINT)

    def no_comparison(self, operand: _Token) -> UsageError:
        """The error for an operand that no comparison operator follows."""
        if self.token.kind in ("end", ")", "and", "or"):
            name = operand.text if operand.kind == "name" else next(iter(self.fields), "name")
            problem = f"{operand.text!r} alone compares nothing; write e.g. {name} < 100"
            return self.fail(operand, problem, _GRAMMAR_HINT)
        return self.fail(self.token, f"expected a comparison operator after {operand.text!r}", _GRAMMAR_HINT)

    def leftover(self, closing: str) -> UsageError:
        """The error for a token after a whole expression, where only and, or (or `closing`) may come."""
        token = self.token
        if token.kind == "op":
            problem = f"{token.text!r} cannot compare a group in parentheses, only names and numbers"
        elif token.kind == ")":
            problem = "unexpected ')'"
        else:
            problem = f"expected and/or{closing} before {token.text!r}"
        return self.fail(token, problem, _GRAMMAR_HINT)

    def fail(self, token: _Token, problem: str, hint: str) -> UsageError:
        return _error(self.expr, token.start, token.end, problem, hint)


def _negated(inner: Test) -> Test:
    return lambda values: not inner(values)


def _tokens(expr: str) -> Iterator[_Token]:
    """The tokens of the expression, then "end" tokens for ever; a UsageError at the first that is none."""
    at = 0
    while True:
        space = _SPACE.match(expr, at)
        at = space.end() if space else at
        if at == len(expr):
            break
        token = _token_at(expr, at)
        yield token
        at = token.end
    while True:
        yield _Token("end", "", at, at)


def _token_at(expr: str, at: int) -> _Token:
    if expr[at] in "()":
        return _Token(expr[at], expr[at], at, at + 1)
    number = _NUMBER.match(expr, at)
    if number:
        return _number_token(expr, number)
    name = _NAME.match(expr, at)
    if name:
        word = name.group()
        return _Token(word.lower() if word.lower() in _KEYWORDS else "name", word, at, name.end())
    op = _OPERATOR.match(expr, at)
    if op and op.group() in ("=<", "=>"):
        turned = op.group()[::-1]
        raise _error(expr, at, op.end(), f"{op.group()!r} is not an operator; use {turned}", _GRAMMAR_HINT)
    if op:
        return _Token("op", op.group(), at, op.end())
    raise _no_token(expr, at)


def _number_token(expr: str, match: re.Match[str]) -> _Token:
    stuck = _STUCK.match(expr, match.end())
    if stuck:
        text = expr[match.start() : stuck.end()]
        raise _error(expr, match.start(), stuck.end(), f"{text!r} is not a number", _NUMBER_HINT)
    return _Token("number", match.group(), match.start(), match.end(), _read_number(match.group()))


def _read_number(text: str, shift: int = 0) -> float:
    """A number's text as a float, its scale and `shift` powers of ten applied in one conversion of the decimal
    text, so that 1.15B is the float nearest 1150000000, as 1.15e9 is, and 1.15B shifted by -9 the nearest 1.15."""
    match = _NUMBER.fullmatch(text)
    assert match is not None
    minus, digits, exponent, scale = match.groups()
    value = float(f"{digits}e{int(exponent or 0) + _SCALES.get(scale, 0) + shift}")
    return -value if minus else value


def _no_token(expr: str, at: int) -> UsageError:
    """The error for a character that starts no token."""
    for wrong, instead in (
        ("&&", "and/or"),
        ("||", "and/or"),
        ("&", "and/or"),
        ("|", "and/or"),
        ("!", "not, or != for not equal"),
    ):
        if expr.startswith(wrong, at):
            return _error(expr, at, at + len(wrong), f"{wrong!r} is not an operator; use {instead}", _GRAMMAR_HINT)
    if expr[at] == "-":
        return _error(expr, at, at + 1, "'-' goes only before a number", _NUMBER_HINT)
    char = expr[at]
    shown = f"{char!r}" if char.isascii() and char.isprintable() else f"U+{ord(char):04X}"
    if not char.isascii() and _shown(char) == char:
        shown = f"'{char}' ({shown})"
    return _error(expr, at, at + 1, f"unexpected character {shown}", _GRAMMAR_HINT)


def _number(values: Values, operand: str | float) -> float | None:
    """An operand's value: the number itself, or the field's value as a float; None if missing (None, NaN)."""
    if not isinstance(operand, str):
        return operand
    value = values.get(operand)
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


def _lookup(name: str, fields: Collection[str], aliases: Mapping[str, str]) -> str | None:
    """The canonical field of a name or alias; exactly as written, else in any case; None if none."""
    known = {**{f: f for f in fields}, **aliases}
    if name in known:
        return known[name]
    return {k.lower(): v for k, v in known.items()}.get(name.lower())


def _names_hint(name: str, fields: Collection[str], aliases: Mapping[str, str]) -> str:
    import difflib  # only for a name that is wrong

    by_lower = {k.lower(): k for k in [*fields, *aliases]}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    guess = f"did you mean {' or '.join(by_lower[c] for c in close)}? " if close else ""
    if len(fields) + len(aliases) > MAX_LISTED:  # the whole list would bury the guess: name the table that has it
        return guess + f"names such as {', '.join([*aliases, *fields][:8])}; docs/cli.md#fields lists them all"
    names = f"names: {', '.join(fields)}"
    if aliases:
        names += "; aliases: " + ", ".join(f"{alias} = {canonical}" for alias, canonical in aliases.items())
    return guess + names


def _error(expr: str, start: int, end: int, problem: str, hint: str) -> UsageError:
    """A UsageError: the problem, then the expression and carets under `expr[start:end]` (one caret just past
    the end where the token is the end), aligned by the width each character takes on a terminal."""
    shown = "".join(_shown(c) for c in expr)
    column = _width(shown[:start])
    carets = "^" * max(1, _width(shown[start:end]))
    return UsageError(f"{OPTION}: {problem}\n  {shown}\n  {' ' * column}{carets}", hint=hint)


def _shown(char: str) -> str:
    """The character as the echoed expression shows it: white space as a space, one that prints as nothing
    (a control, a format character, a combining mark) as '?', so that every one takes a column or two."""
    import unicodedata  # only for an error

    if char.isspace():
        return " "
    return "?" if unicodedata.category(char)[0] in "CMZ" else char


def _width(text: str) -> int:
    import unicodedata  # only for an error

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
