"""The zoo as data: zoo.yaml parsed into frozen, typed entries, validated strictly.

    from vitamin_cli import zoo
    zoo.get("ViTamin-XL-384")              # by canonical name, alias or Hugging Face repo, any case
    zoo.select(size=["L"], released=True)  # the filters of `vitamin ls`
    zoo.load("lab-zoo.yaml").models        # another registry

Every problem in a zoo file is reported with the file, line and field (ZooFileError, exit code 2).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import yaml

from vitamin_cli.errors import UnknownModelError, UsageError, ZooFileError

ZOO_ENV = "VITAMIN_ZOO"
SCHEMA_VERSION = 1

FAMILIES = ("vit", "convnext", "coatnet", "vitamin")
SIZES = ("S", "B", "L", "L2", "XL")
SCHEDULES = ("benchmark", "long")
METRICS = ("imagenet", "avg38", "dist_shift", "vtab", "retrieval")
# Columns `--sort` accepts: every numeric field; seen_samples sorts by its total.
NUMERIC_COLUMNS = (
    "image_size",
    "num_patches",
    "text_depth",
    "text_width",
    "seen_samples",
    "params_image_m",
    "params_text_m",
    "macs_image_g",
    "macs_text_g",
    *METRICS,
)

_SAMPLES_RE = re.compile(r"^(\d+(?:\.\d+)?)([MB])$")
_UNITS = {"M": 10**6, "B": 10**9}
_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PATCH_RE = re.compile(r"/(\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$")
# ViTamin, ConvNeXt and CoAtNet towers reach their token grid with a stride of 16 px.
DEFAULT_PATCH_STRIDE = 16


@dataclass(frozen=True)
class Weights:
    """Where a released checkpoint lives on the Hugging Face Hub, and its pins (empty until pinned)."""

    repo: str
    filename: str
    revision: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class Model:
    """One row of the zoo: reported values as printed in the zoo table, plus how to build and fetch it."""

    name: str
    aliases: tuple[str, ...]
    encoder: str  # the table's spelling, e.g. "ViT-S/32"
    family: str
    size: str
    schedule: str  # "benchmark" (the 48-model table) or "long" (the 13 long-schedule models)
    image_size: int
    num_patches: int | None
    text_depth: int
    text_width: int
    seen_samples: str  # e.g. "128M", "12.8B+0.5B"
    params_image_m: float
    params_text_m: float
    macs_image_g: float
    macs_text_g: float
    imagenet: float
    avg38: float
    dist_shift: float
    vtab: float
    retrieval: float
    arch: str  # an upstream open_clip config name, or a key of the zoo file's `architectures`
    weights: Weights | None
    weights_note: str | None
    line: int = field(default=0, compare=False)  # where the entry starts in its zoo file

    @property
    def seen_samples_total(self) -> int:
        return parse_samples(self.seen_samples)

    @property
    def released(self) -> bool:
        return self.weights is not None

    def value(self, column: str) -> float | int | None:
        """A numeric column by its JSON key; `seen_samples` gives the total."""
        if column == "seen_samples":
            return self.seen_samples_total
        value: float | int | None = getattr(self, column)
        return value

    def to_json(self) -> dict[str, Any]:
        """The `vitamin ls --json` object (docs/json.md): exactly these keys, in this order."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "encoder": self.encoder,
            "family": self.family,
            "size": self.size,
            "image_size": self.image_size,
            "num_patches": self.num_patches,
            "text_depth": self.text_depth,
            "text_width": self.text_width,
            "seen_samples": self.seen_samples,
            "seen_samples_total": self.seen_samples_total,
            "params_image_m": self.params_image_m,
            "params_text_m": self.params_text_m,
            "macs_image_g": self.macs_image_g,
            "macs_text_g": self.macs_text_g,
            "imagenet": self.imagenet,
            "avg38": self.avg38,
            "dist_shift": self.dist_shift,
            "vtab": self.vtab,
            "retrieval": self.retrieval,
            "weights": None if self.weights is None else dict(vars(self.weights)),
            "weights_note": self.weights_note,
        }


