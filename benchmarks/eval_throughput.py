"""`vitamin eval` throughput against `vitamin bench` for the same model, batch and device, and the classifier
memo's speed-up.

    python benchmarks/eval_throughput.py                      # ViT-S-32, 400 JPEGs of 500x375, fp32, CPU
    python benchmarks/eval_throughput.py --model ViTamin-L --images 50000 --device cuda --dtype bf16 --batch 256

It writes a local webdataset of generated JPEGs (smooth random images, about the size of ImageNet's), a
random checkpoint of the model's architecture, then runs `vitamin bench` (image tower, random weights) and
`vitamin eval --task wds:DIR` twice with the same batch. It prints:
- eval images/s over bench images/s (target: 0.8 or more: decoding is not the bottleneck);
- the first run's classifier seconds over the second's (target: 5 or more: the classifier is kept).

With `--retrieval`, it writes image-text pairs instead (`retrieval:DIR`: a CSV of captions, 5 per image as in
Flickr and MSCOCO, beside a zip of the JPEGs), benches both towers, and prints eval's images+captions per second
over what the two towers alone would do for the same images and captions (target: 0.8 or more).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path


def write_shards(folder: Path, images: int, classes: int, shards: int, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "test").mkdir(parents=True)
    (folder / "classnames.txt").write_text("".join(f"class {i}\n" for i in range(classes)))
    (folder / "test" / "nshards.txt").write_text(f"{shards}\n")
    per = (images + shards - 1) // shards
    for shard in range(shards):
        with tarfile.open(folder / "test" / f"{shard}.tar", "w") as tar:
            for index in range(shard * per, min(images, (shard + 1) * per)):
                coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)  # smooth, like a photo
                image = Image.fromarray(coarse).resize((500, 375), Image.BICUBIC)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=90)
                for extension, data in (("jpg", buffer.getvalue()), ("cls", str(index % classes).encode())):
                    info = tarfile.TarInfo(f"{index:08d}.{extension}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def write_pairs(folder: Path, images: int, captions: int = 5, seed: int = 0, grain: int = 0) -> None:
    """A CSV of `captions` captions per image beside a zip of smooth 500x375 JPEGs (about 25 KB each; with
    `grain`, random noise of that amplitude on top: 40 gives about 100 KB)."""
    import csv
    import zipfile

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "images.zip", "w") as archive, (folder / "pairs.csv").open("w") as table:
        writer = csv.writer(table)
        writer.writerow(["filename", "raw"])
        for index in range(images):
            coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
            pixels = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC), dtype=np.int16)
            pixels += rng.integers(-grain, grain + 1, size=pixels.shape, dtype=np.int16) if grain else 0
            buffer = io.BytesIO()
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
            archive.writestr(f"images/{index:08d}.jpg", buffer.getvalue())
            texts = [f"photo number {index}, caption {c}, of a smooth pattern of colours" for c in range(captions)]
            writer.writerow([f"{index:08d}.jpg", json.dumps(texts)])


def retrieval(args: argparse.Namespace, checkpoint: Path, work: Path) -> None:
    """eval's images+captions per second on `retrieval:DIR` against the two towers' bench throughput."""
    folder = work / "pairs"
    write_pairs(folder, args.images)
    common = ["--device", args.device, "--dtype", args.dtype, "--batch-size", str(args.batch)]
    rates = {r["tower"]: r["throughput"] for r in vitamin("bench", args.model, *common)}  # type: ignore[attr-defined]
    evaluate = ["eval", args.model, "--checkpoint", str(checkpoint), "--task", f"retrieval:{folder}", *common]
    if args.workers is not None:
        evaluate += ["--workers", str(args.workers)]
    result = vitamin(*evaluate)["results"][0]  # type: ignore[index]
    captions = 5 * args.images
    towers_s = args.images / rates["image"] + captions / rates["text"]
    print(f"bench  image tower {rates['image']:8.1f} images/s, text tower {rates['text']:8.1f} texts/s")
    print(f"eval   {result['images_per_s']:8.1f} images+captions/s over {args.images} images, {captions} captions")
    print(f"eval / the towers alone:            {result['images_per_s'] * towers_s / (args.images + captions):.2f}"
          " (target >= 0.8)")  # fmt: skip


def vitamin(*args: str) -> object:
    result = subprocess.run(
        [sys.executable, "-m", "vitamin_cli", *args, "--json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"vitamin {' '.join(args)} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-S-32-s128M")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--retrieval", action="store_true", help="image-text pairs: retrieval:DIR")
    args = parser.parse_args()

    import torch

    from vitamin_cli import zoo
    from vitamin_cli.models import arch

    with tempfile.TemporaryDirectory() as work:
        if args.retrieval:
            registry = zoo.load()
            checkpoint = Path(work) / "random.pt"
            torch.save(arch.build(arch.config(registry, registry.get(args.model))).state_dict(), checkpoint)
            return retrieval(args, checkpoint, Path(work))
        folder = Path(work) / "data"
        start = time.perf_counter()
        write_shards(folder, args.images, args.classes, args.shards)
        print(f"wrote {args.images} JPEGs in {args.shards} shards in {time.perf_counter() - start:.1f} s")
        registry = zoo.load()
        model = registry.get(args.model)
        checkpoint = Path(work) / "random.pt"
        torch.save(arch.build(arch.config(registry, model)).state_dict(), checkpoint)

        common = ["--device", args.device, "--dtype", args.dtype, "--batch-size", str(args.batch)]
        bench = vitamin("bench", model.name, "--tower", "image", *common)
        bench_rate = bench[0]["throughput"]  # type: ignore[index]
        evaluate = ["eval", model.name, "--checkpoint", str(checkpoint), "--task", f"wds:{folder}", *common]
        if args.workers is not None:
            evaluate += ["--workers", str(args.workers)]
        runs = []
        for _ in range(2):
            start = time.perf_counter()
            result = vitamin(*evaluate)["results"][0]  # type: ignore[index]
            runs.append((result, time.perf_counter() - start))
    (first, _), (second, _) = runs
    print(f"bench  {model.name} image tower, batch {args.batch}: {bench_rate:8.1f} images/s")
    for label, (result, wall) in (("eval 1", runs[0]), ("eval 2", runs[1])):
        print(
            f"{label} {result['images_per_s']:8.1f} images/s over {result['samples']} images, "
            f"classifier {result['classifier_s']:.3f} s (kept: {result['classifier_cached']}), {wall:.1f} s in all"
        )
    print(f"eval / bench images/s:            {second['images_per_s'] / bench_rate:.2f} (target >= 0.8)")
    print(f"classifier, first / second run:   {first['classifier_s'] / second['classifier_s']:.0f}x (target >= 5)")


if __name__ == "__main__":
    main()
