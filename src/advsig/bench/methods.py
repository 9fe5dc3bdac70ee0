"""Every watermark behind one protocol, so the benchmark treats advsig and its baselines alike.

A :class:`WatermarkMethod` embeds a message into images and scores images for its presence:

- ``advsig`` (``AdvsigMethod``): the kit's W signs, F's signature logit is the score and its
  bit logits decode the code;
- ``dwtDct``, ``dwtDctSvd``, ``rivaGan`` (``InvisibleWatermarkMethod``): the `invisible-watermark`
  package, 32-bit messages. These methods have no detector of their own; the standard protocol
  (known-message detection) scores an image by how many decoded bits match the message the
  owner embedded, and flags it when that many matches would be unlikely by chance.

Images are float32 (3, H, W) in [0, 1] in and out; embedded images are rounded to 8 bits, as
they would be when saved.

Example:
    >>> method = create_method("dwtDct")
    >>> marked = method.embed([photo], messages=[message])  # message: (32,) 0/1 tensor
    >>> method.detect(marked, messages=[message]).scores  # matching bits, e.g. [32.0]
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from advsig.errors import ConfigError
from advsig.kits import DEFAULT_KIT

logger = logging.getLogger(__name__)

IMWATERMARK_METHODS = ("dwtDct", "dwtDctSvd", "rivaGan")
IMWATERMARK_BITS = 32


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] images to the 256 levels a saved 8-bit file keeps."""
    return (image.clamp(0, 1) * 255).round() / 255


@dataclass(frozen=True)
class DetectionScores:
    """What a method reads from a batch of images.

    Attributes:
        scores: (N,) float, higher = more likely watermarked.
        bits: (N, num_bits) 0/1 float decoded message, or None when the method carries no bits.
    """

    scores: np.ndarray
    bits: torch.Tensor | None


