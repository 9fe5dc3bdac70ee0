"""What each part of an odd-score v2 kit's score adds, read on single tiles (stop 30).

An odd kit with the decoy reference scores ``(f(u) - f(-u)) - (f(u_d) - f(-u_d))``: ``u`` is the
image's high-pass demodulated by the kit's mask, ``u_d`` the same through the decoy mask. This
probe reads the four terms on one tile per image (the kit's training crop size, so no averaging
hides their noise) for clean val crops, clean test crops, signed test crops and two one-image
forgeries of the test crops at 40 dB (another signed crop's high-pass; its exact residual), and
prints, for several combinations of the terms, the clean spread, the clean 1e-3 quantile (a
threshold set on these val crops), and the share of each other set above it.

    python benchmarks/probe_score_parts.py --kit runs/base-v2-odd10
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from advsig.attacks.forgery import round8, scale_to_psnr
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit
from advsig.modules.binding import highpass

COMBINATIONS = {
    "decoy-referenced (a-b)-(c-d)": lambda p: (p[0] - p[1]) - (p[2] - p[3]),
    "odd, no reference a-b": lambda p: p[0] - p[1],
    "half reference (a-b)-(c-d)/2": lambda p: (p[0] - p[1]) - 0.5 * (p[2] - p[3]),
    "kit read only a": lambda p: p[0],
}


def crops(split: str, num: int, seed: int, size: int) -> torch.Tensor:
    pool = ImagePool([img for _, img in embedded_images(split)], max_side=512)
    return torch.stack(
        list(RandomCrops(pool, size).sample(num, torch.Generator().manual_seed(seed)))
    )


@torch.inference_mode()
def parts(kit: Kit, images: torch.Tensor) -> np.ndarray:
    """(4, N): a = f(u), b = f(-u), c = f(u_d), d = f(-u_d), the score column of F's head."""
    det = kit.detector
    if det.decoy is None:
        raise SystemExit(f"{kit}: not a decoy-capable v2 detector")
    out = []
    for i in range(0, len(images), 100):
        x = images[i : i + 100]
        u, ud = det.features(x), det.features(x, mask=det.decoy)
        out.append(det.net(torch.cat([u, -u, ud, -ud]))[:, 0].view(4, -1))
    return torch.cat(out, dim=1).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", required=True)
    ap.add_argument("--num-clean", type=int, default=1000)
    ap.add_argument("--num-test", type=int, default=300)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    kit = Kit.from_pretrained(args.kit)
    size = kit.tile_size or 96
    clean = crops("val", args.num_clean, 7, size)
    clean_test, targets = (
        crops("test", args.num_test, 9, size),
        crops("test", args.num_test, 8, size),
    )
    with torch.inference_mode():
        signed = round8(kit.sign(targets, code=0x1234ABCD))
        donors = signed.roll(1, 0)  # each target gets another crop's signature
        lifted = scale_to_psnr(highpass(donors, 1.0), 40.0, per_image=True)
        exact = scale_to_psnr(signed - targets, 40.0, per_image=True).roll(1, 0)
    sets = {
        "clean val": clean,
        "clean test": clean_test,
        "signed test": signed,
        "high-pass forgery": round8((clean_test + lifted).clamp(0, 1)),
        "exact-residual forgery": round8((clean_test + exact).clamp(0, 1)),
    }
    reads = {name: parts(kit, x) for name, x in sets.items()}
    a, b, c, d = reads["clean val"]
    print(
        f"{args.kit}: one {size} px tile per image; corr(f(u), f(-u)) on clean val {np.corrcoef(a, b)[0, 1]:+.2f}, "
        f"corr(a - b, c - d) {np.corrcoef(a - b, c - d)[0, 1]:+.2f}"
    )
    for label, combine in COMBINATIONS.items():
        scores = {name: combine(p) for name, p in reads.items()}
        ref = scores["clean val"]
        thr = float(np.quantile(ref, 0.999))
        spread = float(ref.std())
        d = (np.median(scores["signed test"]) - np.median(ref)) / spread
        above = "  ".join(
            f"{n} {np.mean(s > thr):.3f}" for n, s in scores.items() if n != "clean val"
        )
        print(
            f"  {label:30s} clean std {spread:5.2f}  q999 {thr:+6.2f}  d' {d:4.2f} | above: {above}"
        )


if __name__ == "__main__":
    main()
