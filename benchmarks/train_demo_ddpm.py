"""Pre-train the demo's tiny DDPM (32x32, about 0.7 M parameters) on clean embedded photos.

This is the "original model" that ``advsig demo`` and the generator benchmarks sign. It learns
random crops at random scales of the embedded training photos (the same split the kits train
on), with the same fine-tuning loop that later signs it, started from random weights.

    python benchmarks/train_demo_ddpm.py --out runs/ddpm-32 --steps 4000 --install

``--install`` copies the pipeline into ``src/advsig/generators/shipped/ddpm-SIZE``. ``--size 64``
trains the same UNet at 64x64 (issue 12's 64 px model): the shipped ``ddpm-64`` is
``--size 64 --steps 3000 --lr 1e-3 --install`` (``ddpm-32``'s settings; 38.6 min on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.pixel import load_pixel_diffusion, new_pixel_diffusion

SHIPPED = Path(__file__).resolve().parents[1] / "src/advsig/generators/shipped"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image side: 32 or 64")
    parser.add_argument("--out", default=None, help="default: runs/ddpm-SIZE")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--install", action="store_true")
    args = parser.parse_args()
    args.out = args.out or f"runs/ddpm-{args.size}"
    config = FinetuneConfig(
        model=f"new:{args.size}", out=args.out, kit=None, data="embedded", steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, resume="latest",
        checkpoint_every=500,
    )  # fmt: skip
    finetune_generator(config, model=new_pixel_diffusion(args.size, seed=args.seed))
    load_pixel_diffusion(args.out)  # loads back as a plain pipeline
    if args.install:
        shipped = SHIPPED / f"ddpm-{args.size}"
        if shipped.exists():
            shutil.rmtree(shipped)
        shutil.copytree(args.out, shipped)
        print(f"installed into {shipped}")


if __name__ == "__main__":
    main()
