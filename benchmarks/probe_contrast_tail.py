"""Which clean images set a v2 kit's threshold: scores by the crop's local contrast (stop 27).

Default: 400 clean 256 px crops of the val photos (the calibration's photos, which include flat
ones) and 200 signed crops of the test photos, split by RMS local contrast (the quantity the
mask's floor reads): flat (< 0.01), middle, textured (>= 0.02). Prints each band's clean median
and maximum and the signed crops' median and 5% quantile, next to the kit's own 256 px threshold.

``--stem-eps E,...``: rescore with the epsilon of F's first GroupNorm set to each value (after
training, as ``advsig calibrate --stem-eps`` would; 300 clean and 100 signed crops): the flat
clean crops' median and maximum, the other clean crops' maximum, and the share of signed crops
above every clean one (a re-thresholded comparison, not what a user gets).

    python benchmarks/probe_contrast_tail.py --kit runs/base-v2-odd5 [--stem-eps 1e-5,0.01,0.1]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit

BANDS = ((0.0, 0.01, "flat"), (0.01, 0.02, "middle"), (0.02, 9.0, "textured"))


def crops(split: str, num: int, seed: int) -> torch.Tensor:
    photos = [img for _, img in embedded_images(split)]
    pool = ImagePool(photos, max_side=512)
    return torch.stack(
        list(RandomCrops(pool, 256).sample(num, torch.Generator().manual_seed(seed)))
    )


@torch.inference_mode()
def scored(kit: Kit, num_clean: int, num_signed: int):
    """Clean val crops' and signed test crops' scores, and both sets' RMS local contrast."""
    clean, targets = crops("val", num_clean, 7), crops("test", num_signed, 8)
    signed = (kit.sign(targets, code=0x1234ABCD) * 255).round() / 255
    binding = kit.detector.binding

    def contrast(x: torch.Tensor) -> np.ndarray:
        return binding.contrast(x).square().mean(dim=(1, 2, 3)).sqrt().numpy()

    return clean, signed, contrast(clean), contrast(targets)


def by_band(kit: Kit) -> None:
    clean, signed, c_clean, c_signed = scored(kit, 400, 200)
    with torch.inference_mode():
        sc = kit.logits(list(clean))[:, 0].numpy()
        ss = kit.logits(list(signed))[:, 0].numpy()
    thr = kit.threshold(1e-3, size=(256, 256))
    print(
        f"threshold (own, 256 px, FPR 1e-3) {thr:.2f}; signed at or above it {np.mean(ss >= thr):.3f}"
    )
    for lo, hi, name in BANDS:
        c, s = sc[(c_clean >= lo) & (c_clean < hi)], ss[(c_signed >= lo) & (c_signed < hi)]
        line = f"  {name:9s} clean n={len(c):3d}"
        if len(c):
            line += f" median {np.median(c):+.2f} max {c.max():+.2f}"
        line += f" | signed n={len(s):3d}"
        if len(s):
            line += f" median {np.median(s):+.2f} q05 {np.quantile(s, 0.05):+.2f}"
        print(line)


def stem_eps_sweep(kit: Kit, eps: list[float]) -> None:
    clean, signed, c_clean, _ = scored(kit, 300, 100)
    norm = next(m for m in kit.detector.net if isinstance(m, torch.nn.GroupNorm))
    flat = c_clean < 0.01
    for e in eps:
        norm.eps = e
        with torch.inference_mode():
            sc = kit.logits(list(clean))[:, 0].numpy()
            ss = kit.logits(list(signed))[:, 0].numpy()
        print(
            f"stem eps {e:g}: flat clean median {np.median(sc[flat]):+.2f} max "
            f"{sc[flat].max():+.2f} | other clean max {sc[~flat].max():+.2f} | signed median "
            f"{np.median(ss):+.2f} min {ss.min():+.2f} | above every clean {np.mean(ss > sc.max()):.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", required=True)
    ap.add_argument("--stem-eps", default="", help="comma-separated GroupNorm eps values")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    if kit.detector is None or kit.detector.binding is None:
        raise SystemExit("this probe needs a full v2 (content-bound) kit")
    if args.stem_eps:
        stem_eps_sweep(kit, [float(e) for e in args.stem_eps.split(",")])
    else:
        by_band(kit)


if __name__ == "__main__":
    main()
