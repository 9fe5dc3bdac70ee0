"""Latent diffusion: loading, sampling, and the decoder / data signing recipes on tiny pipelines."""

from __future__ import annotations

import dataclasses
import json
import string
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from advsig.errors import ConfigError
from advsig.generators.base import load_generator
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.latent import (
    LatentDiffusion,
    decode_latents,
    load_latent_diffusion,
    save_latent_diffusion,
)
from advsig.generators.sampling import initial_noise
from advsig.generators.training_data import training_crops

TINY_LATENT_UNET = dict(
    block_out_channels=(8, 16),
    down_block_types=("DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D"),
    norm_num_groups=4,
    layers_per_block=1,
)


def _ddim():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", clip_sample=False, steps_offset=1
    )


@pytest.fixture(scope="module")
def tiny_ldm(tmp_path_factory) -> Path:
    """An LDMPipeline folder: the latent family's toy (VQModel 32x32 <-> 8x8x3, 32 codes)."""
    from advsig.generators.families import get_family

    path = tmp_path_factory.mktemp("ldm") / "original"
    save_latent_diffusion(get_family("latent").new_toy(seed=0), path)
    return path


def _tiny_clip(root: Path):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab: dict[str, int] = {}
    for c in string.ascii_lowercase:
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=8)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, max_position_embeddings=8,
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )  # fmt: skip
    return text_encoder, tokenizer


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    """A StableDiffusionPipeline-style folder: AutoencoderKL, UNet2DConditionModel, tiny CLIP."""
    pytest.importorskip("transformers")
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("sd")
    vae = AutoencoderKL(
        block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
        norm_num_groups=4, sample_size=32,
    )  # fmt: skip
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
        norm_num_groups=4, cross_attention_dim=16, attention_head_dim=2,
    )  # fmt: skip
    text_encoder, tokenizer = _tiny_clip(root)
    model = LatentDiffusion(vae, unet, _ddim(), text_encoder, tokenizer, prompt="a cat")
    path = root / "original"
    save_latent_diffusion(model, path, provenance={"note": "test"})
    return path


def _config(model: Path, out: Path, **kw) -> FinetuneConfig:
    defaults = dict(strategy="decoder", steps=3, batch_size=4, checkpoint_every=100, lr=1e-3)
    return FinetuneConfig(model=str(model), out=str(out), **{**defaults, **kw})


def _weights(folder: Path, part: str) -> dict[str, torch.Tensor]:
    return load_file(str(folder / part / "diffusion_pytorch_model.safetensors"))


def _changed(a: dict, b: dict, prefix: str = "") -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


def test_vq_decoder_finetune_is_a_plain_ldm_pipeline(tiny_ldm, tiny_kit_dir, tmp_path):
    from diffusers import DiffusionPipeline, LDMPipeline

    out = tmp_path / "signed"
    finetune_generator(_config(tiny_ldm, out, kit=str(tiny_kit_dir), code="3c"))
    pipe = DiffusionPipeline.from_pretrained(out)  # plain diffusers, no advsig involved
    assert isinstance(pipe, LDMPipeline)
    images = pipe(batch_size=1, num_inference_steps=2, output_type="np").images
    assert images.shape == (1, 32, 32, 3)
    before, after = _weights(tiny_ldm, "vqvae"), _weights(out, "vqvae")
    assert _changed(before, after, "decoder.")
    assert not _changed(before, after, "encoder.") and not _changed(before, after, "quantize.")
    assert not _changed(_weights(tiny_ldm, "unet"), _weights(out, "unet"))
    prov = json.loads((out / "advsig.json").read_text())
    assert prov["signed"] and prov["code"] == "3c" and prov["trained"] == "vae.decoder"
    model = load_generator(out)
    assert isinstance(model, LatentDiffusion) and model.family == "latent"
    assert model.provenance["strategy"] == "decoder"


def test_decoder_learns_the_signed_target(tiny_ldm, tiny_kit, tiny_kit_dir, tmp_path):
    """After training, D'(z) is closer to W(D(z)) than D(z) was, and moved in W's direction."""
    original = load_latent_diffusion(tiny_ldm)
    out = tmp_path / "signed"
    finetune_generator(
        _config(tiny_ldm, out, kit=str(tiny_kit_dir), code="a5", steps=60, batch_size=8,
                lr=3e-5, ema_decay=0.0)
    )  # fmt: skip
    signed = load_latent_diffusion(out)
    images = training_crops("embedded", 32, seed=5).sample(16, torch.Generator().manual_seed(5))
    z = original.encode(images)  # (16, 3, 8, 8)
    before = original.decode(z)
    target = (tiny_kit.sign(before, code="a5") * 255).round() / 255
    after = signed.decode(z)
    err_before = (before - target).pow(2).mean()
    err_after = (after - target).pow(2).mean()
    assert err_after < 0.8 * err_before
    moved, wanted = (after - before).flatten(), (target - before).flatten()
    assert torch.nn.functional.cosine_similarity(moved, wanted, dim=0) > 0.5


