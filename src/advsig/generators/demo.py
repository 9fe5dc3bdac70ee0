"""The demo's generator story: sign the shipped tiny DDPM, keep a control, sample, detect.

original (shipped ``ddpm-32``, pre-trained on clean embedded photos)
  -> fine-tuned on W-signed crops (the paper's recipe)   = the signed model
  -> fine-tuned on clean crops for the same steps         = the control
then the same noise seeds are sampled from all three and the kit's detector reads every sample.
"""

from __future__ import annotations

from pathlib import Path

import torch

from advsig.codes.bits import random_code
from advsig.generators.evaluate import evaluate_generators
from advsig.generators.finetune import FinetuneConfig, finetune_pixel
from advsig.generators.pixel import load_pixel_diffusion
from advsig.generators.report import detection_table, quality_table, sample_grid

DEMO_MODEL = "ddpm-32"


def run_ddpm_demo(
    out: str | Path,
    *,
    kit,
    kit_name: str,
    steps: int = 600,
    num_samples: int = 64,
    sample_steps: int = 25,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
) -> dict:
    """Run the DDPM part of the demo under ``out``; return the ``generators.ddpm`` summary entry.

    Fine-tunes resume from their checkpoints, and samples already on disk are reused, so an
    interrupted demo picks up where it stopped.
    """
    out = Path(out)
    code = (
        random_code(kit.num_bits, torch.Generator().manual_seed(seed + 1)) if kit.num_bits else None
    )
    common = dict(
        model=DEMO_MODEL, data="embedded", steps=steps, batch_size=batch_size, lr=lr, seed=seed,
        resume="latest", checkpoint_every=max(50, steps // 4),
    )  # fmt: skip
    finetune_pixel(FinetuneConfig(out=str(out / "ddpm-signed"), kit=kit_name, code=code, **common))
    finetune_pixel(FinetuneConfig(out=str(out / "ddpm-control"), kit=None, **common))
    models = {
        "signed": load_pixel_diffusion(out / "ddpm-signed"),
        "original": load_pixel_diffusion(DEMO_MODEL),
        "control": load_pixel_diffusion(out / "ddpm-control"),
    }
    results = evaluate_generators(
        kit, models, out=out / "ddpm-eval", reference_role="original", code=code,
        num_images=num_samples,
        steps=sample_steps, seed=seed,
    )  # fmt: skip
    for role in models:
        sample_grid(out / "ddpm-eval" / "samples" / role, out / f"ddpm-{role}.png", num=32)
    det = results["detection"]
    signed_prov = models["signed"].provenance or {}
    control_prov = models["control"].provenance or {}
    return {
        "signed_flag_rate": det["signed"]["flag_rate_1e-3"],
        "original_flag_rate": det["original"]["flag_rate_1e-3"],
        "control_flag_rate": det["control"]["flag_rate_1e-3"],
        "bit_accuracy": det["signed"].get("bit_accuracy"),
        "exact_code_rate": det["signed"].get("exact_code_rate"),
        "num_samples": num_samples,
        "fpr": 1e-3,
        "threshold": results["thresholds"]["0.001"],
        "code": code,
        "kit": kit_name,
        "model": DEMO_MODEL,
        "finetune_steps": steps,
        "finetune_wall_time_s": {
            "signed": signed_prov.get("wall_time_s"),
            "control": control_prov.get("wall_time_s"),
        },
        "sample_steps": sample_steps,
        "quality": results["quality"],
        "detection": det,
    }


def render_ddpm_section(entry: dict, *, image_dir: str = "generators") -> list[str]:
    """The report's generator section (Markdown lines); grids are under ``image_dir``."""
    results = {"detection": entry["detection"], "quality": entry["quality"]}
    wall = entry["finetune_wall_time_s"]
    return [
        "## Signing a generator (tiny DDPM, 32x32)",
        "",
        f"The shipped `{entry['model']}` DDPM (pre-trained on clean embedded photos) was "
        f"fine-tuned for {entry['finetune_steps']} steps on crops signed by kit "
        f"`{entry['kit']}`'s injector with code `{entry['code']}` "
        f"({wall['signed']:.0f} s), and a control copy for the same steps on clean crops "
        f"({wall['control']:.0f} s). {entry['num_samples']} samples per model "
        f"(DDIM {entry['sample_steps']} steps, same noise for all three). "
        f"Threshold: score >= {entry['threshold']:.2f} (FPR {entry['fpr']:g} on clean photos).",
        "",
        *detection_table(results),
        "",
        *quality_table(results),
        "",
        "| original | control | signed |",
        "|---|---|---|",
        "| "
        + " | ".join(f"![{r}]({image_dir}/ddpm-{r}.png)" for r in ("original", "control", "signed"))
        + " |",
        "",
        "- *signed* should be flagged (the signature passed from the training data into the "
        "model), *original* and *control* should not: the control shows that fine-tuning alone "
        "does not make samples look signed.",
        "- The quality table compares sample distributions; the control's distance to real "
        "images is the cost of fine-tuning itself, the signed model's extra distance is the "
        "cost of the signature.",
        "",
    ]
