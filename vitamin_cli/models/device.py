"""Devices and floating-point types, decided in one place for bench, eval and `vitamin_cli.load`.

Names: `cpu`, `cuda` or `cuda:N` (load() takes any torch device), and the dtypes `bf16`, `fp16`, `fp32`.
Defaults of bench and eval: CUDA when the runner has a GPU, else the CPU; bf16 on CUDA, fp32 on the CPU
(DataComp's own runs). `load()` keeps fp32 wherever it loads.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

from vitamin_cli.errors import UsageError

if TYPE_CHECKING:
    from vitamin_cli.runners import Runner

DTYPES = ("bf16", "fp16", "fp32")
_DEVICE_RE = re.compile(r"cpu|cuda(:[0-9]{1,3})?")


def torch_dtype(name: str) -> Any:
    """The torch dtype of a name of DTYPES."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def check_dtype(dtype: object) -> None:
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, not {str(dtype)[:40]!r}")


def check_name(device: object) -> None:
    """cpu, cuda or cuda:N; anything else is refused before torch sees it."""
    if not isinstance(device, str) or not _DEVICE_RE.fullmatch(device):
        raise UsageError(f"unknown device {str(device)[:40]!r}", hint="use cpu, cuda or cuda:N")


def default_device(runner: Runner) -> str:
    """CUDA where the jobs run has a GPU, else the CPU."""
    return "cuda" if runner.gpus() else "cpu"


def default_dtype(device: str) -> str:
    return "bf16" if device.startswith("cuda") else "fp32"


def check(device: str, dtype: str, amp: bool = False) -> None:
    """Refuse what this machine's device cannot do, before anything is built: a CUDA device it lacks, bf16 on a
    GPU without it, fp16 on the CPU, autocast to fp32."""
    import torch

    check_name(device)
    check_dtype(dtype)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda, but this machine has no CUDA device", hint="use --device cpu")
        index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"no {device}: this machine has {torch.cuda.device_count()} CUDA devices")
        if dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise UsageError("this GPU has no bf16", hint="use --dtype fp16")
    elif dtype == "fp16":
        raise UsageError("fp16 is not a CPU inference type", hint="use --dtype fp32 or bf16 on the CPU")
    if amp and dtype == "fp32":
        raise UsageError("--amp autocasts to a lower precision: use it with --dtype bf16 or fp16")


def check_for(runner: Runner, device: str, dtype: str, amp: bool = False) -> None:
    """`check` where the jobs run: here, the device itself; on Ray, that the cluster has what is asked for
    (each worker checks its own device when it starts)."""
    if runner.in_process:
        check(device, dtype, amp)
        return
    check_name(device)
    check_dtype(dtype)
    if device.startswith("cuda:"):
        raise UsageError("--device cuda:N and --ray: Ray gives each task its GPU", hint="use --device cuda")
    if device == "cuda" and not runner.gpus():
        raise UsageError("--device cuda, but the Ray cluster has no GPU", hint="use --device cpu")


def check_any(device: object) -> None:
    """For load(): a CUDA device this machine has, or any other device torch names (mps, ...)."""
    import torch

    if isinstance(device, str) and device.startswith("cuda"):
        check(device, "fp32")
        return
    try:
        torch.device(device)  # type: ignore[call-overload]
    except (RuntimeError, TypeError):
        raise UsageError(
            f"unknown device {str(device)[:40]!r}", hint="use cpu, cuda, cuda:N or another torch device"
        ) from None


def on_device(device: str) -> Any:
    """Make a CUDA device current, so that events, streams and the allocator act on it (cuda:1 and up)."""
    import torch

    return torch.cuda.device(torch.device(device)) if device.startswith("cuda") else contextlib.nullcontext()


def gpu_name(device: str) -> str | None:
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None


def empty_cache(device: str | None = None) -> None:
    """Give the CUDA allocator's free blocks back, after a model or a batch too large for the GPU."""
    import torch

    if torch.cuda.is_available():
        with on_device(device) if device else contextlib.nullcontext():
            torch.cuda.empty_cache()