def parse_samples(text: str) -> int:
    """'128M' -> 128e6, '12.8B+0.5B' -> 13.3e9, exactly (integer arithmetic, no float rounding)."""
    total = 0
    for part in text.split("+"):
        match = _SAMPLES_RE.match(part.strip())
        if not match:
            raise ValueError(f"'{text}' is not a sample count like 128M, 1.28B or 12.8B+0.5B")
        whole, _, fraction = match.group(1).partition(".")
        total += int(whole + fraction) * _UNITS[match.group(2)] // 10 ** len(fraction)
    return total


@dataclass(frozen=True)
class Zoo:
    """A loaded zoo file: its models in table order and its inline architectures."""

    path: Path
    models: tuple[Model, ...]
    architectures: Mapping[str, Mapping[str, Any]]

    @functools.cached_property
    def _index(self) -> dict[str, Model]:
        return {key: model for model in self.models for key in lookup_keys(model)}

    def get(self, name: str) -> Model:
        """A model by canonical name, alias or Hugging Face repo (`org/name` or `name`), ignoring case."""
        model = self._index.get(name.strip().lower())
        if model is None:
            raise UnknownModelError(f"unknown model '{name}'", hint=suggest(name, self._display_names()))
        return model

    def _display_names(self) -> list[str]:
        return [n for m in self.models for n in (m.name, *m.aliases)]

    def select(
        self,
        names: str | Sequence[str] = (),
        *,
        size: str | Iterable[str] = (),
        family: str | Iterable[str] = (),
        samples: str | Iterable[str] = (),
        resolution: int | Iterable[int] = (),
        released: bool | None = None,
    ) -> list[Model]:
        """The models matching every given filter, in table order. Values of one filter are alternatives.

        `names` are names, aliases or repos (an unknown one raises UnknownModelError) or shell-style
        globs ('ViTamin-L*') matched against names and aliases. A filter takes one value or several.
        """
        sizes = {s.upper() for s in _several(size)}
        families = {f.lower() for f in _several(family)}
        _check_known("size", sizes, SIZES)
        _check_known("family", families, FAMILIES)
        totals = {_parse_samples_arg(s) for s in _several(samples)}
        resolutions = set(_several(resolution))
        matched = self._match_names(list(_several(names))) if names else None
        return [
            m
            for m in self.models
            if (matched is None or m.name in matched)
            and (not sizes or m.size.upper() in sizes)
            and (not families or m.family in families)
            and (not totals or m.seen_samples_total in totals)
            and (not resolutions or m.image_size in resolutions)
            and (released is None or m.released == released)
        ]

    def _match_names(self, patterns: Sequence[str]) -> set[str]:
        matched: set[str] = set()
        for pattern in patterns:
            if not any(ch in pattern for ch in "*?["):
                matched.add(self.get(pattern).name)
                continue
            glob = pattern.lower()
            matched.update(m.name for m in self.models if any(fnmatch.fnmatchcase(k, glob) for k in lookup_keys(m)))
        return matched

    def siblings(self, model: Model) -> list[Model]:
        """The same encoder at other data scales or resolutions."""
        return [m for m in self.models if m.encoder == model.encoder and m.name != model.name]

    @functools.cached_property
    def winners(self) -> Mapping[str, frozenset[str]]:
        """For each model, the metrics it wins (ties included) in its block, as the zoo table bolds them.

        A block is one size class at one data scale of the benchmarked table, or the long-schedule table.
        """
        blocks: dict[tuple[str, ...], list[Model]] = {}
        for m in self.models:
            key = (m.schedule, m.size, m.seen_samples) if m.schedule == "benchmark" else (m.schedule,)
            blocks.setdefault(key, []).append(m)
        wins: dict[str, set[str]] = {m.name: set() for m in self.models}
        for block in blocks.values():
            for metric in METRICS:
                best = max(getattr(m, metric) for m in block)
                for m in block:
                    if getattr(m, metric) == best:
                        wins[m.name].add(metric)
        return MappingProxyType({name: frozenset(metrics) for name, metrics in wins.items()})

    def inline_architecture(self, model: Model) -> dict[str, Any] | None:
        """The open_clip config zoo.yaml gives for the model's arch, or None for an upstream config name."""
        config = self.architectures.get(model.arch)
        return None if config is None else _thaw(config)


