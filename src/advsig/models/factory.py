"""Networks by name: ``create_model("injector-base", num_bits=32)``, ``list_models("detector-*")``.

The ``paper`` variants follow the authors' code (a 64-channel UNet for W, ResNet-34 for F);
``base`` is advsig's default (small enough to train and run on a CPU); ``tiny`` is for tests.
"""

from __future__ import annotations

import dataclasses
import fnmatch

from torch import nn

from advsig.config import DetectorConfig, InjectorConfig
from advsig.errors import ConfigError
from advsig.models.detector import SignatureDetector
from advsig.models.injector import SignatureInjector

_REGISTRY: dict[str, InjectorConfig | DetectorConfig] = {}


def register_model(name: str, config: InjectorConfig | DetectorConfig) -> None:
    """Register a named architecture (``injector-*`` or ``detector-*``)."""
    _REGISTRY[name] = config


register_model(
    "injector-paper",
    InjectorConfig(base_channels=64, channel_mult=(1, 1, 2, 2, 4), num_res_blocks=2, cond_dim=256),
)
register_model(
    "injector-base",
    InjectorConfig(
        base_channels=48, channel_mult=(1, 2), patch_size=4, periods=(2, 4, 8, 16), target_psnr=46.0
    ),
)
register_model(
    "injector-tiny",
    InjectorConfig(
        base_channels=16,
        channel_mult=(1, 2),
        patch_size=2,
        periods=(4, 8),
        cond_dim=16,
        target_psnr=40.0,
    ),
)
register_model(
    "injector-small",
    InjectorConfig(
        base_channels=24,
        channel_mult=(1, 2),
        patch_size=2,
        periods=(2, 4, 8),
        cond_dim=32,
        target_psnr=40.0,
        binding_cell=4,
    ),
)
register_model("detector-paper", DetectorConfig(arch="resnet34"))
register_model(
    "detector-base", DetectorConfig(base_channels=32, channel_mult=(1, 2, 4, 4), stem_patch=2)
)
register_model(
    "detector-small",
    DetectorConfig(
        base_channels=24,
        channel_mult=(1, 2, 4),
        blocks_per_stage=(1, 1, 1),
        stem_patch=2,
        norm="batch",
        binding_cell=4,
    ),
)
register_model(
    "detector-tiny",
    DetectorConfig(
        base_channels=16,
        channel_mult=(1, 2, 4),
        blocks_per_stage=(1, 1, 1),
        stem_patch=2,
        norm="batch",
    ),
)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a glob pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_config(name: str, **overrides) -> InjectorConfig | DetectorConfig:
    """The registered config for ``name`` with fields replaced by ``overrides``."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return dataclasses.replace(_REGISTRY[name], **overrides)


def build_model(config: InjectorConfig | DetectorConfig, *, key: bytes | None = None) -> nn.Module:
    """Instantiate the network a config describes; v2 networks derive their carriers from ``key``."""
    if isinstance(config, InjectorConfig):
        return SignatureInjector(config, key=key)
    return SignatureDetector(config, key=key)


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered network, e.g. ``create_model("detector-base", num_bits=48)``."""
    return build_model(model_config(name, **overrides))
