"""Reading a YAML file of vitamin's (zoo.yaml, the task registry) node by node, so that every error names its
line and field, with bounded work; and the checks its fields share.

A file is untrusted input: its size, the depth of its nesting and the nodes its YAML aliases expand to are
limited, so that no file costs more than a bounded amount of time and memory to reject. A check takes a plain
value and returns it (converted) or raises `Problem`; `Reader.checked` adds the file, line and field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from vitamin_cli.errors import ZooFileError

# Limits on what a zoo file may cost to read. The bundled file has 37 KB, 3,700 nodes, depth 5, no aliases.
MAX_BYTES = 8 * 2**20
MAX_DEPTH = 24
MAX_NODES = 200_000  # counting what aliases expand to
MAX_ALIASES = 1_000
SHOWN_CHARS = 60  # of a bad value, in a message


YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def clipped(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def shown(value: Any) -> str:
    """A value for a message: its repr, shortened when long (a 100 KB name is not echoed back)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**SHOWN_CHARS:
        return f"a number of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4000'} digits"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 5] + "...'" + f" ({len(text)} characters)"


class Problem(ValueError):
    """A value that breaks the schema; the parser adds the file, line and field."""


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Problem(f"expected a non-empty string, got {shown(value)}")
    return value


def line(value: Any) -> str:
    """One line of printable text."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise Problem(f"expected a non-empty line of text, got {shown(value)}")
    return value


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Problem(f"expected a positive whole number, got {shown(value)}")
    return value


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(_float(value)):
        raise Problem(f"expected a number, got {shown(value)}")
    if value < 0:
        raise Problem(f"expected a number of at least 0, got {shown(value)}")
    return float(value)


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # a whole number too large for a float
        return math.inf


def is_plain(value: Any) -> bool:
    """Whether a value is plain data that JSON and open_clip take: text, finite numbers, true/false, null, and
    lists and mappings (with text keys) of them."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(_float(value))
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def choice(options: Sequence[str | None]) -> Callable[[Any], Any]:
    """One of the options, exactly."""

    def check(value: Any) -> Any:
        if value not in options:
            raise Problem(f"expected one of {', '.join(str(o) for o in options)}, got {shown(value)}")
        return value

    return check


def hub_name(problem_of: Callable[[Any], str | None]) -> Callable[[Any], str]:
    """A check by one of hubids' rules: what the Hub accepts as a repo id, revision or file name."""

    def check(value: Any) -> str:
        problem = problem_of(value)
        if problem is not None:
            raise Problem(f"{problem}; got {shown(value)}")
        return str(value)

    return check


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


