"""Writing images atomically, keeping alpha, never over an input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from advsig.data.io import to_uint8
from advsig.errors import OutputError, UnsupportedImageError
from advsig.utils import atomic_path

FORMATS = {"png": ".png", "jpeg": ".jpg"}


def save_image(
    image: torch.Tensor,
    path: str | Path,
    *,
    alpha: np.ndarray | None = None,
    format: str = "png",
    quality: int = 95,
) -> None:
    """Save float (3, H, W) in [0, 1] as 8-bit PNG or JPEG, atomically.

    ``alpha`` (uint8 (H, W)) is kept in PNG; JPEG cannot hold it, so that combination is refused.
    """
    if format not in FORMATS:
        raise OutputError(f"format must be one of {sorted(FORMATS)}, got {format!r}")
    if not 1 <= quality <= 100:
        raise OutputError(f"JPEG quality must be in [1, 100], got {quality!r}")
    rgb = to_uint8(image)  # (H, W, 3)
    if alpha is not None:
        if format == "jpeg":
            raise UnsupportedImageError(
                f"{path}: the input has an alpha channel, which JPEG cannot keep; use --format png"
            )
        pil = Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    else:
        pil = Image.fromarray(rgb, mode="RGB")
    with atomic_path(path) as tmp:
        if format == "png":
            pil.save(tmp, format="PNG", compress_level=4)
        else:
            pil.save(tmp, format="JPEG", quality=quality)
