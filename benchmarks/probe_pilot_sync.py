"""Would a keyed pilot let a detector find a crop's signing grid? A feasibility test, no training.

Why: ``probe_sync.py`` found that the code carriers in W's residual are too faint, next to a
photo's own texture, for a correlation to find the grid a crop moved. A pilot is a fixed set of
keyed carriers, the same for every code, bound to the image like the signature (multiplied by
the content mask, cell means removed), that takes a share of the residual's energy. This probe
adds one to ``robust-v2``'s residual at several shares (the residual's RMS kept), signs 288 px
crops on an exact 96 px tile grid, cuts 192 px windows at random offsets, and looks for the
grid's origin at the peak of the pilot's correlation map (also folded over tiles), demodulated
with the window's own mask. It then shows where the search fails: the map of the residual
alone, and of the photo alone, at the true origin.

    python benchmarks/probe_pilot_sync.py --kit robust-v2
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from advsig.codes.bits import hex_to_bits
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit
from advsig.modules.binding import highpass, key_generator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_sync import _LUMA, carrier_bank, sync_map  # noqa: E402


def pilot_bank(kit: Kit, count: int) -> torch.Tensor:
    """``count`` keyed carriers in the kit's carrier band, as a (count, 2, t, t) bank whose two
    entries per row are the same carrier (so ``sync_map``'s better-of-two is the carrier)."""
    g = key_generator(b"probe-pilot", "pilot")
    lo, hi = kit.injector.config.carrier_band
    radius = lo + (hi - lo) * torch.rand(count, generator=g)
    angle = math.pi * torch.rand(count, generator=g)
    freqs = torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=-1)
    phases = 2 * math.pi * torch.rand(count, generator=g)
    return carrier_bank(freqs[:, None].expand(count, 2, 2), phases, kit.tile_size)


def sign_with_pilot(kit: Kit, images, bits, pilot: torch.Tensor, share: float) -> torch.Tensor:
    """Sign (B, 3, k t, k t) tile by tile; ``share`` of each tile's residual energy is the
    pilot (times the tile's mask, low-passed and cell means removed as W's residual is)."""
    t, w = kit.tile_size, kit.injector
    b, _, h, wd = images.shape
    tiles = images.unfold(2, t, t).unfold(3, t, t).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, t, t)
    res = w.residual(tiles, bits[None].expand(len(tiles), -1).float())
    rms = res.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    p = pilot[None, None] * w.binding(tiles)  # (n, 1, t, t)
    p = w.binding.remove_cell_means(p - highpass(p, 1.0))
    p = p / p.square().mean(dim=(1, 2, 3), keepdim=True).sqrt() * rms
    res = math.sqrt(1 - share) * res + math.sqrt(share) * p
    gh, gw = h // t, wd // t
    res = res.view(b, gh, gw, 3, t, t).permute(0, 3, 1, 4, 2, 5).reshape(b, 3, h, wd)
    return ((images + res).clamp(0, 1) * 255).round() / 255


def fold(m: torch.Tensor, t: int) -> torch.Tensor:
    """A correlation map summed over origins ``t`` apart: (t, t)."""
    out = torch.zeros(t, t)
    for y in range(0, m.shape[0], t):
        for x in range(0, m.shape[1], t):
            block = m[y : y + t, x : x + t]
            out[: block.shape[0], : block.shape[1]] += block
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust-v2")
    ap.add_argument("--num-images", type=int, default=32)
    ap.add_argument("--carriers", type=int, default=8)
    ap.add_argument("--shares", default="0.1,0.3,0.5")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    kit = Kit.from_pretrained(args.kit).with_fit_up(False).with_mirror_reads(False)
    kit.detect_scales = (1.0,)
    t, n = kit.tile_size, 2 * kit.tile_size
    mask = kit.detector.binding
    bank = pilot_bank(kit, args.carriers)
    pilot = bank[:, 0].sum(dim=0) * math.sqrt(2 / args.carriers)  # (t, t), unit variance
    photos = [img for _, img in embedded_images("test")]
    clean = RandomCrops(ImagePool(photos, max_side=512), 3 * t).sample(
        args.num_images, torch.Generator().manual_seed(3)
    )
    bits = hex_to_bits(0xC0FFEE, kit.num_bits)
    offsets = torch.randint(1, t, (args.num_images, 2), generator=torch.Generator().manual_seed(7))
    print(f"{args.kit}: {args.num_images} crops of {3 * t} px signed on an exact {t} px grid "
          f"with a {args.carriers}-carrier pilot; {n} px windows at random offsets")  # fmt: skip
    for share in (float(s) for s in args.shares.split(",")):
        signed = sign_with_pilot(kit, clean, bits, pilot, share)
        psnr = -10 * math.log10(float((signed - clean).square().mean()))
        found = folded = 0
        at_truth = {"residual": [], "photo": []}
        reads = []
        for img, ref, (dy, dx) in zip(signed, clean, offsets.tolist()):
            win, ref_win = img[None, :, dy : dy + n, dx : dx + n], ref[None, :, dy : dy + n, dx : dx + n]  # fmt: skip
            ty, tx = (-dy) % t, (-dx) % t  # a true tile origin in window coordinates
            m_win = mask(win)
            hp = (highpass(win, 4.0) * _LUMA).sum(dim=1, keepdim=True)
            m = sync_map(hp * m_win, bank)[0]
            py, px = divmod(int(m.argmax()), m.shape[-1])
            found += int((py - ty) % t == 0 and (px - tx) % t == 0)
            py, px = divmod(int(fold(m, t).argmax()), t)
            folded += int(py == ty and px == tx)
            reads.append(float(kit.logits(win[..., ty : ty + t, tx : tx + t])[0, 0]))
            # The two parts of the map: the residual alone, and the clean photo alone.
            r = ((win - ref_win) * _LUMA).sum(dim=1, keepdim=True)
            mr = sync_map(r * m_win, bank)[0]
            at_truth["residual"].append(float(mr[ty, tx]))
            hp_ref = (highpass(ref_win, 4.0) * _LUMA).sum(dim=1, keepdim=True)
            at_truth["photo"].append(float(sync_map(hp_ref * mask(ref_win), bank)[0].std()))
        r = torch.tensor(reads)
        sig = torch.tensor(at_truth["residual"]).median()
        noise = torch.tensor(at_truth["photo"]).median()
        print(f"share {share:.1f}: {psnr:.1f} dB; grid found {found}/{args.num_images}, folded "
              f"{folded}/{args.num_images}; the residual's map at the true origin {sig:.1f} vs the "
              f"photo's map std {noise:.1f} (medians); F (not retrained) at the true grid median "
              f"{r.median():+.2f}, min {r.min():+.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