class Reader:
    """Walks a YAML file's node tree (not plain dicts) so every error can name its line; bounded work.

    The zoo's parser below and the task registry (`vitamin_cli.tasks`) are both readers."""

    def __init__(self, path: str, data: str | bytes) -> None:
        self.path = path
        self.data = data
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node | None, field: str | None, problem: str) -> ZooFileError:
        line = node.start_mark.line + 1 if node is not None else None
        return ZooFileError(self.path, line, field, problem)

    def root(self, expected: str) -> yaml.Node:
        """The file's top node, once it is known to be UTF-8, valid YAML and of bounded size."""
        if len(self.data) > MAX_BYTES:
            raise self.fail(None, None, f"{len(self.data):,} bytes is more than a zoo file may have ({MAX_BYTES:,})")
        try:
            text = self.data.decode("utf-8") if isinstance(self.data, bytes) else self.data
        except UnicodeDecodeError as err:
            raise self.fail(None, None, f"not UTF-8 text: {err}") from None
        try:
            root = yaml.compose(text, Loader=YamlLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ZooFileError(self.path, line, None, f"invalid YAML: {err.problem or err.context}") from None
        except yaml.YAMLError as err:
            raise self.fail(None, None, f"invalid YAML: {err}") from None
        except RecursionError:
            raise self.fail(None, None, f"nested more than {MAX_DEPTH} levels deep") from None
        if root is None:
            raise self.fail(None, None, f"the file is empty; expected {expected}")
        self.check_size(root)
        return root

    def value(self, node: yaml.Node, field: str | None) -> Any:
        """The plain value of a node; tags beyond YAML's own (`!foo`, `!!python/...`) are errors."""
        scalar = isinstance(node, yaml.ScalarNode)
        construct = self.constructor.yaml_constructors.get(node.tag) if scalar else None
        if scalar and construct is None:
            raise self.fail(node, field, f"unsupported YAML tag or value {node.tag!r}")
        try:
            if construct is not None:  # the common case; skips construct_object's bookkeeping
                return construct(self.constructor, node)
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise self.fail(node, field, f"unsupported YAML value: {getattr(err, 'problem', None) or err}") from None
        except (ValueError, TypeError, KeyError, OverflowError) as err:  # e.g. `2020-13-45`, `!!int abc`
            what = shown(node.value) if scalar else "the value"
            raise self.fail(node, field, f"cannot read {what} as {node.tag.rpartition(':')[2]} ({err})") from None

    def check_size(self, root: yaml.Node) -> None:
        """Refuse a file whose nodes, counted as its aliases expand them, are too many or too deeply nested.

        Aliases share nodes in the composed tree, so composing is cheap; what costs is building values from
        it. Walking the tree as it would expand, and stopping at the first limit, bounds that cost."""
        nodes = aliases = 0
        seen: set[int] = set()
        stack: list[tuple[yaml.Node, int, str | None]] = [(root, 1, None)]  # node, depth, field
        while stack:
            node, depth, where = stack.pop()
            nodes += 1
            if id(node) in seen:
                aliases += 1
            seen.add(id(node))
            if depth > MAX_DEPTH:
                raise self.fail(node, where, f"nested more than {MAX_DEPTH} levels deep")
            if nodes > MAX_NODES or aliases > MAX_ALIASES:
                raise self.fail(
                    node,
                    where,
                    f"more than {MAX_NODES:,} values or {MAX_ALIASES:,} uses of YAML aliases; "
                    "a zoo file needs far fewer",
                )
            if isinstance(node, yaml.SequenceNode):
                stack.extend((child, depth + 1, where) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    inner = clipped(str(key.value)) if isinstance(key, yaml.ScalarNode) else "?"
                    stack.append((key, depth + 1, where))
                    stack.append((value, depth + 1, inner if where in (None, "models") else f"{where}.{inner}"))

    def mapping(
        self, node: yaml.Node, where: str | None, required: Sequence[str], optional: Sequence[str]
    ) -> dict[str, yaml.Node]:
        """The value nodes of a mapping node by key; unknown, duplicate and missing keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where, "expected a mapping of field: value")
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, where, "expected a plain field name")
            key = key_node.value
            if key not in required and key not in optional:
                label = f"{where}.{clipped(key)}" if where else clipped(key)
                allowed = ", ".join((*required, *optional))
                raise self.fail(key_node, label, f"unknown field (allowed: {allowed})")
            label = f"{where}.{key}" if where else key
            if key in found:
                raise self.fail(key_node, label, "appears twice")
            found[key] = value_node
        for key in required:
            if key not in found:
                raise self.fail(node, f"{where}.{key}" if where else key, "missing")
        return found

    def checked(
        self, checks: Mapping[str, Callable[[Any], Any]], fields: Mapping[str, yaml.Node], label: str, where: str
    ) -> dict[str, Any]:
        """Each present field's value, converted by its check; a failed check names the line and field."""
        values: dict[str, Any] = {}
        for key, node in fields.items():
            try:
                values[key] = checks[key](self.value(node, label + key))
            except Problem as problem:
                raise self.fail(node, label + key, f"{where}: {problem}") from None
        return values
