"""Train the tiny AutoencoderKL that ``AutoencoderReencode`` uses by default (``ae-tiny``).

An attacker's autoencoder never sees signed images: it is trained on clean embedded photos
(the train split) and written as a plain diffusers folder, so ``AutoencoderKL.from_pretrained``
loads it without advsig. Its clean reconstruction PSNR on the test split is recorded in
``advsig.json`` beside the weights.

    flock /tmp/advsig-cpu.lock env OMP_NUM_THREADS=1 \
        python benchmarks/train_attack_autoencoder.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from advsig.bench.metrics import psnr
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images, fit_within

OUT = Path(__file__).resolve().parents[1] / "src/advsig/attacks/shipped/ae-tiny"

CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=64,
    mid_block_add_attention=False,
)  # 12x fewer values in the latent than in the image (4 channels at 1/4 of each side)


@torch.no_grad()
def reconstruction_psnr(ae, images: list[torch.Tensor]) -> float:
    """Mean PSNR (dB) of decode(encode(x)) on whole images fitted within 256 px."""
    from advsig.attacks.regeneration import AutoencoderReencode

    attack = AutoencoderReencode(ae)
    values = [psnr(attack(img), img) for img in images]
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--max-minutes", type=float, default=7.5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-size", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from diffusers import AutoencoderKL

    torch.manual_seed(args.seed)
    ae = AutoencoderKL(**CONFIG)
    num_params = sum(p.numel() for p in ae.parameters())
    crops = RandomCrops(
        ImagePool([img for _, img in embedded_images("train")], max_side=512), args.crop_size
    )
    test = [fit_within(img, 256) for _, img in embedded_images("test")]
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.AdamW(ae.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / args.steps))
    )
    start, step = time.time(), 0
    bar = tqdm(range(args.steps), desc="ae-tiny")
    for step in bar:
        x = crops.sample(args.batch_size, gen) * 2 - 1  # (B, 3, c, c) in [-1, 1]
        post = ae.encode(x).latent_dist
        z = post.mode()  # a deterministic autoencoder: sampling noise only blurs a tiny one
        rec = ae.decode(z).sample
        loss_rec = (rec - x).abs().mean() + (rec - x).square().mean()
        loss = loss_rec + args.kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss_rec.item():.4f}")
        if time.time() - start > args.max_minutes * 60:
            break
    wall = time.time() - start
    ae.eval()
    clean_psnr = reconstruction_psnr(ae, test)

    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    ae.save_pretrained(tmp, safe_serialization=True)
    info = {
        "advsig": "attack-autoencoder",
        "trained_on": "embedded photos, train split (clean)",
        "parameters": num_params,
        "steps": step + 1,
        "wall_time_s": round(wall, 1),
        "clean_psnr_db_test": round(clean_psnr, 2),
        "command": "python benchmarks/train_attack_autoencoder.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
    }
    (tmp / "advsig.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    old = args.out.with_name(f".{args.out.name}.old-{os.getpid()}")
    if args.out.exists():
        os.replace(args.out, old)
    os.replace(tmp, args.out)
    shutil.rmtree(old, ignore_errors=True)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
