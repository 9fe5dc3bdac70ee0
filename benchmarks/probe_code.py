"""Where a kit's code is lost: per-tile bit accuracy, a carrier readout, and photo detail by colour.

Why (stop 18): ``base-v2-light`` decoded only 0.83 of its bits, and its tile-averaged figures did
not say whether a few carriers or all of them were at fault, nor whether the signal or the
photo's own detail was to blame. This prints, for each kit, on 96 px tiles of the test photos
(no kit trained on them) signed with random codes, unattacked:

- F's bit accuracy per tile (mean, worst bit, best bit): the training-size view, before the
  kit averages tiles;
- a matched readout of the keyed carriers (FFT power of F's demodulated input, luma, at each
  bit's two frequencies; the stronger one wins): how much of the code a fixed, optimal-for-white-
  noise reader finds under the photo's detail;

and, once, the power of the test photos' high-pass (sigma 4, as F sees them) along gray and
along colour-opponent axes (unit RGB vectors): how much photo detail a residual along each
axis competes with.

    python benchmarks/probe_code.py --kits base-v2,base-v2-light,base-v2-chroma
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import targets  # noqa: E402

from advsig.attacks.forgery import round8  # noqa: E402
from advsig.kit import Kit  # noqa: E402
from advsig.modules.binding import highpass  # noqa: E402

TILE = 96
AXES = {
    "gray": (1, 1, 1),
    "blue-yellow": (-1, -1, 2),
    "red-green": (1, -1, 0),
    "green-blue": (0, 1, -1),
}


def tiles(num_images: int) -> torch.Tensor:
    """Three 96 px tiles (two corners and an off-centre square) of each 256 px test crop."""
    crops = round8(torch.stack(targets(256, num_images, 0)))  # (N, 3, 256, 256)
    t = TILE
    return torch.cat([crops[..., :t, :t], crops[..., 96:192, 96:192], crops[..., -t:, -t:]])


def carrier_readout(kit: Kit, signed: torch.Tensor, bits: torch.Tensor) -> float:
    """Share of bits whose own carrier has more FFT power than the other one, in F's input."""
    feats = kit.detector.features(signed).mean(dim=1)  # (B, T, T)
    n = feats.shape[-1]
    window = torch.hann_window(n, periodic=False)
    power = torch.fft.fft2(feats * window[:, None] * window[None]).abs().square()  # (B, T, T)
    freqs = kit.injector.carrier_freqs  # (bits, 2 choices, (fy, fx)) in cycles per pixel
    idx = torch.round(freqs * n).long() % n  # nearest FFT bin
    at = power[:, idx[..., 0], idx[..., 1]]  # (B, bits, 2)
    return float(((at[..., 1] > at[..., 0]).float() == bits).float().mean())


@torch.inference_mode()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base-v2,base-v2-light,base-v2-chroma")
    ap.add_argument("--num-images", type=int, default=64)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    clean = tiles(args.num_images)
    print(f"{len(clean)} tiles of {TILE} px from {args.num_images} test crops, random codes")
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(name)
        g = torch.Generator().manual_seed(1)
        bits = torch.randint(0, 2, (len(clean), kit.num_bits), generator=g).float()
        signed = round8((clean + kit.injector.residual(clean, bits)).clamp(0, 1))
        per_bit = ((kit.detector(signed)[:, 1:] > 0).float() == bits).float().mean(dim=0)
        print(
            f"  {name:16s} F bits per tile {per_bit.mean():.3f} (worst bit {per_bit.min():.2f},"
            f" best {per_bit.max():.2f}); carrier readout {carrier_readout(kit, signed, bits):.3f}"
        )
    hp = highpass(clean, 4.0)  # (B, 3, T, T)
    print("  photo high-pass power along each unit colour axis:")
    for axis, rgb in AXES.items():
        v = torch.tensor(rgb, dtype=torch.float32)
        power = torch.einsum("c,bchw->bhw", v / v.norm(), hp).square().mean()
        print(f"    {axis:12s} {power:.5f}")


if __name__ == "__main__":
    main()
