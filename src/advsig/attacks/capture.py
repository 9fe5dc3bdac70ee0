"""What a photo meets on its way to a detector in practice (issue 13, "beyond the grid").

The standard grid tests one transformation at a time with JPEG as the only codec. Published
images pass through other codecs (WebP, AVIF), get re-saved by every tool they touch, are
shrunk and recompressed by the platform they are posted to, and are re-captured as screenshots
at a display's scale. Each of those is one class here, parametrised the way a platform is, and
:func:`capture_grid` is the set BENCHMARKS.md reports. The platform settings are typical
published ones (long side and JPEG quality), not any platform's exact pipeline.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from advsig.attacks.base import JPEG, Attack, Identity, register_attack
from advsig.data.io import from_uint8, to_uint8
from advsig.errors import ConfigError


def _round_trip(image: torch.Tensor, fmt: str, **options) -> torch.Tensor:
    """Encode (3, H, W) with PIL in ``fmt`` and decode it back."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format=fmt, **options)
    buf.seek(0)
    return from_uint8(np.asarray(Image.open(buf).convert("RGB")))


def _quality(codec: str, quality: int) -> int:
    if not 1 <= quality <= 100:
        raise ConfigError(f"{codec} quality must be in [1, 100], got {quality!r}")
    return int(quality)


@register_attack
class WebP(Attack):
    """Lossy WebP round trip at ``quality`` (libwebp through PIL, default method 4)."""

    name = "webp"

    def __init__(self, quality: int = 80) -> None:
        self.quality = _quality("WebP", quality)

    def params(self):
        return {"quality": self.quality}

    def apply(self, image, generator):
        return _round_trip(image, "WEBP", quality=self.quality)


@register_attack
class AVIF(Attack):
    """AVIF round trip at ``quality`` (libavif through PIL; 4:2:0 like most encoders' default)."""

    name = "avif"

    def __init__(self, quality: int = 60) -> None:
        self.quality = _quality("AVIF", quality)

    def params(self):
        return {"quality": self.quality}

    def apply(self, image, generator):
        try:
            return _round_trip(image, "AVIF", quality=self.quality, subsampling="4:2:0")
        except KeyError as err:  # PIL without its AVIF plugin
            raise ConfigError(
                "this Pillow has no AVIF support (Pillow >= 11.2 wheels include it)"
            ) from err


@register_attack
class Recompress(Attack):
    """The same image saved as JPEG ``times`` times at ``quality`` (every tool that re-saves it)."""

    name = "recompress"

    def __init__(self, quality: int = 85, times: int = 3) -> None:
        self.quality = _quality("JPEG", quality)
        if not 1 <= times <= 50:
            raise ConfigError(f"recompression times must be in [1, 50], got {times!r}")
        self.times = int(times)

    def params(self):
        return {"quality": self.quality, "times": self.times}

    @property
    def label(self) -> str:
        return f"jpeg{self.quality}x{self.times}"

    def apply(self, image, generator):
        jpeg = JPEG(self.quality)
        for _ in range(self.times):
            image = jpeg.apply(image, generator)
        return image


@register_attack
class SocialMedia(Attack):
    """A platform's upload: shrink by ``scale`` (antialiased bicubic, never enlarge), then JPEG.

    Platforms cap the long side (1080 to 2048 px) and re-encode at quality 70-85 with 4:2:0
    chroma. Here the cap is a scale, so one setting means the same thing on crops of any size:
    ``scale=0.5`` is a 2160 px photo posted where the long side is capped at 1080.
    """

    name = "social"

    def __init__(self, scale: float = 0.5, quality: int = 80) -> None:
        if not 0 < scale <= 1:
            raise ConfigError(f"social-media scale must be in (0, 1], got {scale!r}")
        self.scale, self.quality = float(scale), _quality("JPEG", quality)

    def params(self):
        return {"scale": self.scale, "quality": self.quality}

    @property
    def label(self) -> str:
        return f"social{self.scale:g}-q{self.quality}"

    def apply(self, image, generator):
        h, w = image.shape[-2:]
        size = (max(1, round(h * self.scale)), max(1, round(w * self.scale)))
        if size != (h, w):
            image = F.interpolate(image[None], size=size, mode="bicubic", antialias=True)[0]
        return JPEG(self.quality).apply(image.clamp(0, 1), generator)


@register_attack
class Screenshot(Attack):
    """A screen capture of the image shown at ``scale`` (a 125% display is 1.25).

    Browsers and compositors resample with plain bilinear filtering (no antialiasing), and the
    capture is a lossless PNG of what was on screen, so the image changes size and nothing else.
    """

    name = "screenshot"

    def __init__(self, scale: float = 1.25) -> None:
        if not 0.25 <= scale <= 4:
            raise ConfigError(f"screenshot scale must be in [0.25, 4], got {scale!r}")
        self.scale = float(scale)

    def params(self):
        return {"scale": self.scale}

    @property
    def label(self) -> str:
        return f"screenshot{self.scale:g}"

    def apply(self, image, generator):
        h, w = image.shape[-2:]
        size = (max(1, round(h * self.scale)), max(1, round(w * self.scale)))
        out = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        return from_uint8(to_uint8(out.clamp(0, 1)))  # the capture is 8-bit


def capture_grid() -> list[Attack]:
    """The formats and capture chains BENCHMARKS.md reports beside the standard grid, clean first."""
    return [
        Identity(),
        WebP(90), WebP(75), WebP(50),
        AVIF(80), AVIF(60),
        Recompress(90, 3), Recompress(75, 5),
        SocialMedia(1.0, 85), SocialMedia(0.75, 80), SocialMedia(0.5, 70),
        Screenshot(1.25), Screenshot(1.5), Screenshot(0.8),
    ]  # fmt: skip
