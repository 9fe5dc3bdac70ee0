"""What every generator family's fine-tune trains on: signed batches and image sources.

Family-neutral: the pixel, latent and GAN recipes all import from here, never from each other.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from advsig.codes.bits import bits_to_hex, hex_to_bits
from advsig.data.datasets import ImagePool, RandomCrops, fit_within, resolve_training_data
from advsig.data.io import list_images, load_image
from advsig.errors import ConfigError, ImageError
from advsig.generators.sampling import generate_to_folder

logger = logging.getLogger(__name__)


def round8(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8-bit levels, as a saved image would be."""
    return (x.clamp(0, 1) * 255).round() / 255


class Signer:
    """W applied to training batches, then rounded to 8 bits as a saved signed image would be."""

    def __init__(self, kit_name: str, code: str | None, device: torch.device) -> None:
        from advsig.kit import Kit

        self.kit = Kit.from_pretrained(kit_name, device=device)
        self.bits = hex_to_bits(code, self.kit.num_bits)
        self.code_hex = bits_to_hex(self.bits) if self.kit.num_bits else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.unrounded(x) * 255).round() / 255

    def unrounded(self, x: torch.Tensor) -> torch.Tensor:
        return self.kit.sign(x, code=self.code_hex)

    def fingerprint(self) -> str:
        """SHA-256 of W's weights: which injector signed this model."""
        h = hashlib.sha256()
        for key, value in sorted(self.kit.injector.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


class ImageSet:
    """Whole images at the model's resolution, drawn at random: self-samples and presigned data."""

    def __init__(self, images: torch.Tensor) -> None:
        if len(images) == 0:
            raise ConfigError("no training images")
        self.images = images

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.images), (batch_size,), generator=generator)
        return self.images[idx]


def load_whole(folder: Path, size: int) -> torch.Tensor:
    """Every readable image of ``folder`` resized to ``size`` (unreadable ones skipped, logged)."""
    images = []
    for path in list_images(folder):
        try:
            img = load_image(path).image
        except ImageError as exc:
            logger.warning("skipping training image: %s", exc)
            continue
        if img.shape[-2:] != (size, size):
            img = F.interpolate(fit_within(img, size)[None], size=(size, size), mode="bilinear")[0]
        images.append(img)
    if not images:
        raise ConfigError(f"{folder}: no readable images")
    return torch.stack(images)


def training_crops(data: str, size: int, *, seed: int = 0) -> RandomCrops:
    """The images a ``size``-pixel model learns from: random crops at random scales of ``data``.

    Also the real-image reference of ``eval-generator``, so FID compares like with like.
    """
    sources = resolve_training_data(data, val_fraction=0.0, seed=seed)[0]
    return RandomCrops(ImagePool(sources, max_side=8 * size), size)


def self_sample_source(model, config, engine, work: Path, size: int) -> ImageSet:
    """The model's own samples (drawn once by the main process into ``work``), for ``self``."""
    folder = work / "self-samples"
    if engine.is_main_process:
        generate_to_folder(
            model, folder, config.self_samples, steps=config.sample_steps,
            seed=config.seed + 7, progress=True,
        )  # fmt: skip
    engine.wait()
    return ImageSet(load_whole(folder, size))


def image_source(model, config, engine, work: Path):
    """What a ``data`` / ``self`` recipe trains on: self-samples, presigned images or crops."""
    size = model.sample_size
    if config.strategy == "self":
        return self_sample_source(model, config, engine, work, size)
    if config.presigned:
        return ImageSet(load_whole(Path(config.data), size))
    return training_crops(config.data, size, seed=config.seed)
