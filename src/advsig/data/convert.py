"""Images as people hold them (PIL, NumPy, paths, tensors) in and out of the library's convention.

``Kit.sign`` and ``Kit.detect`` take any of these, or a list of them, and ``Kit.sign`` gives
back the same kind it was given: PIL in, PIL out (alpha kept); uint8 (H, W, 3) in, uint8 out.
Inside, every image is float32 (3, H, W) in [0, 1]; this module is the only edge between the two.
A path is decoded by :func:`~advsig.data.io.load_image`, so the API refuses the same files, with
the same named errors, as the CLI; a signed path comes back as a PIL image (nothing is written).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from advsig.data.io import MIN_SIDE, _to_float_rgb, load_image, to_uint8
from advsig.errors import ImageTooSmallError, UnsupportedImageError

# What Kit.sign / Kit.detect accept: one image or a collection (see the module docstring).
ImageInput = Any


@dataclass
class Converted:
    """Images in the library's convention, and how to give results back in the caller's.

    Attributes:
        images: float32 (3, H, W) in [0, 1], one per input image.
        paths: the file each image came from (None for in-memory images).
        restore: maps signed float images (same order) back to the caller's kind and structure.
    """

    images: list[torch.Tensor]
    paths: list[str | None]
    restore: Callable[[list[torch.Tensor]], Any]


def _check_side(image: torch.Tensor, name: str, min_side: int) -> None:
    h, w = image.shape[-2:]
    if min(h, w) < min_side:
        raise ImageTooSmallError(f"{name}: {w}x{h} is smaller than the minimum side {min_side}")


def _from_pil(im: Image.Image, name: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """PIL image -> float (3, H, W) and a function returning a PIL image of the same alpha."""
    if getattr(im, "is_animated", False) and getattr(im, "n_frames", 1) > 1:
        raise UnsupportedImageError(f"{name}: animated image with {im.n_frames} frames")
    rgb, alpha = _to_float_rgb(im, Path(name))  # (H, W, 3), uint8 (H, W) or None
    tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))  # (3, H, W)
    return tensor, _to_pil(alpha)


def _to_pil(alpha: np.ndarray | None) -> Callable[[torch.Tensor], Image.Image]:
    """float (3, H, W) -> an RGB PIL image, or RGBA with ``alpha`` (uint8 (H, W)) put back."""

    def back(signed: torch.Tensor) -> Image.Image:
        arr = to_uint8(signed)  # (H, W, 3)
        if alpha is not None:
            return Image.fromarray(np.dstack([arr, alpha]), mode="RGBA")
        return Image.fromarray(arr, mode="RGB")

    return back


def _from_numpy(arr: np.ndarray, name: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """(H, W, 3|4) or (H, W) uint8, or float in [0, 1] -> float (3, H, W) and its inverse."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UnsupportedImageError(
            f"{name}: an array must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}"
        )
    dtype = arr.dtype
    if dtype == np.uint8:
        data = arr.astype(np.float32) / 255.0
    elif np.issubdtype(dtype, np.floating):
        data = arr.astype(np.float32)
        if not np.isfinite(data).all() or data.min() < 0 or data.max() > 1:
            raise UnsupportedImageError(f"{name}: a float array must hold values in [0, 1]")
    else:
        raise UnsupportedImageError(
            f"{name}: array dtype {dtype} is not supported (uint8 or float)"
        )
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    alpha = data[:, :, 3:] if data.shape[2] == 4 else None  # (H, W, 1) or None
    tensor = torch.from_numpy(np.ascontiguousarray(data[:, :, :3].transpose(2, 0, 1)))

    def back(signed: torch.Tensor) -> np.ndarray:
        # A grayscale array comes back as RGB: the signature lives in all three channels.
        if dtype == np.uint8:
            rgb = to_uint8(signed)  # (H, W, 3)
            return rgb if alpha is None else np.dstack([rgb, arr[..., 3]])
        rgb = signed.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
        out = rgb if alpha is None else np.concatenate([rgb, alpha], axis=2)
        return out.astype(dtype)

    return tensor, back


def _one(
    item: Any, name: str, *, min_side: int
) -> tuple[torch.Tensor, str | None, Callable[[torch.Tensor], Any]]:
    """One image of any supported kind -> (float (3, H, W), its path or None, inverse)."""
    if isinstance(item, torch.Tensor):
        if item.dim() != 3 or item.shape[0] != 3:
            raise UnsupportedImageError(
                f"{name}: a tensor must be (3, H, W), got {tuple(item.shape)}"
            )
        return item, None, lambda signed: signed
    if isinstance(item, (str, Path)):
        loaded = load_image(item, min_side=min_side)
        return loaded.image, str(item), _to_pil(loaded.alpha)
    if isinstance(item, Image.Image):
        tensor, back = _from_pil(item, name)
    elif isinstance(item, np.ndarray):
        tensor, back = _from_numpy(item, name)
    else:
        raise UnsupportedImageError(
            f"{name}: {type(item).__name__} is not an image (give a PIL image, a NumPy array, "
            "a path or a float tensor)"
        )
    _check_side(tensor, name, min_side)
    return tensor, None, back


def to_library(images: Any, *, min_side: int = MIN_SIDE) -> Converted:
    """Any supported image or collection of images -> :class:`Converted`.

    Float tensors ((B, 3, H, W), (3, H, W) or a list) pass through unchanged, their sizes left
    to the caller (a detector states its own minimum); a NumPy (B, H, W, 3) array is a batch.
    """
    if isinstance(images, torch.Tensor):
        if images.dim() == 3:
            return Converted([images], [None], lambda out: out[0])
        if images.dim() == 4:
            return Converted(list(images), [None] * len(images), torch.stack)
        raise UnsupportedImageError(
            f"images must be (3, H, W) or (B, 3, H, W), got {tuple(images.shape)}"
        )
    if isinstance(images, np.ndarray) and images.ndim == 4:
        batch = [_one(a, f"array[{i}]", min_side=min_side) for i, a in enumerate(images)]
        return Converted(
            [b[0] for b in batch],
            [None] * len(batch),
            lambda out: np.stack([b[2](o) for b, o in zip(batch, out)]),
        )
    single = isinstance(images, (str, Path, Image.Image, np.ndarray))
    items: Sequence[Any] = [images] if single else list(images)
    converted = [
        _one(item, _name(item, i, single), min_side=min_side) for i, item in enumerate(items)
    ]
    inverses = [c[2] for c in converted]

    def restore(out: list[torch.Tensor]) -> Any:
        back = [inv(o) for inv, o in zip(inverses, out)]
        return back[0] if single else back

    return Converted([c[0] for c in converted], [c[1] for c in converted], restore)


def _name(item: Any, index: int, single: bool) -> str:
    if isinstance(item, (str, Path)):
        return str(item)
    return "image" if single else f"image {index}"
