"""Latent diffusion pipelines: an autoencoder (VQModel or AutoencoderKL) around a latent denoiser.

Two diffusers layouts are read and written: ``LDMPipeline`` (``vqvae`` + ``UNet2DModel``,
unconditional) and ``StableDiffusionPipeline`` (``vae`` + ``UNet2DConditionModel`` + CLIP text
encoder and tokenizer; sampled with one fixed prompt). Saved folders load with
``DiffusionPipeline.from_pretrained(folder)`` and no advsig installed, except for a decoder
signed with a signature head (:class:`SignatureHead`): diffusers has no place for it, drops it,
and decodes as the original decoder did; only advsig loads such a model whole.

Latents live in the denoiser's space: ``(encoder output - shift_factor) * scaling_factor``, as
diffusers pipelines do, so a latent from :meth:`LatentDiffusion.encode` can be fed to the UNet and
one from the UNet to :meth:`LatentDiffusion.decode`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from advsig.errors import CheckpointError, ConfigError
from advsig.generators.folders import PROVENANCE_NAME, resolve_model_path
from advsig.generators.position_map import SignatureHead
from advsig.utils import swap_in_dir, temp_sibling_dir

# Pipelines whose extra conditioning (a second text encoder, image embeddings) advsig cannot feed.
_UNSUPPORTED_COMPONENTS = ("text_encoder_2", "image_encoder", "prior")


def _is_vq(vae: nn.Module) -> bool:
    from diffusers import VQModel

    return isinstance(vae, VQModel)


def _scale_shift(vae: nn.Module) -> tuple[float, float]:
    scale = getattr(vae.config, "scaling_factor", None)
    shift = getattr(vae.config, "shift_factor", None)
    return float(1.0 if scale is None else scale), float(shift or 0.0)


def encode_latents(vae: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Images float (B, 3, H, W) in [0, 1] -> scaled latents (B, c, H/f, W/f).

    VQModel: the encoder's output before quantization (what LDMs are trained on; decoding
    quantizes). AutoencoderKL: the posterior's mode. Differentiable; callers choose no_grad.
    """
    scale, shift = _scale_shift(vae)
    x = images.to(next(vae.parameters()).dtype) * 2 - 1
    if _is_vq(vae):
        h = vae.encode(x).latents
    else:
        h = vae.encode(x).latent_dist.mode()
    return (h - shift) * scale


