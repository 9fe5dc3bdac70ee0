"""What the high-pass K-average forgery carries (BENCHMARKS.md, issue 11).

Splits the mean of K high-pass residuals of signed attacker crops into its two parts and adds
each, rescaled to 40 dB, to 64 clean test crops (256 px): the mean high-pass of the same crops
unsigned (content only), the mean exact residual (signature only), and both (the attack).
Prints the share flagged at the kit's own FPR 1e-3 threshold and the median score.

    python benchmarks/probe_hp_forgery.py --kit base-v2
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import targets  # noqa: E402

from advsig.attacks.forgery import highpass_residuals, round8, scale_to_psnr  # noqa: E402
from advsig.bench.adversaries import attacker_crops  # noqa: E402
from advsig.kit import Kit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2")
    ap.add_argument("--ks", default="100,1000")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    ks = [int(k) for k in args.ks.split(",")]
    tgt = torch.stack(targets(256, 64, 0))
    own = attacker_crops(max(ks), (256, 256), seed=3)
    clean = round8(torch.stack(own))
    signed = torch.cat(
        [round8(kit.sign(clean[i : i + 50], code="0badc0de")) for i in range(0, len(clean), 50)]
    )
    threshold = kit.threshold(1e-3, size=(256, 256))

    def flagged(pattern: torch.Tensor) -> str:
        y = round8(tgt + scale_to_psnr(pattern, 40.0))
        scores = kit.logits(y)[:, 0]
        return f"{(scores >= threshold).float().mean():.3f} (median {scores.median():+.2f})"

    print(f"kit {args.kit}: threshold {threshold:.2f} at 256 px; 64 targets, 40 dB")
    for k in ks:
        both = highpass_residuals(signed[:k]).mean(0)
        content = highpass_residuals(clean[:k]).mean(0)
        signature = (signed[:k] - clean[:k]).mean(0)
        print(f"K={k}: content + signature {flagged(both)}; content only {flagged(content)}; "
              f"signature only {flagged(signature)}")  # fmt: skip


if __name__ == "__main__":
    main()
