"""Does a kit's stated false-positive rate hold on photos it never saw (issues 11 and 13)?

Clean and signed crops of held-out photos, at several sizes and after JPEG, judged at the kit's
own FPR 1e-3 thresholds (per-size, as ``advsig detect`` uses them). Held-out photos: the
embedded *test* split and four scikit-image photos no split uses (the two motorcycle stereo
views, the cell and microaneurysm micrographs), so no kit trained or calibrated on any of them.

    python benchmarks/bench_calibration.py --kits base-v2,small-v2 --num 300 \\
        --out benchmarks/results/calibration-v2.json

Prints a Markdown table (pasted into BENCHMARKS.md) and writes the counts as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch
from skimage import data as skdata

from advsig.attacks import JPEG
from advsig.attacks.forgery import round8
from advsig.codes.bits import hex_to_bits, random_code
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.data.io import load_image
from advsig.data.synthetic import synthetic_images
from advsig.kit import Kit

EXTRA_PHOTOS = ("motorcycle_left.png", "motorcycle_right.png", "cell.png", "microaneurysms.png")


def held_out_photos() -> list[torch.Tensor]:
    """Float (3, H, W) photos no kit trained or calibrated on."""
    photos = [img for _, img in embedded_images("test")]
    root = Path(skdata.__file__).parent
    photos += [load_image(root / name).image for name in EXTRA_PHOTOS]  # grey -> RGB there
    return photos


def rounded(images: list[torch.Tensor]) -> list[torch.Tensor]:
    return [round8(x) for x in images]


def held_out_crops(
    photos: list[torch.Tensor], size: int, num: int, gen: torch.Generator
) -> list[torch.Tensor]:
    """``num`` 8-bit-rounded random crops of side ``size`` from the photos at least that large."""
    pool = ImagePool([p for p in photos if min(p.shape[-2:]) >= size], max_side=10_000)
    return rounded(list(RandomCrops(pool, size).sample(num, gen)))


UNSEEN_FLAT_SEED = 999_983  # neither training's seed (the run's) nor calibration's


def unseen_flat_images(num: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    """``num`` 8-bit-rounded procedural flat images (``advsig.data.synthetic``) no kit saw."""
    return rounded(synthetic_images(num, size, seed=UNSEEN_FLAT_SEED + seed + size))


def judged(kit: Kit, images: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
    """Raw outputs and decisions at each image's own-size FPR 1e-3 threshold (one pass)."""
    logits = kit.logits(images)
    sizes = [tuple(x.shape[-2:]) for x in images]
    return logits, kit.results_from_logits(logits, fpr=1e-3, sizes=sizes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base-v2")
    ap.add_argument("--sizes", default="128,256,512")
    ap.add_argument("--num", type=int, default=300, help="crops per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/calibration.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    photos = held_out_photos()
    sets: dict[str, list[torch.Tensor]] = {}
    gen = torch.Generator().manual_seed(args.seed)
    for size in (int(s) for s in args.sizes.split(",")):
        pool = ImagePool([p for p in photos if min(p.shape[-2:]) >= size], max_side=10_000)
        sets[f"{size} px"] = rounded(list(RandomCrops(pool, size).sample(args.num, gen)))
    sets["native"] = rounded(photos)
    variants = {"png": None, "jpeg90": JPEG(90), "jpeg75": JPEG(75)}
    results = {
        "command": "python benchmarks/bench_calibration.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__},
        "photos": len(photos),
        "kits": {},
    }  # fmt: skip
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(name)
        t0 = time.time()
        code = random_code(kit.num_bits, gen)  # fits the kit's code length
        want = hex_to_bits(code, kit.num_bits)
        rows = []
        for set_name, clean in sets.items():
            signed = rounded(kit.sign(clean, code=code))
            for variant, attack in variants.items():
                g = torch.Generator().manual_seed(args.seed)
                c = clean if attack is None else [attack(x[None], generator=g)[0] for x in clean]
                s = signed if attack is None else [attack(x[None], generator=g)[0] for x in signed]
                (_, c_res), (s_logits, s_res) = judged(kit, c), judged(kit, s)
                bits = (s_logits[:, 1:] > 0).float()  # every signed image, not a subset
                rows.append({
                    "set": set_name, "variant": variant, "n": len(c),
                    "clean_flagged": sum(r.is_signed for r in c_res),
                    "signed_flagged": sum(r.is_signed for r in s_res),
                    "clean_score_max": max(r.score for r in c_res),
                    "signed_score_min": min(r.score for r in s_res),
                    "bit_accuracy": float((bits == want).float().mean()),
                })  # fmt: skip
        results["kits"][name] = {"rows": rows, "wall_s": round(time.time() - t0, 1)}
        print(f"\n### kit `{name}`: {len(photos)} held-out photos, FPR 1e-3 (own thresholds), "
              f"{time.time() - t0:.0f} s\n")  # fmt: skip
        print("| images | variant | clean flagged | signed flagged | clean max | signed min "
              "| bit accuracy |\n|---|---|---|---|---|---|---|")  # fmt: skip
        for r in rows:
            print(f"| {r['set']} | {r['variant']} | {r['clean_flagged']}/{r['n']} | "
                  f"{r['signed_flagged']}/{r['n']} | {r['clean_score_max']:.2f} | "
                  f"{r['signed_score_min']:.2f} | {r['bit_accuracy']:.3f} |")  # fmt: skip
        # After every kit: a later kit that fails keeps the earlier ones' results.
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
