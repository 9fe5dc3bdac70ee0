"""Where does a scale-searching kit's clean tail come from, and which read of the scales keeps
signed and clean apart at the kit's own threshold (issue 13, part 1)?

Scores every image at each of the kit's ``detect_scales`` separately, then compares decision
rules, each calibrated at FPR 1e-3 on clean crops of the embedded *val* photos (what
``advsig train`` calibrates on) and judged on held-out photos (``bench_calibration.py``'s):

- ``max``: the kit's rule today, the largest raw logit over scales;
- ``scale1``: no search, the image as it is;
- ``zmax``: each scale's logit standardised by that scale's clean mean and spread (val crops),
  then the largest: a scale whose clean scores run high no longer sets the tail;
- ``mean``: the mean logit over scales.

    python benchmarks/probe_scale_search_tail.py --kit robust --num-val 600 --num 200 \\
        --out runs/probe-scale-tail.npz

Per-scale logits go to ``--out`` (NumPy), so other rules can be tried without rescoring.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch
from bench_calibration import held_out_photos

from advsig.attacks import JPEG, CenterCrop, GaussianBlur, Rotate
from advsig.attacks.forgery import round8
from advsig.codes.bits import hex_to_bits, random_code
from advsig.codes.calibration import Calibration
from advsig.data.datasets import ImagePool, RandomCrops, resolve_training_data
from advsig.kit import Kit

VARIANTS = {
    "none": None, "jpeg75": JPEG(75), "jpeg50": JPEG(50),
    "crop50-resized": CenterCrop(0.5, resize_back=True), "rotate15": Rotate(15),
    "blur2": GaussianBlur(2),
}  # fmt: skip


def crops(sources: list, size: int, num: int, seed: int) -> list[torch.Tensor]:
    pool = ImagePool(sources, max_side=10_000)
    return [
        round8(x) for x in RandomCrops(pool, size).sample(num, torch.Generator().manual_seed(seed))
    ]


def per_scale(kit: Kit, images: list[torch.Tensor]) -> np.ndarray:
    """(N, S, 1 + num_bits) logits, one read per scale in ``kit.detect_scales``."""
    scales = kit.detect_scales
    out = []
    try:
        for scale in scales:
            kit.detect_scales = (scale,)
            out.append(kit.logits(images).numpy())
    finally:
        kit.detect_scales = scales
    return np.stack(out, axis=1)


def rule_scores(logits: np.ndarray, rule: str, mu: np.ndarray, sd: np.ndarray, one: int):
    """(N,) scores and (N,) index of the scale whose bits are read."""
    s = logits[:, :, 0]  # (N, S)
    if rule == "max":
        return s.max(1), s.argmax(1)
    if rule == "scale1":
        return s[:, one], np.full(len(s), one)
    if rule == "zmax":
        z = (s - mu) / sd
        return z.max(1), z.argmax(1)
    if rule == "mean":
        return s.mean(1), s.argmax(1)
    raise ValueError(rule)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="robust")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--num-val", type=int, default=600)
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--out", default="runs/probe-scale-tail.npz")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    kit = Kit.from_pretrained(args.kit)
    kit.scale_norm = None  # raw per-scale scores; the rules below standardise them themselves
    _, val = resolve_training_data("embedded", val_fraction=0.1, seed=0)
    sets = {
        "val-clean": crops(val, args.size, args.num_val, 1),
        "test-clean": crops(held_out_photos(), args.size, args.num, 2),
    }
    gen = torch.Generator().manual_seed(3)
    codes = [random_code(kit.num_bits, gen) for _ in range(args.num)]
    signed = [round8(kit.sign(x, code=c)) for x, c in zip(crops(held_out_photos(), args.size,
                                                                args.num, 4), codes)]  # fmt: skip
    attack_gen = torch.Generator().manual_seed(5)
    for name, attack in VARIANTS.items():
        sets[f"signed-{name}"] = signed if attack is None else [
            round8(attack(x[None], generator=attack_gen)[0]) for x in signed
        ]  # fmt: skip
    logits = {name: per_scale(kit, images) for name, images in sets.items()}
    code_bits = np.stack([hex_to_bits(c, kit.num_bits).numpy() for c in codes]).astype(int)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, scales=np.array(kit.detect_scales), code_bits=code_bits,
             **{k.replace("-", "_"): v for k, v in logits.items()})  # fmt: skip

    scales = list(kit.detect_scales)
    one = scales.index(1.0) if 1.0 in scales else len(scales) // 2
    val_s = logits["val-clean"][:, :, 0]
    mu, sd = val_s.mean(0), val_s.std(0)
    print(f"kit {args.kit}, {args.size} px, scales {scales}")
    print("val clean per scale: mean " + " ".join(f"{m:+.2f}" for m in mu)
          + " | sd " + " ".join(f"{v:.2f}" for v in sd)
          + " | max " + " ".join(f"{v:+.2f}" for v in val_s.max(0)))  # fmt: skip
    print(
        "argmax scale of val clean (count per scale):",
        np.bincount(val_s.argmax(1), minlength=len(scales)).tolist(),
    )
    print("\n| rule | threshold | test clean flagged | " + " | ".join(VARIANTS) + " |")
    print("|---" * (3 + len(VARIANTS)) + "|")
    for rule in ("max", "scale1", "zmax", "mean"):
        thr = Calibration.fit(rule_scores(logits["val-clean"], rule, mu, sd, one)[0]).threshold(
            1e-3
        )[0]
        clean = rule_scores(logits["test-clean"], rule, mu, sd, one)[0]
        cells = []
        for name in VARIANTS:
            lg = logits[f"signed-{name}"]
            score, idx = rule_scores(lg, rule, mu, sd, one)
            bits = (lg[np.arange(len(lg)), idx, 1:] > 0).astype(int)
            acc = (bits == code_bits).mean() if kit.num_bits else float("nan")
            cells.append(f"{(score >= thr).mean():.3f} / {acc:.2f}")
        print(
            f"| {rule} | {thr:.2f} | {(clean >= thr).sum()}/{len(clean)} | "
            + " | ".join(cells)
            + " |"
        )
    print(f"\n({time.perf_counter() - started:.0f} s; cells: flagged / bit accuracy)")


if __name__ == "__main__":
    main()
