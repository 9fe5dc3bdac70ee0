"""Shared fixtures: a tiny untrained but calibrated kit, and folders of small real photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from advsig.codes.calibration import Calibration
from advsig.data.datasets import embedded_image, fit_within
from advsig.data.io import to_uint8
from advsig.kit import Kit
from advsig.models.factory import create_model

PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "camera", "rocket", "clock")


@pytest.fixture(scope="session")
def tiny_kit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained, calibrated 8-bit kit folder; its injector makes a small visible change.

    The untrained injector's output conv is zero-initialised (signed == original), so it is
    perturbed to make signing observable and dependent on content and code. Detection scores are
    meaningless but well-formed.
    """
    return _untrained_tiny_kit(tmp_path_factory.mktemp("kit") / "tiny", binding="content")


def _untrained_tiny_kit(path: Path, *, binding: str) -> Path:
    torch.manual_seed(0)
    injector = create_model("injector-tiny", num_bits=8, binding=binding)
    detector = create_model("detector-tiny", num_bits=8, binding=binding)
    with torch.no_grad():
        injector.out.weight.normal_(0.0, 0.05)
        injector.out.bias.normal_(0.0, 0.5)
    kit = Kit(injector, detector, work_size=128)
    clean = [torch.rand(3, 64, 64) for _ in range(64)]
    kit.calibration = Calibration.fit(kit.logits(clean)[:, 0].numpy())
    kit.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_v1_kit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As ``tiny_kit_dir`` with a v1 signature (one fixed texture per code, no binding).

    For unit tests of generator recipes that need a target a few dozen steps can learn: a v2
    target depends on every sample's content (its transfer is measured in BENCHMARKS.md).
    """
    return _untrained_tiny_kit(tmp_path_factory.mktemp("kit-v1") / "tiny", binding="none")


@pytest.fixture(scope="session")
def tiny_kit(tiny_kit_dir: Path) -> Kit:
    return Kit.from_pretrained(tiny_kit_dir)


def small_photo(name: str, size: int = 96) -> Image.Image:
    """An embedded photo fitted within ``size`` pixels, as an RGB PIL image."""
    return Image.fromarray(to_uint8(fit_within(embedded_image(name), size)))


@pytest.fixture(scope="session")
def photo_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small photos as PNG files, decoded once per session."""
    root = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in PHOTO_NAMES:
        paths[name] = root / f"{name}.png"
        small_photo(name).save(paths[name])
    return paths


@pytest.fixture
def photo_folder(tmp_path: Path, photo_cache: dict[str, Path]) -> Path:
    """A folder tree of four small photos: two at the top, one nested, one two levels deep.

    Layout: a.png, b.jpg, sub/c.png, sub/deeper/d.png
    """
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.open(photo_cache["astronaut"]).save(root / "a.png")
    Image.open(photo_cache["coffee"]).convert("RGB").save(root / "b.jpg", quality=90)
    Image.open(photo_cache["chelsea"]).save(root / "sub" / "c.png")
    Image.open(photo_cache["camera"]).save(root / "sub" / "deeper" / "d.png")
    return root


@pytest.fixture(scope="session")
def trained_tiny_kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Kit, Path]:
    """A tiny 8-bit kit really trained on the embedded photos (about 1000 steps, ~2 minutes).

    Shared by the tests that need a detector that works: training separates signed from clean,
    the demo, and the end-to-end CLI run. No augmentation: the code is learned fastest without.
    A fixed key: a fresh random key per run (what `advsig train` does) gives another mask, so
    another kit, on every run; fixed, the kit is the same on every machine.
    """
    from advsig.signature_key import write_key
    from advsig.training.presets import preset_config
    from advsig.training.trainer import train_signature

    root = tmp_path_factory.mktemp("trained")
    write_key(root / "test.key", bytes(range(32)))
    out = root / "kit"
    config = preset_config(
        "tiny", data="embedded", out=str(out), steps=1000, augment="none", seed=0,
        key_file=str(root / "test.key"),
    )  # fmt: skip
    return train_signature(config), out


# A UNet2DModel small enough to fine-tune and sample in a second (32x32, no attention blocks).
TINY_UNET = dict(
    block_out_channels=(8, 16),
    down_block_types=("DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D"),
    norm_num_groups=4,
    attention_head_dim=8,
)


@pytest.fixture(scope="session")
def tiny_unet_config() -> dict:
    return dict(TINY_UNET)


@pytest.fixture(scope="session")
def tiny_pixel_model():
    """A random 32x32 DDPM (``PixelDiffusion``) with a very small UNet."""
    from advsig.generators.families import get_family

    return get_family("pixel").new_toy(seed=0)


@pytest.fixture(scope="session")
def tiny_ddpm(tmp_path_factory: pytest.TempPathFactory, tiny_pixel_model) -> Path:
    """The same model saved as a diffusers ``DDPMPipeline`` folder."""
    from advsig.generators.pixel import save_pixel_diffusion

    path = tmp_path_factory.mktemp("ddpm") / "original"
    save_pixel_diffusion(tiny_pixel_model, path)
    return path
