"""At which noise level can a pixel DDPM's signature live, out of reach of a clean fine-tune?

An attacker's clean fine-tune removes a signature the model draws at its least noisy timesteps
in 100 steps (BENCHMARKS.md, "Persistence"): there, a change of the clean estimate by ``d``
costs the epsilon loss ``abar / (1 - abar) * |d|^2``, which is large. At high noise that weight
is small, so a signature drawn there would be nearly invisible to the attacker's loss. This
probe asks whether it can be drawn there at all, without training anything: it samples the
*original* model with DDIM and, at the steps whose timestep is at or above ``t0`` (``--mode
above``: the model signs from pure noise down to ``t0``, the original finishes) or only at the
first step at or below ``t0`` (``--mode once``), replaces the step's clean estimate by W's
signed version of it. The original model's remaining steps then either carry the signature to
the output or remove it. Flagged at the detector kit's own FPR 1e-3 threshold.

It also prints, per ``t0``, the weight ``abar / (1 - abar)`` with which the attacker's epsilon
loss sees a change of the clean estimate there, relative to the least noisy timestep.

    python benchmarks/probe_signature_depth.py --model ddpm-32 --kit runs/s33/small-v2-inj \\
        --detector small-v2 --t0 0,40,80,160,320 --mode above
"""

from __future__ import annotations

import argparse

import torch

from advsig import load_kit
from advsig.generators.evaluate import flag_statistics
from advsig.generators.pixel import load_pixel_diffusion
from advsig.generators.sampling import initial_noise


@torch.inference_mode()
def sample_with_plant(model, signer, code, indices, *, steps, t0, mode, seed=0) -> torch.Tensor:
    """DDIM (eta 0) samples of ``model`` in [0, 1], signed by W at the steps ``mode`` picks."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(steps)
    abar_all = scheduler.alphas_cumprod
    s, c = model.sample_size, model.in_channels
    x = torch.stack([initial_noise(i, seed, (c, s, s)) for i in indices])
    planted = False
    for t in scheduler.timesteps:
        eps = model.unet(x, t).sample
        plant = t0 is not None and (
            (mode == "above" and int(t) >= t0) or (mode == "once" and not planted and int(t) <= t0)
        )
        if plant:
            abar = abar_all[t]
            x0 = ((x - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)
            x0 = signer.sign(x0 / 2 + 0.5, code=code) * 2 - 1
            eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
            planted = True
        x = scheduler.step(eps, t, x, eta=0.0).prev_sample
    return ((x / 2 + 0.5).clamp(0, 1) * 255).round() / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ddpm-32")
    ap.add_argument("--kit", required=True, help="the injector that signs")
    ap.add_argument("--detector", default="small-v2", help="the kit that detects (its threshold)")
    ap.add_argument("--code", default="a5c3")
    ap.add_argument("--t0", default="0,40,80,160,320", help="comma-separated timesteps")
    ap.add_argument("--mode", choices=("above", "once"), default="above")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--num-images", type=int, default=128)
    args = ap.parse_args()
    model = load_pixel_diffusion(args.model)
    if model.prediction_type != "epsilon":
        raise SystemExit(f"{args.model}: this probe handles epsilon prediction only")
    signer, detector = load_kit(args.kit), load_kit(args.detector)
    indices = list(range(args.num_images))
    abar = model.scheduler.alphas_cumprod
    snr0 = float(abar[0] / (1 - abar[0]))
    plain = sample_with_plant(model, signer, args.code, indices, steps=args.steps, t0=None,
                              mode=args.mode)  # fmt: skip
    print(f"{args.model}, no signature: {flag_statistics(detector, plain, code=args.code)}")
    for t0 in (int(v) for v in args.t0.split(",")):
        images = sample_with_plant(model, signer, args.code, indices, steps=args.steps, t0=t0,
                                   mode=args.mode)  # fmt: skip
        psnr = float(-10 * torch.log10((images - plain).square().mean()))
        weight = float(abar[t0] / (1 - abar[t0])) / snr0
        print(f"t0 {t0} ({args.mode}): {flag_statistics(detector, images, code=args.code)}; "
              f"PSNR to the unsigned samples {psnr:.1f} dB; the clean loss's weight on a change "
              f"of the estimate at t0, relative to t = 0: {weight:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
