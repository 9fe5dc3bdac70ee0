"""How far a v2 signature survives a shift: score of signed crops read a few pixels off grid.

Signs 256 px crops of the test photos, then reads windows of ``--window`` px cut at offsets
(dy, dx) from them, at scale 1 only (no scale search, no fit-up), next to the same windows of
the clean crops. Offset (0, 0) keeps the signing grid of tiles, mask cells and carriers; any
other offset moves it, which is what a crop or a rotation does. Why: to tell whether crops fail
for lack of a scale or for lack of the grid (BENCHMARKS.md, stop 42).

    python benchmarks/probe_shift.py --kit robust-v2
"""

from __future__ import annotations

import argparse

import torch

from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit

OFFSETS = [(0, 0), (0, 1), (1, 1), (2, 2), (3, 3), (4, 4), (0, 4), (6, 6), (8, 8), (16, 16), (32, 32)]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust-v2")
    ap.add_argument("--num-images", type=int, default=24)
    ap.add_argument("--window", type=int, default=224)
    args = ap.parse_args()
    kit = Kit.from_pretrained(args.kit).with_fit_up(False).with_mirror_reads(False)
    kit.detect_scales = (1.0,)
    photos = [img for _, img in embedded_images("test")]
    clean = RandomCrops(ImagePool(photos, max_side=512), 256).sample(
        args.num_images, torch.Generator().manual_seed(3)
    )
    signed = (kit.sign(clean, code=0xC0FFEE) * 255).round() / 255
    n = args.window
    print(f"{args.kit}: {args.num_images} signed 256 px crops, {n} px windows at (dy, dx), scale 1")
    print("offset    signed median  signed min  | clean max")
    for dy, dx in OFFSETS:
        s = kit.logits(signed[..., dy : dy + n, dx : dx + n])[:, 0]
        c = kit.logits(clean[..., dy : dy + n, dx : dx + n])[:, 0]
        print(f"{dy:3d},{dx:3d}   {s.median():+8.2f}     {s.min():+8.2f}   | {c.max():+8.2f}")


if __name__ == "__main__":
    main()
