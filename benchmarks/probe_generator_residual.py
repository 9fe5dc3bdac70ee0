"""How much of W's residual did a signed generator learn: its fixed part and its image-dependent part.

A signed generator G' should output W(G(z)) where the original gives G(z). This samples both with
the same seeds (GAN: the same z and noise; latent ``decoder``: the same latents, as the denoiser
is untouched), signs the original's samples with the kit's W (rounded to 8 bits) and splits both
residuals, target ``W(G) - G`` and learned ``G' - G``, into their mean over the samples (the
part that is the same for every image) and the rest (the part that depends on the image, which
a content-bound signature is made of). It prints the cosine and the norm ratio of each part and
the flag rates at the kit's FPR 1e-3 threshold. About 10 s for a GAN, 1 minute for an LDM.

    python benchmarks/probe_generator_residual.py --kit small-v2 --original gan-32 \
        --signed runs/demo-full/generators/gan-signed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from advsig.data.writers import save_image
from advsig.generators.base import load_generator
from advsig.kit import Kit


def parts(residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fixed, image-dependent) parts of (N, 3, s, s) residuals: the mean over N and the rest."""
    fixed = residual.mean(0, keepdim=True)
    return fixed, residual - fixed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="small-v2")
    ap.add_argument("--original", required=True)
    ap.add_argument("--signed", required=True)
    ap.add_argument("--code", default=None, help="default: from the signed model's advsig.json")
    ap.add_argument("--num-images", type=int, default=256)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument(
        "--write-posthoc", default=None,
        help="folder: also save W(G), the original's samples signed post hoc, as PNG (the "
        "control for bench_security.py --signed-images: what W itself gives on these images)",
    )  # fmt: skip
    args = ap.parse_args()

    kit = Kit.from_pretrained(args.kit)
    original, signed = load_generator(args.original), load_generator(args.signed)
    code = args.code or (signed.provenance or {}).get("code")
    idx = list(range(args.num_images))
    x0 = original.sample(idx, seed=0, steps=args.steps)  # (N, 3, s, s) in [0, 1]
    x1 = signed.sample(idx, seed=0, steps=args.steps)
    target = (kit.sign(x0, code=code) * 255).round() / 255
    threshold = kit.threshold(1e-3, size=tuple(x0.shape[-2:]))
    if args.write_posthoc:
        for i, image in enumerate(target):
            save_image(image, Path(args.write_posthoc) / f"sample-{i:06d}.png")

    t_fixed, t_var = parts(target - x0)
    s_fixed, s_var = parts(x1 - x0)
    flat = lambda x: x.flatten(1)  # noqa: E731
    out = {
        "kit": args.kit,
        "signed": args.signed,
        "code": code,
        "num_images": len(idx),
        "threshold_1e-3": threshold,
        "flagged": {
            name: float((kit.logits(x)[:, 0] >= threshold).float().mean())
            for name, x in (("W(G)", target), ("G'", x1), ("G", x0))
        },
        "target_psnr_db": float(-10 * torch.log10((target - x0).square().mean())),
        "learned_psnr_db": float(-10 * torch.log10((x1 - x0).square().mean())),
        "target_fixed_energy_share": float(
            t_fixed.square().sum() * len(idx) / (target - x0).square().sum()
        ),
        "learned_fixed_energy_share": float(
            s_fixed.square().sum() * len(idx) / (x1 - x0).square().sum()
        ),
        "fixed_part_cosine": float(
            F.cosine_similarity(t_fixed.flatten(), s_fixed.flatten(), dim=0)
        ),
        "fixed_part_norm_ratio": float(s_fixed.norm() / t_fixed.norm()),
        "image_part_cosine": float(F.cosine_similarity(flat(t_var), flat(s_var)).mean()),
        "image_part_norm_ratio": float((flat(s_var).norm(dim=1) / flat(t_var).norm(dim=1)).mean()),
        "whole_cosine": float(F.cosine_similarity(flat(target - x0), flat(x1 - x0)).mean()),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
