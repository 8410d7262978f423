"""The floating-point types vitamin runs models in, by the names its options use."""

from __future__ import annotations

from typing import Any

NAMES = ("bf16", "fp16", "fp32")


def torch_dtype(name: str) -> Any:
    """The torch dtype of a name of NAMES."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]
