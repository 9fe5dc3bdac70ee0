"""The attack protocol and the basic transformations (JPEG, resize, crop, chains)."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from advsig.data.io import from_uint8, to_uint8
from advsig.errors import ConfigError

ATTACKS: dict[str, type[Attack]] = {}


def register_attack(cls: type[Attack]) -> type[Attack]:
    ATTACKS[cls.name] = cls
    return cls


def create_attack(name: str, *args, **kwargs) -> Attack:
    """``create_attack("jpeg", 75)``."""
    if name not in ATTACKS:
        raise ConfigError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")
    return ATTACKS[name](*args, **kwargs)


class Attack:
    """Base class. Subclasses implement ``apply(image (3, H, W), generator) -> (3, H', W')``."""

    name = "attack"

    def apply(self, image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, *, generator: torch.Generator | None = None):
        if images.dim() == 3:
            return self.apply(images, generator)
        return torch.stack([self.apply(img, generator) for img in images])

    def params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    @property
    def label(self) -> str:
        """Short label for tables, e.g. ``jpeg75``."""
        values = "".join(str(v).replace(".", "") for v in self.params().values() if v is not None)
        return f"{self.name}{values}"


@register_attack
class Identity(Attack):
    name = "none"

    def apply(self, image, generator):
        return image


@register_attack
class JPEG(Attack):
    """PIL JPEG round trip at ``quality`` (4:2:0 subsampling, PIL's default)."""

    name = "jpeg"

    def __init__(self, quality: int = 75) -> None:
        if not 1 <= quality <= 100:
            raise ConfigError(f"JPEG quality must be in [1, 100], got {quality!r}")
        self.quality = quality

    def params(self):
        return {"quality": self.quality}

    def apply(self, image, generator):
        buf = io.BytesIO()
        Image.fromarray(to_uint8(image)).save(buf, format="JPEG", quality=self.quality)
        buf.seek(0)
        return from_uint8(np.asarray(Image.open(buf).convert("RGB")))


@register_attack
class Resize(Attack):
    """Scale by ``scale`` (bicubic, antialiased); with ``back=True`` resize to the original size."""

    name = "resize"

    def __init__(self, scale: float = 0.5, back: bool = False) -> None:
        if not 0 < scale <= 4:
            raise ConfigError(f"resize scale must be in (0, 4], got {scale!r}")
        self.scale, self.back = scale, back

    def params(self):
        return {"scale": self.scale, "back": self.back}

    @property
    def label(self) -> str:
        return f"resize{self.scale:g}" + ("-back" if self.back else "")

    def apply(self, image, generator):
        h, w = image.shape[-2:]
        size = (max(1, round(h * self.scale)), max(1, round(w * self.scale)))
        out = F.interpolate(image[None], size=size, mode="bicubic", antialias=True)
        if self.back:
            out = F.interpolate(out, size=(h, w), mode="bicubic", antialias=True)
        return out[0].clamp(0, 1)


@register_attack
class CenterCrop(Attack):
    """Keep the central ``area`` fraction of the image; ``resize_back`` restores the size."""

    name = "crop"

    def __init__(self, area: float = 0.5, resize_back: bool = False) -> None:
        if not 0 < area <= 1:
            raise ConfigError(f"crop area must be in (0, 1], got {area!r}")
        self.area, self.resize_back = area, resize_back

    def params(self):
        return {"area": self.area, "resize_back": self.resize_back}

    @property
    def label(self) -> str:
        return f"crop{round(self.area * 100)}" + ("-resized" if self.resize_back else "")

    def apply(self, image, generator):
        h, w = image.shape[-2:]
        side = math.sqrt(self.area)
        ch, cw = max(1, round(h * side)), max(1, round(w * side))
        top, left = (h - ch) // 2, (w - cw) // 2
        out = image[:, top : top + ch, left : left + cw]
        if self.resize_back:
            out = F.interpolate(out[None], size=(h, w), mode="bicubic", antialias=True)[0]
        return out.clamp(0, 1)


class Compose(Attack):
    """Apply attacks in order."""

    name = "compose"

    def __init__(self, *attacks: Attack) -> None:
        self.attacks = attacks

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.attacks))})"

    @property
    def label(self) -> str:
        return "+".join(a.label for a in self.attacks)

    def apply(self, image, generator):
        for attack in self.attacks:
            image = attack.apply(image, generator)
        return image
