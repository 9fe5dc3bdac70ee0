"""Can a v2 signature be read without its grid? A training-free spectral read of shifted crops.

Why: F's read is locked to the signing grid's phase (``probe_shift.py``: one pixel off and a
signed crop reads like a clean one), so crops and rotations remove the signature. The code
texture itself was made to survive shifts: frequency-shift keying, where *which* keyed
frequency carries energy is what a bit says, and a shift changes only phases. What a shift
breaks is F, and the grid of the keyed mask's cells. This probe reads the same signature with
no learned part: demodulate with the suspect image's own mask (searched over the 8 x 8 cell
phases, the mask is cheap), take the power spectrum, and compare the energy at the kit's keyed
carrier frequencies with the same energy under the decoy mask (which scrambles a signature but
sees the same photo texture). The better of each bit's two frequencies gives the bit.

    python benchmarks/probe_spectral_read.py --kit robust-v2 --phases 2

Prints, per offset, the signed crops' median and minimum score, the clean crops' maximum, and
the bit accuracy; then the same for forgeries (another signed crop's residual added to a clean
crop, and a bare keyed carrier texture at the signature's energy, which an attacker who learnt
the carrier frequencies could add).
"""

from __future__ import annotations

import argparse
import math

import torch

from advsig.codes.bits import hex_to_bits
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit
from advsig.modules.binding import ContentBinding, highpass
from advsig.modules.blocks import code_texture

OFFSETS = [(0, 0), (0, 1), (1, 1), (2, 2), (3, 5), (4, 4), (8, 8), (13, 7), (16, 16)]
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def carrier_energy(u: torch.Tensor, freqs: torch.Tensor, radius: float) -> torch.Tensor:
    """Power of ``u`` (B, 1, n, n) within ``radius`` cycles/px of each carrier: (B, bits, 2)."""
    n = u.shape[-1]
    win = torch.hann_window(n, periodic=False)
    p = torch.fft.fft2((u - u.mean(dim=(2, 3), keepdim=True)) * (win[:, None] * win[None, :]))
    power = p.abs().square()[:, 0]  # (B, n, n)
    f = torch.fft.fftfreq(n)
    fy, fx = f[:, None], f[None, :]
    out = torch.zeros(u.shape[0], freqs.shape[0], 2)
    for i in range(freqs.shape[0]):
        for k in range(2):
            cy, cx = freqs[i, k]
            near = ((fy - cy) ** 2 + (fx - cx) ** 2 < radius**2) | (
                (fy + cy) ** 2 + (fx + cx) ** 2 < radius**2
            )
            out[:, i, k] = power[:, near].sum(dim=1)
    return out


def carrier_shares(u: torch.Tensor, freqs, truth, radius: float) -> tuple[float, float]:
    """Mean share of ``u``'s energy near the code's carriers and near the other bit values'."""
    e = carrier_energy(u, freqs, radius)  # (B, n, 2)
    total = torch.fft.fft2(u - u.mean(dim=(2, 3), keepdim=True)).abs().square().sum((1, 2, 3))
    idx = truth.view(1, -1, 1).expand(u.shape[0], -1, 1)
    own, other = e.gather(2, idx).sum((1, 2)), e.gather(2, 1 - idx).sum((1, 2))
    return (own / total).mean().item(), (other / total).mean().item()