def decode_latents(vae: nn.Module, latents: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
    """Scaled latents -> images float (B, 3, H, W), in [0, 1] when ``clamp`` (VQModel quantizes).

    ``clamp=False`` keeps gradients alive at the range's edges, for fine-tuning the decoder.
    """
    scale, shift = _scale_shift(vae)
    h = latents.to(next(vae.parameters()).dtype) / scale + shift
    x = vae.decode(h).sample / 2 + 0.5
    return x.clamp(0, 1) if clamp else x


def decoder_parameters(vae: nn.Module) -> list[nn.Parameter]:
    """What the ``decoder`` strategy trains: the decoder and the conv in front of it.

    The encoder, the VQ codebook and ``quant_conv`` stay frozen, so latents keep their meaning and
    the denoiser needs no change.
    """
    params = list(vae.decoder.parameters())
    post = getattr(vae, "post_quant_conv", None)
    if isinstance(post, nn.Module):
        params += list(post.parameters())
    return params


# The signature head's tensors in the VAE's weights file start with this (a decoder submodule).
SIGNATURE_HEAD_PREFIX = "decoder.signature_head."


def with_signature_head(vae: nn.Module, size: int, **shape) -> nn.Module:
    """Attach a :class:`SignatureHead` to ``vae.decoder`` (idempotent); returns ``vae``."""
    decoder = vae.decoder
    if getattr(decoder, "signature_head", None) is None:
        device = decoder.conv_out.weight.device
        head = SignatureHead(int(vae.config.block_out_channels[-1]), size, **shape).to(device)
        decoder.add_module("signature_head", head)
        decoder.mid_block.register_forward_hook(head.remember)
        decoder.conv_out.register_forward_hook(head.add_to)
    return vae


def has_signature_head(vae: nn.Module) -> bool:
    return getattr(vae.decoder, "signature_head", None) is not None


def head_shape(state: dict[str, torch.Tensor]) -> dict | None:
    """``SignatureHead`` keyword arguments read from saved tensors (``None``: no head saved)."""
    key = SIGNATURE_HEAD_PREFIX + "position_map"
    if key not in state:
        return None
    components, _, size, _ = state[key].shape
    hidden = state[SIGNATURE_HEAD_PREFIX + "features.0.weight"].shape[0]
    convs = [k for k in state if k.startswith(SIGNATURE_HEAD_PREFIX + "features.")]
    depth = sum(k.endswith(".weight") for k in convs)
    return {"size": int(size), "components": int(components), "hidden": int(hidden),
            "depth": depth}  # fmt: skip


def saved_head(weights: Path) -> dict[str, torch.Tensor]:
    """The signature head's tensors in a VAE weights file (empty when it has none)."""
    with safe_open(weights, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith(SIGNATURE_HEAD_PREFIX)}


def _restore_signature_head(vae: nn.Module, source: str) -> None:
    """Attach and load the head saved in the VAE's weights file (diffusers drops it)."""
    weights = Path(str(getattr(vae.config, "_name_or_path", "") or "")) / (
        "diffusion_pytorch_model.safetensors"
    )
    if not weights.is_file():
        return
    state = saved_head(weights)
    shape = head_shape(state)
    if shape is None:
        return
    try:
        with_signature_head(vae, **shape).decoder.signature_head.load_state_dict(
            {k[len(SIGNATURE_HEAD_PREFIX) :]: v for k, v in state.items()}
        )
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{source}: the VAE's signature head does not load ({exc})") from exc


@dataclass
class LatentDiffusion:
    """Autoencoder + latent denoiser + scheduler (+ text encoder): a :class:`GeneratorModel`.

    ``prompt`` (text-conditioned pipelines only) is the fixed prompt every sample is drawn with;
    ``guidance_scale`` > 1 turns on classifier-free guidance against the empty prompt.
    """

    family = "latent"
    vae: nn.Module  # diffusers VQModel or AutoencoderKL
    unet: nn.Module  # UNet2DModel (unconditional) or UNet2DConditionModel (text)
    scheduler: object
    text_encoder: nn.Module | None = None
    tokenizer: object | None = None
    prompt: str = ""
    guidance_scale: float = 1.0
    source: str = ""
    provenance: dict | None = None

    @property
    def is_vq(self) -> bool:
        return _is_vq(self.vae)

    @property
    def text_conditioned(self) -> bool:
        return self.text_encoder is not None

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.unet.config.sample_size
        size = int(size if isinstance(size, int) else size[0])
        return (int(self.unet.config.in_channels), size, size)

    @property
    def sample_size(self) -> int:
        return self.latent_shape[-1] * self.vae_scale_factor

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, s, s) in [0, 1] -> scaled latents (B, *latent_shape)."""
        self.vae.eval()
        return encode_latents(self.vae, images.to(next(self.vae.parameters()).device)).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, *latent_shape) -> images (B, 3, s, s) in [0, 1]."""
        self.vae.eval()
        return decode_latents(self.vae, latents.to(next(self.vae.parameters()).device)).float()

    @torch.no_grad()
    def prompt_embeddings(self, batch: int, prompt: str | None = None) -> torch.Tensor | None:
        """Text encoder states for ``prompt`` (default: the model's), repeated: (batch, L, D)."""
        if self.text_encoder is None:
            return None
        ids = self.tokenizer(
            prompt if prompt is not None else self.prompt,
            padding="max_length", max_length=self.tokenizer.model_max_length,
            truncation=True, return_tensors="pt",
        ).input_ids  # fmt: skip
        emb = self.text_encoder(ids.to(self.text_encoder.device))[0]  # (1, L, D)
        return emb.expand(batch, -1, -1)

    def denoise(self, latents: torch.Tensor, t, cond: torch.Tensor | None) -> torch.Tensor:
        """The denoiser's prediction for noisy scaled latents at timestep(s) ``t``."""
        if cond is None:
            return self.unet(latents, t).sample
        return self.unet(latents, t, encoder_hidden_states=cond).sample

    @torch.inference_mode()
    def sample_latents(
        self, indices: list[int], *, seed: int = 0, steps: int = 50, batch_size: int = 64
    ) -> torch.Tensor:
        """Deterministic DDIM (eta 0) latents (N, *latent_shape), one noise per (seed, index)."""
        from diffusers import DDIMScheduler

        from advsig.generators.sampling import initial_noise

        indices = list(indices)
        scheduler = DDIMScheduler.from_config(self.scheduler.config)
        scheduler.set_timesteps(steps)
        guided = self.text_conditioned and self.guidance_scale > 1
        self.unet.eval()
        out = []
        for k in range(0, len(indices), batch_size):
            chunk = indices[k : k + batch_size]
            z = torch.stack([initial_noise(i, seed, self.latent_shape) for i in chunk])
            z = (z * scheduler.init_noise_sigma).to(self.device)  # (b, c, l, l)
            cond = self.prompt_embeddings(len(chunk))  # (b, L, D) or None
            if guided:
                cond = torch.cat([self.prompt_embeddings(len(chunk), ""), cond])
            for t in scheduler.timesteps:
                z_in = scheduler.scale_model_input(torch.cat([z, z]) if guided else z, t)
                pred = self.denoise(z_in, t, cond)
                if guided:
                    uncond, text = pred.chunk(2)
                    pred = uncond + self.guidance_scale * (text - uncond)
                z = scheduler.step(pred, t, z, eta=0.0).prev_sample
            out.append(z.float().cpu())
        return torch.cat(out) if out else torch.empty(0, *self.latent_shape)

    def sample(
        self, indices: list[int], *, seed: int = 0, steps: int = 50, batch_size: int = 64
    ) -> torch.Tensor:
        """Deterministic DDIM (eta 0) samples decoded to float (N, 3, s, s) in [0, 1]."""
        indices = list(indices)
        if not indices:
            return torch.empty(0, 3, self.sample_size, self.sample_size)
        images = []
        for k in range(0, len(indices), batch_size):
            z = self.sample_latents(indices[k : k + batch_size], seed=seed, steps=steps,
                                    batch_size=batch_size)  # fmt: skip
            images.append(self.decode(z).cpu())
        return torch.cat(images)

    def save(self, out: str | Path, *, provenance: dict | None = None) -> Path:
        return save_latent_diffusion(self, out, provenance=provenance)


