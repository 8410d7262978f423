"""Load a checkpoint into its architecture: strictly, safely, at the model's own resolution; and `verify --deep`'s
check that a pulled one loads and runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitamin_cli.checkpoints.pull import ensure_checkpoint
from vitamin_cli.checkpoints.store import Store
from vitamin_cli.errors import UsageError, VitaminError
from vitamin_cli.models import device as devices
from vitamin_cli.zoo import Zoo

if TYPE_CHECKING:
    from vitamin_cli.checkpoints.verify import Check


class CheckpointError(VitaminError):
    """A checkpoint that does not fit its architecture, or is not a plain state dict (exit code 1)."""


def read_state_dict(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True: tensors and plain containers only, never code. A training
    checkpoint's `state_dict` and the `module.` prefix that DistributedDataParallel adds are unwrapped, as
    open_clip's own loader does."""
    import torch

    kind = _not_a_checkpoint(path)
    if kind is not None:
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint: {kind}",
            hint="give the checkpoint file itself (a .bin or .pt saved by torch.save), "
            "e.g. the pytorch_model.bin that `vitamin pull` fetches",
        )
    state = _weights_only(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(state).__name__})")
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            problem = _unusable(value)
            if problem is not None:
                raise CheckpointError(
                    f"{path}: {str(key)[:200]} {problem}",
                    hint="the file is damaged, or was saved from a model in a broken state (a diverged run, "
                    "weights never materialised): save the weights again",
                )
    return state


