"""Adversaries benchmark: regeneration, restoration, white-box, black-box and estimation attacks.

Runs :func:`advsig.bench.adversaries.run_adversaries` on crops of the embedded photos the kit
never trained on (the "test" split): ``--num-images`` crops of ``--size`` px, taken on a grid
from the photos fitted within 384 px. Success rates are the attacker's, at the kit's calibrated
threshold for FPR 1e-3; PSNR is what the attack leaves.

    flock /tmp/advsig-cpu.lock env OMP_NUM_THREADS=1 \
        python benchmarks/bench_adversaries.py --kit base --out benchmarks/results/adversaries-base.json

Prints a Markdown table (pasted into BENCHMARKS.md) and writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from advsig.bench.adversaries import SECTIONS, run_adversaries
from advsig.data.datasets import embedded_images, fit_within
from advsig.data.io import list_images, load_image
from advsig.kit import Kit
from advsig.utils import write_text_atomic


def test_crops(num: int, size: int) -> list[torch.Tensor]:
    """``num`` size x size crops, round-robin over the test photos (grid positions, no overlap)."""
    per_photo = []
    for _, img in embedded_images("test"):
        img = fit_within(img, 384)
        h, w = img.shape[-2:]
        per_photo.append([img[:, y : y + size, x : x + size]
                          for y in range(0, h - size + 1, size)
                          for x in range(0, w - size + 1, size)])  # fmt: skip
    crops = []
    for k in range(max(map(len, per_photo))):
        crops += [c[k] for c in per_photo if k < len(c)]
    return crops[:num]


def fmt(value) -> str:
    if isinstance(value, float):
        if value and abs(value) < 0.1 and value * 255 == round(value * 255):
            return f"{round(value * 255)}/255"
        return "inf" if math.isinf(value) else f"{value:.3g}"
    return "-" if value is None else str(value)


def render(rows: list[dict], meta: dict) -> str:
    lines = [
        f"Kit `{meta['kit']}`, {meta['num_images']} test-split crops of {meta['size']} px, "
        f"threshold at FPR 1e-3 (score {meta['threshold']:.3g}); {meta['wall_time_s']:.0f} s on "
        "2 CPU cores. Success = signed image no longer flagged (evasion) or clean image flagged "
        "(forgery/spoof).",
        "",
        "| adversary | setting | success | PSNR (dB) | notes |",
        "|---|---|---|---|---|",
    ]
    skip = {"adversary", "param", "value", "success_rate", "psnr", "n", "seconds", "label"}
    for r in rows:
        notes = ", ".join(f"{k} {fmt(v)}" for k, v in r.items() if k not in skip)
        setting = f"{r['param']} {fmt(r['value'])}" if r["param"] != "-" else "-"
        lines.append(f"| {r['adversary']} | {setting} | {r['success_rate']:.0%} | "
                     f"{fmt(r['psnr'])} | {notes} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--num-images", type=int, default=16)
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument(
        "--estimate-from",
        type=Path,
        default=None,
        help="a folder of a signed generator's samples to estimate the signature from",
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(f"benchmarks/results/adversaries-{Path(args.kit).name}.json")

    torch.manual_seed(args.seed)
    kit = Kit.from_pretrained(args.kit)
    images = test_crops(args.num_images, args.size)
    extra = None
    if args.estimate_from is not None:
        extra = [load_image(p).image for p in list_images(args.estimate_from)]
    start = time.time()
    rows = run_adversaries(kit, images, seed=args.seed, quick=args.quick,
                           sections=tuple(args.sections.split(",")),
                           estimation_images=extra)  # fmt: skip
    meta = {
        "kit": args.kit,
        "size": args.size,
        "num_images": len(images),
        "threshold": kit.threshold(1e-3),
        "fpr": 1e-3,
        "wall_time_s": round(time.time() - start, 1),
        "command": "python " + " ".join(sys.argv),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    write_text_atomic(out, json.dumps({"meta": meta, "rows": rows}, indent=2, default=str) + "\n")
    print(render(rows, meta))


if __name__ == "__main__":
    main()
