"""zoo.yaml's schema: the checks that turn a zoo file into a `Zoo`, or into one error naming the file, line
and field (ZooFileError, exit code 2).

    schema.parse(text, "lab-zoo.yaml")   # what `zoo.load` does on a memo miss, and `vitamin pin` before it writes

The file is read by `vitamin_cli.yamlschema.Reader`, which bounds what any file may cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from vitamin_cli.hub import ids
from vitamin_cli.yamlschema import (
    Problem,
    Reader,
    choice,
    hub_name,
    is_plain,
    number,
    optional,
    positive_int,
    shown,
    text,
)
from vitamin_cli.zoo.entries import (
    FAMILIES,
    METRICS,
    SCHEDULES,
    SCHEMA_VERSION,
    SIZES,
    Model,
    Weights,
    freeze,
    parse_samples,
)
from vitamin_cli.zoo.registry import Zoo

# ViTamin, ConvNeXt and CoAtNet towers reach their token grid with a stride of 16 px.
DEFAULT_PATCH_STRIDE = 16
_PATCH_RE = re.compile(r"/(\d+)\Z")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+/-]*\Z")
_ARCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")
NAME_MAX = 100


def parse(data: str | bytes, path: str | Path) -> Zoo:
    """Validate a zoo file's text and build its `Zoo`; any problem raises ZooFileError."""
    return _Parser(str(path), data).parse()


def _percent(value: Any) -> float:
    found = number(value)
    if found > 100:
        raise Problem(f"expected a percentage between 0 and 100, got {shown(value)}")
    return found


def _samples(value: Any) -> str:
    given = text(value)
    try:
        total = parse_samples(given)
    except ValueError as err:
        raise Problem(str(err)) from None
    if total <= 0:
        raise Problem(f"expected a positive sample count, got {shown(value)}")
    return given


def _identifier(pattern: re.Pattern[str], what: str, characters: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        given = text(value)
        if not pattern.match(given) or len(given) > NAME_MAX:
            raise Problem(
                f"expected {what} of at most {NAME_MAX} ASCII letters, digits and {characters} only, got {shown(value)}"
            )
        return given

    return check


# Names are typed on command lines and matched by globs: no spaces, no glob or markup characters.
_name = _identifier(_NAME_RE, "a name", ". _ + / -")
# An architecture becomes a file name (`<arch>.json`) in the snippet of `vitamin show`: no '/'.
_arch = _identifier(_ARCH_RE, "an architecture name", ". _ + -")


def _aliases(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Problem(f"expected a list of names, got {shown(value)}")
    return tuple(_name(v) for v in value)


def _sha256(value: Any) -> str:
    if not ids.is_sha256(value):
        raise Problem(f"expected 64 lower-case hex digits, got {shown(value)}")
    return str(value)


_MODEL_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "aliases": _aliases,
    "encoder": text,
    "family": choice(FAMILIES),
    "size": choice(SIZES),
    "schedule": choice(SCHEDULES),
    "image_size": positive_int,
    "num_patches": optional(positive_int),
    "text_depth": positive_int,
    "text_width": positive_int,
    "seen_samples": _samples,
    "params_image_m": number,
    "params_text_m": number,
    "macs_image_g": number,
    "macs_text_g": number,
    **{metric: _percent for metric in METRICS},
    "arch": _arch,
    "weights_note": optional(text),
}
_WEIGHTS_CHECKS: dict[str, Callable[[Any], Any]] = {
    "repo": hub_name(ids.repo_problem),
    "filename": hub_name(ids.filename_problem),
    "revision": optional(hub_name(ids.revision_problem)),
    "sha256": optional(_sha256),
    "size_bytes": optional(positive_int),
}


MODEL_KEYS_OPTIONAL = ("aliases", "num_patches", "weights_note")
MODEL_KEYS_REQUIRED = tuple(key for key in (*_MODEL_CHECKS, "weights") if key not in MODEL_KEYS_OPTIONAL)
WEIGHTS_KEYS_REQUIRED = ("repo", "filename")
WEIGHTS_KEYS_OPTIONAL = tuple(key for key in _WEIGHTS_CHECKS if key not in WEIGHTS_KEYS_REQUIRED)


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
            name = self.architecture_name(key_node)
            label = f"architectures.{name}"
            if name in result:
                raise self.fail(key_node, label, "appears twice")
            result[name] = self.architecture(value_node, label)
        return result

    def architecture_name(self, node: yaml.Node) -> str:
        """An inline architecture's name, held to the rules of a model's `arch`."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, "architectures", "expected a plain architecture name")
        try:
            _arch(self.value(node, "architectures"))
        except Problem as problem:
            raise self.fail(node, "architectures", str(problem)) from None
        return str(node.value)  # already text: a scalar node holds its source text, typed Any

    def architecture(self, node: yaml.Node, label: str) -> dict[str, Any]:
        """An inline open_clip config: its keys checked, its towers mappings, every value plain."""
        fields = self.mapping(node, label, required=("embed_dim", "vision_cfg", "text_cfg"), optional=("custom_text",))
        for key in ("vision_cfg", "text_cfg"):
            if not isinstance(fields[key], yaml.MappingNode):
                raise self.fail(fields[key], f"{label}.{key}", "expected a mapping (an open_clip config)")
        config = {key: self.value(field, f"{label}.{key}") for key, field in fields.items()}
        for key, field in fields.items():
            if not is_plain(config[key]):
                raise self.fail(
                    field, f"{label}.{key}", "expected plain values: text, numbers, true/false, lists and mappings"
                )
        return config

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