def _weights_only(path: Path) -> Any:
    """What torch.load(weights_only=True) reads from the file, its failures as one message each."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice on failures is to turn the safety off: never shown
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} holds more than tensors (pickled objects that could run code); vitamin does not unpickle those",
            hint="save the model's state_dict() alone, e.g. torch.save(model.state_dict(), path)",
        ) from None
    except Exception as err:  # noqa: BLE001 - parsing an untrusted file: torch's unpickler fails on garbage
        # with IndexError, KeyError, struct.error, UnicodeDecodeError, BadZipFile, ...; each means the same
        reason = str(err).splitlines()[0][:200] if str(err).strip() else "its bytes are not what torch.save writes"
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {reason}") from None


def check_checkpoint_file(path: Path, error: type[VitaminError] = UsageError, label: str | None = None) -> None:
    """A checkpoint the user named must be a regular file: a folder, a device, a pipe or nothing at all is an
    `error` saying which (a device such as /dev/zero would be read forever)."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        what = "no such file"
    except OSError as err:
        what = f"cannot read it: {err.strerror or err}"
    else:
        if stat.S_ISREG(mode):
            return
        kind = "a folder" if stat.S_ISDIR(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else (
            "a pipe" if stat.S_ISFIFO(mode) else "a socket")  # fmt: skip
        what = "a folder, not a checkpoint file" if kind == "a folder" else f"not a regular file ({kind})"
    label = label or f"checkpoint {str(path)[:200]!r}"
    raise error(f"{label}: {what}", hint="give the checkpoint file itself (.pt, .bin)")


def _not_a_checkpoint(path: Path) -> str | None:
    """What the file is, from its first bytes, when it cannot be a PyTorch checkpoint (None when it may be
    one): torch.save writes a zip archive (PK), older PyTorch a pickle (0x80, its protocol opcode)."""
    try:
        with open(path, "rb") as file:
            head = file.read(4096)
    except OSError:
        return None  # torch.load says why
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return None
    if not head:
        return "it is empty"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return "it is a safetensors file, which vitamin does not load; give the PyTorch (.bin or .pt) file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        text = head[: err.start].decode("utf-8") if err.start > len(head) - 4 else ""
    if text and "\x00" not in text:
        return "it is text, not a zip or pickle file"
    return "it is not a zip or pickle file"


def _unusable(tensor: Any) -> str | None:
    """Why a tensor of a checkpoint cannot be loaded as weights, or None: it holds no values (a meta tensor,
    saved from a model never materialised), it is not a plain dense tensor (load_state_dict would fail on
    it half-way), or a value is NaN or infinite (the model would run, and score as if it guessed)."""
    import torch

    if tensor.is_meta:
        return "is a meta tensor: it holds no values"
    if tensor.layout != torch.strided:
        return f"is a sparse tensor ({str(tensor.layout).removeprefix('torch.')}), not a dense one"
    if tensor.is_quantized or tensor.is_nested:
        return f"is a {'quantized' if tensor.is_quantized else 'nested'} tensor, not a plain one"
    if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
        return "is not finite: it holds NaN or inf"
    return None


def _casts_losslessly(given: Any, wanted: Any) -> bool:
    """Whether values of dtype `given` fit a tensor of dtype `wanted`: the same kind (bool, integer, floating
    point, complex), an integer or complex no wider (int32 into int64; never an integer into a float parameter
    or a float into an integer buffer). Floats cast among themselves, as every PyTorch loader does (float64
    weights into a float32 model round in the 8th digit, not truncate)."""
    import torch

    def kind(dtype: Any) -> str:
        if dtype == torch.bool:
            return "bool"
        return "complex" if dtype.is_complex else "float" if dtype.is_floating_point else "integer"

    if kind(given) != kind(wanted):
        return False
    return kind(given) == "float" or torch.promote_types(given, wanted) == wanted


def load_into(model: Any, state: dict[str, Any], name: str, source: Path | None = None) -> None:
    """load_state_dict with strict key, shape and dtype matching, its failures as one clear message naming
    the model (and the checkpoint file, `source`)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(str(k) for k in set(state) - set(own))
    common = sorted(set(own) & set(state))
    not_tensors = [k for k in common if not hasattr(state[k], "shape")]
    wrong = [k for k in common if k not in not_tensors and tuple(own[k].shape) != tuple(state[k].shape)]
    tensors = [k for k in common if k not in not_tensors and k not in wrong]
    lossy = [k for k in tensors if not _casts_losslessly(state[k].dtype, own[k].dtype)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if unexpected:
        more = ", ..." if len(unexpected) > 3 else ""
        problems.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:3])}{more})")
    for key in not_tensors[:3]:
        problems.append(f"{key} is a {type(state[key]).__name__}, not a tensor")
    for key in wrong[:3]:
        problems.append(f"{key} has shape {tuple(state[key].shape)}, the architecture {tuple(own[key].shape)}")
    for key in lossy[:3]:
        given, wanted = (str(t.dtype).removeprefix("torch.") for t in (state[key], own[key]))
        problems.append(f"{key} holds {given} values, the architecture {wanted} (a cast would lose them)")
    if problems:
        checkpoint = "the checkpoint" if source is None else f"the checkpoint {source}"
        raise CheckpointError(f"{name}: {checkpoint} does not fit its architecture: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def load(
    registry: Zoo,
    name: str,
    *,
    hub_root: Path | None = None,
    checkpoint: Path | None = None,
    device: str = "cpu",
    dtype: str = "fp32",
) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of a model, ready for inference: with the checkpoint file given, or else
    the one in the cache at `hub_root` (pulled into it now if it is not there)."""
    import open_clip

    from vitamin_cli.models import arch

    if dtype not in devices.DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(devices.DTYPES)}, not {str(dtype)[:40]!r}")
    devices.check_any(device)
    model_entry = registry.get(name)
    if checkpoint is None:
        if hub_root is None:
            raise UsageError("give the checkpoint, or the cache it was pulled into")
        store = Store(hub_root)
        checkpoint = ensure_checkpoint(model_entry, store).path(store.root)
    else:
        check_checkpoint_file(Path(checkpoint), CheckpointError)
    path = checkpoint
    cfg = arch.config(registry, model_entry)
    model = arch.build(cfg, device="cpu")
    load_into(model, read_state_dict(path), model_entry.name, source=path)
    model = model.to(device=device, dtype=devices.torch_dtype(dtype)).eval()
    preprocess = open_clip.transform.image_transform_v2(arch.preprocess_cfg(cfg), is_train=False)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=cfg["text_cfg"].get("context_length", 77))
    return model, preprocess, tokenizer


def deep_check(registry: Zoo, check: Check, hub_root: Path) -> None:
    """Load the checkpoint strictly into its architecture, compare its size with the zoo, and run one forward
    pass on a dummy image and text, which must give finite embeddings of the model's width."""
    import torch

    from vitamin_cli.models import arch
    from vitamin_cli.models.audit import tolerance

    if check.record is None:
        return
    model_entry = registry.get(check.name)
    try:
        model, _, tokenizer = load(registry, check.name, checkpoint=check.record.path(hub_root))
    except VitaminError as err:
        check.status = "corrupt"
        check.problems.append(err.message.removeprefix(f"{check.name}: "))  # verify names the model itself
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
    width = arch.config(registry, model_entry)["embed_dim"]
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
