"""Persistence: does the signature survive an attacker who fine-tunes the signed model on clean images?

The attacker holds the released (signed) model and clean data, and fine-tunes it with the
family's ordinary recipe and no kit: pixel diffusion on clean crops, latent diffusion's denoiser
on clean latents, a GAN adversarially on clean crops. We sample the model after each milestone
(0, 100, 1000, ... steps) and report how many samples the kit still flags.

Milestones are stages: each continues from the previous milestone's saved model (fresh
optimizer and EMA), so every stage is a normal, resumable fine-tune whose output any loader
reads. Why not one run with checkpoints: a stage's saved model is what an attacker would
release, and the same code then works for all three families.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from advsig.errors import ConfigError
from advsig.generators.base import load_generator
from advsig.generators.evaluate import (
    distribution_distances,
    feature_space,
    flag_statistics,
    real_images,
    sample_set,
)
from advsig.generators.families import get_family
from advsig.generators.finetune import FinetuneConfig
from advsig.types import PersistenceResult
from advsig.utils import write_text_atomic

logger = logging.getLogger(__name__)

# The recipe an attacker without the kit would use to fine-tune each family on clean images.
ATTACK_STRATEGY = {"pixel": "data", "latent": "data", "gan": "data"}


@dataclass
class PersistenceConfig:
    """What ``finetune_attack`` needs.

    Attributes:
        model: the signed model (folder or name).
        out: folder for the stage models, samples and ``persistence.json``.
        milestones: total attacker steps after which samples are read (0 = the signed model).
        data: the attacker's clean images (folder or ``"embedded"``).
        lr / batch_size: the attacker's fine-tuning settings.
        low_t_fraction: pixel and latent diffusion: the share of the attacker's timesteps drawn
            from the 100 least noisy, where a distilled signature lives (advsig's own emphasis,
            the strongest attacker measured); 0 is the uniform loss of an ordinary diffusers
            training script.
        num_images / sample_steps / seed: samples read at each milestone (same seeds each time).
        strategy: the attacker's recipe; ``None`` is the family's ordinary one
            (:data:`ATTACK_STRATEGY`). Why another: the ordinary recipe may leave alone the part
            that carries the signature (a latent model signed in its decoder keeps it under
            denoiser fine-tuning); ``autoencoder`` retrains that decoder on clean images.
    """

    model: str
    out: str
    milestones: list[int] = field(default_factory=lambda: [0, 100, 1000])
    data: str = "embedded"
    lr: float = 1e-4
    batch_size: int = 32
    low_t_fraction: float = 0.8
    num_images: int = 64
    sample_steps: int = 25
    seed: int = 0
    strategy: str | None = None

    def __post_init__(self) -> None:
        ms = list(self.milestones)
        if not ms or any(m < 0 for m in ms) or ms != sorted(set(ms)):
            raise ConfigError(f"milestones must be distinct, increasing and >= 0, got {ms}")
        if not 0 <= self.low_t_fraction <= 1:
            raise ConfigError(f"low_t_fraction must be in [0, 1], got {self.low_t_fraction}")


def finetune_attack(
    kit, config: PersistenceConfig, *, code: str | None = None
) -> PersistenceResult:
    """Run the staged attack; returns (and writes ``out/persistence.json``) the flag rates."""
    from advsig.generators.finetune import finetune_generator

    out = Path(config.out)
    signed = load_generator(config.model)
    code = code or (signed.provenance or {}).get("code")
    strategy = config.strategy or ATTACK_STRATEGY[signed.family]
    get_family(signed.family).check_strategy(strategy)
    if strategy in ("distill", "decoder"):  # they distil the model itself: nothing is removed
        raise ConfigError(
            f"attack strategy {strategy!r} distils the signed model's own output; an attacker "
            "trains on clean images (e.g. 'data', or 'autoencoder' for a latent decoder)"
        )
    # The attacker's quality: an attack that ruins the model is not a removal.
    space = feature_space(None)
    real = real_images(config.data, signed.sample_size, config.num_images, seed=config.seed)
    rows, fids, previous, done = [], [], config.model, 0
    for milestone in config.milestones:
        if milestone > done:
            stage = out / f"attacked-{milestone}"
            t0 = time.time()
            finetune_generator(
                FinetuneConfig(
                    model=str(previous), out=str(stage), kit=None, strategy=strategy,
                    data=config.data, steps=milestone - done, batch_size=config.batch_size,
                    lr=config.lr, seed=config.seed + milestone, resume="latest",
                    low_t_fraction=config.low_t_fraction,
                    checkpoint_every=max(1, (milestone - done) // 2),
                )
            )  # fmt: skip
            logger.info("attack stage to %d steps: %.0f s", milestone, time.time() - t0)
            previous, done = stage, milestone
        model = load_generator(previous)
        images = sample_set(
            model, out / "samples" / f"step-{milestone}", config.num_images,
            steps=config.sample_steps, seed=config.seed, progress=False,
        )  # fmt: skip
        stats = flag_statistics(kit, images, code=code)
        rows.append((milestone, stats))
        fids.append(distribution_distances(space, real, images)["fid"])
        logger.info("after %d attacker steps: %.1f%% flagged", milestone, 100 * stats.flag_rate_1e3)
    result = PersistenceResult(
        family=signed.family,
        attacker_strategy=strategy,
        model=str(config.model),
        code=code,
        config=dict(vars(config)),
        thresholds={f"{f:g}": kit.threshold(f) for f in (1e-2, 1e-3)},
        milestones=rows,
        fid_vs_real=fids,
        feature_space=space.name,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "persistence.json", json.dumps(result.to_json_dict(), indent=2))
    return result


def persistence_table(result: dict) -> list[str]:
    """Markdown lines: flag rate after each milestone (``result``: ``persistence.json``'s dict)."""
    lines = [
        f"Attacker: fine-tunes the signed {result['family']} model on clean images "
        f"(strategy `{result['attacker_strategy']}`, lr {result['config']['lr']:g}, "
        f"low-noise share {result['config'].get('low_t_fraction', 0.8):g}). Quality: FID of "
        f"the samples to real crops in the feature space {result.get('feature_space', '-')}.",
        "",
        "| attacker steps | flagged at FPR 1e-3 | flagged at FPR 1e-2 | mean score | bit accuracy "
        "| FID vs real |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["milestones"]:
        bits = f"{r['bit_accuracy']:.3f}" if "bit_accuracy" in r else "-"
        fid = f"{r['fid_vs_real']:.4f}" if r.get("fid_vs_real") is not None else "-"
        lines.append(
            f"| {r['attacker_steps']} | {r['flag_rate_1e-3']:.1%} | {r['flag_rate_1e-2']:.1%} | "
            f"{r['mean_score']:+.2f} | {bits} | {fid} |"
        )
    return lines
