"""Pre-train the demo's tiny StyleGAN2-style GAN (32x32, about 0.25 M parameters) on clean photos.

This is the "original model" that ``advsig demo --generators gan`` and bench_gan.py sign. It
learns random crops at random scales of the embedded training photos (the same images the
DDPM learns), with the adversarial loop that later signs it (``finetune_gan``, strategy
``data``, no kit), started from random weights. The discriminator is saved beside the
generator so that ``data`` fine-tunes start from it.

    python benchmarks/train_demo_gan.py --out runs/gan-32 --steps 1500 --install

``--install`` copies the folder into ``src/advsig/generators/shipped/gan-32``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.gan import load_gan, new_stylegan

SHIPPED = Path(__file__).resolve().parents[1] / "src/advsig/generators/shipped/gan-32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gan-32")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema-decay", type=float, default=0.995)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--install", action="store_true")
    args = parser.parse_args()
    t0 = time.time()
    config = FinetuneConfig(
        model="new:stylegan2_small", out=args.out, kit=None, strategy="data", data="embedded",
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, ema_decay=args.ema_decay,
        seed=args.seed, resume="latest", checkpoint_every=100, keep_checkpoints=20,
        max_grad_norm=0.0,
    )  # fmt: skip
    finetune_generator(config, model=new_stylegan(32, seed=args.seed))
    model = load_gan(args.out, with_discriminator=True)  # loads back, discriminator included
    prov = json.loads((Path(args.out) / "advsig.json").read_text())
    shape = tuple(model.sample([0]).shape)
    print(f"trained {args.steps} steps in {prov['wall_time_s']:.0f} s "
          f"(script wall {time.time() - t0:.0f} s); sample shape {shape}")  # fmt: skip
    if args.install:
        if SHIPPED.exists():
            shutil.rmtree(SHIPPED)
        shutil.copytree(args.out, SHIPPED)
        print(f"installed into {SHIPPED}")


if __name__ == "__main__":
    main()
