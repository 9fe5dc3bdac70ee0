"""Sign the images a diffusers pipeline generates, as it generates them.

Two ways in, chosen by :func:`attach_watermarker`:

* Pipelines with a ``watermark`` hook (``StableDiffusionXLPipeline`` and its img2img, inpaint,
  ControlNet and PAG variants) call ``pipe.watermark.apply_watermark(image)`` on the decoded
  float (B, 3, H, W) batch in [-1, 1], before ``image_processor.postprocess``. An
  :class:`AdvsigWatermarker` speaks that convention, so it is set there: signing happens once,
  before any conversion, and ``output_type`` pil / np / pt all come out signed.
* Every other pipeline is wrapped in a :class:`WatermarkedPipeline`, which signs what ``__call__``
  returns. Why the output and not another seam: ``callback_on_step_end`` sees only latents,
  never decoded images; ``image_processor.postprocess`` and ``vae.decode`` exist only in latent
  pipelines (``DDPMPipeline`` converts by hand and has neither), and a VAE or processor may be
  shared with other pipelines (``from_pipe``). The returned images (a list of PIL images, a NumPy
  (B, H, W, 3) array or a (B, 3, H, W) tensor, in [0, 1]) are what every pipeline has in common,
  and exactly what the user keeps. Python looks ``__call__`` up on the type, so an instance cannot
  be patched; a wrapper is explicit, and :func:`detach_watermarker` undoes it.

Latents (``output_type="latent"``) are never signed, by either path: the image decoded from them
later is the one to sign. Nothing here imports diffusers: pipelines are used through their
``watermark`` attribute, ``__call__`` and output's ``images``.

Example:
    >>> from diffusers import DDPMPipeline
    >>> from advsig.integrations.diffusers import AdvsigWatermarker, attach_watermarker
    >>> pipe = attach_watermarker(DDPMPipeline.from_pretrained("google/ddpm-cat-256"),
    ...                           AdvsigWatermarker("base", code="deadbeef"))
    >>> image = pipe().images[0]  # a signed PIL image
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from advsig.codes.bits import bits_to_hex, hex_to_bits
from advsig.errors import CodeError, ConfigError, UnsupportedImageError
from advsig.kit import Kit

logger = logging.getLogger(__name__)

# Where the hook path remembers what ``pipe.watermark`` held before, for detach_watermarker.
_PREVIOUS = "_advsig_previous_watermark"


class AdvsigWatermarker:
    """Signs decoded images with a kit and one code; a drop-in ``pipe.watermark`` for SDXL.

    Args:
        kit: a loaded :class:`~advsig.kit.Kit`, or a name, folder or Hub id for
            ``Kit.from_pretrained`` (loaded on CPU; pass a Kit to choose its device). An
            injector-only kit (what a model publisher holds) is enough.
        code: hex string or int of at most ``kit.num_bits`` bits; checked here, so a bad code
            fails when the pipeline is set up, not after the first generation.
        batch_size: images per injector forward pass.

    Example:
        >>> wm = AdvsigWatermarker("base", code="deadbeef")
        >>> pipe.watermark = wm  # StableDiffusionXLPipeline; or attach_watermarker(pipe, wm)
    """

    def __init__(self, kit: Kit | str | Path, code: str | int, *, batch_size: int = 16) -> None:
        self.kit = kit if isinstance(kit, Kit) else Kit.from_pretrained(kit)
        if isinstance(code, bool) or not isinstance(code, (str, int)):
            raise CodeError(f"code {code!r} must be a hex string or an int")
        # hex_to_bits raises CodeError quoting the code: not hex, or too long for the kit.
        self.code = bits_to_hex(hex_to_bits(code, self.kit.num_bits))
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, num_bits={self.kit.num_bits}, "
            f"batch_size={self.batch_size})"
        )

    def apply_watermark(self, images: Any) -> Any:
        """Signed copies of decoded images in diffusers' VAE convention (the SDXL hook).

        A float tensor (B, 3, H, W) in [-1, 1] comes back the same shape, dtype and device, in
        [-1, 1]. PIL images and NumPy arrays (which are never in [-1, 1]) are passed to
        :meth:`sign`.
        """
        if not isinstance(images, torch.Tensor):
            return self.sign(images)
        _check_float_batch(images)
        unit = (images.float() / 2 + 0.5).clamp(0, 1)  # (B, 3, H, W) in [0, 1]
        signed = self._sign_tensor(unit)  # (B, 3, H, W) float32 in [0, 1], images.device
        return (signed * 2 - 1).clamp(-1, 1).to(images.dtype)  # (B, 3, H, W) in [-1, 1]

    def sign(self, images: Any) -> Any:
        """Signed copies of images in [0, 1], of the kind given (what pipelines return).

        A float tensor (B, 3, H, W) or (3, H, W) keeps its dtype and device; a list of PIL
        images gives PIL images (mode and size kept); a NumPy (B, H, W, 3) array keeps its
        dtype (float in [0, 1] or uint8). Other kinds are those ``Kit.sign`` takes.
        """
        if isinstance(images, torch.Tensor):
            single = images.dim() == 3
            batch = images[None] if single else images  # (B, 3, H, W)
            _check_float_batch(batch)
            signed = self._sign_tensor(batch.float().clamp(0, 1)).to(images.dtype)
            return signed[0] if single else signed
        return self.kit.sign(images, code=self.code, batch_size=self.batch_size)

    def _sign_tensor(self, unit: torch.Tensor) -> torch.Tensor:
        """Float32 (B, 3, H, W) in [0, 1] -> signed, on the input's device (kit may be elsewhere)."""
        signed = self.kit.sign(
            unit.to(self.kit.device), code=self.code, batch_size=self.batch_size
        )  # (B, 3, H, W) float32 on the kit's device
        signed = signed.to(unit.device)
        # Kit.sign runs in inference mode; a caller may later edit the result in place.
        return signed.clone() if signed.is_inference() else signed


