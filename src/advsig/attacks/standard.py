"""The rest of the standard robustness grid (blur, noise, colour, geometry) and the grid itself.

Each attack is defined as the published watermark benchmarks define it, so that numbers
compare: blur is PIL's Gaussian blur by radius, noise is additive Gaussian on [0, 1] images,
brightness and contrast are torchvision's (multiply; blend with the mean grey), rotation is
PIL's bicubic about the centre keeping the size, with the corners filled black.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageFilter

from advsig.attacks.base import (
    JPEG,
    Attack,
    CenterCrop,
    Compose,
    Identity,
    Resize,
    register_attack,
)
from advsig.data.io import from_uint8, to_uint8
from advsig.errors import ConfigError


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    return float(value)


@register_attack
class GaussianBlur(Attack):
    """PIL ``ImageFilter.GaussianBlur(radius)`` on the 8-bit image."""

    name = "blur"

    def __init__(self, radius: float = 1.0) -> None:
        self.radius = _positive("blur radius", radius)

    def params(self):
        return {"radius": self.radius}

    @property
    def label(self) -> str:
        return f"blur{self.radius:g}"

    def apply(self, image, generator):
        pil = Image.fromarray(to_uint8(image)).filter(ImageFilter.GaussianBlur(self.radius))
        return from_uint8(np.asarray(pil))


@register_attack
class GaussianNoise(Attack):
    """Add N(0, sigma^2) per pixel and channel on [0, 1], then clip; noise from ``generator``."""

    name = "noise"

    def __init__(self, sigma: float = 0.02) -> None:
        self.sigma = _positive("noise sigma", sigma)

    def params(self):
        return {"sigma": self.sigma}

    @property
    def label(self) -> str:
        return f"noise{self.sigma:g}"

    def apply(self, image, generator):
        noise = torch.randn(image.shape, generator=generator, dtype=torch.float32)  # (3, H, W)
        return (image + self.sigma * noise.to(image.device)).clamp(0, 1)


@register_attack
class Brightness(Attack):
    """Multiply every pixel by ``factor`` and clip (torchvision ``adjust_brightness``)."""

    name = "brightness"

    def __init__(self, factor: float = 1.3) -> None:
        self.factor = _positive("brightness factor", factor)

    def params(self):
        return {"factor": self.factor}

    @property
    def label(self) -> str:
        return f"brightness{self.factor:g}"

    def apply(self, image, generator):
        return TF.adjust_brightness(image, self.factor).clamp(0, 1)


@register_attack
class Contrast(Attack):
    """Blend with the image's mean grey by ``factor`` (torchvision ``adjust_contrast``)."""

    name = "contrast"

    def __init__(self, factor: float = 1.3) -> None:
        self.factor = _positive("contrast factor", factor)

    def params(self):
        return {"factor": self.factor}

    @property
    def label(self) -> str:
        return f"contrast{self.factor:g}"

    def apply(self, image, generator):
        return TF.adjust_contrast(image, self.factor).clamp(0, 1)


@register_attack
class Rotate(Attack):
    """PIL rotation by ``degrees`` counter-clockwise about the centre, bicubic, same size."""

    name = "rotate"

    def __init__(self, degrees: float = 5.0) -> None:
        self.degrees = float(degrees)

    def params(self):
        return {"degrees": self.degrees}

    @property
    def label(self) -> str:
        return f"rotate{self.degrees:g}"

    def apply(self, image, generator):
        pil = Image.fromarray(to_uint8(image)).rotate(self.degrees, resample=Image.BICUBIC)
        return from_uint8(np.asarray(pil))


@register_attack
class HorizontalFlip(Attack):
    """Mirror left to right."""

    name = "hflip"

    def apply(self, image, generator):
        return image.flip(-1)


def standard_grid() -> list[Attack]:
    """The standard grid, as data (issue 5's definitions), clean first."""
    return [
        Identity(),
        JPEG(90), JPEG(75), JPEG(50),
        Resize(0.5, back=True),
        CenterCrop(0.75), CenterCrop(0.5),
        CenterCrop(0.75, resize_back=True), CenterCrop(0.5, resize_back=True),
        GaussianBlur(1), GaussianBlur(2),
        GaussianNoise(0.02), GaussianNoise(0.05),
        Brightness(1.3), Brightness(0.7), Contrast(1.3),
        Rotate(5), Rotate(15),
        HorizontalFlip(),
        Compose(JPEG(75), Resize(0.75)),
    ]  # fmt: skip
