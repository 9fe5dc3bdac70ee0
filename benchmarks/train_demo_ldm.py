"""Pre-train the demo's tiny latent diffusion model (LDMPipeline, 32 or 64 px) on clean embedded photos.

This is the "original model" that ``advsig demo --generators ldm`` and the generator benchmarks
sign. Two stages, both on random crops (``--size``) at random scales of the embedded training photos:
  1. the autoencoder: a VQModel (f = 4: 32x32x3 <-> 8x8x4, 64x64x3 <-> 16x16x4; 1024 codes) with pixel MSE + VQ commitment
     loss; its latents' std sets ``scaling_factor`` (unit-variance latents for the denoiser);
  2. the denoiser: a UNet2DModel on the latents, trained with the same loop that later signs it
     (``finetune_latent``, strategy ``data``, no kit), from random weights.
Deterministic (seed), resumable (stage 1 is kept in ``{out}-work/vae``, stage 2 checkpoints).

    python benchmarks/train_demo_ldm.py --out runs/ldm-32 --install
    python benchmarks/train_demo_ldm.py --size 64 --out runs/ldm-64 --install

``--install`` copies the pipeline into ``src/advsig/generators/shipped/ldm-SIZE``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import torch

from advsig.generators.latent import new_latent_diffusion, tiny_vq_config
from advsig.generators.training_data import training_crops

SHIPPED = Path(__file__).resolve().parents[1] / "src/advsig/generators/shipped"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) - b) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())


def train_autoencoder(args, folder: Path):
    """Stage 1; returns the VQModel (loaded from ``folder`` when already trained)."""
    from diffusers import VQModel

    if (folder / "config.json").is_file():
        return VQModel.from_pretrained(folder, use_safetensors=True)
    torch.manual_seed(args.seed)
    vae = VQModel(**tiny_vq_config(size=args.size))
    crops = training_crops("embedded", args.size, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.Adam(vae.parameters(), lr=args.ae_lr)
    t0 = time.time()
    for step in range(args.ae_steps):
        lr = args.ae_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.ae_steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        x = crops.sample(args.batch_size, gen) * 2 - 1  # (B, 3, size, size) in [-1, 1]
        out = vae(x)
        rec = torch.nn.functional.mse_loss(out.sample, x)
        loss = rec + out.commit_loss.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            print(
                f"ae step {step + 1}: mse {rec.item():.4f} ({time.time() - t0:.0f} s)", flush=True
            )
    vae.eval()
    with torch.no_grad():
        x = crops.sample(512, torch.Generator().manual_seed(args.seed + 1))
        h = torch.cat([vae.encode(x[k : k + 128] * 2 - 1).latents for k in range(0, 512, 128)])
    vae.register_to_config(scaling_factor=float(1 / h.std()))
    vae.save_pretrained(folder, safe_serialization=True)
    (folder / "train.json").write_text(json.dumps({"wall_time_s": time.time() - t0}))
    return vae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, choices=(32, 64), help="image side")
    parser.add_argument("--out", default=None, help="default: runs/ldm-SIZE")
    parser.add_argument("--ae-steps", type=int, default=1200)
    parser.add_argument("--ae-lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=3000, help="denoiser steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="denoiser learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--install", action="store_true")
    args = parser.parse_args()
    args.out = args.out or f"runs/ldm-{args.size}"
    t0 = time.time()
    vae_dir = Path(args.out + "-work") / "vae"
    vae = train_autoencoder(args, vae_dir)
    from advsig.generators.finetune import FinetuneConfig, finetune_generator
    from advsig.generators.latent import load_latent_diffusion

    ae_wall = json.loads((vae_dir / "train.json").read_text())["wall_time_s"]
    config = FinetuneConfig(
        model=f"new:ldm-{args.size}", out=args.out, kit=None, strategy="data", data="embedded",
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        resume="latest", checkpoint_every=500, low_t_fraction=0.0,
    )  # fmt: skip
    finetune_generator(config, model=new_latent_diffusion(seed=args.seed, vae=vae, size=args.size))
    model = load_latent_diffusion(args.out)  # loads back as a plain pipeline
    crops = training_crops("embedded", args.size, seed=args.seed + 2)
    x = crops.sample(256, torch.Generator().manual_seed(args.seed + 2))
    rec_psnr = psnr(model.decode(model.encode(x)), x)
    prov = json.loads((Path(args.out) / "advsig.json").read_text())
    prov["autoencoder"] = {
        "steps": args.ae_steps, "lr": args.ae_lr, "batch_size": args.batch_size,
        "wall_time_s": round(ae_wall, 1), "reconstruction_psnr_db": round(rec_psnr, 2),
        "scaling_factor": float(model.vae.config.scaling_factor),
    }  # fmt: skip
    (Path(args.out) / "advsig.json").write_text(json.dumps(prov, indent=2))
    print(f"autoencoder reconstruction PSNR on 256 crops: {rec_psnr:.2f} dB")
    print(f"wall time: autoencoder {ae_wall:.0f} s, denoiser {prov['wall_time_s']:.0f} s, "
          f"this run {time.time() - t0:.0f} s")  # fmt: skip
    if args.install:
        shipped = SHIPPED / f"ldm-{args.size}"
        if shipped.exists():
            shutil.rmtree(shipped)
        shutil.copytree(args.out, shipped)
        print(f"installed into {shipped}")


if __name__ == "__main__":
    main()
