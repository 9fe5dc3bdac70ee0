"""One signed fine-tune of the demo DDPM, read back at every checkpoint: for quick what-ifs.

    python benchmarks/probe_finetune.py --steps 300 --every 100 --lr 1e-3 --low-t-fraction 0
    python benchmarks/probe_finetune.py --steps 600 --every 150 --lr 2e-3 --low-t-fraction 0.8

Prints, per checkpoint, the share of 64 samples (DDIM 25 steps) flagged by the kit and the bit
accuracy of the embedded code. ``bench_generators.py`` is the full benchmark.
"""

from __future__ import annotations

import argparse
import time

from advsig.generators.evaluate import flag_statistics
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.pixel import load_pixel_diffusion, sample_images
from advsig.generators.pixel_finetune import checkpoint_model
from advsig.kit import Kit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="small")
    parser.add_argument("--model", default="ddpm-32")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=150)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--low-t-fraction", type=float, default=0.8)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--code", default="a5c3")
    parser.add_argument("--out", default="runs/probe")
    args = parser.parse_args()
    t0 = time.time()
    finetune_generator(
        FinetuneConfig(
            model=args.model, out=args.out, kit=args.kit, code=args.code, steps=args.steps,
            lr=args.lr, low_t_fraction=args.low_t_fraction, checkpoint_every=args.every,
            keep_checkpoints=1000, resume="latest",
        )
    )  # fmt: skip
    print(f"fine-tuned {args.steps} steps in {time.time() - t0:.0f} s")
    kit, original = Kit.from_pretrained(args.kit), load_pixel_diffusion(args.model)
    for step in range(args.every, args.steps + 1, args.every):
        if step == args.steps:
            model = load_pixel_diffusion(args.out)
        else:
            model = checkpoint_model(original, f"{args.out}-work/checkpoint-{step}")
        images = (sample_images(model, range(args.num_samples), steps=25, seed=1) * 255).round()
        s = flag_statistics(kit, images / 255, code=args.code).to_json_dict()
        print(
            f"step {step}: flagged {s['flag_rate_1e-3']:.3f} at FPR 1e-3, "
            f"{s['flag_rate_1e-2']:.3f} at 1e-2, bit accuracy {s['bit_accuracy']:.3f}, "
            f"mean score {s['mean_score']:.2f}"
        )


if __name__ == "__main__":
    main()
