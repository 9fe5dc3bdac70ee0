"""GAN signing at demo scale: distill (and, bounded, the paper's adversarial recipe) on gan-32.

Fine-tunes the shipped 32x32 StyleGAN2-style GAN with the kit's W:
  signed   (distill: G' learns W(G(z)) for the same z),
  control  (distill toward G(z) itself, same steps: the cost of fine-tuning alone),
and, with --data-steps > 0, the paper's recipe for a bounded number of steps:
  signed-data  (adversarial fine-tuning on signed crops, from the shipped discriminator),
  control-data (the same on clean crops),
then samples every model with the same seeds and reads each sample with the kit's detector.

    python benchmarks/bench_gan.py --kit small --steps 400 --lr 1e-3 --batch-size 32 \
        --data-steps 300 --num-samples 256 --out runs/bench-gan

Writes OUT/results.json and copies it to benchmarks/results/generators-gan32.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from advsig.codes.bits import random_code
from advsig.generators.evaluate import evaluate_generators, flag_statistics, sample_set
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.gan import load_gan
from advsig.kit import Kit

RESULTS = Path(__file__).resolve().parent / "results"


def finetune(args, name: str, **kw) -> tuple[Path, float]:
    out = Path(args.out) / name
    if not (out / "advsig.json").is_file():
        config = FinetuneConfig(
            model=args.model, out=str(out), data="embedded", seed=args.seed, resume="latest",
            checkpoint_every=1000, **kw,
        )  # fmt: skip
        finetune_generator(config)
    return out, json.loads((out / "advsig.json").read_text())["wall_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="small")
    parser.add_argument("--model", default="gan-32")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--data-steps", type=int, default=300)
    parser.add_argument("--data-lr", type=float, default=2e-4)
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-gan")
    args = parser.parse_args()
    t_start = time.time()
    kit = Kit.from_pretrained(args.kit)
    code = random_code(kit.num_bits, torch.Generator().manual_seed(args.seed + 1))
    common = dict(strategy="distill", steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                  ema_decay=args.ema_decay)  # fmt: skip
    paths, walls = {}, {}
    paths["signed"], walls["signed"] = finetune(args, "signed", kit=args.kit, code=code, **common)
    paths["control"], walls["control"] = finetune(args, "control", kit=None, **common)
    if args.data_steps:
        data = dict(strategy="data", steps=args.data_steps, lr=args.data_lr,
                    batch_size=args.batch_size, ema_decay=args.ema_decay)  # fmt: skip
        for role, kit_name in (("signed-data", args.kit), ("control-data", None)):
            paths[role], walls[role] = finetune(args, role, kit=kit_name, code=code, **data)
    models = {"original": load_gan(args.model)} | {r: load_gan(p) for r, p in paths.items()}
    out = Path(args.out)
    t0 = time.time()
    results = evaluate_generators(
        kit, models, out=out / "eval", signed_role="signed", reference_role="original",
        code=code, num_images=args.num_samples, seed=args.seed,
    ).to_json_dict()  # fmt: skip
    eval_wall = time.time() - t0
    if "signed-data" in models:  # bit accuracy for the second signed model too
        imgs = sample_set(models["signed-data"], out / "eval" / "samples" / "signed-data",
                          args.num_samples, steps=1, seed=args.seed, progress=False)  # fmt: skip
        results["detection"]["signed-data"] = flag_statistics(kit, imgs, code=code).to_json_dict()
    det = results["detection"]
    summary = {
        "command": "python " + " ".join(sys.argv),
        "kit": args.kit,
        "model": args.model,
        "code": code,
        "distill": {"steps": args.steps, "lr": args.lr, "batch_size": args.batch_size,
                    "ema_decay": args.ema_decay},
        "data": {"steps": args.data_steps, "lr": args.data_lr, "batch_size": args.batch_size},
        "num_samples": args.num_samples,
        "finetune_wall_time_s": walls,
        "eval_wall_time_s": round(eval_wall, 1),
        "total_wall_time_s": round(time.time() - t_start, 1),
        "threshold_fpr_1e-3": results["thresholds"]["0.001"],
        "flag_rate_1e-3": {role: d["flag_rate_1e-3"] for role, d in det.items()},
        "bit_accuracy": {r: det[r]["bit_accuracy"] for r in det if "bit_accuracy" in det[r]},
        "targets_met": {
            "signed_flagged_ge_99": det["signed"]["flag_rate_1e-3"] >= 0.99,
            "original_and_control_le_1": max(det["original"]["flag_rate_1e-3"],
                                              det["control"]["flag_rate_1e-3"]) <= 0.01,
            "bit_accuracy_ge_99": det["signed"]["bit_accuracy"] >= 0.99,
        },  # fmt: skip
        "detection": det,
        "quality": results["quality"],
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    RESULTS.mkdir(exist_ok=True)
    shutil.copy(out / "results.json", RESULTS / "generators-gan32.json")
    print(json.dumps({k: summary[k] for k in ("flag_rate_1e-3", "bit_accuracy", "targets_met",
                                               "finetune_wall_time_s")}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
