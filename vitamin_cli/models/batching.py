"""The one batch back-off of bench and eval: an out-of-memory error (or a kernel that cannot index the batch
with 32 bits) retries the same work with a smaller batch, in timm's steps (`decay_batch_step`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vitamin_cli.models.device import empty_cache

T = TypeVar("T")


def is_batch_failure(err: BaseException) -> bool:
    """Out of memory (GPU or CPU), or past 32-bit indexing: a smaller batch may work."""
    import torch

    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err).lower()
    signs = ("out of memory", "not enough memory", "32-bit", "32bit", "int_max", "canuse32bitindexmath")
    return isinstance(err, RuntimeError) and any(sign in text for sign in signs)


def with_backoff(attempt: Callable[[int], T], batch_size: int) -> tuple[T, int]:
    """`attempt(batch)`, retried with the next smaller step while it fails for the batch's size; the value and
    the batch that gave it. Any other failure, or one at a batch of 1, is raised."""
    from timm.utils.decay_batch import decay_batch_step

    size = batch_size
    while True:
        try:
            return attempt(size), size
        except Exception as err:
            if not is_batch_failure(err) or size <= 1:
                raise
        # outside the except block: its traceback no longer holds the failed batch's tensors
        empty_cache()
        size = max(1, decay_batch_step(size))  # type: ignore[no-untyped-call]
