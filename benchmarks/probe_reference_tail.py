"""Would another score lower the clean tail that sets a v2 kit's 256 px threshold? (issue 13,
stop 39)

The same images scored by the kit as shipped and by detector-only variants of it (no
retraining): ``decoy``, F's read through a decoy mask subtracted (what F reads from the image's
noise and texture alone); ``noise-debiased``, the detector's mask trust computed after taking
the image's estimated noise out of its local contrast (Immerkaer's estimate, the 20th
percentile over 8 px cells), so that noise does not lend trust to cells without content;
``floorX``, the detector's mask floor raised to X (less trust in every low-contrast cell). No
calibration exists for the variants, so all are judged at one rule no user could set but that
treats them alike: the highest clean score over every clean set (photos and flat images, each
as it is and after the attacks), and the share of signed crops above it.

    python benchmarks/probe_reference_tail.py --kit robust-v2 --variants decoy,noise-debiased
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import (  # noqa: E402
    held_out_crops,
    held_out_photos,
    rounded,
    unseen_flat_images,
)

from advsig.bench.runner import resolve_attacks  # noqa: E402
from advsig.kit import Kit  # noqa: E402


def noise_sigma(gray: torch.Tensor, cell: int) -> torch.Tensor:
    """Per-image noise estimate (B, 1, 1, 1) of (B, 1, H, W) luminance: Immerkaer's
    ``sqrt(pi / 2) / 6 * mean |I * N|`` per cell, the 20th percentile over cells (noise is
    everywhere, texture only adds)."""
    n = gray.new_tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]).view(1, 1, 3, 3)
    r = torch.nn.functional.conv2d(gray, n).abs()  # (B, 1, H-2, W-2)
    per_cell = torch.nn.functional.avg_pool2d(r, cell, ceil_mode=True).flatten(1)
    return (math.sqrt(math.pi / 2) / 6 * per_cell.quantile(0.2, dim=1)).view(-1, 1, 1, 1)


def debias_trust(kit: Kit) -> Kit:
    """A copy of ``kit`` whose detector mask takes the image's estimated noise out of the local
    contrast before its trust (``ContentBinding.weight``); the mask's signs are unchanged."""
    other = copy.deepcopy(kit)
    b = other.detector.binding

    floor = b.floor
    untrusted = type(b).forward.__get__(b)  # the mask network itself, read with floor 0

    def forward(images: torch.Tensor) -> torch.Tensor:
        b.floor = 0.0
        try:
            mask = untrusted(images)  # (B, 1, H, W), the same signs, no trust applied
        finally:
            b.floor = floor
        luma = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # as ContentBinding
        gray = (images * luma).sum(dim=1, keepdim=True)
        # A cell mean minus its 3 x 3 neighbourhood's mean carries 8/9 of a cell mean's noise.
        noise2 = (8 / 9) * noise_sigma(gray, b.cell).square() / b.cell**2
        contrast = b.contrast(images)
        # ContentBinding.weight with the noise's share taken out of the pooled contrast energy.
        a2 = F.avg_pool2d(F.pad(contrast.square(), (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        a2 = (a2 - noise2).clamp(min=0)
        trust = a2.square() / (a2.square() + floor**4)
        return mask * F.interpolate(trust, size=images.shape[-2:], mode="bilinear")

    b.forward = forward
    return other


def with_floor(kit: Kit, floor: float) -> Kit:
    """A copy of ``kit`` whose detector mask has trust floor ``floor`` (W's stays)."""
    other = copy.deepcopy(kit)
    other.detector.binding.floor = floor
    return other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust-v2")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--clean", type=int, default=200)
    ap.add_argument("--synthetic", type=int, default=100)
    ap.add_argument("--signed", type=int, default=100)
    ap.add_argument("--attacks", default="noise0.05,noise0.02,blur2,jpeg50")
    ap.add_argument("--variants", default="decoy,noise-debiased")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    make = {
        "decoy": lambda: kit.with_score_reference("decoy"),
        "noise-debiased": lambda: debias_trust(kit),
    }
    kits = {"as shipped": kit}
    for v in args.variants.split(","):
        kits[v] = with_floor(kit, float(v[5:])) if v.startswith("floor") else make[v]()
    gen = torch.Generator().manual_seed(0)
    photos = held_out_crops(held_out_photos(), args.size, args.clean, gen)
    flat = unseen_flat_images(args.synthetic, args.size)
    signed = rounded(kit.sign(photos[: args.signed], code="1234abcd"))
    attacks = [None, *resolve_attacks(args.attacks)]
    scores: dict[str, dict[tuple[str, str], torch.Tensor]] = {k: {} for k in kits}
    for attack in attacks:
        label = "none" if attack is None else attack.label
        for name, images in (("photo", photos), ("flat", flat), ("signed", signed)):
            g = torch.Generator().manual_seed(1)
            x = (
                images
                if attack is None
                else rounded([attack(i[None], generator=g)[0] for i in images])
            )
            for k, kk in kits.items():
                scores[k][(name, label)] = kk.logits(x)[:, 0]
    print(f"kit {args.kit}, {args.size} px; rule: the highest clean score over every clean set")
    print("| score | clean max: photos / flat (which) | " + " | ".join(
        f"signed {'none' if a is None else a.label}" for a in attacks) + " |")  # fmt: skip
    print("|---|---|" + "---|" * len(attacks))
    for k, s in scores.items():
        photo_max = max(v.max() for (n, _), v in s.items() if n == "photo")
        flat_max, which = max((v.max(), lab) for (n, lab), v in s.items() if n == "flat")
        rule = max(photo_max, flat_max)
        cells = [
            f"{(s[('signed', 'none' if a is None else a.label)] > rule).float().mean():.2f}"
            for a in attacks
        ]
        print(f"| {k} | {photo_max:+.2f} / {flat_max:+.2f} ({which}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
