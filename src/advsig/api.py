"""The one-liner API: ``advsig.sign(image, code=...)``, ``advsig.detect(image)``.

Both take images as people hold them (see :mod:`advsig.data.convert`) and a kit by name, path,
Hub id or as a loaded :class:`~advsig.kit.Kit`. A kit named by string is loaded once per
process and reused, so calling ``advsig.detect`` in a loop does not reload weights; call
:func:`load_kit` for a fresh copy (e.g. after retraining a kit in place).

Example:
    >>> import advsig
    >>> from PIL import Image
    >>> signed = advsig.sign(Image.open("photo.png"), code="deadbeef")  # PIL in, PIL out
    >>> advsig.detect(signed)[0].is_signed
    True
"""

from __future__ import annotations

import functools
from typing import Any

from advsig.data.convert import ImageInput
from advsig.kit import Kit
from advsig.kits import DEFAULT_KIT
from advsig.types import DetectionResult


def load_kit(
    kit: str = DEFAULT_KIT,
    *,
    device: str | None = None,
    revision: str | None = None,
    sign_precision: str = "auto",
    detect_precision: str = "fp32",
) -> Kit:
    """A kit by shipped name (``base``, ``small``, ``robust``...), folder or Hub id.

    Precisions: see :mod:`advsig.precision` (signing in bfloat16 where native, detection in
    float32, the precision thresholds were fitted in)."""
    return Kit.from_pretrained(
        kit,
        device=device or "cpu",
        revision=revision,
        sign_precision=sign_precision,
        detect_precision=detect_precision,
    )


@functools.lru_cache(maxsize=4)
def _cached(kit: str, device: str | None) -> Kit:
    return load_kit(kit, device=device)


def _resolve(kit: Kit | str, device: str | None) -> Kit:
    return kit if isinstance(kit, Kit) else _cached(str(kit), device)


def sign(
    images: ImageInput,
    *,
    code: str | int | None = None,
    kit: Kit | str = DEFAULT_KIT,
    device: str | None = None,
) -> Any:
    """Signed copies of ``images`` carrying ``code``, of the kind given (see ``Kit.sign``)."""
    return _resolve(kit, device).sign(images, code=code)


def detect(
    images: ImageInput,
    *,
    kit: Kit | str = DEFAULT_KIT,
    fpr: float = 1e-3,
    device: str | None = None,
) -> list[DetectionResult]:
    """One :class:`~advsig.types.DetectionResult` per image, at false-positive rate ``fpr``."""
    return _resolve(kit, device).detect(images, fpr=fpr)
