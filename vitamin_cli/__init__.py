"""vitamin: the ViTamin model zoo, managed (`vitamin --help`, docs/)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load(name: str, device: str = "cpu", precision: str = "fp32", cache_dir: str | None = None) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of a pulled model: its open_clip architecture, the checkpoint loaded with
    torch.load(weights_only=True) and strict key matching, and preprocessing at the model's own resolution.

        model, preprocess, tokenizer = vitamin_cli.load("ViTamin-XL-384", device="cuda", precision="bf16")
    """
    from vitamin_cli import loading, zoo

    return loading.load(zoo.load(), name, device=device, precision=precision, cache_dir=cache_dir)
