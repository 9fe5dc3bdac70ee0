"""Reading any image file into the library's convention, or refusing it by name.

Inside advsig an image is float32 (3, H, W) in [0, 1]. This module is the only place that
deals with PIL modes, bit depths, EXIF orientation, alpha and hostile files.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from advsig.errors import (
    CorruptImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
DEFAULT_MAX_PIXELS = 64_000_000  # a 8000x8000 photo; larger files are refused, not decoded
MIN_SIDE = 32  # the detector pools over at least a few cells of its last stage

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never a grey band
# What PIL's decoders and frame seeking raise on damaged data (found by fuzzing real files).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
)


@dataclass
class LoadedImage:
    """One decoded image.

    Attributes:
        image: float32 (3, H, W) in [0, 1], upright (EXIF orientation applied).
        alpha: uint8 (H, W) alpha channel if the file had one, else None.
        source_mode: the PIL mode of the file ("RGB", "L", "I;16", "CMYK", ...).
    """

    image: torch.Tensor
    alpha: np.ndarray | None
    source_mode: str


def _to_float_rgb(im: Image.Image, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert any supported PIL mode to float32 (H, W, 3) in [0, 1] plus optional alpha."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        if mode == "F":
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise UnsupportedImageError(f"{path}: float image outside [0, 1] is not supported")
            gray = arr
        else:
            # 16-bit data (PIL opens 16-bit PNG as I;16 or I) scaled by its full range.
            if arr.min() < 0 or arr.max() > 65535:
                raise UnsupportedImageError(f"{path}: 32-bit integer image is not supported")
            gray = arr / 65535.0
        return np.repeat(gray[:, :, None], 3, axis=2), None
    alpha = None
    if mode in ("P", "L", "RGB") and "transparency" in im.info:
        im = im.convert("RGBA")  # palette alpha or a PNG tRNS colour key
    elif mode == "P":
        im = im.convert("RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.uint8).copy()
        im = im.convert("RGB")
    elif im.mode in ("1", "L", "CMYK", "YCbCr", "RGBX", "LAB", "HSV"):
        im = im.convert("RGB")
    if im.mode != "RGB":
        raise UnsupportedImageError(f"{path}: mode {im.mode!r} is not supported")
    return np.asarray(im, dtype=np.float32) / 255.0, alpha


def load_image(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE
) -> LoadedImage:
    """Decode ``path`` or raise a named :class:`~advsig.errors.ImageError` that quotes it.

    Handles grayscale, palette, RGBA/LA (alpha returned separately), 16-bit, CMYK, and
    EXIF-rotated files. Refuses empty, truncated and non-image files (CorruptImageError),
    animated images (UnsupportedImageError), more than ``max_pixels`` pixels
    (ImageTooLargeError, checked from the header before decoding) and sides below
    ``min_side`` (ImageTooSmallError).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorruptImageError(f"{path}: cannot read file ({exc.strerror})") from exc
    if size == 0:
        raise CorruptImageError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{path}: too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise CorruptImageError(f"{path}: not an image file") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(f"{path}: unreadable image ({exc})") from exc
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageTooLargeError(
                f"{path}: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,}"
            )
        try:
            # Counting frames seeks through the file, so damaged data can fail here already.
            n_frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", False) else 1
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(f"{path}: corrupt image frames ({exc})") from exc
        if n_frames > 1:
            raise UnsupportedImageError(
                f"{path}: animated image with {n_frames} frames is not supported"
            )
        source_mode = im.mode
        try:
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb, alpha = _to_float_rgb(im, path)
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(f"{path}: truncated or corrupt image data ({exc})") from exc
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        raise ImageTooSmallError(f"{path}: {w}x{h} is smaller than the minimum side {min_side}")
    tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))  # (3, H, W)
    return LoadedImage(image=tensor, alpha=alpha, source_mode=source_mode)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """float (3, H, W) in [0, 1] -> uint8 (H, W, 3), rounded to nearest."""
    arr = (image.detach().clamp(0, 1) * 255.0).round().to(torch.uint8)  # (3, H, W)
    return arr.permute(1, 2, 0).cpu().numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (H, W) -> float32 (3, H, W) in [0, 1]."""
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float() / 255.0


def list_images(root: str | Path) -> list[Path]:
    """Image files under ``root`` (a file or a folder, searched recursively), sorted.

    Hidden files and advsig's own temporary files are skipped.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such file or folder")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
