"""vitamin: the ViTamin model zoo, managed (`vitamin --help`, docs/)."""

from __future__ import annotations

import os
from typing import Any


def load(
    name: str,
    device: str = "cpu",
    precision: str = "fp32",
    cache_dir: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of a model: its open_clip architecture, the checkpoint (the pulled one,
    or the file given, for any row of the zoo) loaded with torch.load(weights_only=True) and strict key
    matching, and open_clip's preprocessing at the model's own resolution.

        model, preprocess, tokenizer = vitamin_cli.load("ViTamin-XL-384", device="cuda", precision="bf16")
        model, preprocess, tokenizer = vitamin_cli.load("ViT-B-32-s128M", checkpoint="my-run/epoch_32.pt")
    """
    from pathlib import Path

    from vitamin_cli import loading, zoo
    from vitamin_cli.hubcache import hub_dir

    own = Path(checkpoint) if checkpoint is not None else None
    return loading.load(zoo.load(), name, hub_root=hub_dir(cache_dir), checkpoint=own, device=device, dtype=precision)


def __getattr__(name: str) -> str:
    # The version comes from the package metadata, read only when asked for: reading it costs a start time.
    if name == "__version__":
        from vitamin_cli.extras import version

        return version()
    raise AttributeError(f"module 'vitamin_cli' has no attribute {name!r}")
