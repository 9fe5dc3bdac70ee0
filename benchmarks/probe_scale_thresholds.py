"""Per-size FPR 1e-3 thresholds of a kit with and without its 2x scale search (about 5 min).

Calibrates the kit twice on 1000 clean crops of the embedded validation photos (96-256 px),
once as it is and once reading images only at their own scale, and prints each size's
threshold and the validation TPR. Used in stop 29 to test whether the 2x read of small images
is what sets their thresholds (it is not).

    python benchmarks/probe_scale_thresholds.py --kit runs/base-v2-odd10
"""

from __future__ import annotations

import argparse

from advsig.data.datasets import resolve_training_data
from advsig.kit import Kit
from advsig.training.trainer import calibrate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", required=True)
    ap.add_argument("--num", type=int, default=1000)
    args = ap.parse_args()
    _, val = resolve_training_data("embedded", val_fraction=0.1, seed=0)
    for scales in ((1.0, 2.0), (1.0,)):
        kit = Kit.from_pretrained(args.kit)
        kit.detect_scales = scales
        summary = calibrate(kit, val, num=args.num, seed=0)
        strata = {s: round(c.threshold(1e-3)[0], 2) for s, c in kit.calibration.strata.items()}
        print(f"scales {scales}: thresholds {strata}, val TPR {summary['tpr']['0.001']:.3f}")


if __name__ == "__main__":
    main()
