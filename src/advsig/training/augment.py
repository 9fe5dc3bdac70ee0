"""Differentiable augmentations between W and F (kornia), applied identically to both batches.

``paper`` is the authors' recipe (rotation within 30 degrees, Gaussian blur sigma 0.01-1,
horizontal flip). ``robust`` adds a differentiable JPEG, down-and-up resizing, crops, noise and
colour changes, so that the signature survives what images go through after release. ``light``
is the processing every image meets on its way to a platform (JPEG, resizing, noise, brightness)
without geometric changes: rotations and flips move a content-bound signature's mask against the
image, which is the robust kit's job. ``photometric`` is ``light`` at the standard grid's
strengths plus blur and contrast: every pixel attack of the grid, still without geometry, for a
content-bound kit that must hold them.
"""

from __future__ import annotations

import math

import kornia.augmentation as K
import torch
from torch import nn


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels in the forward pass, identity gradient (straight-through)."""
    return x + ((x * 255).round() / 255 - x).detach()


class RandomResample(nn.Module):
    """Downscale by a random factor and back, as resizing (and advsig's own resample) does.

    The same factor applies to the whole batch, and is replayed on the clean batch.
    """

    def __init__(self, scale: tuple[float, float] = (0.5, 1.0), p: float = 0.5) -> None:
        super().__init__()
        self.scale = scale
        self.p = p
        self._last: float | None = None

    def forward(self, x: torch.Tensor, *, replay: bool = False) -> torch.Tensor:
        if not replay:
            apply = bool(torch.rand(()) < self.p)
            lo, hi = self.scale
            self._last = float(lo + (hi - lo) * torch.rand(())) if apply else None
        if self._last is None:
            return x
        h, w = x.shape[-2:]
        small = (max(8, round(h * self._last)), max(8, round(w * self._last)))
        y = nn.functional.interpolate(x, size=small, mode="bilinear", antialias=True)
        return nn.functional.interpolate(y, size=(h, w), mode="bilinear")


class PairedAugment(nn.Module):
    """Apply one random augmentation to signed images and replay it on their clean sources."""

    def __init__(self, kind: str, *, blur_max: float | None = None) -> None:
        super().__init__()
        if blur_max is not None and kind != "photometric":
            raise ValueError(
                f"blur_max applies to the 'photometric' augmentation only, not {kind!r}"
            )
        self.kind = kind
        ops: list[nn.Module] = []
        if kind in ("paper", "robust"):
            ops += [
                K.RandomRotation(30.0, p=0.5),
                K.RandomGaussianBlur((5, 5), (0.01, 1.0), p=0.5),
                K.RandomHorizontalFlip(p=0.5),
            ]
        if kind == "light":
            ops += [
                K.ColorJitter(0.35, 0.2, 0.0, 0.0, p=0.4),
                K.RandomGaussianNoise(std=0.025, p=0.3),
                K.RandomJPEG(jpeg_quality=(50.0, 95.0), p=0.5),
            ]
        if kind == "photometric":
            # None keeps robust-v2's recipe; a given sigma gets a kernel of 3 sigma each side.
            side = 9 if blur_max is None else 2 * math.ceil(3 * blur_max) + 1
            ops += [
                K.RandomGaussianBlur((side, side), (0.3, blur_max or 2.2), p=0.3),
                K.ColorJitter(0.35, 0.35, 0.2, 0.0, p=0.4),
                K.RandomGaussianNoise(std=0.05, p=0.3),
                K.RandomJPEG(jpeg_quality=(40.0, 95.0), p=0.5),
            ]
        if kind == "robust":
            ops += [
                K.RandomResizedCrop((1, 1), scale=(0.5, 1.0), ratio=(0.75, 1.33), p=0.3),
                # No hue jitter: its HSV round trip has NaN gradients on black (rotated-in) pixels.
                K.ColorJitter(0.3, 0.3, 0.2, 0.0, p=0.5),
                K.RandomGaussianNoise(std=0.03, p=0.3),
                K.RandomJPEG(jpeg_quality=(40.0, 95.0), p=0.5),
            ]
        self.seq = K.AugmentationSequential(*ops, data_keys=["input"]) if ops else None
        self.resample = (
            RandomResample(p=0.5 if kind in ("robust", "light", "photometric") else 0.3)
            if kind != "none"
            else None
        )

    def forward(
        self, signed: torch.Tensor, clean: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both (B, 3, H, W) in [0, 1] -> augmented pair, same parameters for both."""
        if self.seq is not None:
            if self.kind == "robust":
                # RandomResizedCrop's output size follows the input: set it per call.
                self.seq[3].size = tuple(signed.shape[-2:])
            signed = self.seq(signed)
            clean = self.seq(clean, params=self.seq._params)
        if self.resample is not None:
            signed = self.resample(signed)
            clean = self.resample(clean, replay=True)
        return signed.clamp(0, 1), clean.clamp(0, 1)
