"""Image sources for training and calibration: the embedded photos, or a user's folder.

The embedded photos ship inside the scikit-image and scikit-learn wheels, so tests and the
demo need no download. They are split once, by name, so that the shipped kits never train on
the photos the demo and the benchmarks evaluate on.
"""

from __future__ import annotations

import logging
import math
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from advsig.data.io import from_uint8, list_images, load_image
from advsig.errors import ConfigError, ImageError

logger = logging.getLogger(__name__)

EMBEDDED_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "hubble_deep_field", "immunohistochemistry", "retina", "china", "brick", "grass",
        "gravel", "coins", "page", "text", "logo",
    ),
    "val": ("chelsea", "clock", "moon", "colorwheel"),
    "test": ("astronaut", "coffee", "rocket", "flower", "camera"),
}  # fmt: skip


def embedded_image(name: str) -> torch.Tensor:
    """One embedded photo as float32 (3, H, W) in [0, 1]."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        for filename, array in zip(bunch.filenames, bunch.images):
            if Path(filename).stem == name:
                return from_uint8(array)
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ConfigError(f"unknown embedded image {name!r}")
    return from_uint8(loader())


def embedded_images(split: str) -> list[tuple[str, torch.Tensor]]:
    """(name, image) pairs of an embedded split: ``train``, ``val`` or ``test``."""
    if split not in EMBEDDED_SPLITS:
        raise ConfigError(f"split must be one of {sorted(EMBEDDED_SPLITS)}, got {split!r}")
    return [(n, embedded_image(n)) for n in EMBEDDED_SPLITS[split]]


def fitted_size(h: int, w: int, size: int, *, multiple: int = 1) -> tuple[int, int]:
    """The (height, width) ``fit_within`` gives an h x w image, without touching pixels."""
    if max(h, w) <= size:
        return h, w
    scale = size / max(h, w)
    nh = max(multiple, round(h * scale / multiple) * multiple)
    nw = max(multiple, round(w * scale / multiple) * multiple)
    return nh, nw


def fit_within(image: torch.Tensor, size: int, *, multiple: int = 1) -> torch.Tensor:
    """Downscale (3, H, W) or (B, 3, H, W) so both sides are <= ``size`` (antialiased).

    Smaller images are returned unchanged. Sides are rounded to ``multiple`` when downscaling.
    """
    h, w = image.shape[-2:]
    nh, nw = fitted_size(h, w, size, multiple=multiple)
    if (nh, nw) == (h, w):
        return image
    batched = image if image.dim() == 4 else image[None]
    out = F.interpolate(
        batched, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
    )
    return out.clamp(0, 1) if image.dim() == 4 else out[0].clamp(0, 1)


def split_folder(
    folder: str | Path, *, val_fraction: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """Deterministic (train, val) split of a folder's images."""
    files = list_images(folder)
    if len(files) < 2:
        raise ConfigError(
            f"{folder}: need at least 2 images (training + validation), found {len(files)}"
        )
    order = files[:]
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(files) * val_fraction))
    return sorted(order[n_val:]), sorted(order[:n_val])


class ImagePool:
    """A set of images kept at most ``max_side`` pixels on a side, loaded lazily with a cache.

    Sources are file paths or in-memory tensors. Unreadable files are logged and dropped.
    """

    def __init__(self, sources: list, *, max_side: int, cache_size: int = 2048) -> None:
        if not sources:
            raise ConfigError("no training images")
        self.sources = list(sources)
        self.max_side = max_side
        self.cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.cache_size = cache_size

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, index: int) -> torch.Tensor | None:
        if index in self.cache:
            self.cache.move_to_end(index)
            return self.cache[index]
        src = self.sources[index]
        try:
            img = src if isinstance(src, torch.Tensor) else load_image(src).image
        except ImageError as exc:
            logger.warning("skipping training image: %s", exc)
            return None
        img = fit_within(img, self.max_side)
        self.cache[index] = img
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return img


class RandomCrops:
    """Random square crops at random scales from an :class:`ImagePool`.

    Each crop: pick an image (uniformly, or by ``weights``), rescale it so its longer side lies between ``crop_size`` and the
    pool's ``max_side``, and cut a ``crop_size`` square. Deterministic given ``generator``.
    """

    def __init__(
        self, pool: ImagePool, crop_size: int, *, weights: list[float] | None = None
    ) -> None:
        if weights is not None and (len(weights) != len(pool) or min(weights) < 0):
            raise ConfigError(f"weights: need {len(pool)} non-negative numbers, one per image")
        self.pool = pool
        self.crop_size = crop_size
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)

    def _one(self, generator: torch.Generator) -> torch.Tensor:
        c = self.crop_size
        for _ in range(100):
            if self.weights is None:  # uniform over images
                idx = int(torch.randint(len(self.pool), (1,), generator=generator))
            else:
                idx = int(torch.multinomial(self.weights, 1, generator=generator))
            img = self.pool.get(idx)
            if img is not None:
                break
        else:
            raise ConfigError("no readable training images")
        h, w = img.shape[-2:]
        lo = c / min(h, w)  # the smallest scale that still fits a crop
        hi = max(lo, 1.0)
        u = float(torch.rand((), generator=generator))
        scale = lo * (hi / lo) ** u  # log-uniform between lo and hi
        nh, nw = max(c, round(h * scale)), max(c, round(w * scale))
        top = int(torch.randint(nh - c + 1, (1,), generator=generator))
        left = int(torch.randint(nw - c + 1, (1,), generator=generator))
        if (nh, nw) == (h, w):
            return img[:, top : top + c, left : left + c].clamp(0, 1)
        # Resize only the source region under the crop, not the whole image (30x faster for
        # small crops); it differs from resizing everything by less than a pixel at the borders.
        y0, y1 = math.floor(top * h / nh), min(h, math.ceil((top + c) * h / nh))
        x0, x1 = math.floor(left * w / nw), min(w, math.ceil((left + c) * w / nw))
        region = img[None, :, y0:y1, x0:x1]  # (1, 3, ~c/scale, ~c/scale)
        return F.interpolate(region, size=(c, c), mode="bilinear", antialias=True)[0].clamp(0, 1)

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, crop, crop) float32 in [0, 1]."""
        return torch.stack([self._one(generator) for _ in range(batch_size)])


def resolve_training_data(data: str, *, val_fraction: float, seed: int) -> tuple[list, list]:
    """(train_sources, val_sources) for ``data`` = a folder or ``"embedded"``."""
    if data == "embedded":
        return (
            [img for _, img in embedded_images("train")],
            [img for _, img in embedded_images("val")],
        )
    path = Path(data)
    if not path.is_dir():
        raise ConfigError(f"--data {data!r} is neither a folder nor 'embedded'")
    return split_folder(path, val_fraction=val_fraction, seed=seed)


def as_numpy_rgb(image: torch.Tensor) -> np.ndarray:
    """float (3, H, W) -> float (H, W, 3) numpy, for metrics libraries."""
    return image.permute(1, 2, 0).cpu().numpy()
