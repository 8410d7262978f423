"""A loaded zoo and its queries: a model by any of its names, the `vitamin ls` filters, siblings, winners."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vitamin_cli.errors import UnknownModelError, UsageError
from vitamin_cli.zoo.entries import FAMILIES, METRICS, SIZES, Model, parse_samples, thaw


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
        if not isinstance(name, str):
            raise UnknownModelError(f"a model name is text, not {type(name).__name__}")
        model = self._index.get(name.strip().lower())
        if model is None:
            shown = repr(name) if len(name) <= 80 else f"{name[:60]!r}... ({len(name):,} characters)"
            raise UnknownModelError(f"unknown model {shown}", hint=suggest(name[:200], self._display_names()))
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
        globs ('ViTamin-L*') matched against names and aliases. A filter takes one value or several:
        `size` ('L', zoo.Size.L), `family` ('vitamin'), `samples` ('1.28B'), `resolution` (pixels, an int:
        384), `released` (True, False, or None for either). A value of the wrong type, or one no model
        could have (an unknown size, a resolution of 0), raises UsageError naming the filter, as the
        same mistake on the command line is a usage error: never an empty list that looks like an answer.
        """
        wanted_names = _values("names", names, str, "model names or globs, e.g. 'ViTamin-L*'")
        sizes = {s.upper() for s in _values("size", size, str, f"sizes from {', '.join(SIZES)}")}
        families = {f.lower() for f in _values("family", family, str, f"families from {', '.join(FAMILIES)}")}
        _check_known("size", sizes, SIZES)
        _check_known("family", families, FAMILIES)
        totals = {_parse_samples_arg(s) for s in _values("samples", samples, str, "sample counts, e.g. '1.28B'")}
        resolutions = set(_values("resolution", resolution, int, "image sizes in pixels, e.g. 384"))
        if any(r < 1 for r in resolutions):
            raise UsageError(f"resolution: {min(resolutions)} is not an image size; give pixels, e.g. 224 or 384")
        if released is not None and not isinstance(released, bool):
            raise UsageError(f"released takes True, False or None (either), not {_shown(released)}")
        matched = self._match_names(list(wanted_names)) if wanted_names else None
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
        return None if config is None else thaw(config)


def lookup_keys(model: Model) -> list[str]:
    """Lower-case names a model answers to: its name, aliases and Hugging Face repo (full and short)."""
    keys = [model.name, *model.aliases]
    if model.weights is not None:
        keys += [model.weights.repo, model.weights.repo.split("/", 1)[1]]
    return [k.lower() for k in keys]


def suggest(name: str, candidates: Sequence[str], otherwise: str = "run `vitamin ls` to see every model") -> str:
    import difflib

    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)
    if not close:
        return otherwise
    return "did you mean: " + ", ".join(by_lower[c] for c in close) + "?"


def _values(name: str, given: Any, kind: type, accepts: str) -> tuple[Any, ...]:
    """A filter's values: one of `kind`, or an iterable of them (a str is one value, not its letters; None is
    none). Anything else is a UsageError naming the filter and what it accepts."""
    if given is None:
        return ()
    if isinstance(given, (str, int)):
        values: tuple[Any, ...] = (given,)
    elif isinstance(given, Iterable) and not isinstance(given, (bytes, bytearray, Mapping)):
        values = tuple(given)
    else:
        values = (given,)
    wrong = [v for v in values if not isinstance(v, kind) or isinstance(v, bool)]
    if wrong:
        raise UsageError(f"{name} takes {kind.__name__} values ({accepts}), one or several, not {_shown(wrong[0])}")
    return values


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _check_known(what: str, given: set[str], known: Sequence[str]) -> None:
    unknown = given - {k.lower() if what == "family" else k.upper() for k in known}
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(sorted(unknown))}; expected one of {', '.join(known)}")


def _parse_samples_arg(text: str) -> int:
    try:
        return parse_samples(text.strip().upper())
    except ValueError:
        raise UsageError(f"--samples: '{text}' is not a sample count like 128M, 1.28B or 12.8B+0.5B") from None
