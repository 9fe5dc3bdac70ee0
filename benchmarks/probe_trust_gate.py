"""How much content does an image have for a signature to live in, and does F's score on
contentless images set a v2 kit's threshold? (issue 13, stop 39)

For crops of held-out photos and of procedural flat images (``advsig.data.synthetic``), clean
and signed, as they are and after a few pixel attacks: the kit's score and the image's mean
mask trust (``ContentBinding.weight`` of the detector's keyed mask, averaged over the image),
the share of the image whose cells have content above the mask's floor. Prints quantiles of
the trust per set and what thresholds a trust gate would leave.

    python benchmarks/probe_trust_gate.py --kit robust-v2 --size 256 --clean 300 --synthetic 100 --signed 100
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import (  # noqa: E402
    held_out_crops,
    held_out_photos,
    rounded,
    unseen_flat_images,
)

from advsig.bench.runner import resolve_attacks  # noqa: E402
from advsig.data.datasets import fit_within  # noqa: E402
from advsig.kit import Kit  # noqa: E402


def mean_trust(kit: Kit, images: list[torch.Tensor]) -> torch.Tensor:
    """(N,) mean over each image of the detector's mask trust at working resolution."""
    b = kit.detector.binding
    out = []
    for x in images:
        work = fit_within(x.float(), kit.work_size)[None]
        out.append(b.weight(b.contrast(work)).mean())
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust-v2")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--clean", type=int, default=300)
    ap.add_argument("--synthetic", type=int, default=100)
    ap.add_argument("--signed", type=int, default=100)
    ap.add_argument("--attacks", default="noise0.05,noise0.02,blur2,jpeg50")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    thr = kit.threshold(1e-3, size=(args.size, args.size))
    gen = torch.Generator().manual_seed(0)
    photos = held_out_crops(held_out_photos(), args.size, args.clean, gen)
    flat = unseen_flat_images(args.synthetic, args.size)
    sets = {
        "photo": photos, "flat": flat,
        "signed photo": rounded(kit.sign(photos[: args.signed], code="1234abcd")),
        "signed flat": rounded(kit.sign(flat[: args.signed // 2], code="1234abcd")),
    }  # fmt: skip
    print(f"kit {args.kit}, {args.size} px, own threshold {thr:+.2f}")
    print(
        "| set | processing | n | trust q05 / q50 / q95 | score max (clean) or detected (signed) |"
    )
    print("|---|---|---|---|---|")
    for attack in [None, *resolve_attacks(args.attacks)]:
        label = "none" if attack is None else attack.label
        for name, images in sets.items():
            g = torch.Generator().manual_seed(1)
            x = (
                images
                if attack is None
                else rounded([attack(i[None], generator=g)[0] for i in images])
            )
            score = kit.logits(x)[:, 0]
            trust = mean_trust(kit, x)
            q = torch.quantile(trust, torch.tensor([0.05, 0.5, 0.95]))
            what = (f"max {score.max():+.2f}; trust of the top 3: "
                    + ", ".join(f"{trust[i]:.2f}" for i in score.argsort(descending=True)[:3])
                    if not name.startswith("signed") else
                    f"{(score > thr).float().mean():.3f}; score q50 {score.median():+.2f}")  # fmt: skip
            print(
                f"| {name} | {label} | {len(x)} | {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} | {what} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
