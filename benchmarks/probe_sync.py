"""Can a crop's signing grid be found again from the keyed carriers alone (no training)?

Why: F's read is locked to the phase of the signing tile grid (``probe_shift.py``), and a crop
moves that grid by an unknown (dy, dx). W's residual is the keyed code texture ``T`` times the
image's mask and a non-negative gain map, so demodulated with the mask it correlates
positively with ``T`` on the tile it was made for. Every carrier's phase is known at a tile's
origin (it is keyed), so correlating the demodulated image with each carrier over every
candidate origin, and taking per bit the better of its two carriers (the code is unknown),
gives a map that should peak at the signing tiles' origins. One FFT per carrier: cheap.

The probe signs 288 px crops tile by tile on an exact 96 px grid, cuts a 192 px window at a
random offset, finds the grid from the map's peak, then lets F read the window realigned to
the found grid (one full tile), next to the same read at the true grid and at the window's own
origin. Clean windows go through the same search (their peak is wherever the photo puts it).

    python benchmarks/probe_sync.py --kit robust-v2
"""

from __future__ import annotations

import argparse
import math

import torch

from advsig.codes.bits import hex_to_bits
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit
from advsig.modules.binding import highpass

_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def carrier_bank(freqs: torch.Tensor, phases: torch.Tensor, t: int) -> torch.Tensor:
    """The keyed carriers on one tile, as ``code_texture`` draws them: (n, 2, t, t)."""
    ys = torch.arange(t, dtype=torch.float32)
    a = 2 * math.pi * freqs[..., 0, None] * ys + phases[:, None, None]  # (n, 2, t)
    b = 2 * math.pi * freqs[..., 1, None] * ys  # (n, 2, t)
    return (a[..., :, None] + b[..., None, :]).sin()  # (n, 2, t, t)


