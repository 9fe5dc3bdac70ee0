"""Can a fit-up read find a signature that a downscale moved off its grid? (probe, no change)

A 256 px image is signed at its own size, on the kit's tile grid. A platform that shrinks it by
0.75 (an upload) or 0.8 (a screenshot) leaves a 192-205 px image whose signature is shrunk with
it, and the kit's scale search cannot bring it back: its upscale of 2 would pass the working
size. This probe reads each image as the kit does and also fitted back up to the working size
(the read a kit could add), for signed and clean held-out crops under the same chain, and for
clean crops that are natively small (what such a read would see in ordinary use). It changes
no kit: a detection scale like this needs a calibration of its own before it can ship.

    python benchmarks/probe_fit_up.py --kit robust-v2 --num-images 64

Reads are always made with fit-up off (then the fit-up read by hand); the thresholds printed
are the kit's current ones (benchmarks/results/probe-fit-up-robust-v2.txt was written before
`robust-v2` was recalibrated with fit-up: 192 px +3.41 there, +3.32 now).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from advsig.bench.runner import resolve_attacks
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit


def fit_up(images: torch.Tensor, side: int) -> torch.Tensor:
    """Each image resized so that its longer side is ``side`` (bilinear, no antialias: up)."""
    h, w = images.shape[-2:]
    scale = side / max(h, w)
    size = (round(h * scale), round(w * scale))
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust-v2")
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--attacks", default="social0.75-q80,screenshot0.8,social1-q85")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    kit = Kit.from_pretrained(args.kit)  # its thresholds
    # The kit's read without fit-up (a kit may ship with it on); calibration is not needed.
    plain = kit.with_fit_up(False)
    pool = ImagePool([img for _, img in embedded_images("test")], max_side=512)
    gen = torch.Generator().manual_seed(args.seed)
    clean = RandomCrops(pool, args.size).sample(args.num_images, gen)
    signed = (kit.sign(clean, code="c0ffee") * 255).round() / 255
    print(f"{args.kit}: {args.num_images} held-out crops of {args.size} px; signed / clean scores")
    print(
        "| chain | side | threshold | kit read: signed detected, clean max | fit-up read: "
        "signed median, clean max, signed above every clean |"
    )
    print("|---|---|---|---|---|")
    for attack in resolve_attacks(args.attacks):
        label = attack.label
        s_img = torch.stack([attack(x[None], generator=torch.Generator().manual_seed(i))[0]
                             for i, x in enumerate(signed)])  # fmt: skip
        c_img = torch.stack([attack(x[None], generator=torch.Generator().manual_seed(i))[0]
                             for i, x in enumerate(clean)])  # fmt: skip
        side = min(s_img.shape[-2:])
        threshold = kit.threshold(1e-3, size=tuple(s_img.shape[-2:]))
        ks, kc = plain.logits(s_img)[:, 0], plain.logits(c_img)[:, 0]
        fs = plain.logits(fit_up(s_img, kit.work_size))[:, 0]
        fc = plain.logits(fit_up(c_img, kit.work_size))[:, 0]
        print(
            f"| {label} | {side} | {threshold:+.2f} | {(ks > threshold).float().mean():.2f}, "
            f"{kc.max():+.2f} | {fs.median():+.2f}, {fc.max():+.2f}, "
            f"{(fs > fc.max()).float().mean():.2f} |"
        )
    # What the fit-up read sees on images that are small to begin with (no signature).
    for small in (192, 160):
        native = RandomCrops(pool, small).sample(args.num_images, gen)
        fn = plain.logits(fit_up(native, kit.work_size))[:, 0]
        print(
            f"clean native {small} px crops, fit-up read: max {fn.max():+.2f}, "
            f"99th percentile {fn.quantile(0.99):+.2f}; kit read max "
            f"{plain.logits(native)[:, 0].max():+.2f} (threshold "
            f"{kit.threshold(1e-3, size=(small, small)):+.2f})"
        )


if __name__ == "__main__":
    main()
