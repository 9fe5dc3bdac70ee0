"""Why a v2 kit loses its signature to a crop: the scale, or the grid the crop moves.

Signs the five test photos at native size, cuts a crop keeping ``--side`` of each side (0.707:
half the area, the demo's crop50) either at the top-left corner (the signing grid of tiles,
mask cells and code texture stays where it was) or at the centre (the grid moves), and scores
both signed and clean crops at scale 1 and at the scale that undoes the crop's magnification
(a crop of a photo larger than the work size is fitted back to the work size, so it shows the
signature magnified by ``1 / side``). Score vs the kit's FPR 1e-3 threshold for that size.

    python benchmarks/probe_crop_alignment.py --kit base-v2-odd
"""

from __future__ import annotations

import argparse

from advsig.data.datasets import embedded_images
from advsig.kit import Kit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2-odd")
    ap.add_argument("--side", type=float, default=0.707)
    args = ap.parse_args()
    kit = Kit.from_pretrained(args.kit)
    print(f"{args.kit}: crops keeping {args.side} of each side; score signed / clean (threshold)")
    for name, img in embedded_images("test"):
        signed = (kit.sign(img, code="c0ffee") * 255).round() / 255
        H, W = img.shape[-2:]
        h, w = round(H * args.side), round(W * args.side)
        cells = []
        for where, (y, x) in {"top-left": (0, 0), "centre": ((H - h) // 2, (W - w) // 2)}.items():
            for scale in (1.0, args.side):
                view = Kit(kit.injector, kit.detector, work_size=kit.work_size,
                           tile_size=kit.tile_size, calibration=kit.calibration,
                           detect_scales=(scale,), upscale_within_work=kit.upscale_within_work)  # fmt: skip
                s = view.logits(signed[:, y : y + h, x : x + w])[0, 0].item()
                c = view.logits(img[:, y : y + h, x : x + w])[0, 0].item()
                cells.append(f"{where} x{scale:g}: {s:+6.2f} / {c:+6.2f}")
        threshold = kit.threshold(1e-3, size=(h, w))
        print(f"  {name:10s} " + "  ".join(cells) + f"  ({threshold:+.2f})")


if __name__ == "__main__":
    main()
