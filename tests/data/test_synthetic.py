"""Procedural flat images: deterministic, every kind, valid pixels, and flatter than photos."""

from __future__ import annotations

import pytest
import torch

from advsig.data.datasets import embedded_image
from advsig.data.synthetic import synthetic_image, synthetic_images
from advsig.modules.binding import highpass


def test_synthetic_images_are_deterministic_and_cycle_through_the_kinds():
    a, b = synthetic_images(10, 64, seed=3), synthetic_images(10, 64, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], synthetic_images(1, 64, seed=4)[0])
    for img in a:
        assert img.shape == (3, 64, 64) and img.dtype == torch.float32
        assert 0 <= img.min() and img.max() <= 1
    assert all(not torch.equal(a[i], a[j]) for i in range(10) for j in range(i))  # all differ


def test_synthetic_images_are_flat_where_the_training_photos_are_textured():
    def detail(x: torch.Tensor) -> float:  # mean absolute high-pass, as F reads it
        return highpass(x[None], 4.0).abs().mean().item()

    photo = embedded_image("gravel")[:, :256, :256]
    flat = synthetic_images(20, 256, seed=0)
    assert max(detail(x) for x in flat) < 0.5 * detail(photo)


def test_unknown_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="kind must be one of"):
        synthetic_image("plaid", 32, torch.Generator())


def test_weighted_crops_follow_their_weights():
    from advsig.data.datasets import ImagePool, RandomCrops
    from advsig.errors import ConfigError

    black, white = torch.zeros(3, 64, 64), torch.ones(3, 64, 64)
    crops = RandomCrops(ImagePool([black, white], max_side=64), 32, weights=[0.8, 0.2])
    batch = crops.sample(400, torch.Generator().manual_seed(0))
    share_white = (batch.mean(dim=(1, 2, 3)) > 0.5).float().mean().item()
    assert 0.13 < share_white < 0.27
    with pytest.raises(ConfigError, match="one per image"):
        RandomCrops(ImagePool([black, white], max_side=64), 32, weights=[1.0])


def test_train_config_refuses_a_synthetic_fraction_outside_0_1():
    from advsig.config import TrainConfig
    from advsig.errors import ConfigError

    with pytest.raises(ConfigError, match="synthetic_fraction"):
        TrainConfig(data="embedded", out="x", synthetic_fraction=1.0)
