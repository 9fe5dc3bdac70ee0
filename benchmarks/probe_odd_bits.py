"""Bits from both passes of an odd score: ``b(u) - w * b(-u)`` for several weights ``w``.

An odd-score kit reads every tile as ``u`` and ``-u``; its bits came from ``b(u)`` alone. This
signs 256 crops (256 px) of the validation and of the test photos (a random code per batch of
16), reads both passes as the kit does, and prints the bit accuracy for
each ``w``, ``-b(-u)`` alone and the correlation of ``b(u)`` with ``b(-u)``. ``w`` = 1 is
``DetectorConfig.odd_bits``. About 1 minute on 2 cores.

    python benchmarks/probe_odd_bits.py --kit base-v2-odd
"""

from __future__ import annotations

import argparse

import torch

from advsig.codes.bits import hex_to_bits, random_code
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def both_passes(kit: Kit, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bit logits ``b(u)`` and ``b(-u)`` as the kit reads them (same fitting, tiles, tile mean).

    The kit's bits are ``b(u)`` without ``odd_bits`` and ``b(u) - b(-u)`` with it, both linear
    in the tile mean, so ``b(-u)`` is their difference.
    """
    plus = kit.with_detector_options(odd_bits=False).logits(images)[:, 1:]
    odd = kit.with_detector_options(odd_bits=True).logits(images)[:, 1:]
    return plus, plus - odd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2-odd")
    ap.add_argument("--num-images", type=int, default=256)
    args = ap.parse_args()
    kit = Kit.from_pretrained(args.kit)
    if not kit.detector.config.odd_score:
        raise SystemExit(f"{args.kit}: not an odd-score kit")
    size = kit.work_size
    print(f"{args.kit}: {args.num_images} crops per split, {size} px, bit accuracy")
    for split in ("val", "test"):
        pool = ImagePool([img for _, img in embedded_images(split)], max_side=512)
        crops = RandomCrops(pool, size).sample(args.num_images, torch.Generator().manual_seed(5))
        crops = (crops * 255).round() / 255
        gen = torch.Generator().manual_seed(4)
        signed, truth = [], []
        for batch in crops.split(16):
            code = random_code(kit.num_bits, gen)
            signed.append(kit.sign(batch, code=code))
            truth.append(hex_to_bits(code, kit.num_bits)[None].expand(len(batch), -1))
        signed = (torch.cat(signed) * 255).round() / 255
        truth = torch.cat(truth)
        a, b = both_passes(kit, signed)

        row = "  ".join(f"w={w}: {_accuracy(a - w * b, truth):.4f}" for w in WEIGHTS)
        corr = float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])
        alone = _accuracy(-b, truth)
        print(f"  {split:5s} {row}  -b(-u) alone: {alone:.4f}  corr(b(u), b(-u)): {corr:+.2f}")


def _accuracy(logits: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((logits > 0).float() == truth).float().mean())


if __name__ == "__main__":
    main()