class WatermarkMethod:
    """The protocol: ``embed`` a per-image message, ``detect`` scores (and decoded bits)."""

    name: str = "method"
    num_bits: int = 0

    def embed(
        self, images: Sequence[torch.Tensor], *, messages: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Watermarked copies of (3, H, W) images, same sizes, rounded to 8 bits."""
        raise NotImplementedError

    def detect(
        self, images: Sequence[torch.Tensor], *, messages: Sequence[torch.Tensor] | None = None
    ) -> DetectionScores:
        """Scores for (3, H, W) images. ``messages``: what the owner embedded (known-message
        methods need it to score; methods with a detector ignore it)."""
        raise NotImplementedError

    def threshold(self, fpr: float, *, size: tuple[int, int] | None = None) -> float | None:
        """The method's own score threshold for ``fpr`` on unwatermarked images of ``size``
        (height, width; None = any size), if it has one."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class AdvsigMethod(WatermarkMethod):
    """An advsig kit: the signature logit is the score, the bit logits the decoded code."""

    def __init__(self, kit: str = DEFAULT_KIT, *, batch_size: int = 16) -> None:
        from advsig.kit import Kit

        self.kit_name = str(kit)
        self.kit = Kit.from_pretrained(kit)
        self.kit._require_calibration()  # fail now, not after embedding every image
        self.num_bits = self.kit.num_bits
        self.batch_size = batch_size
        self.name = "advsig"

    def embed(self, images, *, messages):
        from advsig.codes.bits import bits_to_hex

        out = []
        for image, message in zip(images, messages, strict=True):
            code = bits_to_hex(message) if self.num_bits else None
            out.append(quantize(self.kit.sign(image, code=code)))
        return out

    def detect(self, images, *, messages=None):
        logits = self.kit.logits(list(images), batch_size=self.batch_size)  # (N, 1 + num_bits)
        bits = (logits[:, 1:] > 0).float() if self.num_bits else None
        return DetectionScores(scores=logits[:, 0].numpy().astype(float), bits=bits)

    def threshold(self, fpr, *, size=None):
        return self.kit.threshold(fpr, size=size)


def _embedder(method: str) -> Callable:
    """The class ``imwatermark``'s WatermarkEncoder / WatermarkDecoder dispatch ``method`` to.

    Why not the wrappers themselves: they refuse images under 256x256 pixels, and the crop
    attacks (and small test images) produce such images. The size guard is all they add.
    """
    from imwatermark.dwtDctSvd import EmbedDwtDctSvd
    from imwatermark.maxDct import EmbedMaxDct
    from imwatermark.rivaGan import RivaWatermark

    return {"dwtDct": EmbedMaxDct, "dwtDctSvd": EmbedDwtDctSvd, "rivaGan": RivaWatermark}[method]


def load_rivagan(num_threads: int | None = None) -> None:
    """Load rivaGan's ONNX encoder and decoder once, with at most ``num_threads`` threads.

    Why not ``WatermarkEncoder.loadModel()`` as is: onnxruntime then takes every core, ignoring
    torch's (and OMP_NUM_THREADS') thread budget. Same files, same graph, bounded threads.
    """
    import os

    import imwatermark.rivaGan
    import onnxruntime
    from imwatermark.rivaGan import RivaWatermark

    if RivaWatermark.encoder is not None and RivaWatermark.decoder is not None:
        return
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    folder = os.path.dirname(os.path.abspath(imwatermark.rivaGan.__file__))
    RivaWatermark.encoder = onnxruntime.InferenceSession(
        os.path.join(folder, "rivagan_encoder.onnx"), options, providers=["CPUExecutionProvider"]
    )
    RivaWatermark.decoder = onnxruntime.InferenceSession(
        os.path.join(folder, "rivagan_decoder.onnx"), options, providers=["CPUExecutionProvider"]
    )


def _to_bgr(image: torch.Tensor) -> np.ndarray:
    from advsig.data.io import to_uint8

    return np.ascontiguousarray(to_uint8(image)[:, :, ::-1])  # (H, W, 3) BGR uint8, as cv2


def _from_bgr(array: np.ndarray) -> torch.Tensor:
    from advsig.data.io import from_uint8

    return from_uint8(np.ascontiguousarray(array[:, :, ::-1]))  # (3, H, W)


class InvisibleWatermarkMethod(WatermarkMethod):
    """One of invisible-watermark's methods with 32-bit messages, scored by matching bits.

    The threshold for a false-positive rate comes from the exact binomial tail: on an image
    without this message, each decoded bit matches with probability 1/2.
    """

    def __init__(self, method: str = "dwtDct") -> None:
        if method not in IMWATERMARK_METHODS:
            raise ConfigError(f"unknown invisible-watermark method {method!r}; known: "
                              f"{', '.join(IMWATERMARK_METHODS)}")  # fmt: skip
        try:
            self._cls = _embedder(method)
        except ImportError as exc:
            raise ConfigError(
                f"method {method!r} needs invisible-watermark: pip install 'advsig[bench]' ({exc})"
            ) from exc
        if method == "rivaGan":
            load_rivagan()
        self.name = method
        self.num_bits = IMWATERMARK_BITS

    def _check(self, message: torch.Tensor) -> list[int]:
        if message.numel() != self.num_bits:
            raise ConfigError(f"{self.name} embeds {self.num_bits} bits, got {message.numel()}")
        return [int(b) for b in message.flatten().tolist()]

    def embed(self, images, *, messages):
        out = []
        for image, message in zip(images, messages, strict=True):
            bgr = self._cls(self._check(message), wmLen=self.num_bits).encode(_to_bgr(image))
            out.append(_from_bgr(bgr))
        return out

    def decode(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, 32) 0/1 float decoded bits."""
        rows = []
        for img in images:
            # Images too small to hold every bit once leave some bits without votes (a mean of
            # nothing, warned about by numpy): the package then reads them as 0.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                bits = self._cls([], wmLen=self.num_bits).decode(_to_bgr(img))
            rows.append(np.asarray(bits, dtype=np.float32))
        return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, self.num_bits)

    def detect(self, images, *, messages=None):
        if messages is None:
            raise ConfigError(f"{self.name} detects a known message: pass messages=")
        bits = self.decode(images)
        truth = torch.stack([m.flatten().float() for m in messages])  # (N, 32)
        if truth.shape != bits.shape:
            raise ConfigError(f"{len(messages)} messages for {len(bits)} images")
        scores = (bits == truth).sum(dim=1).numpy().astype(float)
        return DetectionScores(scores=scores, bits=bits)

    def threshold(self, fpr, *, size=None):
        # Flag when matches > t: the smallest t with P(Binomial(n, 1/2) > t) <= fpr.
        n = self.num_bits
        for t in range(n + 1):
            if stats.binom.sf(t, n, 0.5) <= fpr:
                return float(t)
        return math.inf


METHODS: dict[str, Callable[..., WatermarkMethod]] = {
    "advsig": AdvsigMethod,
    **{m: (lambda m=m, **kw: InvisibleWatermarkMethod(m, **kw)) for m in IMWATERMARK_METHODS},
}


def list_methods() -> list[str]:
    """Method names ``create_method`` accepts (``advsig`` also as ``advsig:KIT``)."""
    return sorted(METHODS)


def create_method(name: str, **kwargs) -> WatermarkMethod:
    """``create_method("rivaGan")``, ``create_method("advsig", kit="base")`` or
    ``create_method("advsig:robust")`` (the kit after the colon)."""
    base, _, arg = name.partition(":")
    if base not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(list_methods())}")
    if arg:
        if base != "advsig":
            raise ConfigError(f"only advsig takes a kit after ':', got {name!r}")
        kwargs["kit"] = arg
    method = METHODS[base](**kwargs)
    if arg:
        method.name = name  # keep the user's spelling as the table label
    return method
