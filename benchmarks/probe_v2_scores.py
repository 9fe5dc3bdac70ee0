"""Why `base-v2`'s calibration does not hold, and a probe for the fix (BENCHMARKS.md, issue 11).

Prints, for a v2 kit: clean scores of 60 val crops (what calibration sees) and of 64 test crops
(photos it never saw), the 256 px threshold, signed scores; the val crops' maximum after light
processing; and the decoy-key difference score (F with the kit's mask minus F with the mask of
another key), which cancels the photo-level offset.

    python benchmarks/probe_v2_scores.py --kit base-v2
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import targets  # noqa: E402

from advsig.attacks import JPEG, Brightness, Contrast, GaussianBlur, GaussianNoise  # noqa: E402
from advsig.data.datasets import resolve_training_data  # noqa: E402
from advsig.kit import Kit  # noqa: E402
from advsig.training.trainer import calibration_images  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    decoy = copy.deepcopy(kit)
    decoy.detector.rekey(b"decoy" * 8)
    _, val = resolve_training_data("embedded", val_fraction=0.1, seed=0)
    crops = calibration_images(val, num=400, work_size=256, seed=0, min_size=96)
    v = [x for x in crops if x.shape[-1] == 256][:60]
    t = [(x * 255).round() / 255 for x in targets(256, 64, 0)]
    s = [(y * 255).round() / 255 for y in kit.sign(t, code="0badc0de")]
    print(f"threshold at 1e-3, 256 px: {kit.threshold(1e-3, size=(256, 256)):.2f}")
    for name, imgs in (("val", v), ("test", t), ("signed test", s)):
        a, b = kit.logits(imgs)[:, 0], decoy.logits(imgs)[:, 0]
        d = a - b
        print(f"{name:12s} score min/median/max {a.min():.2f} / {a.median():.2f} / {a.max():.2f}"
              f"   decoy difference min/median/max {d.min():.2f} / {d.median():.2f} / "
              f"{d.max():.2f}")  # fmt: skip
    g = torch.Generator().manual_seed(0)
    for attack in (JPEG(90), JPEG(60), GaussianNoise(0.02), Brightness(1.3), Contrast(0.7),
                   GaussianBlur(1.0)):  # fmt: skip
        out = [attack(x[None], generator=g)[0] for x in v]
        print(f"val crops after {attack!r}: max score {kit.logits(out)[:, 0].max():.2f}")


if __name__ == "__main__":
    main()
