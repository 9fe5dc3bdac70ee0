"""The demo's generator story: sign each shipped tiny generator, keep a control, sample, detect.

For each family (``ddpm`` pixel diffusion, ``ldm`` latent diffusion, ``gan``):
original (shipped, pre-trained on clean embedded photos)
  -> fine-tuned with the family's signing recipe and the kit's W   = the signed model
  -> fine-tuned with the same recipe and steps, no signature       = the control
then the same seeds are sampled from all three and one detector reads every sample.

Fine-tuning all six models takes about 30 minutes on 2 CPU cores, so ``advsig demo`` fine-tunes
one family live (the GAN, under a minute and a half) and reads the other two from signed and control
fine-tunes shipped in the package. Those were made by this very code (``advsig demo --full``,
``benchmarks/make_demo_generators.sh``), with the recipes below and the kit
:data:`DEMO_GENERATOR_KIT`; ``--full`` (or ``--live FAMILY``) redoes them live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from advsig.codes.bits import random_code
from advsig.errors import ConfigError
from advsig.generators.base import load_generator
from advsig.generators.evaluate import evaluate_generators
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.folders import shipped_generators
from advsig.generators.report import detection_table, quality_table, sample_grid
from advsig.types import FamilyDemoResult

logger = logging.getLogger(__name__)

# The kit the shipped demo fine-tunes were signed with: the content-bound 32 px kit.
DEMO_GENERATOR_KIT = "small-v2"
# Families the demo fine-tunes live by default (the fastest recipe); the others are shipped.
DEFAULT_LIVE = ("gan",)


@dataclass(frozen=True)
class DemoRecipe:
    """How the demo signs one family (settings measured in BENCHMARKS.md)."""

    title: str
    model: str
    strategy: str
    steps: int
    lr: float
    batch_size: int = 32
    sample_steps: int = 25
    what: str = ""
    detector_weight: float = 0.0
    position_map: bool = False
    low_t_fraction: float = 0.8
    low_t_max: int = 100
    residual_gain: float = 1.0

    def shipped(self, role: str) -> str:
        """Name of the shipped fine-tune for ``role`` (``signed`` or ``control``)."""
        return f"demo-{self.model}-{role}"


DEMO_GENERATORS: dict[str, DemoRecipe] = {
    "ddpm": DemoRecipe(
        "tiny DDPM, 32x32", "ddpm-32", "distill", steps=1500, lr=5e-4,
        low_t_fraction=0.9, low_t_max=10,
        what="distilled at its 10 least noisy timesteps: its clean estimate learns W of the "
        "original's clean estimate (the recipe that carries a content-bound signature)",
    ),
    "ldm": DemoRecipe(
        "tiny latent diffusion, 32x32", "ldm-32", "decoder", steps=1200, lr=1e-3,
        position_map=True,
        what="a signature head on its frozen decoder trained so that decoding any latent gives "
        "W of the original's image (the injector alone; the denoiser is untouched)",
    ),
    "gan": DemoRecipe(
        "tiny StyleGAN2-style GAN, 32x32", "gan-32", "distill", steps=400, lr=1e-3,
        position_map=True, residual_gain=1.3,
        what="distilled: G' learns to output G(z) + 1.3 (W(G(z)) - G(z)) for the same z, with "
        "a signature head on its 8 px features added to the clamped output (signed and "
        "control alike)",
    ),
}  # fmt: skip


def why_not_shipped(family: str, kit_name: str, steps: int | None) -> str | None:
    """Why ``family``'s shipped fine-tunes cannot stand in for a live run with this kit and step
    count (a sentence), or ``None`` when they can."""
    recipe = DEMO_GENERATORS[family]
    if kit_name != DEMO_GENERATOR_KIT or steps is not None:
        return (
            f"the shipped {family} fine-tunes were signed with kit {DEMO_GENERATOR_KIT!r} "
            f"for {recipe.steps} steps"
        )
    names = shipped_generators()
    if not all(recipe.shipped(role) in names for role in ("signed", "control")):
        return (
            f"this installation has no shipped {family} fine-tunes "
            f"({recipe.shipped('signed')}, {recipe.shipped('control')})"
        )
    return None


def run_generator_demo(
    family: str,
    out: str | Path,
    *,
    kit,
    kit_name: str,
    live: bool = True,
    steps: int | None = None,
    num_samples: int = 64,
    seed: int = 0,
) -> FamilyDemoResult:
    """Run one family's part of the demo under ``out``.

    ``live``: fine-tune the signed and control models now (with ``kit_name``'s injector);
    otherwise read the shipped fine-tunes, which were signed with :data:`DEMO_GENERATOR_KIT`.
    Live fine-tunes resume from their checkpoints, and samples already on disk are reused, so
    an interrupted demo picks up where it stopped.
    """
    if family not in DEMO_GENERATORS:
        raise ConfigError(
            f"unknown generator family {family!r} for the demo; known: {', '.join(DEMO_GENERATORS)}"
        )
    recipe = DEMO_GENERATORS[family]
    out = Path(out)
    if live:
        steps = steps or recipe.steps
        code = (
            random_code(kit.num_bits, torch.Generator().manual_seed(seed + 1))
            if kit.num_bits
            else None
        )
        common = dict(
            model=recipe.model, strategy=recipe.strategy, data="embedded", steps=steps,
            batch_size=recipe.batch_size, lr=recipe.lr, seed=seed, resume="latest",
            checkpoint_every=max(50, steps // 4), low_t_fraction=recipe.low_t_fraction,
            low_t_max=recipe.low_t_max, position_map=recipe.position_map,
        )  # fmt: skip
        finetune_generator(
            FinetuneConfig(
                out=str(out / f"{family}-signed"),
                kit=kit_name,
                code=code,
                detector_weight=recipe.detector_weight,
                residual_gain=recipe.residual_gain,
                **common,
            )  # fmt: skip
        )
        finetune_generator(FinetuneConfig(out=str(out / f"{family}-control"), kit=None, **common))
        sources = {role: out / f"{family}-{role}" for role in ("signed", "control")}
    else:
        if why := why_not_shipped(family, kit_name, steps):
            raise ConfigError(f"{why}; fine-tune live instead")
        sources = {role: recipe.shipped(role) for role in ("signed", "control")}
    models = {
        "signed": load_generator(sources["signed"]),
        "original": load_generator(recipe.model),
        "control": load_generator(sources["control"]),
    }
    if not live:  # what the shipped fine-tune was made with
        made = models["signed"].provenance or {}
        code = made.get("code")
        steps = int(made.get("steps", recipe.steps))
    results = evaluate_generators(
        kit, models, out=out / f"{family}-eval", reference_role="original", code=code,
        num_images=num_samples, steps=recipe.sample_steps, seed=seed,
    )  # fmt: skip
    for role in models:
        sample_grid(out / f"{family}-eval" / "samples" / role, out / f"{family}-{role}.png", num=32)
    return FamilyDemoResult(
        family=models["signed"].family, model=recipe.model, strategy=recipe.strategy,
        kit=kit_name, code=code, finetune_steps=steps, live=live,
        finetune_wall_time_s={
            role: (models[role].provenance or {}).get("wall_time_s")
            for role in ("signed", "control")
        },
        sample_steps=recipe.sample_steps, fpr=1e-3, threshold=results.thresholds["0.001"],
        evaluation=results,
    )  # fmt: skip


def render_generator_section(
    name: str, result: FamilyDemoResult, *, image_dir: str = "generators"
) -> list[str]:
    """One family's report section (Markdown lines); grids are under ``image_dir``."""
    recipe = DEMO_GENERATORS[name]
    results = result.evaluation.to_json_dict()
    wall = result.finetune_wall_time_s
    sampling = (
        "one forward pass each" if result.family == "gan" else f"DDIM {result.sample_steps} steps"
    )
    when = (
        "in this run"
        if result.live
        else f"by `advsig demo --full` and shipped with advsig (`{recipe.shipped('signed')}`, "
        f"`{recipe.shipped('control')}`; `--live {name}` redoes it here)"
    )
    return [
        f"## Signing a generator: {recipe.title}",
        "",
        f"The shipped `{result.model}` (pre-trained on clean embedded photos) was "
        f"{recipe.what}, strategy `{result.strategy}`, for {result.finetune_steps} steps with "
        f"kit `{result.kit}` and code `{result.code}` ({_seconds(wall['signed'])}); a "
        f"control copy got the same steps without the signature ({_seconds(wall['control'])}). "
        f"Both were fine-tuned {when}. "
        f"{result.evaluation.num_images} samples per model ({sampling}, the same seeds for all "
        f"three). Threshold: score >= {result.threshold:.2f} (FPR {result.fpr:g} on clean photos).",
        "",
        *detection_table(results),
        "",
        *quality_table(results),
        "",
        "| original | control | signed |",
        "|---|---|---|",
        "| "
        + " | ".join(
            f"![{r}]({image_dir}/{name}-{r}.png)" for r in ("original", "control", "signed")
        )
        + " |",
        "",
    ]


GENERATOR_NOTES = [
    "- *signed* should be flagged (the signature passed into the model), *original* and "
    "*control* should not: the control shows that fine-tuning alone does not make samples look "
    "signed. One kit (one W, one detector) serves every family.",
    "- The quality table compares sample distributions; the control's distance to real images "
    "is the cost of fine-tuning itself, the signed model's extra distance is the cost of the "
    "signature.",
    "",
]


def _seconds(value) -> str:
    return f"{value:.0f} s" if isinstance(value, (int, float)) else "time not recorded"
