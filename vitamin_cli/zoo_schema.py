"""zoo.yaml's schema: the checks that turn a zoo file into a `Zoo`, or into one error naming the file, line
and field (ZooFileError, exit code 2).

    zoo_schema.parse(text, "lab-zoo.yaml")   # what `zoo.load` does on a memo miss, and `vitamin pin` before it writes

A zoo file is untrusted input: its size, the depth of its nesting and the nodes its YAML aliases expand to
are limited, so that no file costs more than a bounded amount of time and memory to reject.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from vitamin_cli import hubids
from vitamin_cli.errors import ZooFileError
from vitamin_cli.zoo import (
    FAMILIES,
    METRICS,
    SCHEDULES,
    SCHEMA_VERSION,
    SIZES,
    Model,
    Weights,
    Zoo,
    freeze,
    parse_samples,
)

# ViTamin, ConvNeXt and CoAtNet towers reach their token grid with a stride of 16 px.
DEFAULT_PATCH_STRIDE = 16
# Limits on what a zoo file may cost to read. The bundled file has 37 KB, 3,700 nodes, depth 5, no aliases.
MAX_BYTES = 8 * 2**20
MAX_DEPTH = 24
MAX_NODES = 200_000  # counting what aliases expand to
MAX_ALIASES = 1_000
SHOWN_CHARS = 60  # of a bad value, in a message

_PATCH_RE = re.compile(r"/(\d+)\Z")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+/-]*\Z")
_ARCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")
NAME_MAX = 100

YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str | bytes, path: str | Path) -> Zoo:
    """Validate a zoo file's text and build its `Zoo`; any problem raises ZooFileError."""
    return _Parser(str(path), text).parse()


