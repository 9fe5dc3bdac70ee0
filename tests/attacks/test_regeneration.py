"""Regeneration attacks: diffusion purification and autoencoder re-encoding with tiny models."""

from __future__ import annotations

import json

import pytest
import torch

from advsig.attacks import ATTACKS, create_attack
from advsig.attacks.regeneration import (
    AutoencoderReencode,
    DiffusionPurification,
    regeneration_grid,
    shipped_autoencoders,
)
from advsig.bench.metrics import psnr
from advsig.data.datasets import embedded_image, fit_within
from advsig.errors import ConfigError

TINY_AE = dict(
    down_block_types=("DownEncoderBlock2D",) * 2,
    up_block_types=("UpDecoderBlock2D",) * 2,
    block_out_channels=(8, 16),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=4,
    sample_size=32,
)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return fit_within(embedded_image("astronaut"), 40)[:, :, :37]  # (3, 40, 37): odd width


@pytest.fixture(scope="module")
def tiny_ae_dir(tmp_path_factory) -> str:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ae") / "kl"
    AutoencoderKL(**TINY_AE).save_pretrained(path, safe_serialization=True)
    return str(path)


def test_purification_keeps_shape_range_and_is_repeatable(tiny_pixel_model, photo) -> None:
    attack = DiffusionPurification(0.1, model=tiny_pixel_model, steps=20)
    assert attack.label == "purify0.1"
    assert "strength=0.1" in repr(attack) and "steps=20" in repr(attack)
    out = attack(photo, generator=torch.Generator().manual_seed(0))
    assert out.shape == photo.shape and out.min() >= 0 and out.max() <= 1
    again = attack(photo, generator=torch.Generator().manual_seed(0))
    other = attack(photo, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again) and not torch.equal(out, other)
    assert torch.equal(attack(photo), attack(photo))  # no generator: still repeatable
    # A batch is its images attacked one after the other with the same generator.
    batch = torch.stack([photo, photo.flip(-1)])
    g = torch.Generator().manual_seed(0)
    one_by_one = torch.stack([attack.apply(img, g) for img in batch])
    assert torch.allclose(attack(batch, generator=torch.Generator().manual_seed(0)), one_by_one,
                          atol=1e-5)  # fmt: skip


def test_purification_strength_sets_how_far_the_image_moves(tiny_pixel_model, photo) -> None:
    # Untrained denoiser: the start timestep still decides how much noise goes in.
    g = torch.Generator
    near = DiffusionPurification(0.01, model=tiny_pixel_model, steps=100)(
        photo, generator=g().manual_seed(0))  # fmt: skip
    far = DiffusionPurification(0.5, model=tiny_pixel_model, steps=10)(
        photo, generator=g().manual_seed(0))  # fmt: skip
    assert psnr(near, photo) > psnr(far, photo)


def test_purification_loads_a_pipeline_folder(tiny_ddpm, photo) -> None:
    attack = create_attack("purify", 0.05, model=str(tiny_ddpm), steps=20)
    assert isinstance(attack, DiffusionPurification) and attack.model == str(tiny_ddpm)
    assert attack(photo).shape == photo.shape
    with pytest.raises(ConfigError, match="strength"):
        DiffusionPurification(0.0)
    with pytest.raises(ConfigError, match="not a folder"):
        DiffusionPurification(0.1, model="no-such-model")(photo)


def test_reencode_with_a_tiny_autoencoderkl(tiny_ae_dir, photo) -> None:
    from diffusers import AutoencoderKL

    attack = AutoencoderReencode(tiny_ae_dir)
    assert attack.label == "reencode-kl" and tiny_ae_dir in repr(attack)
    out = attack(photo)
    assert out.shape == photo.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, attack(photo))  # posterior mean: deterministic
    batch = attack(torch.stack([photo, photo]))
    assert torch.allclose(batch[0], out, atol=1e-5)
    loaded = AutoencoderReencode(AutoencoderKL.from_pretrained(tiny_ae_dir))
    assert torch.allclose(loaded(photo), out, atol=1e-6)


def test_reencode_with_a_vqmodel_and_refuses_other_models(tmp_path, photo) -> None:
    from diffusers import UNet2DModel, VQModel

    torch.manual_seed(0)
    vq = tmp_path / "vq"
    VQModel(**TINY_AE, num_vq_embeddings=16, vq_embed_dim=4).save_pretrained(vq)
    out = AutoencoderReencode(str(vq))(photo)
    assert out.shape == photo.shape
    unet = tmp_path / "unet"
    UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
                down_block_types=("DownBlock2D",) * 2,
                up_block_types=("UpBlock2D",) * 2).save_pretrained(unet)  # fmt: skip
    with pytest.raises(ConfigError, match="UNet2DModel"):
        AutoencoderReencode(str(unet))(photo)
    assert json.loads((unet / "config.json").read_text())["_class_name"] == "UNet2DModel"


def test_regeneration_attacks_are_registered() -> None:
    assert ATTACKS["purify"] is DiffusionPurification
    assert ATTACKS["reencode"] is AutoencoderReencode
    labels = [a.label for a in regeneration_grid((0.05, 0.1))]
    assert labels[:2] == ["purify0.05", "purify0.1"]


@pytest.mark.skipif("ae-tiny" not in shipped_autoencoders(), reason="ae-tiny not trained yet")
def test_shipped_autoencoder_reconstructs_photos() -> None:
    photo = fit_within(embedded_image("coffee"), 256)  # a test-split photo it never trained on
    attack = AutoencoderReencode()
    assert attack.model == "ae-tiny"
    noise = torch.rand_like(photo)
    assert psnr(attack(photo), photo) > psnr(noise, photo) + 8
