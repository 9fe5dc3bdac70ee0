"""Where a kit's clean score tail comes from, photo by photo (a few minutes).

A kit is calibrated on the four photos of the embedded ``val`` split. If one photo no kit saw
scores higher than all of them, the stated false-positive rate does not hold on it, however
many val crops the calibration draws. This scores random clean crops of every val photo, every
test photo and the four held-out scikit-image photos of ``bench_calibration.py``, and prints per
photo the mean, the 99th percentile, the maximum and the share at or above the kit's FPR 1e-3
threshold for that size.

    python benchmarks/probe_clean_tail_by_photo.py --kits base-v2-odd,runs/robust-v2 --size 256
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import EXTRA_PHOTOS  # noqa: E402

from advsig.attacks.forgery import round8  # noqa: E402
from advsig.data.datasets import EMBEDDED_SPLITS, ImagePool, RandomCrops, embedded_image  # noqa: E402
from advsig.data.io import load_image  # noqa: E402
from advsig.kit import Kit  # noqa: E402


def photos() -> list[tuple[str, str, torch.Tensor]]:
    """(split, name, image) for the val, test and held-out photos."""
    from skimage import data as skdata

    out = [(s, n, embedded_image(n)) for s in ("val", "test") for n in EMBEDDED_SPLITS[s]]
    root = Path(skdata.__file__).parent
    return out + [("held-out", n, load_image(root / n).image) for n in EXTRA_PHOTOS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base-v2-odd")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--num", type=int, default=150, help="crops per photo")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    images = photos()
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(name)
        threshold = kit.threshold(1e-3, size=(args.size, args.size))
        print(f"{name}: {args.num} clean crops of {args.size} px per photo; "
              f"FPR 1e-3 threshold {threshold:.2f}")  # fmt: skip
        for i, (split, photo, image) in enumerate(images):
            crops = RandomCrops(ImagePool([image], max_side=512), args.size)
            batch = round8(crops.sample(args.num, torch.Generator().manual_seed(1000 + i)))
            score = kit.logits(batch)[:, 0]
            print(f"  {split:8s} {photo:24s} mean {score.mean():+6.2f}  "
                  f"p99 {score.quantile(0.99):+6.2f}  max {score.max():+6.2f}  "
                  f"flagged {(score >= threshold).float().mean():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
