"""advsig inside diffusers pipelines: the SDXL ``watermark`` hook, and the wrapper for the rest.

Detection is checked on the shipped ``ddpm-32`` (a 2.7 MB trained DDPM, saved to a temporary
folder and loaded back with ``DDPMPipeline.from_pretrained``) with the shipped 16-bit ``small``
kit: on these 3-step samples it flags 8/8 signed with every bit right and clean ones score far
below its threshold (``small-v2`` left a thin margin: some clean samples within 1 of it).
Why not random weights and the tiny test kit: a random DDPM gives saturated noise, on which no
kit's calibration holds (5 to 16 of 16 clean samples flagged, measured), and the tiny kit is
untrained, so neither could show that a signed pipeline's images are detected and a plain one's
are not. The SDXL hook runs on a random tiny SDXL (its images are noise): there the check is
that the hook's output is exactly ``Kit.sign`` of the plain output.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advsig.codes.bits import hex_to_bits
from advsig.errors import CodeError, ConfigError, KitNotFoundError
from advsig.generators.folders import resolve_model_path
from advsig.integrations.diffusers import (
    AdvsigWatermarker,
    WatermarkedPipeline,
    attach_watermarker,
    detach_watermarker,
    watermarking,
)
from advsig.kit import Kit

CODE = "c3a5"
BATCH = 8
STEPS = 3  # at 2 DDPM steps ddpm-32's samples are still noisy enough to trip the detector


@pytest.fixture(scope="module")
def kit() -> Kit:
    return Kit.from_pretrained("small")


@pytest.fixture(scope="module")
def watermarker(kit: Kit) -> AdvsigWatermarker:
    return AdvsigWatermarker(kit, CODE)


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory: pytest.TempPathFactory):
    """The shipped ddpm-32 as a DDPMPipeline folder, loaded back from that folder."""
    from diffusers import DDPMPipeline

    path = tmp_path_factory.mktemp("ddpm") / "pipe"
    DDPMPipeline.from_pretrained(resolve_model_path("ddpm-32")).save_pretrained(path)
    pipe = DDPMPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe, output_type: str, *, return_dict: bool = True):
    generator = torch.Generator().manual_seed(0)
    out = pipe(
        batch_size=BATCH, num_inference_steps=STEPS, generator=generator,
        output_type=output_type, return_dict=return_dict,
    )  # fmt: skip
    return out.images if return_dict else out[0]


@pytest.fixture(scope="module")
def plain(ddpm) -> torch.Tensor:
    """The pipeline's own images, (B, 3, 32, 32) in [0, 1], from the same noise as the tests'."""
    return _generate(ddpm, "pt")


def _bit_accuracy(bits: str, code: str, num_bits: int) -> float:
    return float((hex_to_bits(bits, num_bits) == hex_to_bits(code, num_bits)).float().mean())


def test_plain_pipeline_images_are_not_flagged(kit, plain):
    misses = kit.detect(plain, fpr=1e-3)
    assert not any(r.is_signed for r in misses), [r.score for r in misses]


@pytest.mark.parametrize(
    ("output_type", "return_dict"), [("pil", True), ("np", False), ("pt", True)]
)
def test_wrapped_ddpm_images_are_detected_with_their_code(
    ddpm, kit, watermarker, plain, output_type, return_dict
):
    signed_pipe = attach_watermarker(ddpm, watermarker)
    assert isinstance(signed_pipe, WatermarkedPipeline)  # DDPMPipeline has no watermark hook
    signed = _generate(signed_pipe, output_type, return_dict=return_dict)

    if output_type == "pil":
        assert isinstance(signed, list) and len(signed) == BATCH
        assert all(isinstance(im, Image.Image) for im in signed)
        assert {(im.size, im.mode) for im in signed} == {((32, 32), "RGB")}
    elif output_type == "np":
        assert isinstance(signed, np.ndarray) and signed.shape == (BATCH, 32, 32, 3)
        assert signed.dtype == np.float32 and 0 <= signed.min() and signed.max() <= 1
    else:
        assert isinstance(signed, torch.Tensor) and signed.shape == plain.shape
        assert signed.dtype == plain.dtype and 0 <= signed.min() and signed.max() <= 1
        # Exactly Kit.sign of what the pipeline would have returned.
        torch.testing.assert_close(signed, watermarker.sign(plain))

    hits = kit.detect(signed, fpr=1e-3)
    assert sum(r.is_signed for r in hits) >= BATCH - 1, [r.score for r in hits]
    accuracy = [_bit_accuracy(r.bits, CODE, kit.num_bits) for r in hits if r.is_signed]
    assert np.mean(accuracy) >= 0.9, accuracy
    assert sum(r.bits == CODE for r in hits) >= BATCH // 2


def test_wrapper_delegates_stays_wrapped_and_detaches(ddpm, watermarker):
    wrapped = attach_watermarker(ddpm, watermarker)
    assert wrapped.unet is ddpm.unet
    assert wrapped.to("cpu") is wrapped  # `pipe = attach(...).to(device)` keeps signing
    wrapped.advsig_test_option = 3
    assert ddpm.__dict__.pop("advsig_test_option") == 3  # attributes are set on the pipeline
    assert attach_watermarker(wrapped, watermarker).pipeline is ddpm  # no double signing
    assert detach_watermarker(wrapped) is ddpm
    with watermarking(ddpm, watermarker) as inside:
        assert isinstance(inside, WatermarkedPipeline) and inside.pipeline is ddpm


def _tiny_clip_parts():
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    vocab: dict[str, int] = {}
    for c in string.ascii_lowercase:
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    config = CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=8, projection_dim=16,
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )  # fmt: skip
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=8)
    return CLIPTextModel(config), CLIPTextModelWithProjection(config), tokenizer


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random StableDiffusionXLPipeline for 32x32 images (two 16-wide CLIP encoders)."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(0)
    text_encoder, text_encoder_2, tokenizer = _tiny_clip_parts()
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(8, 16),
        layers_per_block=1, norm_num_groups=4, attention_head_dim=(2, 4),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), use_linear_projection=True,
        cross_attention_dim=32,  # both encoders' hidden states, concatenated
        addition_embed_type="text_time", addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=6 * 4 + 16,  # six time ids + pooled projection
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
        sample_size=32,
    )  # fmt: skip
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer, unet=unet, scheduler=EulerDiscreteScheduler(),
        add_watermarker=False,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("sdxl") / "pipe"
    pipe.save_pretrained(path)
    return path


def test_sdxl_hook_signs_the_decoded_images(sdxl_dir, watermarker):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(sdxl_dir, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)

    def generate(output_type: str):
        return pipe(
            "a cat", num_inference_steps=2, height=32, width=32, num_images_per_prompt=2,
            generator=torch.Generator().manual_seed(0), output_type=output_type,
        ).images  # fmt: skip

    plain = generate("pt")
    assert attach_watermarker(pipe, watermarker) is pipe and pipe.watermark is watermarker
    signed = generate("pt")
    # The hook signs in [-1, 1] before postprocess: the same as signing the plain [0, 1] output.
    torch.testing.assert_close(signed, watermarker.sign(plain), atol=1e-5, rtol=0)
    assert not torch.equal(signed, plain)
    pil = generate("pil")
    assert all(isinstance(im, Image.Image) and im.size == (32, 32) for im in pil)
    assert detach_watermarker(pipe) is pipe and pipe.watermark is None
    torch.testing.assert_close(generate("pt"), plain)


def test_apply_watermark_keeps_range_dtype_and_device(watermarker):
    images = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(1)) * 2 - 1
    images = images.to(torch.bfloat16)  # (2, 3, 48, 40) in [-1, 1]
    out = watermarker.apply_watermark(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.device == images.device and -1 <= out.min() and out.max() <= 1
    expected = watermarker.sign((images.float() + 1) / 2) * 2 - 1
    torch.testing.assert_close(out.float(), expected, atol=1 / 64, rtol=0)  # bfloat16 steps
    out.add_(0)  # an ordinary tensor, not an inference-mode one


@pytest.mark.parametrize("code", ["not-hex", "deadbeef", -1, 1.5, None])
def test_bad_code_is_refused_when_the_watermarker_is_made(kit, code):
    with pytest.raises(CodeError, match="code"):
        AdvsigWatermarker(kit, code)


def test_bad_kit_and_options_raise_named_errors(kit, ddpm):
    with pytest.raises(KitNotFoundError):
        AdvsigWatermarker("no-such-kit", CODE)
    with pytest.raises(ConfigError, match="batch_size"):
        AdvsigWatermarker(kit, CODE, batch_size=0)
    with pytest.raises(ConfigError, match="AdvsigWatermarker"):
        attach_watermarker(ddpm, object())
