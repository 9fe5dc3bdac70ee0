"""Generator signing at demo scale: how detection grows with fine-tuning steps, and what it costs.

Fine-tunes the shipped 32x32 DDPM four ways for the same number of steps:
  signed-data (the paper's recipe: signed crops of the training photos),
  signed-self (signed samples of the original model, no data needed),
  signed-b    (data recipe with a second code: attribution),
  control     (clean crops: the cost of fine-tuning alone),
then samples every model from the same noise and reads each sample with the kit's detector.
Intermediate checkpoints of signed-data give detection against steps (a plot). ``--strategy``
replaces the recipe of signed-data, signed-b and control (``distill`` for v2 kits, whose
signature the ``data`` recipe does not transfer); ``--variants`` picks which models to train.

    python benchmarks/bench_generators.py --kit small --steps 800 --eval-every 100 \
        --num-samples 256 --out runs/bench-generators
    python benchmarks/bench_generators.py --kit small-v2 --strategy distill --lr 5e-4 \
        --steps 1500 --eval-every 500 --low-t-fraction 0.9 --low-t-max 10 \
        --variants control,b --out runs/bench-generators-v2

Writes OUT/results.json, OUT/steps.png, and copies both into benchmarks/results/
(``generators-ddpm32.json``; ``generators-ddpm32-{kit}.json`` for a kit other than ``small``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from advsig.generators.evaluate import evaluate_generators, flag_statistics, sample_set
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.pixel import load_pixel_diffusion
from advsig.generators.pixel_finetune import checkpoint_model
from advsig.kit import Kit

RESULTS = Path(__file__).resolve().parent / "results"


def finetune(args, name: str, **kw) -> tuple[Path, float]:
    out = Path(args.out) / name
    if not (out / "advsig.json").is_file():
        config = FinetuneConfig(
            model=args.model, out=str(out), data="embedded", steps=args.steps,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, resume="latest",
            checkpoint_every=args.eval_every, keep_checkpoints=1000,
            low_t_fraction=args.low_t_fraction, low_t_max=args.low_t_max, **kw,
        )  # fmt: skip
        finetune_generator(config)
    prov = json.loads((out / "advsig.json").read_text())
    return out, prov["wall_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="small")
    parser.add_argument("--model", default="ddpm-32")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--curve-samples", type=int, default=128)
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--strategy", default="data", help="data | distill (signed-data, -b, control)"
    )
    parser.add_argument("--low-t-fraction", type=float, default=FinetuneConfig.low_t_fraction)
    parser.add_argument("--low-t-max", type=int, default=FinetuneConfig.low_t_max)
    parser.add_argument(
        "--variants", default="control,self,b", help="besides signed-data: control, self, b"
    )
    parser.add_argument("--out", default="runs/bench-generators")
    parser.add_argument(
        "--no-copy", action="store_true", help="Do not copy into benchmarks/results."
    )
    args = parser.parse_args()
    out = Path(args.out)
    torch.set_flush_denormal(True)
    kit = Kit.from_pretrained(args.kit)
    code_a, code_b = "a5c3", "5a3c"

    variants = set(args.variants.split(",")) - {""}
    if variants - {"control", "self", "b"}:
        parser.error(f"--variants: unknown {sorted(variants - {'control', 'self', 'b'})}")

    t0 = time.time()
    recipe = dict(strategy=args.strategy)
    signed, wall = finetune(args, "signed-data", kit=args.kit, code=code_a, **recipe)
    walls = {"signed-data": wall}
    control = None
    if "control" in variants:
        control, walls["control"] = finetune(args, "control", kit=None, **recipe)
    others = []  # (role, folder, code)
    if "self" in variants:
        folder, walls["signed-self"] = finetune(
            args, "signed-self", kit=args.kit, code=code_a, strategy="self"
        )
        others.append(("signed-self", folder, code_a))
    if "b" in variants:
        folder, walls["signed-b"] = finetune(args, "signed-b", kit=args.kit, code=code_b, **recipe)
        others.append(("signed-b", folder, code_b))

    # Detection against fine-tuning steps (signed-data's EMA checkpoints).
    original = load_pixel_diffusion(args.model)
    curve = []
    steps_done = sorted(
        int(p.name.split("-")[1]) for p in (out / "signed-data-work").glob("checkpoint-*")
    )
    for step in [0, *steps_done, args.steps]:
        model = (
            original if step == 0 else load_pixel_diffusion(signed) if step == args.steps
            else checkpoint_model(original, out / "signed-data-work" / f"checkpoint-{step}")
        )  # fmt: skip
        imgs = sample_set(model, out / "curve" / f"step-{step}", args.curve_samples,
                          steps=args.sample_steps, seed=args.seed + 1, progress=False)  # fmt: skip
        stats = flag_statistics(kit, imgs, code=code_a).to_json_dict()
        curve.append({"step": step, **stats})
        print(
            f"step {step}: flagged {stats['flag_rate_1e-3']:.3f}, bits {stats['bit_accuracy']:.3f}"
        )

    # Final comparison on num_samples each, same noise for every model.
    models = {"signed": load_pixel_diffusion(signed), "reference": original}
    if control is not None:
        models["control"] = load_pixel_diffusion(control)
    main_eval = evaluate_generators(
        kit, models, out=out / "eval", code=code_a, num_images=args.num_samples,
        steps=args.sample_steps, seed=args.seed,
    ).to_json_dict()  # fmt: skip
    extra = {}
    for role, path, code in others:
        imgs = sample_set(load_pixel_diffusion(path), out / "eval" / "samples" / role,
                          args.num_samples, steps=args.sample_steps, seed=args.seed,
                          progress=False)  # fmt: skip
        extra[role] = flag_statistics(kit, imgs, code=code).to_json_dict()
        extra[role]["bit_agreement_with_other_code"] = flag_statistics(
            kit, imgs, code=code_b if code == code_a else code_a
        ).to_json_dict()["bit_accuracy"]

    results = {
        "command": "python benchmarks/bench_generators.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "no_copy"),
        "kit": args.kit,
        "model": args.model,
        "strategy": args.strategy,
        "codes": {"signed": code_a, **{role: code for role, _, code in others}},
        "finetune_steps": args.steps,
        "finetune_wall_time_s": walls,
        "curve": curve,
        "eval": main_eval,
        "extra": extra,
        "total_wall_time_s": round(time.time() - t0, 1),
        "machine": f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}",
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    plot(curve, out / "steps.png")
    if not args.no_copy:
        RESULTS.mkdir(exist_ok=True)
        suffix = "" if args.kit == "small" else f"-{Path(args.kit).name}"
        shutil.copy(out / "results.json", RESULTS / f"generators-ddpm32{suffix}.json")
        shutil.copy(
            out / "steps.png", RESULTS.parent.parent / "docs" / f"generator-steps{suffix}.png"
        )
    print(json.dumps({"detection": main_eval["detection"], "extra": extra}, indent=2))


def plot(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [c["step"] for c in curve]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot(steps, [c["flag_rate_1e-3"] for c in curve], "o-", label="flagged at FPR 1e-3")
    ax.plot(steps, [c["bit_accuracy"] for c in curve], "s--", label="bit accuracy")
    ax.set_xlabel("fine-tuning steps (batch 32)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Signed DDPM-32 samples")
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