def _check_float_batch(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise UnsupportedImageError(
            f"images must be (B, 3, H, W), got {tuple(images.shape)} (latents cannot be signed; "
            "decode them first)"
        )
    if not images.is_floating_point():
        raise UnsupportedImageError(f"images must be a float tensor, got {images.dtype}")


class WatermarkedPipeline:
    """A diffusers pipeline whose returned images are signed; everything else is the pipeline's.

    Attributes and methods are the wrapped pipeline's (``wrapped.unet``, ``wrapped.scheduler =
    ...``); a method that returns the pipeline itself (``.to("cuda")``) returns the wrapper, so
    ``pipe = attach_watermarker(pipe, wm).to("cuda")`` stays signed. ``isinstance`` checks
    against pipeline classes see the wrapper: use ``wrapped.pipeline`` for those.
    """

    __slots__ = ("pipeline", "watermarker")

    def __init__(self, pipeline: Any, watermarker: AdvsigWatermarker) -> None:
        object.__setattr__(self, "pipeline", pipeline)
        object.__setattr__(self, "watermarker", watermarker)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        output = self.pipeline(*args, **kwargs)
        if kwargs.get("output_type") == "latent":
            logger.warning("output_type='latent': latents are returned unsigned; sign the images")
            return output
        if isinstance(output, tuple):  # return_dict=False: (images, *extras)
            return (self.watermarker.sign(output[0]), *output[1:])
        images = getattr(output, "images", None)
        if images is None:
            raise ConfigError(
                f"{type(self.pipeline).__name__} returned {type(output).__name__} with no "
                "`images` to sign"
            )
        output.images = self.watermarker.sign(images)  # BaseOutput keeps its dict view in step
        return output

    def __getattr__(self, name: str) -> Any:
        if name in WatermarkedPipeline.__slots__:  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        value = getattr(self.pipeline, name)
        if not inspect.ismethod(value):
            return value

        @functools.wraps(value)
        def method(*args: Any, **kwargs: Any) -> Any:
            out = value(*args, **kwargs)
            return self if out is self.pipeline else out

        return method

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.pipeline, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.pipeline)) | {"pipeline", "watermarker"})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.pipeline).__name__}, {self.watermarker!r})"


def attach_watermarker(pipe: Any, watermarker: AdvsigWatermarker) -> Any:
    """Make ``pipe`` sign every image it generates; use the returned object from then on.

    With a ``watermark`` hook (SDXL family) the watermarker is set there, replacing the
    pipeline's own (invisible-watermark's DWT-DCT mark, when installed), and ``pipe`` itself is
    returned. Otherwise a :class:`WatermarkedPipeline` is returned. Attaching to a pipeline that
    already has an advsig watermarker replaces it. See the module docstring for why these seams.
    """
    if not isinstance(watermarker, AdvsigWatermarker):
        raise ConfigError(
            f"watermarker must be an AdvsigWatermarker, got {type(watermarker).__name__}"
        )
    if isinstance(pipe, WatermarkedPipeline):
        pipe = pipe.pipeline
    if hasattr(pipe, "watermark"):
        if not isinstance(pipe.watermark, AdvsigWatermarker):
            if pipe.watermark is not None:
                logger.info("replacing %s with advsig", type(pipe.watermark).__name__)
            setattr(pipe, _PREVIOUS, pipe.watermark)
        pipe.watermark = watermarker
        logger.info("%s: signing through pipe.watermark", type(pipe).__name__)
        return pipe
    logger.info("%s: signing the images it returns", type(pipe).__name__)
    return WatermarkedPipeline(pipe, watermarker)


def detach_watermarker(pipe: Any) -> Any:
    """The plain pipeline again: unwraps, or restores the ``watermark`` hook's previous value."""
    if isinstance(pipe, WatermarkedPipeline):
        return pipe.pipeline
    if isinstance(getattr(pipe, "watermark", None), AdvsigWatermarker):
        pipe.watermark = pipe.__dict__.pop(_PREVIOUS, None)
    return pipe


@contextlib.contextmanager
def watermarking(pipe: Any, watermarker: AdvsigWatermarker) -> Iterator[Any]:
    """``with watermarking(pipe, wm) as signed_pipe:`` attach for the block, detach after it."""
    attached = attach_watermarker(pipe, watermarker)
    try:
        yield attached
    finally:
        detach_watermarker(attached)