def lookup_keys(model: Model) -> list[str]:
    """Lower-case names a model answers to: its name, aliases and Hugging Face repo (full and short)."""
    keys = [model.name, *model.aliases]
    if model.weights is not None:
        keys += [model.weights.repo, model.weights.repo.split("/", 1)[1]]
    return [k.lower() for k in keys]


def suggest(name: str, candidates: Sequence[str]) -> str:
    import difflib

    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)
    if not close:
        return "run `vitamin ls` to see every model"
    return "did you mean: " + ", ".join(by_lower[c] for c in close) + "?"


def _several(value: Any) -> Iterable[Any]:
    """One filter value or several."""
    return (value,) if isinstance(value, (str, int)) else value


def _check_known(what: str, given: set[str], known: Sequence[str]) -> None:
    unknown = given - {k.lower() if what == "family" else k.upper() for k in known}
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(sorted(unknown))}; expected one of {', '.join(known)}")


def _parse_samples_arg(text: str) -> int:
    try:
        return parse_samples(text.strip().upper())
    except ValueError:
        raise UsageError(f"--samples: '{text}' is not a sample count like 128M, 1.28B or 12.8B+0.5B") from None


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


# ---------------------------------------------------------------------------------------------------
# Loading and validation


def default_path() -> Path:
    """$VITAMIN_ZOO, else the zoo.yaml bundled in the package (or at the root of a source checkout)."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    bundled = here / "zoo.yaml"
    return bundled if bundled.exists() else here.parent / "zoo.yaml"


def load(path: str | os.PathLike[str] | None = None) -> Zoo:
    """Load and validate a zoo file (default: `default_path()`)."""
    resolved = Path(path) if path is not None else default_path()
    try:
        if not resolved.exists():
            raise ZooFileError(str(resolved), None, None, "cannot read the zoo file: no such file")
        if not resolved.is_file():  # a folder, a device or a pipe would fail late or never end
            raise ZooFileError(str(resolved), None, None, "not a regular file; expected a zoo YAML file")
        data = resolved.read_bytes()
    except OSError as err:
        raise ZooFileError(str(resolved), None, None, f"cannot read the zoo file: {err.strerror}") from None
    return _load(str(resolved), data)


def get(name: str) -> Model:
    """A model of the default zoo by name, alias or repo."""
    return load().get(name)


def select(names: str | Sequence[str] = (), **filters: Any) -> list[Model]:
    """Models of the default zoo matching the `vitamin ls` filters (see Zoo.select)."""
    return load().select(names, **filters)


@functools.lru_cache(maxsize=8)
def _load(path: str, data: bytes) -> Zoo:
    """Parse and validate, or reuse the validated result of the same bytes from the on-disk cache.

    Validating node by node takes most of `vitamin ls`'s own time; the cache entry is JSON named after a hash
    of the file's bytes and of this module, so any change to either makes a new one.
    """
    cache_file = cache_dir() / f"zoo-{_cache_key(data)}.json"
    try:
        return _from_cache(path, json.loads(cache_file.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    zoo = _Parser(path, data).parse()
    _write_cache(cache_file, zoo)
    return zoo


CACHE_ENTRIES = 8  # validated zoo files kept: the bundled one and a few of a lab's own


def cache_dir() -> Path:
    """vitamin's own cache folder (validated zoo files, audit counts): $XDG_CACHE_HOME/vitamin."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vitamin"


def _cache_key(data: bytes) -> str:
    import hashlib

    me = Path(__file__).stat()
    digest = hashlib.sha256(f"{SCHEMA_VERSION}:{me.st_mtime_ns}:{me.st_size}:".encode() + data)
    return digest.hexdigest()[:32]


def _from_cache(path: str, cached: dict[str, Any]) -> Zoo:
    models = tuple(
        Model(**{**m, "aliases": tuple(m["aliases"]), "weights": m["weights"] and Weights(**m["weights"])})
        for m in cached["models"]
    )
    return Zoo(path=Path(path), models=models, architectures=_freeze(cached["architectures"]))


