"""Why does one flat photo's high-pass forge a v2 kit? (issue 11, held-out K = 1 row)

The attacker of ``probe_forgery_margin.py``'s held-out K = 1 row: one signed crop of a held-out
photo, its high-pass (no original needed) rescaled to 40 dB and added to each of 64 clean test
crops (256 px). Two mechanisms could make F flag such a forgery:

- *mask pull*: the lifted content sets the target's keyed mask to the source's, so the moved
  signature is demodulated coherently (cosine of the forged image's mask with the source's);
- *energy*: the mask stays the target's, the moved signature reaches F sign-scrambled from cell
  to cell, and F answers to it anyway (F reads the same through ``-u`` as through ``u``).

Per target, sorted by the target's own local contrast (median over mask cells, luminance in
[0, 1]), prints the kit's score and flag, both mask cosines, and F's raw logit through the kit's
mask ``f(u)`` and through its negation ``f(-u)``; then the flagged share by contrast third.

``--stem-eps``: also rescore with the epsilon of F's first GroupNorm raised to each value (a
post-hoc check of whether F's per-image normalisation is what reads faint, flat content at full
strength), as the share of forgeries and of signed crops above the clean crops' maximum.

    python benchmarks/probe_one_image_forgery.py --kit base-v2-light
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import held_out_attacker, targets  # noqa: E402
from probe_forgery_margin import signed_batches  # noqa: E402

from advsig.attacks.forgery import highpass_residuals, round8, scale_to_psnr  # noqa: E402
from advsig.kit import Kit  # noqa: E402


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-12)


def stem_eps_sweep(kit: Kit, clean: torch.Tensor, forged: torch.Tensor, eps: list[float]) -> None:
    norm = next(m for m in kit.detector.net if isinstance(m, torch.nn.GroupNorm))
    signed = signed_batches(kit, clean, "0badc0de")
    before = norm.eps
    for e in eps:
        norm.eps = e
        c, s, f = (kit.logits(x)[:, 0] for x in (clean, signed, forged))
        print(
            f"  stem GroupNorm eps {e:.1e}: clean max {c.max():+.2f}; above it: signed "
            f"{(s > c.max()).float().mean():.3f}, forged {(f > c.max()).float().mean():.3f}"
        )
    norm.eps = before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2-light")
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--psnr", type=float, default=40.0)
    ap.add_argument("--stem-eps", default="", help="comma-separated GroupNorm eps values")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    det = kit.detector
    if det.binding is None:
        raise SystemExit("this probe needs a v2 (content-bound) kit")
    tgt = round8(torch.stack(targets(256, args.num_images, 0)))  # (N, 3, 256, 256)
    src = round8(torch.stack(held_out_attacker(1, 256, seed=3)))  # (1, 3, 256, 256)
    lifted = scale_to_psnr(highpass_residuals(signed_batches(kit, src, "0badc0de")), args.psnr)
    forged = round8(tgt + lifted)
    if args.stem_eps:
        stem_eps_sweep(kit, tgt, forged, [float(e) for e in args.stem_eps.split(",")])
    threshold = kit.threshold(1e-3, size=(256, 256))
    with torch.inference_mode():
        scores = kit.logits(forged)[:, 0]
        m_forged, m_target, m_source = det.binding(forged), det.binding(tgt), det.binding(src)
        u = det.features(forged)
        plain, negated = det.net(u)[:, 0], det.net(-u)[:, 0]
        contrast = det.binding.contrast(tgt).abs().flatten(1).median(1).values
    to_target = cosine(m_forged, m_target)
    to_source = cosine(m_forged, m_source.expand_as(m_forged))
    print(
        f"kit {args.kit}: {len(tgt)} test crops + one held-out crop's high-pass at "
        f"{args.psnr:g} dB; threshold {threshold:+.2f}"
    )
    order = contrast.argsort()
    for i in order.tolist():
        flag = "FLAG" if scores[i] >= threshold else "    "
        print(
            f"  contrast {contrast[i]:.4f}  score {scores[i]:+6.2f} {flag}  "
            f"cos(M forged, M target) {to_target[i]:+.2f}  cos(M forged, M source) "
            f"{to_source[i]:+.2f}  f(u) {plain[i]:+6.2f}  f(-u) {negated[i]:+6.2f}"
        )
    flagged = scores >= threshold
    for name, part in zip(("flattest", "middle", "most textured"), order.tensor_split(3)):
        print(
            f"  {name:14s} third: flagged {flagged[part].float().mean():.3f}  "
            f"cos to source {to_source[part].mean():+.3f}  f(u) - f(-u) "
            f"{(plain - negated)[part].mean():+.2f}"
        )


if __name__ == "__main__":
    main()