def _clipped(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def shown(value: Any) -> str:
    """A value for a message: its repr, shortened when long (a 100 KB name is not echoed back)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**SHOWN_CHARS:
        return f"a number of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4000'} digits"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 5] + "...'" + f" ({len(text)} characters)"


class Problem(ValueError):
    """A value that breaks the schema; the parser adds the file, line and field."""


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Problem(f"expected a non-empty string, got {shown(value)}")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Problem(f"expected a positive whole number, got {shown(value)}")
    return value


def _number(value: Any) -> float:
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


def _plain(value: Any) -> bool:
    """Whether a value is plain data that JSON and open_clip take: text, finite numbers, true/false, null, and
    lists and mappings (with text keys) of them."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(_float(value))
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _percent(value: Any) -> float:
    number = _number(value)
    if number > 100:
        raise Problem(f"expected a percentage between 0 and 100, got {shown(value)}")
    return number


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise Problem(f"expected one of {', '.join(options)}, got {shown(value)}")
        return str(value)

    return check


def _samples(value: Any) -> str:
    text = _text(value)
    try:
        total = parse_samples(text)
    except ValueError as err:
        raise Problem(str(err)) from None
    if total <= 0:
        raise Problem(f"expected a positive sample count, got {shown(value)}")
    return text


def _identifier(pattern: re.Pattern[str], what: str, characters: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value)
        if not pattern.match(text) or len(text) > NAME_MAX:
            raise Problem(
                f"expected {what} of at most {NAME_MAX} ASCII letters, digits and {characters} only, got {shown(value)}"
            )
        return text

    return check


# Names are typed on command lines and matched by globs: no spaces, no glob or markup characters.
_name = _identifier(_NAME_RE, "a name", ". _ + / -")
# An architecture becomes a file name (`<arch>.json`) in the snippet of `vitamin show`: no '/'.
_arch = _identifier(_ARCH_RE, "an architecture name", ". _ + -")


def _aliases(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Problem(f"expected a list of names, got {shown(value)}")
    return tuple(_name(v) for v in value)


def _hub_name(problem_of: Callable[[Any], str | None]) -> Callable[[Any], str]:
    """A check by one of hubids' rules: what the Hub accepts as a repo id, revision or file name."""

    def check(value: Any) -> str:
        problem = problem_of(value)
        if problem is not None:
            raise Problem(f"{problem}; got {shown(value)}")
        return str(value)

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _sha256(value: Any) -> str:
    if not hubids.is_sha256(value):
        raise Problem(f"expected 64 lower-case hex digits, got {shown(value)}")
    return str(value)


_MODEL_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "aliases": _aliases,
    "encoder": _text,
    "family": _choice(FAMILIES),
    "size": _choice(SIZES),
    "schedule": _choice(SCHEDULES),
    "image_size": _integer,
    "num_patches": _optional(_integer),
    "text_depth": _integer,
    "text_width": _integer,
    "seen_samples": _samples,
    "params_image_m": _number,
    "params_text_m": _number,
    "macs_image_g": _number,
    "macs_text_g": _number,
    **{metric: _percent for metric in METRICS},
    "arch": _arch,
    "weights_note": _optional(_text),
}
_WEIGHTS_CHECKS: dict[str, Callable[[Any], Any]] = {
    "repo": _hub_name(hubids.repo_problem),
    "filename": _hub_name(hubids.filename_problem),
    "revision": _optional(_hub_name(hubids.revision_problem)),
    "sha256": _optional(_sha256),
    "size_bytes": _optional(_integer),
}


MODEL_KEYS_OPTIONAL = ("aliases", "num_patches", "weights_note")
MODEL_KEYS_REQUIRED = tuple(key for key in (*_MODEL_CHECKS, "weights") if key not in MODEL_KEYS_OPTIONAL)
WEIGHTS_KEYS_REQUIRED = ("repo", "filename")
WEIGHTS_KEYS_OPTIONAL = tuple(key for key in _WEIGHTS_CHECKS if key not in WEIGHTS_KEYS_REQUIRED)


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
                    inner = _clipped(str(key.value)) if isinstance(key, yaml.ScalarNode) else "?"
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
                label = f"{where}.{_clipped(key)}" if where else _clipped(key)
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


class _Parser(Reader):
    """zoo.yaml's own checks, on top of the reader's."""

    def __init__(self, path: str, data: str | bytes) -> None:
        super().__init__(path, data)
        self.owners: dict[str, tuple[str, int]] = {}  # lower-case name, alias or repo -> (model, line)

    def parse(self) -> Zoo:
        root = self.root("'version' and 'models'")
        top = self.mapping(root, None, required=("version", "models"), optional=("architectures",))
        version = self.value(top["version"], "version")
        if type(version) is not int or version != SCHEMA_VERSION:
            raise self.fail(top["version"], "version", f"expected {SCHEMA_VERSION}, got {version!r}")
        architectures = self.architectures(top.get("architectures"))
        models_node = top["models"]
        if not isinstance(models_node, yaml.SequenceNode) or not models_node.value:
            raise self.fail(models_node, "models", "expected a non-empty list of models")
        models = tuple(self.model(node, architectures) for node in models_node.value)
        return Zoo(path=Path(self.path), models=models, architectures=freeze(architectures))

    def architectures(self, node: yaml.Node | None) -> dict[str, dict[str, Any]]:
        if node is None or (isinstance(node, yaml.ScalarNode) and self.value(node, "architectures") is None):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, "architectures", "expected a mapping of name: open_clip config")
        result: dict[str, dict[str, Any]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "architectures", "expected a plain architecture name")
            try:
                _arch(self.value(key_node, "architectures"))
            except Problem as problem:
                raise self.fail(key_node, "architectures", str(problem)) from None
            label = f"architectures.{key_node.value}"
            if key_node.value in result:
                raise self.fail(key_node, label, "appears twice")
            fields = self.mapping(
                value_node, label, required=("embed_dim", "vision_cfg", "text_cfg"), optional=("custom_text",)
            )
            for key in ("vision_cfg", "text_cfg"):
                if not isinstance(fields[key], yaml.MappingNode):
                    raise self.fail(fields[key], f"{label}.{key}", "expected a mapping (an open_clip config)")
            config = {key: self.value(node, f"{label}.{key}") for key, node in fields.items()}
            for key, node in fields.items():
                if not _plain(config[key]):
                    raise self.fail(
                        node, f"{label}.{key}", "expected plain values: text, numbers, true/false, lists and mappings"
                    )
            result[key_node.value] = config
        return result

    def model(self, node: yaml.Node, architectures: Mapping[str, Mapping[str, Any]]) -> Model:
        fields = self.mapping(node, None, required=MODEL_KEYS_REQUIRED, optional=MODEL_KEYS_OPTIONAL)
        name = self.value(fields["name"], "name")
        where = f"model {shown(name)}" if isinstance(name, str) else "model"
        values: dict[str, Any] = {"aliases": (), "num_patches": None, "weights_note": None}
        values.update(self.checked(_MODEL_CHECKS, {k: v for k, v in fields.items() if k != "weights"}, "", where))
        values["weights"] = self.weights(fields["weights"], where)
        model = Model(**values, line=fields["name"].start_mark.line + 1)
        self.check_consistent(model, fields, architectures, where)
        self.check_unique(model, fields)
        return model

    def weights(self, node: yaml.Node, where: str) -> Weights | None:
        if self.value(node, "weights") is None:
            return None
        fields = self.mapping(node, "weights", required=WEIGHTS_KEYS_REQUIRED, optional=WEIGHTS_KEYS_OPTIONAL)
        return Weights(**self.checked(_WEIGHTS_CHECKS, fields, "weights.", where))

    def check_consistent(
        self,
        model: Model,
        fields: Mapping[str, yaml.Node],
        architectures: Mapping[str, Mapping[str, Any]],
        where: str,
    ) -> None:
        if model.num_patches is not None:
            match = _PATCH_RE.search(model.encoder)
            stride = int(match.group(1)) if match else DEFAULT_PATCH_STRIDE
            expected = (model.image_size // stride) ** 2
            if model.image_size % stride or model.num_patches != expected:
                raise self.fail(
                    fields["num_patches"],
                    "num_patches",
                    f"{where}: {model.num_patches} patches do not match image_size {model.image_size} at a "
                    f"{stride} px stride (expected {expected})",
                )
        if model.weights is None and not model.weights_note:
            raise self.fail(fields["weights"], "weights_note", f"{where}: say in one line why there are no weights")
        inline = architectures.get(model.arch)
        if inline is not None:
            arch_size = inline["vision_cfg"].get("image_size")
            if arch_size is not None and arch_size != model.image_size:
                raise self.fail(
                    fields["arch"],
                    "arch",
                    f"{where}: architecture '{model.arch}' is built at {arch_size} px, the model at "
                    f"{model.image_size} px",
                )

    def check_unique(self, model: Model, fields: Mapping[str, yaml.Node]) -> None:
        """Names, aliases and repos (full and short) identify one model each, ignoring case."""
        claims = [("name", model.name), *(("aliases", alias) for alias in model.aliases)]
        if model.weights is not None:
            claims += [("weights.repo", model.weights.repo), ("weights.repo", model.weights.repo.split("/", 1)[1])]
        mine: set[str] = set()
        for field_name, key in claims:
            lowered = key.lower()
            node = fields["weights" if field_name == "weights.repo" else field_name]
            if lowered in mine:
                if field_name == "aliases":
                    raise self.fail(node, field_name, f"model '{model.name}': '{key}' is already its name or alias")
                continue  # a repo named like the model's own alias is that same model
            other = self.owners.get(lowered)
            if other is not None:
                raise self.fail(
                    node,
                    field_name,
                    f"model '{model.name}': '{key}' is already a name, alias or repo of '{other[0]}' "
                    f"(line {other[1]}); names must be unique, ignoring case",
                )
            mine.add(lowered)
        for lowered in mine:
            self.owners[lowered] = (model.name, model.line)
