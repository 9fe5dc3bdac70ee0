"""What a `distill`-signed pixel DDPM learned at its least noisy timesteps (about 1 minute).

`distill` asks the student's clean estimate at low t to be W of the original's clean estimate.
This measures it directly, without sampling: on held-out crops noised to t, the student's
change ``s - g`` against the target change ``W(g) - g`` (``g`` the original's estimate): cosine
and norm ratio, over the whole residual and split into its fixed part (the mean over images)
and the image-dependent rest. A student that learned nothing sits at cosine ~0 (its norm is
then the clamp of ``g``, about 0.05).

    python benchmarks/probe_distill_lowt.py --original ddpm-64 --signed RUN \\
        --kit runs/s33/small-v2-inj --code a5c3
"""

from __future__ import annotations

import argparse

import torch

from advsig.generators.diffusion_loss import clean_estimate
from advsig.generators.pixel import load_pixel_diffusion
from advsig.generators.training_data import Signer, training_crops


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", required=True)
    ap.add_argument("--signed", required=True)
    ap.add_argument("--kit", required=True, help="the injector the student was signed with")
    ap.add_argument("--code", required=True)
    ap.add_argument("--num", type=int, default=64)
    ap.add_argument("--timesteps", default="0,5,9,40")
    args = ap.parse_args()
    teacher, student = load_pixel_diffusion(args.original), load_pixel_diffusion(args.signed)
    signer = Signer(args.kit, args.code, torch.device("cpu"))
    size = teacher.sample_size
    x0 = training_crops("embedded", size, seed=7).sample(args.num, torch.Generator().manual_seed(7))
    x0 = x0 * 2 - 1  # (N, 3, s, s) in [-1, 1]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    scheduler = teacher.scheduler
    print(f"{args.signed} vs {args.original}, {args.num} crops of {size} px")
    for step in (int(v) for v in args.timesteps.split(",")):
        t = torch.full((args.num,), step)
        noisy = scheduler.add_noise(x0, noise, t)
        with torch.no_grad():
            g = clean_estimate(scheduler, noisy, teacher.unet(noisy, t).sample, t).clamp(-1, 1)
            s = clean_estimate(scheduler, noisy, student.unet(noisy, t).sample, t)
            target = signer.unrounded(g / 2 + 0.5) * 2 - 1
        want, got = target - g, s - g  # (N, 3, s, s)
        fixed_w, fixed_g = want.mean(0, keepdim=True), got.mean(0, keepdim=True)
        print(
            f"t={step}: whole cosine {cosine(want, got):.3f}, norm {float(got.norm() / want.norm()):.2f}"
            f" | fixed part cosine {cosine(fixed_w, fixed_g):.3f}"
            f" | image part cosine {cosine(want - fixed_w, got - fixed_g):.3f}"
        )


if __name__ == "__main__":
    main()
