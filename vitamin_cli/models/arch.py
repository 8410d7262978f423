"""Build any model of the zoo with open_clip, and count its parameters and MACs.

The config is zoo.yaml's own (`architectures:`) where open_clip has none or a wrong one, else open_clip's.
Models build on any device, `meta` included (shapes only: no memory, no weights), which is how they are
counted. MACs come in two conventions:

- full: every matrix multiply and convolution, attention's QK^T and AV included, plus normalisation layers
  as fvcore counts them (5 per element with an affine, 4 without; batch norm 2 or 1);
- paper: the same without the attention matmuls, the convention of the zoo table
  (ViT-L/14: 81.08 G full, 77.83 G paper).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from vitamin_cli.errors import VitaminError
from vitamin_cli.zoo import Model, Zoo

if TYPE_CHECKING:
    import torch

CONTEXT_LENGTH = 77  # every text tower of the zoo


def config(registry: Zoo, model: Model) -> dict[str, Any]:
    """The open_clip model config that builds this model."""
    inline = registry.inline_architecture(model)
    if inline is not None:
        return inline
    import open_clip

    upstream = open_clip.get_model_config(model.arch)
    if upstream is None:
        raise VitaminError(
            f"open_clip {open_clip.__version__} has no model config '{model.arch}'",
            hint="define it under `architectures:` in the zoo file, or upgrade open_clip",
        )
    upstream = copy.deepcopy(upstream)
    if upstream["vision_cfg"].get("image_size") != model.image_size:
        raise VitaminError(
            f"{model.name}: open_clip's '{model.arch}' is built at {upstream['vision_cfg'].get('image_size')} px, "
            f"the zoo says {model.image_size} px",
            hint="give the model an architecture of its own under `architectures:` in the zoo file",
        )
    return dict(upstream)


def build(cfg: dict[str, Any], device: str | torch.device = "cpu") -> Any:
    """An open_clip CLIP model from a config, randomly initialised (or shapes only, on `meta`), in eval mode."""
    import torch
    from open_clip.model import CLIP, CustomTextCLIP

    kwargs = {k: v for k, v in cfg.items() if k not in ("custom_text", "preprocess_cfg")}
    cls = CustomTextCLIP if cfg.get("custom_text") else CLIP
    try:
        with torch.device(device):
            model = cls(**kwargs)
    except Exception as err:  # noqa: BLE001 - a config from a zoo file can fail in any way open_clip or timm can
        raise ArchitectureError(f"open_clip cannot build this architecture: {_first_line(err)}") from err
    return model.eval()


class ArchitectureError(VitaminError):
    """A config open_clip cannot build, or that fails on its own input (exit code 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="fix the architecture in the zoo file (`architectures:`), or its `arch`")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"


def preprocess_cfg(cfg: dict[str, Any]) -> Any:
    """open_clip's image preprocessing for an architecture: its defaults (OpenAI's mean and std, bicubic,
    resize of the shortest side), what the config's own `preprocess_cfg` changes, at the tower's image size."""
    from dataclasses import asdict

    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    merged = merge_preprocess_dict(asdict(PreprocessCfg()), cfg.get("preprocess_cfg") or {})
    merged["size"] = cfg["vision_cfg"]["image_size"]
    return PreprocessCfg(**merged)


def fingerprint(cfg: dict[str, Any]) -> str:
    """sha256 of what makes a network compute what it computes, besides its weights: the architecture's
    config and its image preprocessing as open_clip applies them. Results and memos made with a model are
    keyed by it, so an edit of either (pooling, a text tower's settings, the mean and std) is never matched
    with what was made before."""
    import hashlib
    import json
    from dataclasses import asdict

    described = {"config": cfg, "preprocess": asdict(preprocess_cfg(cfg))}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Counts:
    """Measured sizes of one architecture, in millions of parameters and billions of MACs per item."""

    params_image_m: float
    params_text_m: float
    macs_image_g_full: float
    macs_image_g_paper: float
    macs_text_g_full: float
    macs_text_g_paper: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def count(cfg: dict[str, Any]) -> Counts:
    """Parameters and MACs of an architecture, measured on the meta device (no memory, no weights)."""
    import torch

    model: Any = build(cfg, device="meta")
    image_params = sum(p.numel() for p in model.visual.parameters())
    all_params = sum(p.numel() for p in model.parameters())
    size = cfg["vision_cfg"]["image_size"]
    image = torch.empty(1, 3, size, size, device="meta")
    text = torch.zeros(1, cfg["text_cfg"].get("context_length", CONTEXT_LENGTH), dtype=torch.long, device="meta")
    try:
        image_full, image_paper = _macs(lambda: model.encode_image(image))
        text_full, text_paper = _macs(lambda: model.encode_text(text))
    except Exception as err:  # noqa: BLE001 - a config that builds can still not fit its own input
        raise ArchitectureError(f"the architecture fails on a {size} px image or a text: {_first_line(err)}") from err
    return Counts(
        params_image_m=image_params / 1e6,
        params_text_m=(all_params - image_params) / 1e6,
        macs_image_g_full=image_full / 1e9,
        macs_image_g_paper=image_paper / 1e9,
        macs_text_g_full=text_full / 1e9,
        macs_text_g_paper=text_paper / 1e9,
    )


def _macs(forward: Any) -> tuple[float, float]:
    """(full, paper) MACs of one forward pass; FlopCounterMode counts 2 FLOPs per MAC."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_norm_formulas())
    with torch.no_grad(), counter:  # never inference_mode: its fused paths hide matmuls from the counter
        forward()
    flops = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    attention = sum(n for op, n in flops.items() if op.endswith(("bmm", "attention")) or "scaled_dot_product" in op)
    total = sum(flops.values())
    return total / 2, (total - attention) / 2


def _norm_formulas() -> dict[Any, Any]:
    """fvcore's counts for normalisation layers (in MACs, doubled to FLOPs as the counter expects)."""
    import torch

    aten = torch.ops.aten

    def per_element(factor_affine: int, factor_plain: int, weight_index: int) -> Any:
        def formula(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
            shape = args[0]
            weight = args[weight_index] if len(args) > weight_index else None
            return int(2 * math.prod(shape) * (factor_affine if weight is not None else factor_plain))

        return formula

    return {
        aten.native_layer_norm: per_element(5, 4, 2),
        aten.native_group_norm: per_element(5, 4, 1),
        aten._native_batch_norm_legit_no_training: per_element(2, 1, 1),
    }
