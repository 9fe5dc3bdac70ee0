"""Attacks: the standard grid's definitions, explicit randomness, names and reprs."""

from __future__ import annotations

import pytest
import torch

from advsig.attacks import (
    ATTACKS,
    JPEG,
    Brightness,
    CenterCrop,
    Contrast,
    GaussianBlur,
    GaussianNoise,
    HorizontalFlip,
    Identity,
    Resize,
    Rotate,
    create_attack,
    standard_grid,
)
from advsig.data.datasets import embedded_image, fit_within
from advsig.errors import ConfigError


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return fit_within(embedded_image("astronaut"), 96)  # (3, 96, 96)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).square().mean()))


def test_standard_grid_is_the_published_set():
    labels = [a.label for a in standard_grid()]
    assert labels == [
        "none", "jpeg90", "jpeg75", "jpeg50", "resize0.5-back", "crop75", "crop50",
        "crop75-resized", "crop50-resized", "blur1", "blur2", "noise0.02", "noise0.05",
        "brightness1.3", "brightness0.7", "contrast1.3", "rotate5", "rotate15", "hflip",
        "jpeg75+resize0.75",
    ]  # fmt: skip
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("attack", standard_grid(), ids=lambda a: a.label)
def test_every_attack_keeps_layout_and_range(attack, photo):
    gen = torch.Generator().manual_seed(0)
    out = attack(photo, generator=gen)
    assert out.dtype == torch.float32 and out.shape[0] == 3
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    batch = attack(torch.stack([photo, photo]), generator=torch.Generator().manual_seed(0))
    assert batch.shape[0] == 2 and batch.shape[1:] == out.shape


def test_strength_orders_the_damage(photo):
    """Stronger settings of the same attack leave less of the image."""
    pairs = [
        (JPEG(90), JPEG(50)), (GaussianBlur(1), GaussianBlur(2)),
        (GaussianNoise(0.02), GaussianNoise(0.05)), (Rotate(5), Rotate(15)),
    ]  # fmt: skip
    for weak, strong in pairs:
        gen = torch.Generator().manual_seed(0)
        assert _psnr(weak(photo, generator=gen), photo) > _psnr(strong(photo, generator=gen), photo)


def test_noise_is_repeatable_only_through_the_generator(photo):
    a = GaussianNoise(0.05)(photo, generator=torch.Generator().manual_seed(3))
    b = GaussianNoise(0.05)(photo, generator=torch.Generator().manual_seed(3))
    c = GaussianNoise(0.05)(photo, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs(float((a - photo).std()) - 0.05) < 0.01


def test_colour_and_geometry_follow_their_definitions(photo):
    assert torch.allclose(Brightness(0.7)(photo), (photo * 0.7).clamp(0, 1))
    gray_mean = (0.299 * photo[0] + 0.587 * photo[1] + 0.114 * photo[2]).mean()
    assert torch.allclose(
        Contrast(1.3)(photo), (1.3 * photo + (1 - 1.3) * gray_mean).clamp(0, 1), atol=1e-4
    )
    assert torch.equal(HorizontalFlip()(HorizontalFlip()(photo)), photo)
    assert CenterCrop(0.5)(photo).shape[-2:] == (68, 68)
    assert CenterCrop(0.5, resize_back=True)(photo).shape == photo.shape
    assert Resize(0.5, back=True)(photo).shape == photo.shape
    rotated = Rotate(15)(photo)
    assert rotated.shape == photo.shape and float(rotated[:, 0, 0].max()) == 0.0  # corner filled
    assert torch.equal(Identity()(photo), photo)


def test_attacks_are_made_by_name_and_refuse_bad_parameters():
    assert set(ATTACKS) >= {"jpeg", "resize", "crop", "blur", "noise", "brightness", "contrast",
                            "rotate", "hflip", "none"}  # fmt: skip
    assert repr(create_attack("blur", 2)) == "GaussianBlur(radius=2.0)"
    for name, bad in (("blur", 0), ("noise", -0.1), ("brightness", 0), ("contrast", -1)):
        with pytest.raises(ConfigError, match="must be > 0"):
            create_attack(name, bad)
