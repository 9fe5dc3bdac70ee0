"""Learned position maps: what lets a convolutional generator draw a grid-fixed signature.

A content-bound signature is the kit's keyed carriers, fixed to its tile grid, times a mask of
the image's own content. Convolutions cannot tell grid positions apart away from the image
borders, so generators add a learned per-pixel map, zero at first, in front of their last
activation (``gan.with_position_map``, ``pixel.with_position_map``). This module holds what the
families share: how the maps are named and how fast they learn.
"""

from __future__ import annotations

import torch

# Parameter names end in one of these: StyleGAN layers (``.position``); the UNet's last
# GroupNorm (``conv_norm_out.position_map``).
POSITION_MAP_SUFFIXES = (".position", ".position_map")

# The pixel UNet's map learns this many times faster than the UNet around it. Why: it starts at
# zero in front of features of size O(1) or larger, so at the UNet's rate (5e-4) the 64 px DDPM
# drew nothing of W's residual in 300 steps; at 20x it signed 100% of 256 samples in 600 steps
# (BENCHMARKS.md, stop 34). The GAN keeps one rate: 20x left it where it was (94.5%).
POSITION_MAP_LR_SCALE = 20.0


def param_groups(module: torch.nn.Module, lr: float) -> list[dict]:
    """Optimizer groups for ``module``: its position maps at ``lr * POSITION_MAP_LR_SCALE``
    (when it has any), everything else at the optimizer's ``lr``."""
    maps, rest = [], []
    for name, param in module.named_parameters():
        (maps if name.endswith(POSITION_MAP_SUFFIXES) else rest).append(param)
    return [{"params": rest}] + (
        [{"params": maps, "lr": lr * POSITION_MAP_LR_SCALE}] if maps else []
    )
