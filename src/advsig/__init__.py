"""advsig: adversarial signatures that make a generator's images detectable and attributable.

Example:
    >>> import advsig
    >>> signed = advsig.sign(Image.open("photo.png"), code="deadbeef")  # PIL in, PIL out
    >>> advsig.detect(signed)[0].is_signed
    >>> kit = advsig.load_kit("base")   # or Kit.from_pretrained; float (B, 3, H, W) works too
    >>> [r.is_signed for r in kit.detect(kit.sign(images, code="deadbeef"), fpr=1e-3)]
"""

from advsig.api import detect, load_kit, sign
from advsig.errors import AdvsigError
from advsig.kit import Kit  # noqa: E402
from advsig.types import DetectionResult

__all__ = ["AdvsigError", "DetectionResult", "Kit", "detect", "load_kit", "sign"]
__version__ = "0.1.0"