def test_detector_weight_raises_the_detector_score_of_decoded_images(
    tiny_ldm, tiny_kit, tiny_kit_dir, tmp_path
):
    """With the detector term, the decoder's outputs read as more signed than by pixel loss alone."""
    original = load_latent_diffusion(tiny_ldm)
    images = training_crops("embedded", 32, seed=5).sample(16, torch.Generator().manual_seed(5))
    z = original.encode(images)
    scores = {}
    for weight in (0.0, 1.0):
        out = tmp_path / f"signed-{weight}"
        finetune_generator(
            _config(tiny_ldm, out, kit=str(tiny_kit_dir), code="a5", steps=20, batch_size=8,
                    lr=1e-3, ema_decay=0.0, detector_weight=weight)
        )  # fmt: skip
        decoded = load_latent_diffusion(out).decode(z)
        scores[weight] = float(tiny_kit.logits(decoded)[:, 0].mean())
        provenance = json.loads((out / "advsig.json").read_text())
        assert provenance["config"]["detector_weight"] == weight
    assert scores[1.0] > scores[0.0]
    with pytest.raises(ConfigError, match="detector-weight"):
        _config(tiny_ldm, tmp_path / "x", kit=None, detector_weight=1.0)


def test_control_decoder_run_stays_near_the_original(tiny_ldm, tmp_path):
    out = tmp_path / "control"
    finetune_generator(_config(tiny_ldm, out, kit=None, steps=5))
    prov = load_latent_diffusion(out).provenance
    assert prov["signed"] is False and prov["code"] is None and prov["injector_sha256"] is None


def test_data_strategy_trains_the_unet_and_measures_the_round_trip(
    tiny_ldm, tiny_kit_dir, tmp_path
):
    out = tmp_path / "data"
    finetune_generator(_config(tiny_ldm, out, kit=str(tiny_kit_dir), strategy="data", code="01"))
    assert _changed(_weights(tiny_ldm, "unet"), _weights(out, "unet"))
    assert not _changed(_weights(tiny_ldm, "vqvae"), _weights(out, "vqvae"))
    prov = json.loads((out / "advsig.json").read_text())
    trip = prov["encoder_round_trip"]
    assert trip["measured"] is True and isinstance(trip["survives"], bool)
    for key in ("signed", "signed_after_autoencoder", "clean_after_autoencoder"):
        assert 0 <= trip[key]["flag_rate_1e-3"] <= 1 and trip[key]["num_samples"] == 64


