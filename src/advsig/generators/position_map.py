"""Learned position maps: what lets a convolutional generator draw a grid-fixed signature.

A content-bound signature is the kit's keyed carriers, fixed to its tile grid, times a mask of
the image's own content. Convolutions cannot tell grid positions apart away from the image
borders, so generators add a learned per-pixel map, zero at first, in front of their last
activation (``gan.with_position_map``, ``pixel.with_position_map``). Where the mask is what the
generator cannot compute at full resolution (a VAE decoder), a :class:`SignatureHead` supplies
both factors. This module holds what the families share: the head, how maps are named and how
fast they learn.
"""

from __future__ import annotations

import torch
from torch import nn

from advsig.errors import ConfigError

# Parameter names end in one of these: StyleGAN layers (``.position``); the UNet's last
# GroupNorm (``conv_norm_out.position_map``); a signature head (``signature_head.position_map``).
POSITION_MAP_SUFFIXES = (".position", ".position_map")

# The pixel UNet's map learns this many times faster than the UNet around it. Why: it starts at
# zero in front of features of size O(1) or larger, so at the UNet's rate (5e-4) the 64 px DDPM
# drew nothing of W's residual in 300 steps; at 20x it signed 100% of 256 samples in 600 steps
# (BENCHMARKS.md, stop 34). The GAN keeps one rate: 20x left it where it was (94.5%).
POSITION_MAP_LR_SCALE = 20.0


# A signature head's map (every family that has one names it so).
SIGNATURE_HEAD_MAP = "signature_head.position_map"


def param_groups(
    module: torch.nn.Module, lr: float, *, suffixes: tuple[str, ...] = POSITION_MAP_SUFFIXES
) -> list[dict]:
    """Optimizer groups for ``module``: its maps (parameter names ending in ``suffixes``) at
    ``lr * POSITION_MAP_LR_SCALE`` (when it has any), everything else at the optimizer's ``lr``."""
    maps, rest = [], []
    for name, param in module.named_parameters():
        (maps if name.endswith(suffixes) else rest).append(param)
    return [{"params": rest}] + (
        [{"params": maps, "lr": lr * POSITION_MAP_LR_SCALE}] if maps else []
    )


class SignatureHead(nn.Module):
    """A learned position map, modulated by a generator's coarse features, added to its output.

    ``out + sum_k m_k(coarse) * P_k``: ``coarse`` is a low-resolution feature map of the
    generator (a VAE decoder's mid-block output, at latent resolution; a StyleGAN's 8 px
    features), ``m`` a few small convolutions on it, upsampled bilinearly; ``P`` (k, 3, s, s) is
    a per-pixel map. :meth:`residual` computes the added term; :meth:`remember` and
    :meth:`add_to` are forward hooks for generators whose code advsig does not own (diffusers).
    Four convolutions see 9 x 9 latent cells, a little more than the kit's mask does (its
    contrast and two keyed 3 x 3 convolutions: 7 x 7 binding cells); fitted to the demo LDM's
    latents, two convolutions reach cosine 0.84 with W's residual on held-out latents, three
    0.87, four 0.88 (``benchmarks/probe_decoder_fit.py``; BENCHMARKS.md, stop 35).

    Why: a content-bound signature is keyed carriers, fixed to the pixel grid, times a mask
    computed from the image's coarse contrast (the kit's binding cells). A VQ decoder trained
    by pixel loss learned neither (0-0.8% flagged, cosine with W's residual <= 0.21; BENCHMARKS.md,
    stop 33): its full-resolution layers are a few narrow convolutions that see 11 px and no
    position. This head has both factors in the shape W makes them: the map holds the carriers,
    the coarse features (which see the whole latent, as W's mask sees its cells) the mask. The
    last convolution starts at zero, so the decoder's function is unchanged until training moves
    it; ``P`` starts random (a fixed seed) so the modulation gets a gradient.

    Cost, measured (threat-model.md): like every distilled signature it makes the released
    weights a signing oracle, and a separable one: a photo plus the head's change (advsig's
    decoding minus plain diffusers') is flagged 84% of the time at 44.4 dB; the demo DDPM's
    clean estimate signs photos as well (95%, 44.3 dB).
    """

    def __init__(
        self, coarse_channels: int, size: int, *, components: int = 8, hidden: int = 32,
        depth: int = 4,
    ) -> None:  # fmt: skip
        super().__init__()
        self.size = size
        layers: list[nn.Module] = []
        for i in range(depth):
            last = i == depth - 1
            layers.append(nn.Conv2d(coarse_channels if i == 0 else hidden,
                                    components if last else hidden, 3, padding=1,
                                    padding_mode="replicate"))  # fmt: skip
            if not last:
                layers.append(nn.SiLU())
        self.features = nn.Sequential(*layers)
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        gen = torch.Generator().manual_seed(0)
        self.position_map = nn.Parameter(torch.randn(components, 3, size, size, generator=gen) / 10)
        self._coarse: torch.Tensor | None = None

    def remember(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        """Forward hook on the decoder's mid block: keep its output for :meth:`add_to`."""
        self._coarse = output

    def add_to(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook on the decoder's last convolution: its output plus the head's."""
        coarse, self._coarse = self._coarse, None
        if coarse is None:
            raise RuntimeError("signature head: the decoder's mid block did not run first")
        if tuple(output.shape[-2:]) != (self.size, self.size):
            raise ConfigError(
                f"this decoder's signature head draws {self.size}x{self.size} images; "
                f"it was asked for {tuple(output.shape[-2:])}"
            )
        return output + self.residual(coarse).to(output.dtype)

    def residual(self, coarse: torch.Tensor) -> torch.Tensor:
        """The head's term for coarse features (B, c, h, w): (B, 3, size, size)."""
        mod = nn.functional.interpolate(
            self.features(coarse), size=(self.size, self.size), mode="bilinear",
            align_corners=False,
        )  # (B, k, s, s)  # fmt: skip
        return torch.einsum("bkhw,kchw->bchw", mod, self.position_map.to(mod.dtype))
