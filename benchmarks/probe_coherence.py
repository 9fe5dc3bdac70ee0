"""Does a keyed matched filter tell a signature from a transplanted one, at any strength? (issue 11)

F is a network: it can answer to the *energy* a signature puts at the carrier frequencies,
which a transplanted (sign-scrambled) or rescaled copy also has. A matched filter cannot: it
correlates the suspect image with the pattern the kit would have written on *this* image
(``--pattern injector``: W's own residual computed on the suspect image; ``texture``: the keyed
texture times the mask, shaped as the injector shapes it, without W's gain map), and compares
the correlation with the same correlation through ``--decoys`` unrelated masks. The statistic
``z = (c - mean(c_decoy)) / std(c_decoy)`` is the same for a clean image and for a forgery
whose texture was modulated by another image's mask, however strong, and large for a
signature made for this image, if the signature is strong enough against the image's content.

For one v2 kit at one crop size, prints quantiles of z for clean, signed (saved and after the
issue's light processing) and the 40 dB forgeries of ``probe_forgery_margin.py``, and the
share of each above z thresholds.

    python benchmarks/probe_coherence.py --kit base-v2-light --size 256
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import targets  # noqa: E402
from probe_forgery_margin import LIGHT, attacker_sets, signed_batches  # noqa: E402

from advsig.attacks.forgery import highpass_residuals, round8, scale_to_psnr  # noqa: E402
from advsig.bench.runner import resolve_attacks  # noqa: E402
from advsig.kit import Kit  # noqa: E402
from advsig.modules.binding import ContentBinding, highpass  # noqa: E402
from advsig.modules.blocks import code_texture  # noqa: E402


class MatchedFilter:
    """z statistic of a v2 kit's keyed pattern in images, against decoy masks.

    ``pattern="texture"``: the keyed texture as the injector shapes it, without W's gain map.
    ``pattern="injector"``: W's own residual on the suspect image (the gain map included),
    its decoys that residual re-modulated by each decoy mask.
    """

    def __init__(self, kit: Kit, *, decoys: int, sigma: float, pattern: str) -> None:
        inj = kit.injector
        if inj.binding is None:
            raise SystemExit("the matched filter needs a v2 (content-bound) kit")
        self.inj, self.kit, self.sigma, self.pattern = inj, kit, sigma, pattern
        weights = torch.cat([inj.binding.conv1.flatten(), inj.binding.conv2.flatten()])
        digest = weights.half().numpy().tobytes()
        self.decoys = []
        for j in range(decoys):
            m = ContentBinding(
                cell=inj.binding.cell, channels=inj.binding.conv1.shape[0], floor=inj.binding.floor
            )
            m.rekey(b"coherence-decoy:%d:" % j + digest)
            self.decoys.append(m)

    def _shape(self, p: torch.Tensor) -> torch.Tensor:
        if self.inj.config.residual_sigma > 0:
            p = p - highpass(p, self.inj.config.residual_sigma)
        return self.inj.binding.remove_cell_means(p)

    def _patterns(self, tiles: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """(b, 1 + decoys, t, t): the kit's pattern for these tiles, then each decoy's."""
        inj = self.inj
        mask = inj.binding(tiles)
        if self.pattern == "injector":
            own = inj.residual(tiles, bits).mean(dim=1, keepdim=True)
            others = [self._shape(own * mask * d(tiles)) for d in self.decoys]
        else:
            tex = code_texture(
                bits.float(), *tiles.shape[-2:], inj.carrier_freqs, inj.carrier_phases
            )
            own = self._shape(tex * mask)
            others = [self._shape(tex * d(tiles)) for d in self.decoys]
        return torch.cat([own, *others], dim=1)

    @torch.inference_mode()
    def z(self, images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """(B,) statistic for float (B, 3, H, W) images and the bits (B, n) to test for.

        The patterns follow the kit's tile grid (each tile signed with its own mask and its
        own texture origin, later tiles overwriting overlaps), as signing does.
        """
        inj = self.inj
        b, _, h, w = images.shape
        colour = inj.residual_colour.view(1, 3, 1, 1)
        probe = (images * colour).sum(dim=1, keepdim=True) / colour.square().sum()  # (B,1,H,W)
        probe = highpass(probe, self.sigma)
        t = self.kit.tile_size
        corners = self.kit._tile_starts(h, w)
        p = torch.zeros(b, 1 + len(self.decoys), h, w)
        if corners is None:
            p[:] = self._patterns(images, bits)
        else:
            for y, x in corners:
                p[..., y : y + t, x : x + t] = self._patterns(
                    images[..., y : y + t, x : x + t], bits
                )
        p = highpass(p, self.sigma)
        p = p / p.square().mean(dim=(2, 3), keepdim=True).add(1e-12).sqrt()
        c = (probe * p).mean(dim=(2, 3))  # (B, 1 + decoys)
        return (c[:, 0] - c[:, 1:].mean(1)) / c[:, 1:].std(1).add(1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2-light")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--ks", default="1,1000")
    ap.add_argument("--decoys", type=int, default=16)
    ap.add_argument("--sigma", type=float, default=3.0, help="high-pass of the filter's input")
    ap.add_argument("--zs", default="3,4,5,6")
    ap.add_argument("--pattern", choices=("texture", "injector"), default="injector")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    mf = MatchedFilter(kit, decoys=args.decoys, sigma=args.sigma, pattern=args.pattern)
    code = "0badc0de"[: kit.num_bits // 4]
    zs = [float(v) for v in args.zs.split(",")]
    threshold = kit.threshold(1e-3, size=(args.size, args.size))

    def report(label: str, images: torch.Tensor) -> None:
        logits = kit.logits(images)
        z = torch.cat(
            [
                mf.z(images[i : i + 16], (logits[i : i + 16, 1:] > 0).float())
                for i in range(0, len(images), 16)
            ]
        )
        q = torch.quantile(z, torch.tensor([0.0, 0.5, 1.0]))
        rates = "  ".join(f"z>{t:g} {(z > t).float().mean():.3f}" for t in zs)
        both = ((z > zs[0]) & (logits[:, 0] >= threshold)).float().mean()
        print(
            f"  {label:34s} z min {q[0]:+6.2f} med {q[1]:+6.2f} max {q[2]:+6.2f}  {rates}"
            f"  F {(logits[:, 0] >= threshold).float().mean():.3f}  F&z>{zs[0]:g} {both:.3f}",
            flush=True,
        )

    tgt = round8(torch.stack(targets(args.size, args.num_images, 0)))
    print(
        f"kit {args.kit}: {len(tgt)} test crops, {args.size} px, {args.decoys} decoys, "
        f"{args.pattern} pattern"
    )
    report("clean", tgt)
    signed = signed_batches(kit, tgt, code)
    for attack in resolve_attacks(LIGHT):
        report("signed " + attack.label, torch.stack([attack(img) for img in signed]))
    ks = [int(k) for k in args.ks.split(",")]
    for name, clean, own in attacker_sets(kit, max(*ks, len(tgt)), args.size, code):
        for k in ks:
            for kind, est in (
                ("high-pass", highpass_residuals(own[:k]).mean(0)),
                ("oracle", (own[:k] - clean[:k]).mean(0)),
            ):
                report(f"{name} {kind} K={k} 40 dB", round8(tgt + scale_to_psnr(est, 40.0)))
        # One-image transplants, a different source per target (the bench's rows).
        for kind, est in (
            ("high-pass", highpass_residuals(own[: len(tgt)])),
            ("oracle", own[: len(tgt)] - clean[: len(tgt)]),
        ):
            moved = tgt + scale_to_psnr(est, 40.0, per_image=True)
            report(f"{name} {kind} per-target 40 dB", round8(moved))


if __name__ == "__main__":
    main()
