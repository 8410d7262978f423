"""vitamin: the ViTamin model zoo, managed (`vitamin --help`, docs/).

The public Python API is `vitamin_cli.load` and `vitamin_cli.zoo` (docs/code.md lists every public import).
"""

from __future__ import annotations

import os
from typing import Any


def load(
    name: str,
    device: str = "cpu",
    dtype: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    precision: str | None = None,
) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of a model: its open_clip architecture, the checkpoint (the one in the
    Hugging Face cache, pulled there on first use as open_clip and timm do; or the file given, for any row of
    the zoo) loaded with torch.load(weights_only=True) and strict key
    matching, and open_clip's preprocessing at the model's own resolution. `dtype` is bf16, fp16 or fp32
    (the default, on every device); `precision` is its older name.

        model, preprocess, tokenizer = vitamin_cli.load("ViTamin-XL-384", device="cuda", dtype="bf16")
        model, preprocess, tokenizer = vitamin_cli.load("ViT-B-32-s128M", checkpoint="my-run/epoch_32.pt")
    """
    from pathlib import Path

    from vitamin_cli import zoo
    from vitamin_cli.checkpoints.store import Store
    from vitamin_cli.errors import UsageError
    from vitamin_cli.models import loading

    if dtype is not None and precision is not None and dtype != precision:
        raise UsageError(f"dtype={dtype!r} and precision={precision!r}: give one (precision is dtype's older name)")
    own = Path(checkpoint).expanduser() if checkpoint is not None else None
    chosen = dtype or precision or "fp32"
    root = Store(cache_dir).root
    return loading.load(zoo.load(), name, hub_root=root, checkpoint=own, device=device, dtype=chosen)


def __getattr__(name: str) -> str:
    # The version comes from the package metadata, read only when asked for: reading it costs a start time.
    if name == "__version__":
        from vitamin_cli.extras import version

        return version()
    raise AttributeError(f"module 'vitamin_cli' has no attribute {name!r}")
