"""What bfloat16 changes in signing and detection (advsig.precision), on held-out photos.

Signs held-out 256 px crops with W in float32 and in bfloat16, and reports how many 8-bit
output pixels differ, PSNR, and scores and bits read from both (F in float32); then reads clean
and signed crops with F in both precisions and reports how far the scores move. Then times
signing and detection in each precision, alternated in one process so drift hits both alike.

    python benchmarks/probe_precision.py --kits base-v2-odd,robust-v2 --num-images 128
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import held_out_crops, held_out_photos  # noqa: E402

from advsig.attacks.forgery import round8  # noqa: E402
from advsig.codes.bits import hex_to_bits, random_code  # noqa: E402
from advsig.kit import Kit  # noqa: E402
from advsig.precision import native_bf16  # noqa: E402


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean PSNR (dB) of (N, 3, H, W) pairs in [0, 1]."""
    mse = (a - b).square().mean(dim=(1, 2, 3))
    return float((10 * torch.log10(1 / mse)).mean())


def compare(kit: Kit, crops: torch.Tensor, code: str) -> dict:
    """Output and score differences between float32 and bfloat16 W, and float32 and bfloat16 F."""
    signed = {}
    for precision in ("fp32", "bf16"):
        kit.sign_precision = precision
        signed[precision] = round8(kit.sign(crops, code=code))
    levels = (signed["fp32"] - signed["bf16"]).abs() * 255
    bits = hex_to_bits(code, kit.num_bits)
    out: dict = {
        "pixels_differing": float((levels > 0.5).float().mean()),
        "max_levels": float(levels.max()),
        "psnr_db": {p: psnr(s, crops) for p, s in signed.items()},
    }
    threshold = kit.threshold(1e-3, size=tuple(crops.shape[-2:]))
    for name, images in (("clean", crops), ("signed_fp32", signed["fp32"]), ("signed_bf16", signed["bf16"])):  # fmt: skip
        reads = {}
        for precision in ("fp32", "bf16"):
            kit.detect_precision = precision
            reads[precision] = kit.logits(images)
        moved = (reads["fp32"][:, 0] - reads["bf16"][:, 0]).abs()
        out[name] = {
            f"flagged_{p}": float((r[:, 0] > threshold).float().mean()) for p, r in reads.items()
        } | {
            f"bits_{p}": float(((r[:, 1:] > 0).float() == bits).float().mean())
            for p, r in reads.items()
        } | {"score_moved_max": float(moved.max()), "score_moved_mean": float(moved.mean())}  # fmt: skip
    kit.sign_precision, kit.detect_precision = "auto", "fp32"
    return out


def speeds(kit: Kit, size: int, batch: int = 16, rounds: int = 3) -> dict:
    """Best img/s of signing and detection per precision, rounds alternated."""
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    best: dict[str, float] = {}
    for _ in range(rounds):
        for precision in ("fp32", "bf16"):
            kit.sign_precision = kit.detect_precision = precision
            for task, fn in (("sign", lambda: kit.sign(x)), ("detect", lambda: kit.logits(x))):
                fn()  # warm-up in this precision
                start = time.perf_counter()
                fn()
                rate = batch / (time.perf_counter() - start)
                key = f"{task}_{precision}_img_per_s"
                best[key] = round(max(best.get(key, 0.0), rate), 1)
    kit.sign_precision, kit.detect_precision = "auto", "fp32"
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base-v2-odd,robust-v2")
    ap.add_argument("--num-images", type=int, default=128)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/precision.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    gen = torch.Generator().manual_seed(args.seed)
    crops = torch.stack(held_out_crops(held_out_photos(), args.size, args.num_images, gen))
    results: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "native_bf16": native_bf16("cpu"),
        "num_images": args.num_images,
        "size": args.size,
        "kits": {},
    }
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(name)
        code = random_code(kit.num_bits, torch.Generator().manual_seed(1))
        results["kits"][name] = compare(kit, crops, code) | speeds(kit, args.size)
        print(name, json.dumps(results["kits"][name], indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
