"""False positives on unsigned generated images: does a kit's stated FPR hold on generator output?

A threshold calibrated on photo crops says nothing about smooth generated samples. This scores
unsigned samples of the three shipped generators (seed ``--seed``, disjoint from the seed 7 that
``benchmarks/calibrate_small_v2.sh`` calibrates on) and any ``--folder label=path`` with each kit
at its own FPR 1e-3 threshold for the images' size, and signs 32 px crops of the embedded test
photos as the true-positive check.

    mkdir -p /tmp/small-v2-photo && git archive e384179 src/advsig/kits/small-v2 \\
        | tar -x -C /tmp/small-v2-photo --strip-components=4     # the kit before recalibration
    python benchmarks/bench_unsigned_generators.py \\
        --kits small-v2,photo-only=/tmp/small-v2-photo --out benchmarks/results/unsigned-generators.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from advsig import Kit
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.data.io import load_image
from advsig.generators.base import load_generator
from advsig.generators.sampling import generate_to_folder

GENERATORS = ("ddpm-32", "gan-32", "ldm-32")


def flag_rate(kit: Kit, images: list[torch.Tensor], fpr: float = 1e-3) -> dict:
    """Share of ``images`` that ``kit.detect`` flags (the kit's threshold for each one's size)."""
    results = kit.detect(images, fpr=fpr)
    flagged = sum(r.is_signed for r in results)
    return {"num": len(images), "flagged": flagged, "flag_rate": flagged / len(images),
            "score_max": max(r.score for r in results),
            "threshold": max(r.threshold for r in results)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--kits", default="small-v2", help="Comma-separated kits: name, folder or label=folder."
    )
    ap.add_argument("--num", type=int, default=1024, help="Samples per shipped generator.")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folder", action="append", default=[], help="label=path; repeatable.")
    ap.add_argument("--work", default="runs/bench-unsigned", help="Where samples are written.")
    ap.add_argument("--out", default="benchmarks/results/unsigned-generators.json")
    args = ap.parse_args()
    t0 = time.time()
    folders = {}
    for name in GENERATORS:
        folder = Path(args.work) / f"{name}-seed{args.seed}"
        generate_to_folder(load_generator(name), folder, args.num, steps=args.steps,
                           seed=args.seed)  # fmt: skip
        folders[f"{name} (unsigned, seed {args.seed})"] = folder
    for spec in args.folder:
        label, _, path = spec.partition("=")
        if not path:
            ap.error(f"--folder wants label=path, got {spec!r}")
        folders[label] = Path(path)
    images = {label: [load_image(p).image for p in sorted(folder.glob("*.png"))]
              for label, folder in folders.items()}  # fmt: skip
    pool = ImagePool([img for _, img in embedded_images("test")], max_side=512)
    crops = RandomCrops(pool, 32).sample(500, torch.Generator().manual_seed(7))
    result = {"num_per_generator": args.num, "steps": args.steps, "seed": args.seed, "kits": {}}
    for spec in args.kits.split(","):
        label, _, path = spec.rpartition("=")
        kit, spec = Kit.from_pretrained(path), label or path
        signed = (kit.sign(crops, code=0x5A) * 255).round() / 255
        row = {label: flag_rate(kit, imgs) for label, imgs in images.items()}
        row["signed photo crops (32 px, test split)"] = flag_rate(kit, list(signed))
        result["kits"][spec] = row
        for label, r in row.items():
            print(f"{spec:28s} {label:44s} {r['flagged']:5d}/{r['num']:<5d} "
                  f"max {r['score_max']:7.3f} thr {r['threshold']:.3f}")  # fmt: skip
    result["wall_time_s"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