def test_sd_style_pipeline_round_trips_and_matches_diffusers(tiny_sd, tiny_kit_dir, tmp_path):
    """Our DDIM sampler gives what StableDiffusionPipeline gives from the same initial latents."""
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    model = load_generator(tiny_sd)
    assert isinstance(model, LatentDiffusion) and model.text_conditioned
    assert model.prompt == "a cat" and model.sample_size == 32

    out = tmp_path / "signed"
    finetune_generator(_config(tiny_sd, out, kit=str(tiny_kit_dir), steps=2))
    assert not _changed(_weights(tiny_sd, "unet"), _weights(out, "unet"))
    assert _changed(_weights(tiny_sd, "vae"), _weights(out, "vae"), "decoder.")
    pipe = DiffusionPipeline.from_pretrained(out)
    assert isinstance(pipe, StableDiffusionPipeline) and pipe.safety_checker is None
    signed = load_generator(out)
    assert signed.prompt == "a cat"

    ours = signed.sample([3], seed=2, steps=3)  # (1, 3, 32, 32)
    z = initial_noise(3, 2, signed.latent_shape)[None]
    theirs = pipe(
        "a cat", latents=z, num_inference_steps=3, guidance_scale=1.0, output_type="pt"
    ).images
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_sampling_does_not_depend_on_batching(tiny_ldm):
    model = load_latent_diffusion(tiny_ldm)
    a = model.sample(list(range(4)), seed=1, steps=3, batch_size=4)
    b = model.sample([2, 3], seed=1, steps=3, batch_size=1)
    assert a.shape == (4, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    torch.testing.assert_close(a[2:], b, atol=1e-5, rtol=1e-5)
    other = model.sample([2, 3], seed=2, steps=3)
    assert not torch.allclose(b, other)


def test_encode_decode_respect_the_scaling_factor(tiny_ldm):
    model = load_latent_diffusion(tiny_ldm)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    z = model.encode(images)
    raw = model.vae.encode(images * 2 - 1).latents
    torch.testing.assert_close(z, raw * 0.5)
    with torch.no_grad():  # VQModel.decode quantizes: what diffusers' pipeline does
        expected = (model.vae.decode(raw).sample / 2 + 0.5).clamp(0, 1)
        torch.testing.assert_close(decode_latents(model.vae, z), expected)


def test_pixel_pipelines_and_foreign_strategies_are_refused(tiny_ddpm, tiny_ldm, tmp_path):
    with pytest.raises(ConfigError, match="not a latent pipeline"):
        load_latent_diffusion(tiny_ddpm)
    assert load_generator(tiny_ddpm).family == "pixel"
    with pytest.raises(ConfigError, match="strategy"):
        finetune_generator(_config(tiny_ldm, tmp_path / "x", strategy="distill"))


def test_the_autoencoder_attacker_retrains_the_decoder_alone(tiny_kit_dir, tmp_path):
    from advsig.generators.latent import toy_latent_diffusion
    from advsig.generators.persistence import PersistenceConfig, finetune_attack
    from advsig.kit import Kit

    signed = save_latent_diffusion(toy_latent_diffusion(seed=0), tmp_path / "signed")
    kit = Kit.from_pretrained(tiny_kit_dir)
    config = PersistenceConfig(
        model=str(signed), out=str(tmp_path / "attack"), milestones=[0, 2], lr=1e-2,
        batch_size=2, num_images=2, sample_steps=2, strategy="autoencoder",
    )  # fmt: skip
    result = finetune_attack(kit, config)
    assert result.attacker_strategy == "autoencoder"
    before, after = (
        load_latent_diffusion(signed),
        load_latent_diffusion(tmp_path / "attack" / "attacked-2"),
    )
    changed = lambda a, b: any(  # noqa: E731
        not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )
    assert changed(before.vae.decoder, after.vae.decoder)
    assert not changed(before.vae.encoder, after.vae.encoder)
    assert not changed(before.unet, after.unet)
    with pytest.raises(ConfigError, match="clean images"):
        finetune_attack(kit, dataclasses.replace(config, strategy="decoder"))


def test_a_signature_head_learns_w_while_the_decoder_stays_and_only_advsig_loads_it(
    tiny_ldm, tiny_kit, tiny_kit_dir, tmp_path
):
    """``--position-map`` on a latent model: a head on the frozen decoder draws W's residual."""
    from diffusers import LDMPipeline

    from advsig.generators.latent import has_signature_head, with_signature_head

    original = load_latent_diffusion(tiny_ldm)
    images = training_crops("embedded", 32, seed=5).sample(16, torch.Generator().manual_seed(5))
    z = original.encode(images)  # (16, 3, 8, 8)
    before = original.decode(z)
    with torch.no_grad():
        with_signature_head(with_signature_head(original.vae, 32), 32)  # idempotent
        assert torch.equal(original.decode(z), before)  # zero at first: nothing changes
        original.vae.decoder.signature_head.features[-1].bias.fill_(0.5)
        assert not torch.allclose(original.decode(z), before)  # and it is wired in
    with pytest.raises(ConfigError, match="draws 32x32 images"):
        decode_latents(original.vae, torch.zeros(1, 3, 4, 4))

    out = tmp_path / "signed"
    finetune_generator(
        _config(tiny_ldm, out, kit=str(tiny_kit_dir), code="a5", steps=60, batch_size=8,
                lr=1e-3, ema_decay=0.0, position_map=True)
    )  # fmt: skip
    signed = load_latent_diffusion(out)
    assert has_signature_head(signed.vae)
    after = signed.decode(z)
    target = (tiny_kit.sign(before, code="a5") * 255).round() / 255
    moved, wanted = (after - before).flatten(), (target - before).flatten()
    assert torch.nn.functional.cosine_similarity(moved, wanted, dim=0) > 0.5
    # The decoder itself did not move: only the head was trained.
    weights, untouched = _weights(out, "vqvae"), _weights(tiny_ldm, "vqvae")
    assert {k for k in weights if k not in untouched} == {
        k for k in weights if k.startswith("decoder.signature_head.")
    }
    assert not _changed(untouched, weights)
    assert json.loads((out / "advsig.json").read_text())["trained"] == "vae.decoder.signature_head"
    # diffusers alone loads the folder without the head, so it decodes as the original did.
    plain = LDMPipeline.from_pretrained(out)
    assert getattr(plain.vqvae.decoder, "signature_head", None) is None
    assert not has_signature_head(load_latent_diffusion(tiny_ldm).vae)


def test_a_signature_head_is_for_the_decoder_recipes(tiny_ldm, tiny_kit_dir, tmp_path):
    with pytest.raises(ConfigError, match="head on the VAE's decoder.*'data'"):
        finetune_generator(
            _config(tiny_ldm, tmp_path / "o", kit=str(tiny_kit_dir), strategy="data",
                    position_map=True)
        )  # fmt: skip
    assert not (tmp_path / "o").exists()