def _write_cache(cache_file: Path, zoo: Zoo) -> None:
    """Best effort: a read-only or full disk only costs the next start its speed."""
    import dataclasses
    import tempfile

    payload = {
        "models": [dataclasses.asdict(m) for m in zoo.models],
        "architectures": _thaw(zoo.architectures),
    }
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, prefix=".zoo-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out)
        os.replace(tmp, cache_file)
        older = sorted(cache_file.parent.glob("zoo-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in older[CACHE_ENTRIES:]:
            stale.unlink()
    except OSError:
        Path(tmp).unlink(missing_ok=True)


_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Problem(ValueError):
    """A value that breaks the schema; the parser adds the file, line and field."""


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Problem(f"expected a non-empty string, got {value!r}")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _Problem(f"expected a positive whole number, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Problem(f"expected a number, got {value!r}")
    if value < 0:
        raise _Problem(f"expected a number of at least 0, got {value!r}")
    return float(value)


def _percent(value: Any) -> float:
    number = _number(value)
    if number > 100:
        raise _Problem(f"expected a percentage between 0 and 100, got {value!r}")
    return number


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise _Problem(f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    return check


def _samples(value: Any) -> str:
    text = _text(value)
    try:
        total = parse_samples(text)
    except ValueError as err:
        raise _Problem(str(err)) from None
    if total <= 0:
        raise _Problem(f"expected a positive sample count, got {value!r}")
    return text


def _name(value: Any) -> str:
    """Names are typed on command lines and matched by globs: no spaces, no glob or markup characters."""
    text = _text(value)
    if not _NAME_RE.match(text):
        raise _Problem(f"expected a name of letters, digits and . _ + / - only, got {value!r}")
    return text


def _aliases(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Problem(f"expected a list of names, got {value!r}")
    return tuple(_name(v) for v in value)


def _repo(value: Any) -> str:
    text = _text(value)
    if not _REPO_RE.match(text):
        raise _Problem(f"expected a Hugging Face repo id like 'org/name', got {value!r}")
    return text


def _filename(value: Any) -> str:
    text = _text(value)
    parts = PurePosixPath(text).parts
    if text.startswith("/") or "\\" in text or ".." in parts or "." in parts:
        raise _Problem(
            f"expected a relative file path inside the repo, without '..', '\\' or a leading '/', got {value!r}"
        )
    return text


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _sha256(value: Any) -> str:
    text = _text(value)
    if not _SHA256_RE.match(text):
        raise _Problem(f"expected 64 lower-case hex digits, got {value!r}")
    return text


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
    "arch": _text,
    "weights_note": _optional(_text),
}
_WEIGHTS_CHECKS: dict[str, Callable[[Any], Any]] = {
    "repo": _repo,
    "filename": _filename,
    "revision": _optional(_text),
    "sha256": _optional(_sha256),
    "size_bytes": _optional(_integer),
}


_MODEL_KEYS_OPTIONAL = ("aliases", "num_patches", "weights_note")
_MODEL_KEYS_REQUIRED = tuple(key for key in (*_MODEL_CHECKS, "weights") if key not in _MODEL_KEYS_OPTIONAL)
_WEIGHTS_KEYS_REQUIRED = ("repo", "filename")
_WEIGHTS_KEYS_OPTIONAL = tuple(key for key in _WEIGHTS_CHECKS if key not in _WEIGHTS_KEYS_REQUIRED)


class _Parser:
    """Walks the YAML node tree (not plain dicts) so every error can name its line."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = data
        self.constructor = yaml.constructor.SafeConstructor()
        self.owners: dict[str, tuple[str, int]] = {}  # lower-case name, alias or repo -> (model, line)

    def fail(self, node: yaml.Node | None, field: str | None, problem: str) -> ZooFileError:
        line = node.start_mark.line + 1 if node is not None else None
        return ZooFileError(self.path, line, field, problem)

    def value(self, node: yaml.Node, field: str | None) -> Any:
        """The plain value of a node; tags beyond YAML's own (`!foo`, `!!python/...`) are errors."""
        if isinstance(node, yaml.ScalarNode):  # the common case; skips construct_object's bookkeeping
            construct = self.constructor.yaml_constructors.get(node.tag)
            if construct is None:
                raise self.fail(node, field, f"unsupported YAML tag or value {node.tag!r}")
            return construct(self.constructor, node)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise self.fail(node, field, f"unsupported YAML value: {getattr(err, 'problem', None) or err}") from None

    def parse(self) -> Zoo:
        try:
            text = self.data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise self.fail(None, None, f"not UTF-8 text: {err}") from None
        try:
            root = yaml.compose(text, Loader=_YamlLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ZooFileError(self.path, line, None, f"invalid YAML: {err.problem or err.context}") from None
        except yaml.YAMLError as err:
            raise ZooFileError(self.path, None, None, f"invalid YAML: {err}") from None
        if root is None:
            raise self.fail(None, None, "the file is empty; expected 'version' and 'models'")
        top = self.mapping(root, None, required=("version", "models"), optional=("architectures",))
        version = self.value(top["version"], "version")
        if type(version) is not int or version != SCHEMA_VERSION:
            raise self.fail(top["version"], "version", f"expected {SCHEMA_VERSION}, got {version!r}")
        architectures = self.architectures(top.get("architectures"))
        models_node = top["models"]
        if not isinstance(models_node, yaml.SequenceNode) or not models_node.value:
            raise self.fail(models_node, "models", "expected a non-empty list of models")
        models = tuple(self.model(node, architectures) for node in models_node.value)
        return Zoo(path=Path(self.path), models=models, architectures=_freeze(architectures))

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
            label = f"{where}.{key}" if where else key
            if key not in required and key not in optional:
                allowed = ", ".join((*required, *optional))
                raise self.fail(key_node, label, f"unknown field (allowed: {allowed})")
            if key in found:
                raise self.fail(key_node, label, "appears twice")
            found[key] = value_node
        for key in required:
            if key not in found:
                raise self.fail(node, f"{where}.{key}" if where else key, "missing")
        return found

    def architectures(self, node: yaml.Node | None) -> dict[str, dict[str, Any]]:
        if node is None or (isinstance(node, yaml.ScalarNode) and self.value(node, "architectures") is None):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, "architectures", "expected a mapping of name: open_clip config")
        result: dict[str, dict[str, Any]] = {}
        for key_node, value_node in node.value:
            label = f"architectures.{key_node.value}"
            if key_node.value in result:
                raise self.fail(key_node, label, "appears twice")
            fields = self.mapping(
                value_node, label, required=("embed_dim", "vision_cfg", "text_cfg"), optional=("custom_text",)
            )
            for key in ("vision_cfg", "text_cfg"):
                if not isinstance(fields[key], yaml.MappingNode):
                    raise self.fail(fields[key], f"{label}.{key}", "expected a mapping (an open_clip config)")
            result[key_node.value] = {key: self.value(node, f"{label}.{key}") for key, node in fields.items()}
        return result

    def checked(
        self, checks: Mapping[str, Callable[[Any], Any]], fields: Mapping[str, yaml.Node], label: str, where: str
    ) -> dict[str, Any]:
        """Each present field's value, converted by its check; a failed check names the line and field."""
        values: dict[str, Any] = {}
        for key, node in fields.items():
            try:
                values[key] = checks[key](self.value(node, label + key))
            except _Problem as problem:
                raise self.fail(node, label + key, f"{where}: {problem}") from None
        return values

    def model(self, node: yaml.Node, architectures: Mapping[str, Mapping[str, Any]]) -> Model:
        fields = self.mapping(node, None, required=_MODEL_KEYS_REQUIRED, optional=_MODEL_KEYS_OPTIONAL)
        name = self.value(fields["name"], "name")
        where = f"model '{name}'" if isinstance(name, str) else "model"
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
        fields = self.mapping(node, "weights", required=_WEIGHTS_KEYS_REQUIRED, optional=_WEIGHTS_KEYS_OPTIONAL)
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
