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

# timm's names of the released ViTamin weights (timm 1.0.31's pretrained configs), by the repo they load: a
# name resolves to the zoo's row with that repo, with its tag and, where the tag is timm's default, without.
TIMM_NAMES = {
    "vitamin_small_224.datacomp1b_clip": "jienengchen/ViTamin-S",
    "vitamin_base_224.datacomp1b_clip": "jienengchen/ViTamin-B",
    "vitamin_large_224.datacomp1b_clip": "jienengchen/ViTamin-L-224px",
    "vitamin_large_256.datacomp1b_clip": "jienengchen/ViTamin-L-256px",
    "vitamin_large_336.datacomp1b_clip": "jienengchen/ViTamin-L-336px",
    "vitamin_large_384.datacomp1b_clip": "jienengchen/ViTamin-L-384px",
    "vitamin_large2_224.datacomp1b_clip": "jienengchen/ViTamin-L2-224px",
    "vitamin_large2_256.datacomp1b_clip": "jienengchen/ViTamin-L2-256px",
    "vitamin_large2_336.datacomp1b_clip": "jienengchen/ViTamin-L2-336px",
    "vitamin_large2_384.datacomp1b_clip": "jienengchen/ViTamin-L2-384px",
    "vitamin_xlarge_256.datacomp1b_clip": "jienengchen/ViTamin-XL-256px",
    "vitamin_xlarge_384.datacomp1b_clip": "jienengchen/ViTamin-XL-384px",
}
# timm names that map to no row, and why (shared/UPSTREAM.md).
TIMM_NOT_IN_THE_ZOO = {
    "vitamin_small_224": "timm's default tag for vitamin_small_224 is the LTT model, outside the zoo; "
    "vitamin_small_224.datacomp1b_clip is ViTamin-S",
    "vitamin_base_224": "timm's default tag for vitamin_base_224 is the LTT model, outside the zoo; "
    "vitamin_base_224.datacomp1b_clip is ViTamin-B",
    "vitamin_xlarge_336": "timm's vitamin_xlarge_336 loads the 256 px weights upstream (its config points at the "
    "256 px model), so it names no row for sure; ViTamin-XL-336 is open_clip's name of the 336 px row",
}


@dataclass(frozen=True)
class Zoo:
    """A loaded zoo file: its models in table order and its inline architectures."""

    path: Path
    models: tuple[Model, ...]
    architectures: Mapping[str, Mapping[str, Any]]

    @functools.cached_property
    def _index(self) -> dict[str, Model]:
        index = {key: model for model in self.models for key in lookup_keys(model)}
        by_repo = {m.weights.repo.lower(): m for m in self.models if m.weights is not None}
        stems: dict[str, list[Model]] = {}
        for model in self.models:  # `ViTamin-L-224` for ViTamin-L-224-s12.8B: the name without its data scale
            stem, _, scale = model.name.rpartition("-s")
            if stem and scale[:1].isdigit():
                stems.setdefault(stem.lower(), []).append(model)
        for stem, found in stems.items():
            if len(found) == 1:
                index.setdefault(stem, found[0])
        for timm_name, repo in TIMM_NAMES.items():  # timm's names of the released weights, with their tag
            if repo.lower() in by_repo:
                index.setdefault(timm_name, by_repo[repo.lower()])
                if timm_name.partition(".")[0] not in TIMM_NOT_IN_THE_ZOO:  # its default tag is this one
                    index.setdefault(timm_name.partition(".")[0], by_repo[repo.lower()])
        return index

    def names_of(self, model: Model) -> list[str]:
        """Every other name the model answers to: its repo (and open_clip's `hf-hub:` form), its resolution's
        own name, timm's names of its weights."""
        candidates = []
        if model.weights is not None:
            candidates += [model.weights.repo, f"hf-hub:{model.weights.repo}"]
        stem, _, scale = model.name.rpartition("-s")
        if stem and scale[:1].isdigit():
            candidates.append(stem)
        candidates += [n for n in TIMM_NAMES if self._index.get(n) is model]
        candidates += [n for n in {t.partition(".")[0] for t in TIMM_NAMES} if self._index.get(n) is model]
        known = {n.lower() for n in (model.name, *model.aliases)}
        return [
            n
            for n in candidates
            if n.lower() not in known and self._index.get(n.lower().removeprefix("hf-hub:")) is model
        ]

    def get(self, name: str) -> Model:
        """A model by canonical name, alias, Hugging Face repo (`org/name`, `name` or open_clip's
        `hf-hub:org/name`), the name of one resolution (`ViTamin-L-224`), or timm's name of its weights
        (`vitamin_large_224.datacomp1b_clip`), ignoring case."""
        if not isinstance(name, str):
            raise UnknownModelError(f"a model name is text, not {type(name).__name__}")
        key = name.strip().lower().removeprefix("hf-hub:")
        model = self._index.get(key)
        if model is None:
            shown = repr(name) if len(name) <= 80 else f"{name[:60]!r}... ({len(name):,} characters)"
            why = TIMM_NOT_IN_THE_ZOO.get(key.partition(".")[0]) if key.startswith("vitamin_") else None
            if why is None and key.endswith("_ltt"):
                why = "the LTT models (a 768-wide text tower) are released but outside the zoo's 61 rows"
            hint = why or suggest(name[:200], self._display_names())
            raise UnknownModelError(f"unknown model {shown}", hint=hint)
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
