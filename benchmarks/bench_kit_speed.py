"""Signing and detection speed of several kits in one run (same process, same machine).

Speed does not depend on the weights, only on what a kit computes: a v1 kit reads an image once
per tile; a v2 kit computes its content mask first; an odd score (``f(u) - f(-u)``) reads twice,
and a decoy reference doubles that again. Timing them side by side is the only fair comparison
on a shared machine. Batch 16, random images, best of three after a warm-up.

    python benchmarks/bench_kit_speed.py --kits base,base-v2-odd --size 256
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import time_call  # noqa: E402

from advsig.kit import Kit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base,base-v2-odd")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(
        f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; {args.size}x{args.size}, batch {args.batch}"
    )
    print("| kit | score | sign (img/s) | detect (img/s) |\n|---|---|---|---|")
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(name)
        cfg = kit.detector.config
        score = (
            "v1 logit"
            if not kit.bound
            else ("odd" if cfg.odd_score else "raw")
            + (", decoy-referenced" if cfg.score_reference == "decoy" else "")
        )
        sign = time_call(lambda k=kit: k.sign(x, code=None))
        detect = time_call(lambda k=kit: k.logits(x))
        print(f"| {name} | {score} | {args.batch / sign:.1f} | {args.batch / detect:.1f} |")


if __name__ == "__main__":
    main()
