"""Does a kit's stated FPR hold on processed clean photos it never saw, and what does it still
detect there (issue 13, part 1)?

Clean and signed crops of the held-out photos (the embedded test split and the four extra
scikit-image photos of ``bench_calibration.py``) at several sizes, each as it is and after
every geometry-free attack of the standard grid (``--attacks pixel``: JPEG 90/75/50, resize
0.5 and back, blur 1/2, noise 0.02/0.05, brightness 1.3/0.7, contrast 1.3), judged at the
kit's own per-size FPR 1e-3 threshold. A clean photo that was blurred or recompressed is still
a clean photo: the stated rate has to hold for it as well.

    python benchmarks/bench_processed_tails.py --kits runs/robust-v2 --sizes 256:1000,128:300,512:300 \\
        --signed 200 --out benchmarks/results/processed-tails-robust-v2.json

Prints a Markdown table per kit: clean flagged (count and the one-sided 95% upper bound on the
rate), clean max score, signed detected, bit accuracy. ``--synthetic N`` adds N procedural flat
images per size (``advsig.data.synthetic``, a seed no kit trains or calibrates on): graphics,
charts and skies are flat, and an odd score reads flat content as exactly 0.
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
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import (  # noqa: E402
    held_out_crops,
    held_out_photos,
    judged,
    rounded,
    unseen_flat_images,
)

from advsig.bench.runner import resolve_attacks  # noqa: E402
from advsig.codes.bits import hex_to_bits, random_code  # noqa: E402
from advsig.kit import Kit  # noqa: E402


def upper_bound(k: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a rate seen k times in n."""
    return 1.0 if k >= n else float(stats.beta.ppf(level, k + 1, n - k))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base-v2-odd")
    ap.add_argument("--sizes", default="256:1000,128:300,512:300", help="size:clean crops,...")
    ap.add_argument("--signed", type=int, default=200, help="signed crops per size")
    ap.add_argument("--attacks", default="pixel")
    ap.add_argument("--synthetic", type=int, default=0,
                    help="also this many procedural flat images per size (a seed no kit trains "
                    "or calibrates on), judged as one more set")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/processed-tails.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    photos = held_out_photos()
    attacks = [None, *resolve_attacks(args.attacks)]
    gen = torch.Generator().manual_seed(args.seed)
    sets: dict[int | str, list[torch.Tensor]] = {}
    for item in args.sizes.split(","):
        size, num = (int(v) for v in item.split(":"))
        sets[size] = held_out_crops(photos, size, num, gen)
        if args.synthetic:
            sets[f"{size} flat"] = unseen_flat_images(args.synthetic, size, args.seed)
    results = {
        "command": "python benchmarks/bench_processed_tails.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__},
        "photos": len(photos),
        "kits": {},
    }  # fmt: skip
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(name)
        t0 = time.time()
        code = random_code(kit.num_bits, gen)
        want = hex_to_bits(code, kit.num_bits)
        rows = []
        for size, clean in sets.items():
            signed = rounded(kit.sign(clean[: args.signed], code=code))
            for attack in attacks:
                g = torch.Generator().manual_seed(args.seed + 1)
                c = (
                    clean
                    if attack is None
                    else rounded([attack(x[None], generator=g)[0] for x in clean])
                )
                s = (
                    signed
                    if attack is None
                    else rounded([attack(x[None], generator=g)[0] for x in signed])
                )
                (_, c_res), (s_logits, s_res) = judged(kit, c), judged(kit, s)
                flagged = sum(r.is_signed for r in c_res)
                rows.append({
                    "size": size, "attack": "none" if attack is None else attack.label,
                    "n_clean": len(c), "clean_flagged": flagged,
                    "clean_rate_upper95": upper_bound(flagged, len(c)),
                    "clean_score_max": max(r.score for r in c_res),
                    "n_signed": len(s), "signed_detected": sum(r.is_signed for r in s_res) / len(s),
                    "bit_accuracy": float(((s_logits[:, 1:] > 0).float() == want).float().mean()),
                })  # fmt: skip
                print(f"{name} {size} {rows[-1]['attack']:15s} clean {flagged}/{len(c)} "
                      f"(max {rows[-1]['clean_score_max']:+.2f}) signed {rows[-1]['signed_detected']:.3f} "
                      f"bits {rows[-1]['bit_accuracy']:.3f}", file=sys.stderr, flush=True)  # fmt: skip
        results["kits"][name] = {"rows": rows, "wall_s": round(time.time() - t0, 1)}
        print(f"\n### kit `{name}`: {len(photos)} held-out photos, own FPR 1e-3 thresholds, "
              f"{time.time() - t0:.0f} s\n")  # fmt: skip
        print("| size | processing | clean flagged | rate <= (95%) | clean max | signed detected "
              "| bit accuracy |\n|---|---|---|---|---|---|---|")  # fmt: skip
        for r in rows:
            print(f"| {r['size']}{'' if isinstance(r['size'], str) else ' px'} | {r['attack']} | {r['clean_flagged']}/{r['n_clean']} | "
                  f"{r['clean_rate_upper95']:.4f} | {r['clean_score_max']:+.2f} | "
                  f"{r['signed_detected']:.3f} | {r['bit_accuracy']:.3f} |")  # fmt: skip
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
