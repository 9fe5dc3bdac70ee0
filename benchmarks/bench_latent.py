"""Latent diffusion signing at demo scale: the ``decoder`` recipe against a control, and ``data``.

Fine-tunes the shipped ``ldm-32`` (LDMPipeline, VQModel 32x32 <-> 8x8x4) with the shipped
``small`` kit and a random 16-bit code:
  signed   strategy decoder (D' learns W(D(z)); the denoiser is untouched),
  control  the same steps on target D(z) (no signature),
  data     the paper's recipe for a bounded number of steps: the denoiser learns E(W(x)),
then samples every model from the same noise, reads each sample with the kit's detector and
measures random-CNN FID/KID against real crops and the original. The ``data`` entry also records
whether the signature survives the autoencoder round trip D(E(W(x))).

    python benchmarks/bench_latent.py --kit small --steps 400 --num-samples 128 \
        --out runs/bench-ldm

Writes OUT/results.json and copies it to benchmarks/results/generators-ldm32.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from advsig.codes.bits import random_code
from advsig.generators.evaluate import evaluate_generators, flag_statistics, sample_set
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.latent import load_latent_diffusion
from advsig.kit import Kit

RESULTS = Path(__file__).resolve().parent / "results"


def finetune(args, name: str, **kw) -> tuple[Path, float]:
    out = Path(args.out) / name
    if not (out / "advsig.json").is_file():
        config = FinetuneConfig(
            model=args.model, out=str(out), data="embedded", batch_size=args.batch_size,
            seed=args.seed, resume="latest", checkpoint_every=max(50, args.steps // 2), **kw,
        )  # fmt: skip
        finetune_generator(config)
    prov = json.loads((out / "advsig.json").read_text())
    return out, prov["wall_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="small")
    parser.add_argument("--model", default="ldm-32")
    parser.add_argument("--steps", type=int, default=400, help="decoder steps (signed, control)")
    parser.add_argument("--lr", type=float, default=1e-4, help="decoder learning rate")
    parser.add_argument("--data-steps", type=int, default=300, help="denoiser steps for 'data'")
    parser.add_argument("--data-lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-ldm")
    parser.add_argument(
        "--detector-weight",
        type=float,
        default=0.0,
        help="decoder: weight of the kit's detector in the loss (0 = pixel only)",
    )
    parser.add_argument("--results", default=str(RESULTS / "generators-ldm32.json"))
    args = parser.parse_args()

    t0 = time.time()
    kit = Kit.from_pretrained(args.kit)
    code = random_code(kit.num_bits, torch.Generator().manual_seed(args.seed + 1))
    signed, signed_s = finetune(args, "signed", kit=args.kit, code=code, strategy="decoder",
                                steps=args.steps, lr=args.lr,
                                detector_weight=args.detector_weight)  # fmt: skip
    control, control_s = finetune(args, "control", kit=None, strategy="decoder",
                                  steps=args.steps, lr=args.lr)  # fmt: skip
    models = {
        "signed": load_latent_diffusion(signed),
        "original": load_latent_diffusion(args.model),
        "control": load_latent_diffusion(control),
    }
    evaluation = evaluate_generators(
        kit, models, out=Path(args.out) / "eval", reference_role="original", code=code,
        num_images=args.num_samples, steps=args.sample_steps, seed=args.seed,
    ).to_json_dict()  # fmt: skip

    data, data_s = finetune(args, "data", kit=args.kit, code=code, strategy="data",
                            steps=args.data_steps, lr=args.data_lr)  # fmt: skip
    data_model = load_latent_diffusion(data)
    data_images = sample_set(data_model, Path(args.out) / "eval" / "samples" / "data",
                             args.num_samples, steps=args.sample_steps, seed=args.seed,
                             progress=True)  # fmt: skip
    results = {
        "command": "python benchmarks/bench_latent.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        ),
        "kit": args.kit,
        "model": args.model,
        "code": code,
        "fpr": 1e-3,
        "decoder": {
            "steps": args.steps, "lr": args.lr, "batch_size": args.batch_size,
            "detector_weight": args.detector_weight,
            "wall_time_s": {"signed": signed_s, "control": control_s},
            **evaluation,
        },
        "data": {
            "steps": args.data_steps, "lr": args.data_lr, "batch_size": args.batch_size,
            "wall_time_s": data_s,
            "detection": flag_statistics(kit, data_images, code=code).to_json_dict(),
            "encoder_round_trip": data_model.provenance.get("encoder_round_trip"),
        },
        "total_wall_time_s": round(time.time() - t0, 1),
    }  # fmt: skip
    out = Path(args.out) / "results.json"
    out.write_text(json.dumps(results, indent=2))
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, args.results)
    det = evaluation["detection"]
    for role in ("original", "control", "signed"):
        print(f"{role:9s} flagged at FPR 1e-3: {det[role]['flag_rate_1e-3']:.3f}")
    print(f"signed bit accuracy: {det['signed']['bit_accuracy']:.4f}, "
          f"exact code: {det['signed']['exact_code_rate']:.3f}")  # fmt: skip
    print(f"decoder fine-tune wall time: signed {signed_s:.0f} s, control {control_s:.0f} s")
    trip = results["data"]["encoder_round_trip"] or {}
    if trip.get("measured"):
        print("data: round trip D(E(W(x))) flagged "
              f"{trip['signed_after_autoencoder']['flag_rate_1e-3']:.3f} "
              f"(W(x): {trip['signed']['flag_rate_1e-3']:.3f})")  # fmt: skip
    print(f"data ({args.data_steps} steps, {data_s:.0f} s): samples flagged "
          f"{results['data']['detection']['flag_rate_1e-3']:.3f}")  # fmt: skip
    print(f"total {results['total_wall_time_s']:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
