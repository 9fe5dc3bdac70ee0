"""advsig: adversarial signatures that make a generator's images detectable and attributable.

Example:
    >>> from advsig import Kit
    >>> kit = Kit.from_pretrained("base")
    >>> signed = kit.sign(images, code="deadbeef")   # (B, 3, H, W) in [0, 1]
    >>> [r.is_signed for r in kit.detect(signed, fpr=1e-3)]
"""

from advsig.errors import AdvsigError
from advsig.kit import Kit  # noqa: E402
from advsig.types import DetectionResult

__all__ = ["AdvsigError", "DetectionResult", "Kit"]
__version__ = "0.1.0"