def spectral_read(
    y: torch.Tensor,
    mask: ContentBinding,
    decoy: ContentBinding,
    freqs: torch.Tensor,
    *,
    sigma: float,
    radius: float,
    phases: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best over cell phases: (score (B,), bits (B, n)). The score is the log ratio of the
    energy at each bit's stronger carrier through the kit's mask and through the decoy."""
    best = torch.full((y.shape[0],), -math.inf)
    bits = torch.zeros(y.shape[0], freqs.shape[0], dtype=torch.long)
    side = min(y.shape[-2:]) - phases
    for py in range(phases):
        for px in range(phases):
            w = y[..., py : py + side, px : px + side]
            hp = (highpass(w, sigma) * _LUMA).sum(dim=1, keepdim=True)
            e = carrier_energy(hp * mask(w), freqs, radius)  # (B, n, 2)
            d = carrier_energy(hp * decoy(w), freqs, radius)
            score = (e.max(dim=2).values.sum(1) / d.max(dim=2).values.sum(1)).log()
            better = score > best
            best = torch.where(better, score, best)
            bits[better] = e[better].argmax(dim=2)
    return best, bits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust-v2")
    ap.add_argument("--num-images", type=int, default=24)
    ap.add_argument("--window", type=int, default=80, help="inside the first signing tile")
    ap.add_argument("--radius", type=float, default=0.01, help="cycles/px around a carrier")
    ap.add_argument("--phases", type=int, default=8, help="cell phases searched per axis")
    ap.add_argument("--sigma", type=float, default=4.0, help="read high-pass sigma")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    kit = Kit.from_pretrained(args.kit)
    w = kit.injector
    mask = kit.detector.binding
    decoy = ContentBinding(cell=mask.cell, channels=mask.conv1.shape[0], floor=mask.floor)
    decoy.set_decoy_of(mask)
    freqs = w.carrier_freqs.float().cpu()
    photos = [img for _, img in embedded_images("test")]
    pool = ImagePool(photos, max_side=512)
    clean = RandomCrops(pool, 256).sample(args.num_images, torch.Generator().manual_seed(3))
    donors = RandomCrops(pool, 256).sample(args.num_images, torch.Generator().manual_seed(4))
    code = 0xC0FFEE
    truth = hex_to_bits(code, kit.num_bits).long()
    signed = (kit.sign(clean, code=code) * 255).round() / 255
    donor_res = (kit.sign(donors, code=code) * 255).round() / 255 - donors
    # A bare keyed texture at the residual's RMS: what knowing the carriers alone buys.
    tex = code_texture(truth[None].float(), 256, 256, w.carrier_freqs.float(), w.carrier_phases)
    rms = donor_res.square().mean().sqrt()
    bare = tex / tex.square().mean().sqrt() * rms
    forged = {
        "transplant": ((clean + donor_res).clamp(0, 1) * 255).round() / 255,
        "bare carriers": ((clean + bare).clamp(0, 1) * 255).round() / 255,
    }
    # Where the energy is, on one signing tile: the keyed texture, and W's exact residual.
    t = kit.tile_size
    tiles = RandomCrops(pool, t).sample(args.num_images, torch.Generator().manual_seed(5))
    res = w.residual(tiles, truth[None].expand(len(tiles), -1).float()).mean(1, keepdim=True)
    texture = code_texture(truth[None].float(), t, t, w.carrier_freqs.float(), w.carrier_phases)
    m = mask(tiles)
    print(f"share of the energy near the code's carriers / the other bits' ({t} px tiles)")
    for name, u in [
        ("keyed texture T", texture),
        ("T * M(x)^2", texture * m.square()),
        ("W's residual r", res),
        ("r * M(x)", res * m),
        ("r * decoy(x)", res * decoy(tiles)),
    ]:
        own, other = carrier_shares(u, freqs, truth, 1.5 / t)
        print(f"  {name:16s} {own:.3f} / {other:.3f}")
    n = args.window
    kw = dict(sigma=args.sigma, radius=args.radius, phases=args.phases)
    print(f"{args.kit}: {args.num_images} signed 256 px crops, {n} px windows at (dy, dx); "
          f"cell phases {args.phases}x{args.phases}, radius {args.radius}")  # fmt: skip
    print("offset    signed median  signed min  bits  | clean max  clean median")
    for dy, dx in OFFSETS:
        s, b = spectral_read(signed[..., dy : dy + n, dx : dx + n], mask, decoy, freqs, **kw)
        c, _ = spectral_read(clean[..., dy : dy + n, dx : dx + n], mask, decoy, freqs, **kw)
        acc = (b == truth).float().mean()
        print(f"{dy:3d},{dx:3d}   {s.median():+8.2f}     {s.min():+8.2f}   {acc:.3f} "
              f"| {c.max():+8.2f}  {c.median():+8.2f}")  # fmt: skip
    for name, images in forged.items():
        f, _ = spectral_read(images[..., 5 : 5 + n, 3 : 3 + n], mask, decoy, freqs, **kw)
        print(f"forgery {name:14s} (5, 3): median {f.median():+.2f}  max {f.max():+.2f}")


if __name__ == "__main__":
    main()