def _read_index(local: Path) -> dict:
    index = local / "model_index.json"
    if not index.is_file():
        raise CheckpointError(f"{local}: no model_index.json; not a diffusers pipeline folder")
    try:
        return json.loads(index.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{index}: invalid JSON ({exc})") from exc


def _check_components(components: dict, source: str, class_name: str | None) -> None:
    # Optional components a folder leaves empty are null in model_index.json, None once loaded.
    names = {k for k, v in components.items() if v is not None and v != [None, None]}
    if not {"vae", "vqvae"} & names:
        raise ConfigError(
            f"{source} is not a latent pipeline ({class_name}: no vae or vqvae); "
            "pixel-space pipelines are signed with the pixel recipes (strategy data or self)"
        )
    extra = sorted(n for n in _UNSUPPORTED_COMPONENTS if n in names)
    if extra:
        raise ConfigError(
            f"{source} ({class_name}) needs {', '.join(extra)}; advsig supports LDMPipeline and "
            "StableDiffusionPipeline-style folders (one CLIP text encoder)"
        )


def load_latent_diffusion(
    name_or_path: str | Path,
    *,
    device: str | torch.device = "cpu",
    prompt: str | None = None,
    guidance_scale: float | None = None,
) -> LatentDiffusion:
    """Load a diffusers latent pipeline folder, shipped name or Hub id as :class:`LatentDiffusion`.

    Refuses pixel-space pipelines by name. ``prompt`` / ``guidance_scale`` default to what the
    folder's ``advsig.json`` recorded, else the empty prompt without guidance.

    Example:
        >>> model = load_latent_diffusion("ldm-32")
        >>> model.sample([0, 1], steps=25).shape
        torch.Size([2, 3, 32, 32])
    """
    from diffusers import DiffusionPipeline, UNet2DConditionModel, UNet2DModel

    source = resolve_model_path(name_or_path)
    local = Path(source)
    if local.is_dir():
        components = _read_index(local)
        _check_components(components, source, components.get("_class_name"))
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # a signature head is an unused weight to diffusers
    try:
        pipe = DiffusionPipeline.from_pretrained(source, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load diffusion pipeline {source!r}: {exc}") from exc
    finally:
        diffusers_logging.set_verbosity(verbosity)
    _check_components(pipe.components, source, type(pipe).__name__)
    vae = pipe.components.get("vqvae")
    vae = vae if vae is not None else pipe.components.get("vae")
    _restore_signature_head(vae, source)
    unet, scheduler = pipe.components.get("unet"), pipe.components.get("scheduler")
    text_encoder = pipe.components.get("text_encoder")
    tokenizer = pipe.components.get("tokenizer")
    if isinstance(unet, UNet2DConditionModel):
        if text_encoder is None or tokenizer is None:
            raise ConfigError(f"{source}: a text-conditioned UNet without a text encoder")
        if getattr(unet.config, "addition_embed_type", None):
            raise ConfigError(
                f"{source}: UNet needs extra conditioning "
                f"({unet.config.addition_embed_type!r}); not supported"
            )
    elif not isinstance(unet, UNet2DModel) or scheduler is None:
        raise ConfigError(
            f"{source!r} is a {type(pipe).__name__}; expected a latent pipeline with a UNet and "
            "a scheduler"
        )
    provenance = None
    if local.is_dir() and (local / PROVENANCE_NAME).is_file():
        provenance = json.loads((local / PROVENANCE_NAME).read_text(encoding="utf-8"))
    recorded = provenance or {}
    text = isinstance(unet, UNet2DConditionModel)
    return LatentDiffusion(
        vae=vae.to(device).eval(),
        unet=unet.to(device).eval(),
        scheduler=scheduler,
        text_encoder=text_encoder.to(device).eval() if text else None,
        tokenizer=tokenizer if text else None,
        prompt=prompt if prompt is not None else recorded.get("prompt", ""),
        guidance_scale=float(
            guidance_scale if guidance_scale is not None else recorded.get("guidance_scale", 1.0)
        ),
        source=source,
        provenance=provenance,
    )


def _pipeline(model: LatentDiffusion):
    """The diffusers pipeline object that represents ``model`` (components on the CPU)."""
    from diffusers import LDMPipeline, StableDiffusionPipeline

    if model.text_conditioned:
        return StableDiffusionPipeline(
            vae=model.vae.cpu(), text_encoder=model.text_encoder.cpu(), tokenizer=model.tokenizer,
            unet=model.unet.cpu(), scheduler=model.scheduler, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )  # fmt: skip
    # LDMPipeline only calls vqvae.decode(...).sample, which an AutoencoderKL also offers.
    return LDMPipeline(vqvae=model.vae.cpu(), unet=model.unet.cpu(), scheduler=model.scheduler)


def save_latent_diffusion(
    model: LatentDiffusion, out: str | Path, *, provenance: dict | None = None
) -> Path:
    """Write an ``LDMPipeline`` / ``StableDiffusionPipeline`` folder atomically (+ advsig.json)."""
    out = Path(out)
    tmp = temp_sibling_dir(out)
    was = model.device
    try:
        _pipeline(model).save_pretrained(tmp, safe_serialization=True)
    finally:
        for part in (model.vae, model.unet, model.text_encoder):
            if part is not None:
                part.to(was)
    if provenance is not None:
        if model.text_conditioned:
            provenance = {"prompt": model.prompt, "guidance_scale": model.guidance_scale,
                          **provenance}  # fmt: skip
        (tmp / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    return swap_in_dir(tmp, out)


def tiny_vq_config(latent_channels: int = 4, size: int = 32) -> dict:
    """The demo's VQModel: ``size`` px images <-> ``size / 4`` px latents (f = 4), 0.25 M
    parameters (32 px: 8x8 latents, ``ldm-32``; 64 px: 16x16, ``ldm-64``)."""
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        latent_channels=latent_channels,
        num_vq_embeddings=1024,
        vq_embed_dim=latent_channels,
        norm_num_groups=8,
        sample_size=size,
    )


def tiny_latent_unet_config(latent_size: int = 8, channels: int = 4) -> dict:
    """The demo's latent denoiser: a UNet2DModel on 8x8x4 latents, 0.7 M parameters."""
    return dict(
        sample_size=latent_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=16,
        attention_head_dim=32,
    )


def new_latent_diffusion(
    *, seed: int = 0, vae: nn.Module | None = None, size: int = 32
) -> LatentDiffusion:
    """A randomly initialised demo LDM for ``size`` px images (``vae`` reused when given, and
    then its own size counts), for pre-training.

    The schedule is LDM's (linear betas 0.0015-0.0195, 1000 steps) without x0 clipping, which
    would cut unit-variance latents.
    """
    from diffusers import DDIMScheduler, UNet2DModel, VQModel

    torch.manual_seed(seed)
    vae = vae if vae is not None else VQModel(**tiny_vq_config(size=size))
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    channels = int(vae.config.latent_channels)
    unet = UNet2DModel(**tiny_latent_unet_config(int(vae.config.sample_size) // factor, channels))
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0015, beta_end=0.0195,
        clip_sample=False,
    )  # fmt: skip
    return LatentDiffusion(vae, unet, scheduler, source=f"new:ldm-{vae.config.sample_size}")


def toy_latent_diffusion(*, seed: int = 0) -> LatentDiffusion:
    """A random LDM: VQModel (32x32 <-> 8x8x3, 32 codes) and an 8-16 channel UNet (tests)."""
    from diffusers import DDIMScheduler, UNet2DModel, VQModel

    torch.manual_seed(seed)
    vae = VQModel(
        block_out_channels=(8, 8, 16), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=1, latent_channels=3,
        num_vq_embeddings=32, vq_embed_dim=3, norm_num_groups=4, sample_size=32,
        scaling_factor=0.5,
    )  # fmt: skip
    unet = UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
        norm_num_groups=4, layers_per_block=1,
    )  # fmt: skip
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", clip_sample=False, steps_offset=1
    )
    return LatentDiffusion(vae, unet, scheduler, source="toy:latent")
