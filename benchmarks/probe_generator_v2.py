"""Can a DDPM learn a v2 (content-bound) signature, with which recipe, and what does it cost?

Measurements on the demo DDPM (`ddpm-32`) and a v2 generator kit (default `small-v2`):

* ``--mode regress``: fine-tune the DDPM's UNet (timestep 0) to output the signature
  ``W(x) - x`` of clean 32 px crops directly (normalised to unit RMS), and report the cosine
  between prediction and signature on 256 held-out crops every 100 steps. ``--mask cellN``
  replaces the kit's W by the bare keyed texture times a fresh mask on N px cells (no learned
  gain map), ``--mask fixed`` by the v1-like fixed texture. High cosine = the network can draw it.
* ``--mode finetune``: a fine-tuning recipe (``--strategy data``, the paper's: train on W-signed
  crops; ``distill``: learn W of the original's own clean estimate at low noise) with the
  timestep emphasis as options, then the share of 64 samples (DDIM ``--sample-steps``) flagged
  at the kit's own FPR 1e-3 threshold, the mean score and bit accuracy for code a5c3.
* ``--mode samplers``: the model in ``--out`` sampled with seven diffusers samplers (DDIM 25 with
  leading and trailing spacing, DDIM 100, DPM-Solver++ 20 as configured by default, with Karras
  sigmas and with a first-order last step, DDPM 1000): does the signature depend on the sampler?
* ``--mode copier``: 64 crops of photos no kit saw, put through the model in ``--out`` as img2img
  at low noise (the ``purify`` attack): does the released generator sign real photos?
* ``--mode gen-threshold``: the kit's photo-calibrated FPR 1e-3 threshold against one set on
  1024 samples of the unsigned original, read on ``bench_generators.py``'s evaluation samples.

    python benchmarks/probe_generator_v2.py --mode regress --mask kit --steps 400
    python benchmarks/probe_generator_v2.py --mode finetune --low-t-max 10 --low-t-fraction 0.9
    python benchmarks/probe_generator_v2.py --mode finetune --strategy distill --low-t-max 10 \
        --low-t-fraction 0.9 --lr 5e-4 --steps 1500 --out runs/distill
    python benchmarks/probe_generator_v2.py --mode samplers --out runs/distill
    python benchmarks/probe_generator_v2.py --mode copier --out runs/distill
    python benchmarks/probe_generator_v2.py --mode gen-threshold
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from advsig.codes.bits import hex_to_bits
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.pixel import load_pixel_diffusion
from advsig.generators.training_data import training_crops
from advsig.kit import Kit
from advsig.modules.binding import ContentBinding, key_generator
from advsig.modules.blocks import carrier_frequencies, code_texture

CODE = "a5c3"


def _unit(r: torch.Tensor) -> torch.Tensor:
    return r / r.square().mean(dim=(1, 2, 3), keepdim=True).add(1e-12).sqrt()


def signature_fn(mask: str, kit_name: str):
    """x (B, 3, 32, 32) -> the signature to learn, unit RMS per image."""
    if mask == "kit":
        kit = Kit.from_pretrained(kit_name)
        bits = hex_to_bits(CODE, kit.num_bits)[None]  # (1, n)

        def from_kit(x):
            with torch.no_grad():
                return _unit(kit.injector.residual(x, bits.expand(len(x), -1)))

        return from_kit
    key = b"k" * 32
    bits = hex_to_bits(CODE, 16)[None].float()  # (1, 16)
    freqs, phases = carrier_frequencies(
        16, (0.06, 0.22), 0, generator=key_generator(key, "carriers")
    )
    texture = code_texture(bits, 32, 32, freqs, phases)  # (1, 1, 32, 32)
    if mask == "fixed":
        return lambda x: _unit(texture.expand(len(x), 3, -1, -1).clone())
    binding = ContentBinding(cell=int(mask.removeprefix("cell")), channels=8, key=key)

    def bound(x):
        with torch.no_grad():
            r = (texture * binding(x)).expand(-1, 3, -1, -1)
            return _unit(binding.remove_cell_means(r))

    return bound


def regress(args) -> None:
    target = signature_fn(args.mask, args.kit)
    crops = training_crops("embedded", 32, seed=0)
    gen = torch.Generator().manual_seed(0)
    held_out = crops.sample(256, torch.Generator().manual_seed(123))
    held_target = target(held_out)
    unet = load_pixel_diffusion("ddpm-32").unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        x = crops.sample(32, gen)
        pred = unet(x * 2 - 1, torch.zeros(len(x), dtype=torch.long)).sample
        loss = F.mse_loss(pred, target(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            with torch.no_grad():
                unet.eval()
                p = unet(held_out * 2 - 1, torch.zeros(len(held_out), dtype=torch.long)).sample
                unet.train()
            cos = F.cosine_similarity(p.flatten(1), held_target.flatten(1)).mean()
            print(json.dumps({"mask": args.mask, "step": step, "heldout_cosine": round(float(cos), 3),
                              "seconds": round(time.time() - t0)}), flush=True)  # fmt: skip


def finetune(args) -> None:
    from advsig.generators.evaluate import flag_statistics
    from advsig.generators.pixel import sample_images

    out = args.out
    config = FinetuneConfig(
        model="ddpm-32", out=out, kit=args.kit, code=CODE, steps=args.steps, lr=args.lr,
        strategy=args.strategy,
        low_t_fraction=args.low_t_fraction, low_t_max=args.low_t_max,
        ema_decay=args.ema_decay, checkpoint_every=args.steps,
    )  # fmt: skip
    t0 = time.time()
    finetune_generator(config)
    wall = time.time() - t0
    samples = sample_images(load_pixel_diffusion(out), range(64), steps=args.sample_steps, seed=0)
    samples = (samples * 255).round() / 255  # as saved 8-bit images
    stats = flag_statistics(Kit.from_pretrained(args.kit), samples, code=CODE).to_json_dict()
    print(json.dumps({**vars(args), "finetune_s": round(wall), **stats}))


SAMPLERS = {  # name -> (diffusers scheduler class, steps, extra config)
    "ddim25": ("DDIMScheduler", 25, {}),
    "ddim25-trailing": ("DDIMScheduler", 25, {"timestep_spacing": "trailing"}),
    "ddim100": ("DDIMScheduler", 100, {}),
    "dpm++20": ("DPMSolverMultistepScheduler", 20, {}),
    # Karras sigmas end near t = 0, inside the signed range; euler_at_final: first order at the end
    "dpm++20-karras": ("DPMSolverMultistepScheduler", 20, {"use_karras_sigmas": True}),
    "dpm++20-euler-final": ("DPMSolverMultistepScheduler", 20, {"euler_at_final": True}),
    "ddpm1000": ("DDPMScheduler", 1000, {}),
}


@torch.inference_mode()
def samplers(args) -> None:
    """Is the signature in the samples whatever sampler a user picks? (64 samples each)."""
    import diffusers

    from advsig.generators.evaluate import flag_statistics
    from advsig.generators.sampling import initial_noise

    model = load_pixel_diffusion(args.out)
    kit = Kit.from_pretrained(args.kit)
    for name, (cls, steps, extra) in SAMPLERS.items():
        scheduler = getattr(diffusers, cls).from_config({**model.scheduler.config, **extra})
        scheduler.set_timesteps(steps)
        gen = torch.Generator().manual_seed(0)
        x = torch.stack([initial_noise(i, 0, (3, 32, 32)) for i in range(64)])
        for t in scheduler.timesteps:
            eps = model.unet(x, t).sample
            x = scheduler.step(eps, t, x, generator=gen).prev_sample
        images = ((x / 2 + 0.5).clamp(0, 1) * 255).round() / 255
        stats = flag_statistics(kit, images, code=CODE).to_json_dict()
        print(json.dumps({"model": args.out, "sampler": name, "last_t": int(scheduler.timesteps[-1]),
                          **stats}), flush=True)  # fmt: skip


@torch.inference_mode()
def copier(args) -> None:
    """WMCopier through the released model: does img2img at low noise sign a real photo?

    64 crops (32 px) of the test photos no kit trained on, noised to ``strength`` of the schedule
    and denoised by the model in ``--out`` and by the original (``purify`` attack, DDIM 50).
    """
    from advsig.attacks.regeneration import DiffusionPurification
    from advsig.bench.metrics import psnr
    from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
    from advsig.generators.evaluate import flag_statistics

    photos = [img for _, img in embedded_images("test")]
    crops = RandomCrops(ImagePool(photos, max_side=256), 32)
    clean = crops.sample(64, torch.Generator().manual_seed(5))
    kit = Kit.from_pretrained(args.kit)
    for model in (args.out, "ddpm-32"):
        for strength in (0.01, 0.04, 0.1):
            out = DiffusionPurification(strength, model=model)(
                clean, generator=torch.Generator().manual_seed(0)
            )
            out = (out * 255).round() / 255
            stats = flag_statistics(kit, out, code=CODE).to_json_dict()
            print(json.dumps({"model": model, "strength": strength,
                              "psnr_db": round(psnr(out, clean), 1), **stats}), flush=True)  # fmt: skip


@torch.inference_mode()
def gen_threshold(args) -> None:
    """The kit's photo-calibrated threshold against one set on an unsigned generator's samples.

    1024 samples of the original ``ddpm-32`` (seed 7, disjoint from the evaluation's seed 0)
    give an empirical FPR 1e-3 threshold; the folders under ``--eval-folder``
    (``bench_generators.py``'s ``eval/samples``: signed, reference, control, ...) are read at both.
    """
    from pathlib import Path

    from advsig.data.io import load_image
    from advsig.generators.pixel import sample_images

    kit = Kit.from_pretrained(args.kit)
    calib = sample_images(load_pixel_diffusion("ddpm-32"), range(1024), steps=25, seed=7)
    calib_scores = kit.logits((calib * 255).round() / 255)[:, 0]
    generated = float(torch.quantile(calib_scores, 0.999))
    print(json.dumps({"photo_threshold_1e-3": kit.threshold(1e-3),
                      "generator_threshold_1e-3": round(generated, 3),
                      "generator_calibration_max": round(float(calib_scores.max()), 3)}))  # fmt: skip
    for folder in sorted(Path(args.eval_folder).iterdir()):
        images = torch.stack([load_image(p).image for p in sorted(folder.glob("*.png"))])
        scores = kit.logits(images)[:, 0]
        print(json.dumps({"role": folder.name, "num": len(scores),
                          "flagged_photo_threshold": float((scores >= kit.threshold(1e-3)).float().mean()),
                          "flagged_generator_threshold": float((scores >= generated).float().mean()),
                          "min": round(float(scores.min()), 2), "max": round(float(scores.max()), 2)}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mode",
        choices=["regress", "finetune", "samplers", "copier", "gen-threshold"],
        default="regress",
    )
    ap.add_argument("--kit", default="small-v2")
    ap.add_argument("--mask", default="kit", help="kit | fixed | cellN (regress mode)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=None, help="default 1e-3 regress, 2e-3 finetune")
    ap.add_argument("--strategy", default="data", help="data | distill (finetune mode)")
    ap.add_argument("--low-t-fraction", type=float, default=FinetuneConfig.low_t_fraction)
    ap.add_argument("--low-t-max", type=int, default=FinetuneConfig.low_t_max)
    ap.add_argument("--ema-decay", type=float, default=FinetuneConfig.ema_decay)
    ap.add_argument("--sample-steps", type=int, default=25)
    ap.add_argument("--out", default="runs/probe-generator-v2")
    ap.add_argument("--eval-folder", default="runs/bench-generators-v2/eval/samples")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.lr is None:
        args.lr = 1e-3 if args.mode == "regress" else 2e-3
    modes = {"regress": regress, "finetune": finetune, "samplers": samplers, "copier": copier,
             "gen-threshold": gen_threshold}  # fmt: skip
    modes[args.mode](args)


if __name__ == "__main__":
    main()
