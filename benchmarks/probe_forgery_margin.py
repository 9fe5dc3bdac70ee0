"""Where no-box forgeries score between clean and signed images (issue 11: is there a margin?).

For one kit at one crop size, prints score quantiles of clean test crops, signed test crops
(as saved and after the issue's light processing) and high-pass / oracle K-average forgeries
at 40 dB (and, as a control, the same high-pass of the unsigned crops: content only) made
from two attacker sets: ``train+val`` (the security benchmark's attacker, whose
photos the kit trained or calibrated on) and ``held-out`` (four scikit-image photos no split
uses). A threshold between the forgeries' maximum and the signed images' low quantiles would
reject both attacker sets' forgeries without losing signed images.

    python benchmarks/probe_forgery_margin.py --kit base-v2 --size 256
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import held_out_attacker, targets  # noqa: E402

from advsig.attacks.forgery import highpass_residuals, round8, scale_to_psnr  # noqa: E402
from advsig.bench.adversaries import attacker_crops  # noqa: E402
from advsig.bench.runner import resolve_attacks  # noqa: E402
from advsig.kit import Kit  # noqa: E402

LIGHT = "none,jpeg90,resize0.5-back,noise0.02,brightness1.3"


def quantiles(scores: torch.Tensor) -> str:
    q = torch.quantile(scores, torch.tensor([0.0, 0.01, 0.5, 0.99, 1.0]))
    return "min {:+6.2f}  q01 {:+6.2f}  median {:+6.2f}  q99 {:+6.2f}  max {:+6.2f}".format(*q)


def signed_batches(kit: Kit, clean: torch.Tensor, code: str) -> torch.Tensor:
    return torch.cat(
        [round8(kit.sign(clean[i : i + 50], code=code)) for i in range(0, len(clean), 50)]
    )


def attacker_sets(kit: Kit, num: int, size: int, code: str):
    """Per attacker set, its name, ``num`` clean crops and their signed copies (8-bit).

    ``train+val``: the security benchmark's attacker (photos the kit trained or calibrated
    on); ``held-out``: four scikit-image photos no split uses.
    """
    sets = {
        "train+val": attacker_crops(num, (size, size), seed=3),
        "held-out": held_out_attacker(num, size, seed=3),
    }
    for name, crops in sets.items():
        clean = round8(torch.stack(crops))
        yield name, clean, signed_batches(kit, clean, code)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--ks", default="1,10,100,1000")
    ap.add_argument("--psnr", default="40", help="attack strengths in dB, comma-separated")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    code = "0badc0de"[: kit.num_bits // 4]
    ks = [int(k) for k in args.ks.split(",")]
    tgt = round8(torch.stack(targets(args.size, args.num_images, 0)))
    threshold = kit.threshold(1e-3, size=(args.size, args.size))
    print(
        f"kit {args.kit}: {len(tgt)} test crops, {args.size} px; FPR 1e-3 threshold {threshold:+.2f}"
    )

    def score(images: torch.Tensor) -> torch.Tensor:
        return kit.logits(images)[:, 0]

    print(f"  {'clean':40s} {quantiles(score(tgt))}")
    signed = signed_batches(kit, tgt, code)
    for attack in resolve_attacks(LIGHT):
        attacked = torch.stack([attack(img) for img in signed])
        print(f"  {'signed ' + attack.label:40s} {quantiles(score(attacked))}")
    for name, clean, own in attacker_sets(kit, max(ks), args.size, code):
        for k in ks:
            for kind, est in (
                ("high-pass", highpass_residuals(own[:k]).mean(0)),
                ("oracle", (own[:k] - clean[:k]).mean(0)),
                ("content only", highpass_residuals(clean[:k]).mean(0)),
            ):
                for psnr in [float(p) for p in args.psnr.split(",")]:
                    s = score(round8(tgt + scale_to_psnr(est, psnr)))
                    label = f"{name} {kind} K={k} {psnr:g} dB"
                    print(
                        f"  {label:40s} {quantiles(s)}  flagged {(s >= threshold).float().mean():.3f}"
                    )


if __name__ == "__main__":
    main()
