"""Image transformations an attacker (or ordinary life) applies: one class each, by name.

The same classes serve the demo, benchmarks and (through their differentiable cousins in
``advsig.training.augment``) training. Every attack maps float (3, H, W) or (B, 3, H, W) in [0, 1]
to the same layout; randomness only through the ``generator`` argument.
"""

from advsig.attacks.base import (
    ATTACKS,
    JPEG,
    Attack,
    CenterCrop,
    Compose,
    Identity,
    Resize,
    create_attack,
)
from advsig.attacks.capture import (
    AVIF,
    Recompress,
    Screenshot,
    SocialMedia,
    WebP,
    capture_grid,
)
from advsig.attacks.regeneration import (
    AutoencoderReencode,
    DiffusionPurification,
    regeneration_grid,
)
from advsig.attacks.restoration import RestorationAttack, Restorer, train_restorer
from advsig.attacks.standard import (
    Brightness,
    Contrast,
    GaussianBlur,
    GaussianNoise,
    HorizontalFlip,
    Rotate,
    standard_grid,
)

__all__ = [
    "ATTACKS",
    "AVIF",
    "JPEG",
    "Attack",
    "AutoencoderReencode",
    "Brightness",
    "CenterCrop",
    "Compose",
    "Contrast",
    "DiffusionPurification",
    "GaussianBlur",
    "GaussianNoise",
    "HorizontalFlip",
    "Identity",
    "Recompress",
    "Resize",
    "RestorationAttack",
    "Restorer",
    "Rotate",
    "Screenshot",
    "SocialMedia",
    "WebP",
    "capture_grid",
    "create_attack",
    "regeneration_grid",
    "standard_grid",
    "train_restorer",
]
