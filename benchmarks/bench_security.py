"""No-box forgery and removal benchmark (signature v2 vs v1): transplant, averaging, one-image forger.

Targets are the embedded *test* photos (no shipped kit trained on them): ``--size`` crops, or the
photos at native size (``--size 0``). The attacker's signed images are its own crops of the
*train* and *val* photos, signed with the victim's code (so exact residuals exist: the oracle
rows), or a folder of a signed generator's samples (``--signed-images``: high-pass estimates
only). ``--attacker held-out`` takes the attacker's crops from four scikit-image photos no
kit trained, calibrated or is tested on instead: kits trained forgery negatives on the train
photos, so only this attacker is unseen. Every rate is at each kit's own calibrated FPR 1e-3
threshold.

    python benchmarks/bench_security.py --kits base --size 256 --num-images 64 \\
        --out benchmarks/results/security-base-256.json

Prints a Markdown table (pasted into BENCHMARKS.md) and writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch
from bench_calibration import EXTRA_PHOTOS

from advsig.bench.adversaries import attacker_crops
from advsig.bench.report import security_section
from advsig.bench.security import run_security
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.data.io import list_images, load_image
from advsig.kit import Kit


def targets(size: int, num: int, seed: int) -> list[torch.Tensor]:
    photos = [img for _, img in embedded_images("test")]
    if size == 0:
        return photos
    crops = RandomCrops(ImagePool(photos, max_side=512), size)
    return list(crops.sample(num, torch.Generator().manual_seed(seed + 11)))


def held_out_attacker(num: int, side: int, seed: int) -> list[torch.Tensor]:
    """Crops of four scikit-image photos that no kit trained, calibrated or is tested on.

    Why: the default attacker's photos (train + val) are the ones kits trained their forgery
    negatives and calibration on, so forgeries from them measure a seen case.
    """
    from skimage import data as skdata

    root = Path(skdata.__file__).parent
    photos = [load_image(root / name).image for name in EXTRA_PHOTOS]
    crops = RandomCrops(ImagePool(photos, max_side=512), side)
    return list(crops.sample(num, torch.Generator().manual_seed(seed + 104729)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base")
    ap.add_argument("--size", type=int, default=256, help="crop side; 0 = native size")
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--ks", default="1,10,100,1000")
    ap.add_argument("--signed-images", default=None, help="folder: the attacker's signed images")
    ap.add_argument(
        "--attacker", choices=("train+val", "held-out"), default="train+val",
        help="the attacker's own photos: the kits' train and val photos, or four held-out ones",
    )  # fmt: skip
    ap.add_argument("--no-forger", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/security.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ks = tuple(int(k) for k in args.ks.split(","))
    tgt = targets(args.size, args.num_images, args.seed)
    side = args.size or 512  # native size: the attacker lifts from images as large as the targets
    if args.attacker == "held-out":
        own_clean = held_out_attacker(max(ks), side, seed=args.seed + 3)
    else:
        own_clean = attacker_crops(max(ks), (side, side), seed=args.seed + 3)
    own_signed = None
    source = "photos"
    if args.signed_images:
        own_signed = [load_image(p).image for p in list_images(args.signed_images)]
        source = f"generator:{Path(args.signed_images).name}"
    results = {
        "command": "python benchmarks/bench_security.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in (None, False)
        ),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "kits": {},
    }
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(name)
        t = time.time()
        rows = run_security(
            kit, tgt, attacker_clean=own_clean, attacker_signed=own_signed, source=source,
            ks=ks, forger=not args.no_forger, seed=args.seed, progress=True,
        )  # fmt: skip
        results["kits"][name] = {"rows": rows, "wall_s": round(time.time() - t, 1),
                                 "bound": kit.bound}  # fmt: skip
        print(f"\n### kit `{name}` ({'v2, bound' if kit.bound else 'v1'}), "
              f"{len(tgt)} targets at {'native size' if args.size == 0 else f'{args.size} px'}, "
              f"source {source}, {time.time() - t:.0f} s\n")  # fmt: skip
        for r in rows:
            r["section"] = "security"
        print("\n".join(security_section(rows)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
