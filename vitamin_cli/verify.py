"""Prove pulled checkpoints intact, offline: re-hash every file and compare it with what is on record.

Three records must agree with the file's sha256: the manifest (hashed when it was pulled), the blob's name in
the cache (for an LFS file, its sha256), and zoo.yaml's pin when there is one. Nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitamin_cli.errors import UnknownModelError, VitaminError
from vitamin_cli.hashing import sha256_files
from vitamin_cli.hubcache import Pulled
from vitamin_cli.hubids import is_sha256
from vitamin_cli.zoo import Zoo


@dataclass
class Check:
    name: str
    path: str | None
    size_bytes: int | None
    expected_sha256: str | None
    actual_sha256: str | None = None
    status: str = "ok"  # ok, corrupt or missing
    problems: list[str] = field(default_factory=list)
    damaged: bool = field(default=False, repr=False)  # the file itself is bad or gone: a new download mends it

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "damaged"}


def verify(
    zoo: Zoo,
    manifest: dict[str, Pulled],
    names: Sequence[str] = (),
    on_bytes: Callable[[int], None] | None = None,
) -> list[Check]:
    """Check the named models (default: every pulled one); a named model that was never pulled is missing."""
    checks: list[Check] = []
    targets: list[tuple[Check, Pulled]] = []
    wanted = [zoo.get(n).name for n in names] if names else sorted(manifest)
    for name in wanted:
        entry = manifest.get(name)
        if entry is None:
            checks.append(Check(name, None, None, None, status="missing", problems=["not pulled"], damaged=True))
            continue
        check = Check(name, entry.path, entry.size_bytes, entry.sha256)
        checks.append(check)
        blob = Path(entry.path).resolve()
        if not blob.is_file():
            check.status = "missing"
            check.problems.append(f"no file at {entry.path}")
            check.damaged = True
            continue
        size = blob.stat().st_size
        if size != entry.size_bytes:
            check.status = "corrupt"
            check.problems.append(f"size {size} bytes, recorded {entry.size_bytes}")
            check.damaged = True
        targets.append((check, entry))
    digests = sha256_files([Path(entry.path).resolve() for _, entry in targets], on_bytes=on_bytes)
    for (check, entry), digest in zip(targets, digests, strict=True):
        if isinstance(digest, OSError):
            check.status = "missing"
            check.problems.append(f"cannot read: {digest}")
            check.damaged = True
            continue
        check.actual_sha256 = digest
        expected = {"manifest": entry.sha256}
        if is_sha256(entry.etag):
            expected["blob name"] = entry.etag
        pin = _pinned_sha256(zoo, entry.name)
        if pin:
            expected["zoo.yaml pin"] = pin
        for source, sha in expected.items():
            if digest != sha:
                check.status = "corrupt"
                check.problems.append(f"sha256 {digest} differs from the {source} {sha}")
                check.damaged = check.damaged or source != "zoo.yaml pin"  # a pin may be what is wrong
    return checks


def _pinned_sha256(zoo: Zoo, name: str) -> str | None:
    try:
        weights = zoo.get(name).weights
    except UnknownModelError:  # pulled with another zoo file
        return None
    return weights.sha256 if weights else None


def deep_check(zoo: Zoo, check: Check, hub_root: Path) -> None:
    """Load the checkpoint strictly into its architecture, compare its size with the zoo, and run one forward
    pass on a dummy image and text, which must give finite embeddings of the model's width."""
    import torch

    from vitamin_cli import arch, loading
    from vitamin_cli.audit import tolerance

    model_entry = zoo.get(check.name)
    try:
        model, _, tokenizer = loading.load(zoo, check.name, hub_root)
    except VitaminError as err:
        check.status = "corrupt"
        check.problems.append(err.message)
        return
    image_params = sum(p.numel() for p in model.visual.parameters()) / 1e6
    text_params = sum(p.numel() for p in model.parameters()) / 1e6 - image_params
    for label, measured, reported in (
        ("image", image_params, model_entry.params_image_m),
        ("text", text_params, model_entry.params_text_m),
    ):
        if abs(measured - reported) > tolerance(model_entry) + 1e-9:
            check.status = "corrupt"
            check.problems.append(f"{label} tower has {measured:.2f} M parameters, the zoo reports {reported:g} M")
    width = arch.config(zoo, model_entry)["embed_dim"]
    size = model_entry.image_size
    with torch.no_grad():
        image = model.encode_image(torch.zeros(1, 3, size, size))
        text = model.encode_text(tokenizer(["a photo of a cat"]))
    for label, embedding in (("image", image), ("text", text)):
        if tuple(embedding.shape) != (1, width):
            check.status = "corrupt"
            check.problems.append(f"{label} embedding has shape {tuple(embedding.shape)}, expected (1, {width})")
        elif not bool(torch.isfinite(embedding).all()):
            check.status = "corrupt"
            check.problems.append(f"{label} embedding is not finite (NaN or inf)")
