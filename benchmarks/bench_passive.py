"""Passive detection does not generalise: a CNN trained on real vs ddpm-32, tested on another model.

Real images are 32x32 crops of the embedded photos (training: the "train" split, the one ddpm-32
learned from; testing: the disjoint "val" and "test" photos). Generated images: ddpm-32 samples
(disjoint indices for training and testing), and for the out-of-distribution test the samples of
every other 32x32 generator found (shipped gan-32 / ldm-32, or --other folders). With no second
generator the script falls back to ddpm-32 sampled with very few DDIM steps, and says so.

    python benchmarks/bench_passive.py --out benchmarks/results/passive.json

Prints a Markdown table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch

from advsig.bench.passive import PassiveConfig, passive_benchmark
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.generators.base import load_generator
from advsig.utils import write_text_atomic

OTHER_CANDIDATES = ("gan-32", "ldm-32")


def real_crops(splits: tuple[str, ...], num: int, seed: int) -> torch.Tensor:
    photos = [img for s in splits for _, img in embedded_images(s)]
    pool = ImagePool(photos, max_side=512)  # the scales ddpm-32's training crops came from
    return RandomCrops(pool, 32).sample(num, torch.Generator().manual_seed(seed))


def samples(model: str, start: int, num: int, steps: int, seed: int) -> torch.Tensor:
    gen = load_generator(model)
    x = gen.sample(range(start, start + num), seed=seed, steps=steps, batch_size=64)
    if x.shape[-1] != 32:
        x = torch.nn.functional.interpolate(x, size=32, mode="bilinear", antialias=True)
    return (x.clamp(0, 1) * 255).round() / 255  # as saved PNGs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/passive.json")
    ap.add_argument("--train-images", type=int, default=512)
    ap.add_argument("--test-images", type=int, default=256)
    ap.add_argument("--steps", type=int, default=25, help="DDIM steps for the diffusion models")
    ap.add_argument("--train-steps", type=int, default=400)
    ap.add_argument("--other", action="append", default=[], help="other generator (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    n, m = args.train_images, args.test_images

    others: dict[str, torch.Tensor] = {}
    notes = []
    for name in [*args.other, *OTHER_CANDIDATES]:
        if name in others:
            continue
        try:
            others[name] = samples(name, 0, m, args.steps, args.seed + 1)
        except Exception as exc:  # a candidate that is not shipped (yet)
            if name in args.other:
                raise
            notes.append(f"{name} not available ({type(exc).__name__}: {exc})")
    if not others:
        label = "ddpm-32 @ 3 DDIM steps"
        others[label] = samples("ddpm-32", n + m, m, 3, args.seed + 1)
        notes.append("no second generator found: out-of-distribution = the same ddpm-32 sampled "
                     "with 3 DDIM steps (a sampler shift, weaker than another generator)")  # fmt: skip

    config = PassiveConfig(steps=args.train_steps, seed=args.seed)
    results = passive_benchmark(
        real_crops(("train",), n, args.seed),
        samples("ddpm-32", 0, n, args.steps, args.seed),
        real_crops(("val", "test"), m, args.seed + 1),
        {"ddpm-32 (in distribution)": samples("ddpm-32", n, m, args.steps, args.seed), **others},
        config=config,
        progress=True,
    )
    out = {
        "train": {"real": f"{n} crops of the embedded train photos",
                  "generated": f"{n} ddpm-32 samples (DDIM {args.steps} steps)"},
        "test_real": f"{m} crops of the embedded val + test photos",
        "config": config.__dict__,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "notes": notes,
        "results": {k: v.to_dict() for k, v in results.items()},
        "wall_time_s": time.perf_counter() - start,
    }  # fmt: skip
    write_text_atomic(Path(args.out), json.dumps(out, indent=2) + "\n")
    lines = [
        "| tested against | AUC | TPR at FPR 1e-2 | FPR reached | real / generated |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r.auc:.3f} | {r.tpr_at_1e_2:.3f} | {r.fpr:.3f} | "
                     f"{r.num_real} / {r.num_fake} |")  # fmt: skip
    print("\n".join(lines + [""] + [f"Note: {x}" for x in notes]))
    print(f"wall time {out['wall_time_s']:.0f} s")


if __name__ == "__main__":
    main()
