"""Cross-kit false positives: kits trained by the same command with different keys.

Trains ``--num-kits`` kits with one preset and seed, each with its own fresh key (v2), and, as
the control, two v1 kits (``binding="none"``: carriers from a fixed seed, no key). Then signs
``--num-images`` crops of the embedded test photos with each kit and reports the share that
every other kit flags at its own FPR 1e-3 threshold (the diagonal is the kit's own TPR).
With ``--kits A,B`` it trains nothing and reads kits that exist (shipped names or folders), e.g.
a shipped kit and the same kit re-keyed by a publisher (``--init-kit ... --key-file ...``).
Each batch of 16 crops is signed with a random code of its own.

    python benchmarks/bench_cross_kit.py --preset tiny --steps 1000 --out benchmarks/results/cross-kit-tiny.json
    python benchmarks/bench_cross_kit.py --kits base-v2-odd,runs/base-v2-rekey --size 256 \
        --num-images 1000 --out benchmarks/results/cross-kit-base-v2-odd.json
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from advsig.codes.bits import random_code
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit
from advsig.training.presets import preset_config
from advsig.training.trainer import train_signature


def matrix(kits: dict, crops: torch.Tensor) -> dict:
    out = {}
    gen = torch.Generator().manual_seed(11)
    for a, ka in kits.items():
        signed = torch.cat([  # a random code per batch of 16 crops
            ka.sign(batch, code=random_code(ka.num_bits, gen)) for batch in crops.split(16)
        ])  # fmt: skip
        signed = (signed * 255).round() / 255
        out[a] = {b: sum(r.is_signed for r in kb.detect(signed, fpr=1e-3)) / len(crops)
                  for b, kb in kits.items()}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--num-kits", type=int, default=2)
    ap.add_argument("--num-images", type=int, default=300)
    ap.add_argument("--kits", default=None, help="existing kits to compare (trains nothing)")
    ap.add_argument("--size", type=int, default=None, help="crop side (default: the tile size)")
    ap.add_argument("--out", default="benchmarks/results/cross-kit.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.time()
    if args.kits:
        compare_existing(args)
        return
    with tempfile.TemporaryDirectory() as tmp:

        def train(name: str, **kw):
            cfg = preset_config(args.preset, data="embedded", out=str(Path(tmp) / name),
                                steps=args.steps, augment="none", seed=0, **kw)  # fmt: skip
            return train_signature(cfg)

        v2 = {f"v2-key{i}": train(f"v2-{i}") for i in range(args.num_kits)}
        v1 = {f"v1-{i}": train(f"v1-{i}", binding="none", transplant_weight=0.0) for i in range(2)}
    size = args.size or next(iter(v2.values())).tile_size or 64
    crops = test_crops(size, args.num_images)
    result = {"preset": args.preset, "steps": args.steps, "num_images": args.num_images,
              "size": size, "v2": matrix(v2, crops), "v1_control": matrix(v1, crops),
              "wall_s": round(time.time() - t0, 1)}  # fmt: skip
    for name in ("v2", "v1_control"):
        print_matrix(name, result[name], size)
    write_result(args.out, result)


def test_crops(size: int, num: int) -> torch.Tensor:
    """``num`` random 8-bit crops of the embedded test photos (no kit trained on them)."""
    pool = ImagePool([img for _, img in embedded_images("test")], max_side=512)
    crops = RandomCrops(pool, size).sample(num, torch.Generator().manual_seed(7))
    return (crops * 255).round() / 255


def compare_existing(args) -> None:
    t0 = time.time()
    kits = {name: Kit.from_pretrained(name) for name in args.kits.split(",")}
    size = args.size or next(iter(kits.values())).tile_size or 64
    result = {"kits": {n: k.key_fingerprint for n, k in kits.items()}, "size": size,
              "num_images": args.num_images,
              "matrix": matrix(kits, test_crops(size, args.num_images))}  # fmt: skip
    result["wall_s"] = round(time.time() - t0, 1)
    print_matrix("kits", result["matrix"], size)
    write_result(args.out, result)


def print_matrix(name: str, m: dict, size: int) -> None:
    print(f"\n{name}: share of one kit's signed crops ({size} px) flagged by another, FPR 1e-3\n")
    print("| signed by \\ detected by | " + " | ".join(m) + " |")
    print("|---|" + "---|" * len(m))
    for a, row in m.items():
        print(f"| {a} | " + " | ".join(f"{row[b]:.3f}" for b in m) + " |")


def write_result(out: str, result: dict) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
