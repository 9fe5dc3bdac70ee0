"""The generator families advsig signs, registered by name.

A :class:`Family` says how to load one of its models, which fine-tuning strategies it has (the
first is the default), where its fine-tuning recipe is built, and how to make a toy model (a few
thousand random parameters) for tests. Entries name functions as ``"module:function"`` and
import them on first use, so this registry imports no family and no family imports another.
A new family is one file with its loader and recipe, and one :func:`register_family` call.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from advsig.errors import ConfigError


def _resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Family:
    """One generator family: ``loader(name_or_path, *, device)`` -> model,
    ``recipe(model, config, engine, signer, work)`` -> a fine-tuning recipe, ``toy(*, seed)``.
    ``gain_strategies``: the strategies whose target can overshoot W's residual
    (``FinetuneConfig.residual_gain``)."""

    name: str
    strategies: tuple[str, ...]
    loader: str
    recipe: str
    toy: str
    gain_strategies: tuple[str, ...] = ()

    @property
    def default_strategy(self) -> str:
        return self.strategies[0]

    def check_strategy(self, strategy: str) -> None:
        """Refuse, by name, a recipe the family does not have (instead of running another one)."""
        if strategy not in self.strategies:
            raise ConfigError(
                f"a {self.name} generator is signed with --strategy "
                f"{' | '.join(self.strategies)}, not {strategy!r}"
            )

    def check_residual_gain(self, strategy: str, gain: float) -> None:
        """Refuse, by name, a residual gain the recipe would ignore."""
        if gain != 1 and strategy not in self.gain_strategies:
            where = " | ".join(f"{self.name} {s}" for s in self.gain_strategies) or "no recipe"
            raise ConfigError(f"--residual-gain is for {where}, not {self.name} {strategy!r}")

    def load(self, name_or_path, *, device="cpu"):
        return _resolve(self.loader)(name_or_path, device=device)

    def build_recipe(self, model, config, engine, signer, work):
        return _resolve(self.recipe)(model, config, engine, signer, work)

    def new_toy(self, *, seed: int = 0):
        return _resolve(self.toy)(seed=seed)


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add (or replace) a family; returns it."""
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    if name not in _FAMILIES:
        raise ConfigError(f"unknown generator family {name!r}; known: {', '.join(_FAMILIES)}")
    return _FAMILIES[name]


def list_families() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def all_strategies() -> tuple[str, ...]:
    """Every family's strategies, each once (what a config may name before the family is known)."""
    return tuple(dict.fromkeys(s for f in _FAMILIES.values() for s in f.strategies))


register_family(
    Family(
        "pixel",
        ("data", "self", "distill"),
        loader="advsig.generators.pixel:load_pixel_diffusion",
        recipe="advsig.generators.pixel_finetune:PixelRecipe",
        toy="advsig.generators.pixel:toy_pixel_diffusion",
    )
)
register_family(
    Family(
        "latent",
        ("decoder", "data", "self", "autoencoder"),
        loader="advsig.generators.latent:load_latent_diffusion",
        recipe="advsig.generators.latent_finetune:LatentRecipe",
        toy="advsig.generators.latent:toy_latent_diffusion",
    )
)
register_family(
    Family(
        "gan",
        ("distill", "data"),
        loader="advsig.generators.gan:load_gan",
        recipe="advsig.generators.gan_finetune:GanRecipe",
        toy="advsig.generators.gan:toy_gan",
        gain_strategies=("distill",),
    )
)
