"""What checking every batch of embeddings costs (`vitamin_cli.eval.zeroshot.Embeddings`: finite, not zero, not
collapsed over the task), against encoding that batch with the image tower, for a model, batch and device.

    python benchmarks/embedding_check_cost.py [--model ViT-S-32-s128M] [--batch 64] [--device cpu] [--runs 15]

Encodes random images with random weights (the cost does not depend on them), then prints the median seconds of
one batch's encoding, of the check on its embeddings (normalising included, which eval did before the check
existed, so this is an upper bound), and the check's share (target: under 1%).
"""

from __future__ import annotations

import argparse
import statistics
import time


def timed(work, device: str, runs: int) -> float:  # type: ignore[no-untyped-def]
    import torch

    times = []
    for _ in range(runs):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        work()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-S-32-s128M")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    import torch

    from vitamin_cli import zoo
    from vitamin_cli.eval.zeroshot import Embeddings, EvalSettings
    from vitamin_cli.models import arch

    registry = zoo.load()
    model = arch.build(arch.config(registry, registry.get(args.model))).to(args.device).eval()
    size = model.visual.image_size
    images = torch.randn(args.batch, 3, *(size if isinstance(size, tuple) else (size, size)), device=args.device)
    with torch.inference_mode():
        features = model.encode_image(images)
        encode = timed(lambda: model.encode_image(images), args.device, args.runs)
        checked = Embeddings("task", "image", EvalSettings(device=args.device))
        check = timed(lambda: checked.add(features), args.device, args.runs * 20)
    print(f"{args.model}, batch {args.batch}, {args.device}: encode {encode * 1e3:.2f} ms, "
          f"check {check * 1e3:.3f} ms, share {check / encode:.3%} (target < 1%)")  # fmt: skip


if __name__ == "__main__":
    main()
