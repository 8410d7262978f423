"""What `--bench FILE`, `--eval FILE` and `--audit` give a listing of models: the newest identity of each, as the
`ls` table shows it, as the fields `--where`, `--sort` and `--pareto` read (zoo/fields.py), and as the objects
each `ls --json` record carries (docs/json.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vitamin_cli import zoo
from vitamin_cli.errors import UsageError

if TYPE_CHECKING:
    from vitamin_cli.bench.results import Speeds
    from vitamin_cli.eval.results import Accuracy


def options_given(
    bench_file: Path | None, gpu: str | None, eval_file: Path | None, with_audit: bool = False
) -> list[str]:
    """The options of measured values a command was given, as zoo/fields.py names them (`--gpu` counts as
    `--bench`: reading the values then asks for the file)."""
    given = (("--bench", bench_file or gpu), ("--eval", eval_file), ("--audit", with_audit))
    return [flag for flag, on in given if on]


@dataclass
class Measured:
    """What --bench, --eval and --audit give ls: the newest identity of each, as the table shows it."""

    speeds: Speeds | None = None
    accuracy: Accuracy | None = None
    audit: dict[str, dict[str, float]] | None = None

    @classmethod
    def read(
        cls,
        registry: zoo.Zoo,
        models: list[zoo.Model],
        bench_file: Path | None,
        gpu: str | None,
        eval_file: Path | None,
        with_audit: bool = False,
    ) -> Measured:
        if not (bench_file or gpu or eval_file or with_audit):  # plain ls reads no file and imports nothing more
            return cls()
        from vitamin_cli.bench.results import bench_speeds
        from vitamin_cli.eval.results import read_accuracy

        return cls(
            bench_speeds(bench_file, gpu),
            read_accuracy(eval_file, models) if eval_file else None,
            _audit_counts(registry, models) if with_audit else None,
        )

    def values(self, model: zoo.Model) -> dict[str, float | None]:
        """The measured fields of docs/cli.md#fields, by name."""
        found: dict[str, float | None] = {}
        if self.speeds is not None:
            found["images_per_s"] = self.speeds.get(model, "image")
            found["texts_per_s"] = self.speeds.get(model, "text")
        if self.accuracy is not None:
            found.update({f"{m}_measured": self.accuracy.get(model, m) for m in zoo.METRICS})
        if self.audit is not None:
            counts = self.audit.get(model.name, {})
            for name, key in AUDIT_KEYS.items():
                found[name] = counts.get(key)
        return found

    def record(self, model: zoo.Model, path: Path | None) -> dict[str, object]:
        """The model's JSON object (docs/json.md): the zoo's keys, whether it is pulled and where, and what was
        measured, each with what it was measured under."""
        found: dict[str, object] = {**model.to_json(), "pulled": path is not None, "checkpoint": path and str(path)}
        if self.speeds is not None:
            newest = self.speeds.measured(model)
            found["bench"] = (
                None
                if not newest
                else {
                    "device": self.speeds.device,
                    "settings": newest[0].settings,
                    "images_per_s": newest[0].rates.get("image"),
                    "texts_per_s": newest[0].rates.get("text"),
                    "other_identities": self.speeds.others(model),
                }
            )
        if self.accuracy is not None:
            kept = self.accuracy.measured(model)
            found["eval"] = {**kept[0].to_json(), "other_identities": self.accuracy.others(model)} if kept else None
        if self.audit is not None:
            from vitamin_cli.models.audit import libraries

            counts = self.audit.get(model.name, {})
            found["audit"] = {name: counts.get(key) for name, key in AUDIT_KEYS.items()} | {"libraries": libraries()}
        return found

    def csv_extra(self) -> list[str]:
        """The CSV columns of what was measured: `record`'s objects, flattened (`bench_images_per_s`, ...)."""
        extra: list[str] = []
        if self.speeds is not None:
            extra += [f"bench_{k}" for k in ("device", "settings", "images_per_s", "texts_per_s", "other_identities")]
        if self.accuracy is not None:
            extra += [f"eval_identity_{k}" for k in EVAL_IDENTITY_KEYS]
            extra += [f"eval_columns_{m}" for m in zoo.METRICS] + ["eval_other_identities"]
        if self.audit is not None:
            extra += [f"audit_{k}" for k in AUDIT_KEYS] + [f"audit_libraries_{k}" for k in AUDIT_LIBRARIES]
        return ["pulled", "checkpoint", *extra]


AUDIT_KEYS = {
    "params_image_m_measured": "params_image_m",
    "params_text_m_measured": "params_text_m",
    "macs_image_g_measured": "macs_image_g_paper",
    "macs_text_g_measured": "macs_text_g_paper",
}
EVAL_IDENTITY_KEYS = ("checkpoint_sha256", "architecture_sha256", "dtype", "device", "templates")
AUDIT_LIBRARIES = ("torch", "open_clip_torch", "timm")


def _audit_counts(registry: zoo.Zoo, models: list[zoo.Model]) -> dict[str, dict[str, float]]:
    """Measured counts by model name, from the cache `vitamin audit` fills; no torch is imported here."""
    from vitamin_cli.models.audit import architecture_id, cached_counts

    cached = cached_counts()
    counts = {m.name: cached.get(architecture_id(registry, m)) for m in models}
    missing = sorted({m.arch for m in models if counts[m.name] is None})
    if missing:
        raise UsageError(
            f"no audit of {', '.join(missing)} yet with the installed torch, open_clip and timm",
            hint="run `vitamin audit --all` once (about a minute); its results are cached",
        )
    return {name: value for name, value in counts.items() if value is not None}
