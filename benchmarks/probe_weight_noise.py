"""How fragile is a signed diffusion model's signature to small changes of its weights?

Adds Gaussian noise of ``sigma`` times each tensor's own standard deviation to every weight of
the signed model (a fresh draw per sigma, seeded), samples the same seeds as the unperturbed
model, and prints the flag rate at the kit's FPR 1e-3 threshold, the bit accuracy and how much
the samples moved (PSNR against the unperturbed model's samples). ``--compare`` adds models (e.g.
an attacker's fine-tune of the signed model) read the same way. Why: an attacker's clean
fine-tune removes a distilled signature in 100 steps (BENCHMARKS.md, persistence); if weight
changes that barely move the samples already erase it, the signature is fragile by
construction and persistence needs a different place to live. About 1 minute per row.

    python benchmarks/probe_weight_noise.py --model demo-ddpm-32-signed \\
        --compare runs/persist-v2-lowt0/attacked-100
"""

from __future__ import annotations

import argparse
import copy

import torch

from advsig.generators.base import load_generator
from advsig.generators.evaluate import flag_statistics
from advsig.kit import Kit


def perturbed(model, sigma: float, seed: int):
    """A copy of the pixel model whose UNet weights got noise of ``sigma`` x each tensor's std."""
    out = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.unet.parameters():
            if p.numel() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * p.std() * sigma)
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).square().mean().clamp_min(1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="small-v2")
    ap.add_argument("--model", default="demo-ddpm-32-signed")
    ap.add_argument("--sigmas", default="0.003,0.01,0.03,0.1")
    ap.add_argument("--compare", default="", help="comma-separated models read the same way")
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args()

    kit = Kit.from_pretrained(args.kit)
    model = load_generator(args.model)
    code = (model.provenance or {}).get("code")
    idx = list(range(args.num_images))
    base = model.sample(idx, seed=0, steps=args.steps)  # (N, 3, s, s)
    rows = [("signed model", base)]
    for sigma in (float(s) for s in args.sigmas.split(",") if s):
        rows.append((f"weights + noise {sigma:g} x std", perturbed(model, sigma, 0).sample(
            idx, seed=0, steps=args.steps)))  # fmt: skip
    for other in (m for m in args.compare.split(",") if m):
        rows.append((other, load_generator(other).sample(idx, seed=0, steps=args.steps)))
    print(f"kit {args.kit}, {len(idx)} samples, DDIM {args.steps}, code {code}\n")
    print("| model | flagged at FPR 1e-3 | bits | PSNR of samples vs the signed model's (dB) |")
    print("|---|---|---|---|")
    for name, images in rows:
        images = (images * 255).round() / 255  # as saved
        stats = flag_statistics(kit, images, code=code)
        moved = "-" if name == rows[0][0] else f"{psnr(images, (base * 255).round() / 255):.1f}"
        print(f"| {name} | {stats.flag_rate_1e3:.1%} | {stats.bit_accuracy:.3f} | {moved} |")


if __name__ == "__main__":
    main()