def sync_map(u: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Per candidate tile origin p, sum over bits of the better carrier's correlation with the
    tile of ``u`` (B, 1, H, W) at p: (B, H - t + 1, W - t + 1)."""
    n, _, t, _ = bank.shape
    h, w = u.shape[-2:]
    size = (h + t, w + t)
    uf = torch.fft.rfft2(u[:, 0], s=size)  # (B, h+t, (w+t)//2+1)
    kf = torch.fft.rfft2(bank.flip(-1, -2).reshape(2 * n, t, t), s=size)  # (2n, ...)
    corr = torch.fft.irfft2(uf[:, None] * kf[None], s=size)  # (B, 2n, h+t, w+t)
    corr = corr[..., t - 1 : h, t - 1 : w]  # valid positions: the tile inside u
    return corr.view(len(u), n, 2, *corr.shape[-2:]).amax(dim=2).sum(dim=1)


def sign_on_grid(kit: Kit, images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """``images`` (B, 3, k t, k t) signed tile by tile on an exact grid, rounded to 8 bits."""
    t = kit.tile_size
    b, _, h, w = images.shape
    tiles = images.unfold(2, t, t).unfold(3, t, t)  # (B, 3, h/t, w/t, t, t)
    gh, gw = tiles.shape[2:4]
    flat = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, t, t)
    res = kit.injector.residual(flat, bits[None].expand(len(flat), -1).float())
    res = res.view(b, gh, gw, 3, t, t).permute(0, 3, 1, 4, 2, 5).reshape(b, 3, h, w)
    return ((images + res).clamp(0, 1) * 255).round() / 255


def lattice_search(kit: Kit, win: torch.Tensor, step: tuple[int, int]) -> tuple[float, int, int]:
    """F's best one-tile read over tile origins on a (dy, dx) lattice of ``step``, then over
    the 3 x 3 origins around the best: (score, y, x). ``win``: (1, 3, H, W)."""
    t = kit.tile_size
    h, w = win.shape[-2:]

    def best_of(origins: list[tuple[int, int]]) -> tuple[float, int, int]:
        scores = []
        for i in range(0, len(origins), 256):
            tiles = torch.cat([win[..., y : y + t, x : x + t] for y, x in origins[i : i + 256]])
            scores.append(kit.logits(tiles)[:, 0])
        k = int(torch.cat(scores).argmax())
        return float(torch.cat(scores)[k]), *origins[k]

    coarse = [(y, x) for y in range(0, min(t, h - t + 1), step[0])
              for x in range(0, min(t, w - t + 1), step[1])]  # fmt: skip
    _, by, bx = best_of(coarse)
    near = [(y, x) for y in range(max(0, by - 1), min(h - t, by + 1) + 1)
            for x in range(max(0, bx - 1), min(w - t, bx + 1) + 1)]  # fmt: skip
    return best_of(near)


def print_landscape(kit: Kit, signed: torch.Tensor, reach: int) -> None:
    """Median over the signed crops of F's read of the tile (dy, dx) px off a true tile origin
    (|dy|, |dx| <= reach): how far off the grid a search may step."""
    t = kit.tile_size
    print("F's read (median) of a tile dy (rows) / dx (columns) px off the true grid:")
    print("      " + " ".join(f"{dx:+5d}" for dx in range(-reach, reach + 1)))
    for dy in range(-reach, reach + 1):
        row = []
        for dx in range(-reach, reach + 1):
            tiles = signed[..., t + dy : 2 * t + dy, t + dx : 2 * t + dx]  # around the middle tile
            row.append(float(kit.logits(tiles)[:, 0].median()))
        print(f"{dy:+4d}  " + " ".join(f"{v:+5.1f}" for v in row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust-v2")
    ap.add_argument("--num-images", type=int, default=32)
    ap.add_argument("--window", type=int, default=192)
    ap.add_argument("--sigma", type=float, default=4.0, help="high-pass sigma of the search")
    ap.add_argument("--step", default="3,2", help="F's lattice search step (dy,dx); 0 skips it")
    ap.add_argument("--landscape", type=int, default=0,
                    help="also print F's read of tiles up to this many px off the true grid")  # fmt: skip
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    kit = Kit.from_pretrained(args.kit).with_fit_up(False).with_mirror_reads(False)
    kit.detect_scales = (1.0,)
    t, n = kit.tile_size, args.window
    w = kit.injector
    mask = kit.detector.binding
    bank = carrier_bank(w.carrier_freqs.float(), w.carrier_phases.float(), t)
    photos = [img for _, img in embedded_images("test")]
    clean = RandomCrops(ImagePool(photos, max_side=512), 3 * t).sample(
        args.num_images, torch.Generator().manual_seed(3)
    )
    bits = hex_to_bits(0xC0FFEE, kit.num_bits)
    signed = sign_on_grid(kit, clean, bits)
    offsets = torch.randint(1, t, (args.num_images, 2), generator=torch.Generator().manual_seed(7))
    print(f"{args.kit}: {args.num_images} crops signed on an exact {t} px grid, {n} px windows "
          f"at random offsets 1-{t - 1}; search high-pass sigma {args.sigma}")  # fmt: skip
    step = tuple(int(v) for v in args.step.split(","))
    rows, hits = {}, 0
    for name, images in (("signed", signed), ("clean", clean)):
        found, reads_found, reads_true, reads_own, peak_z, searched = [], [], [], [], [], []
        for img, (dy, dx) in zip(images, offsets.tolist()):
            win = img[None, :, dy : dy + n, dx : dx + n]
            hp = (highpass(win, args.sigma) * _LUMA).sum(dim=1, keepdim=True)
            m = sync_map(hp * mask(win), bank)[0]  # (n - t + 1, n - t + 1)
            py, px = divmod(int(m.argmax()), m.shape[-1])
            ty, tx = (-dy) % t, (-dx) % t  # a true tile origin in window coordinates
            found.append((py - ty) % t == 0 and (px - tx) % t == 0)
            peak_z.append(float((m.max() - m.mean()) / m.std()))
            reads_found.append(float(kit.logits(win[..., py : py + t, px : px + t])[0, 0]))
            reads_true.append(float(kit.logits(win[..., ty : ty + t, tx : tx + t])[0, 0]))
            reads_own.append(float(kit.logits(win[..., :t, :t])[0, 0]))
            if step[0] > 0:
                score, sy, sx = lattice_search(kit, win, step)
                searched.append(score)
                if name == "signed":
                    hits += int((sy - ty) % t == 0 and (sx - tx) % t == 0)
        rows[name] = (found, reads_found, reads_true, reads_own, peak_z, searched)
        z = torch.tensor(peak_z)
        print(f"{name:6s}: grid found {sum(found)}/{len(found)}; peak z median {z.median():.1f}"
              f" (min {z.min():.1f}, max {z.max():.1f})")  # fmt: skip
    print("F's read of one tile (median / min for signed, max for clean):")
    labels = [("at the found grid", 1), ("at the true grid", 2), ("at the window's origin", 3)]
    if step[0] > 0:
        labels.append((f"best of F's search {step}", 5))
        print(f"F's lattice search found the true grid on {hits}/{args.num_images} signed windows")
    if args.landscape:
        print_landscape(kit, signed, args.landscape)
    for label, k in labels:
        s, c = torch.tensor(rows["signed"][k]), torch.tensor(rows["clean"][k])
        above = int((s > c.max()).sum())
        print(f"  {label:24s} signed {s.median():+.2f} / {s.min():+.2f}   clean max {c.max():+.2f}"
              f"   signed above every clean: {above}/{len(s)}")  # fmt: skip


if __name__ == "__main__":
    main()
