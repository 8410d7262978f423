"""Load a pulled checkpoint into its architecture: strictly, safely, at the model's own resolution."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vitamin_cli.cache import hub_cache_dir, read_manifest
from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.zoo import Model, Zoo

# The preprocessing open_clip's pretrained configs give every ViTamin checkpoint (OpenAI's statistics).
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
PRECISIONS = ("fp32", "fp16", "bf16")


class CheckpointError(VitaminError):
    """A checkpoint that does not fit its architecture, or is not a plain state dict (exit code 1)."""


def checkpoint_path(zoo: Zoo, model: Model, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The pulled file of a model; a model that is not pulled is an error naming `vitamin pull`."""
    if model.weights is None:
        raise UsageError(f"{model.name} has no public checkpoint", hint="`vitamin ls --released` lists those that do")
    entry = read_manifest(hub_cache_dir(cache_dir)).get(model.name)
    if entry is None or not Path(entry.path).exists():
        raise UsageError(f"{model.name} is not pulled", hint=f"run `vitamin pull {model.name}` first")
    return Path(entry.path)


def read_state_dict(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True: tensors and plain containers only, never code."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path} holds more than tensors; refusing to unpickle it: {err}") from None
    except (OSError, RuntimeError, EOFError) as err:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {err}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def load_into(model: Any, state: dict[str, Any], name: str) -> None:
    """load_state_dict with strict key and shape matching, its failures as one clear message."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if unexpected:
        more = ", ..." if len(unexpected) > 3 else ""
        problems.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:3])}{more})")
    for key in wrong[:3]:
        problems.append(f"{key} has shape {tuple(state[key].shape)}, the architecture {tuple(own[key].shape)}")
    if problems:
        raise CheckpointError(f"{name}: the checkpoint does not fit its architecture: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def load(
    zoo: Zoo,
    name: str,
    device: str = "cpu",
    precision: str = "fp32",
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of a pulled model, ready for inference."""
    import open_clip
    import torch

    from vitamin_cli import arch

    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    model_entry = zoo.get(name)
    path = checkpoint_path(zoo, model_entry, cache_dir)
    cfg = arch.config(zoo, model_entry)
    model = arch.build(cfg, device="cpu")
    load_into(model, read_state_dict(path), model_entry.name)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    model = model.to(device=device, dtype=dtype).eval()
    preprocess = open_clip.image_transform(
        model_entry.image_size, is_train=False, mean=MEAN, std=STD, interpolation="bicubic", resize_mode="shortest"
    )
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=cfg["text_cfg"].get("context_length", 77))
    return model, preprocess, tokenizer
