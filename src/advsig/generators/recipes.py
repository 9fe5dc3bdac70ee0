"""Which fine-tuning recipe signs which generator family: ``finetune_generator`` dispatches.

pixel diffusion -> :func:`advsig.generators.finetune.finetune_pixel` (``data``, ``self``);
latent diffusion -> :func:`advsig.generators.latent_finetune.finetune_latent` (``decoder``,
``data``, ``self``); GANs -> :func:`advsig.generators.gan_finetune.finetune_gan` (``distill``,
``data``). The family is read from the model folder, so the CLI needs no ``--family``.
"""

from __future__ import annotations

from pathlib import Path

from advsig.generators.base import (
    FAMILY_STRATEGIES,
    check_strategy,
    generator_family,
    load_generator,
)
from advsig.generators.finetune import FinetuneConfig


def default_strategy(family: str) -> str:
    """The recipe used when none is named: the fastest one that signs every sample."""
    return FAMILY_STRATEGIES[family][0]


def finetune_generator(config: FinetuneConfig, *, model=None) -> Path:
    """Fine-tune any supported generator as ``config`` says; returns the output folder."""
    model = model if model is not None else load_generator(config.model)
    family = model.family
    check_strategy(family, config.strategy)
    if family == "pixel":
        from advsig.generators.finetune import finetune_pixel

        return finetune_pixel(config, model=model)
    if family == "latent":
        from advsig.generators.latent_finetune import finetune_latent

        return finetune_latent(config, model=model)
    from advsig.generators.gan_finetune import finetune_gan

    return finetune_gan(config, model=model)


def family_of(name_or_path: str | Path) -> str:
    """The family of a model folder, shipped name or Hub id (re-exported for the CLI)."""
    return generator_family(name_or_path)
