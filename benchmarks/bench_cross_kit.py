"""Cross-kit false positives: kits trained by the same command with different keys.

Trains ``--num-kits`` kits with one preset and seed, each with its own fresh key (v2), and, as
the control, two v1 kits (``binding="none"``: carriers from a fixed seed, no key). Then signs
``--num-images`` crops of the embedded test photos with each kit and reports the share that
every other kit flags at its own FPR 1e-3 threshold (the diagonal is the kit's own TPR).

    python benchmarks/bench_cross_kit.py --preset tiny --steps 1000 --out benchmarks/results/cross-kit-tiny.json
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.training.presets import preset_config
from advsig.training.trainer import train_signature


def matrix(kits: dict, crops: torch.Tensor) -> dict:
    out = {}
    for a, ka in kits.items():
        signed = (ka.sign(crops, code=0x5A) * 255).round() / 255
        out[a] = {b: sum(r.is_signed for r in kb.detect(signed, fpr=1e-3)) / len(crops)
                  for b, kb in kits.items()}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--num-kits", type=int, default=2)
    ap.add_argument("--num-images", type=int, default=300)
    ap.add_argument("--out", default="benchmarks/results/cross-kit.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:

        def train(name: str, **kw):
            cfg = preset_config(args.preset, data="embedded", out=str(Path(tmp) / name),
                                steps=args.steps, augment="none", seed=0, **kw)  # fmt: skip
            return train_signature(cfg)

        v2 = {f"v2-key{i}": train(f"v2-{i}") for i in range(args.num_kits)}
        v1 = {f"v1-{i}": train(f"v1-{i}", binding="none", transplant_weight=0.0) for i in range(2)}
    size = next(iter(v2.values())).tile_size or 64
    pool = ImagePool([img for _, img in embedded_images("test")], max_side=512)
    crops = RandomCrops(pool, size).sample(args.num_images, torch.Generator().manual_seed(7))
    crops = (crops * 255).round() / 255
    result = {"preset": args.preset, "steps": args.steps, "num_images": args.num_images,
              "size": size, "v2": matrix(v2, crops), "v1_control": matrix(v1, crops),
              "wall_s": round(time.time() - t0, 1)}  # fmt: skip
    for name in ("v2", "v1_control"):
        m = result[name]
        print(
            f"\n{name}: share of one kit's signed crops ({size} px) flagged by another, FPR 1e-3\n"
        )
        print("| signed by \\ detected by | " + " | ".join(m) + " |")
        print("|---|" + "---|" * len(m))
        for a, row in m.items():
            print(f"| {a} | " + " | ".join(f"{row[b]:.3f}" for b in m) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
