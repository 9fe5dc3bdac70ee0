"""Pixel-space diffusion pipelines (diffusers ``UNet2DModel`` + a noise scheduler).

advsig reads and writes plain diffusers folders, so a signed model loads with
``DDPMPipeline.from_pretrained(folder)`` and no advsig installed. The exception is a model
fine-tuned with a position map (:func:`with_position_map`): diffusers has no place for it, so
plain diffusers drops it (with a warning about the unused weight) and only advsig loads the
model whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from tqdm.auto import tqdm

from advsig.errors import CheckpointError, ConfigError
from advsig.generators.folders import PROVENANCE_NAME, resolve_model_path
from advsig.generators.sampling import initial_noise
from advsig.utils import swap_in_dir, temp_sibling_dir


@dataclass
class PixelDiffusion:
    """A denoiser and the scheduler it was trained with (a :class:`GeneratorModel`)."""

    family = "pixel"
    unet: torch.nn.Module  # diffusers UNet2DModel
    scheduler: object  # diffusers SchedulerMixin (DDPMScheduler, DDIMScheduler, ...)
    source: str = ""
    provenance: dict | None = None

    @property
    def sample_size(self) -> int:
        size = self.unet.config.sample_size
        return int(size if isinstance(size, int) else size[0])

    @property
    def in_channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def prediction_type(self) -> str:
        return str(getattr(self.scheduler.config, "prediction_type", "epsilon"))

    def sample(
        self, indices: list[int], *, seed: int = 0, steps: int = 50, batch_size: int = 64
    ) -> torch.Tensor:
        """Deterministic DDIM (eta 0) samples, float (N, 3, s, s) in [0, 1]."""
        return sample_images(self, indices, steps=steps, seed=seed, batch_size=batch_size)

    def save(self, out: str | Path, *, provenance: dict | None = None) -> Path:
        return save_pixel_diffusion(self, out, provenance=provenance)


# The learned map's key in the UNet's weights file (a parameter of its last GroupNorm).
POSITION_MAP_KEY = "conv_norm_out.position_map"


def _add_position_map(norm: torch.nn.Module, args: tuple) -> tuple:
    return (args[0] + norm.position_map, *args[1:])  # (B, C, s, s) + (C, s, s)


def with_position_map(model: PixelDiffusion) -> PixelDiffusion:
    """Give the UNet a learned per-pixel map (C, s, s), zero at first, added to its last features
    (the input of ``conv_norm_out``, before the final normalisation, SiLU and convolution).

    Why: a keyed, content-bound signature is carriers fixed to the kit's tile grid times a mask of
    the image's own content. A convolutional UNet cannot tell grid positions apart away from the
    borders, so at 64 px (four 32 px tiles) it did not learn the carriers at all (BENCHMARKS.md,
    stop 34); the map holds them and the nonlinearity after it lets the content modulate them.
    Zero at first, so the model's function is unchanged until training moves it. Idempotent.
    """
    norm = model.unet.conv_norm_out
    if getattr(norm, "position_map", None) is None:
        size = model.sample_size
        device = norm.weight.device
        norm.register_parameter(
            "position_map",
            torch.nn.Parameter(torch.zeros(norm.num_channels, size, size, device=device)),
        )
        norm.register_forward_pre_hook(_add_position_map)
    return model


def has_position_map(model: PixelDiffusion) -> bool:
    return getattr(model.unet.conv_norm_out, "position_map", None) is not None


def _saved_position_map(unet) -> torch.Tensor | None:
    """The position map stored in the UNet's weights file, if the model was saved with one."""
    folder = Path(str(getattr(unet.config, "_name_or_path", "") or ""))
    weights = folder / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        return None
    with safe_open(weights, framework="pt") as f:
        return f.get_tensor(POSITION_MAP_KEY) if POSITION_MAP_KEY in f.keys() else None


def load_pixel_diffusion(name_or_path: str | Path, *, device: str | torch.device = "cpu"):
    """Load a diffusers pixel pipeline folder (or Hub id) as :class:`PixelDiffusion`.

    Refuses latent pipelines by name: their images come out of a VAE decoder, and signing them
    needs the latent-diffusion recipes.
    """
    from diffusers import DiffusionPipeline, UNet2DModel

    source = resolve_model_path(name_or_path)
    local = Path(source)
    if local.is_dir():
        index = local / "model_index.json"
        if not index.is_file():
            raise CheckpointError(f"{local}: no model_index.json; not a diffusers pipeline folder")
        try:
            components = json.loads(index.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{index}: invalid JSON ({exc})") from exc
        latent = {"vae", "vqvae"} & set(components)
        if latent:
            raise ConfigError(
                f"{local} is a latent pipeline ({components.get('_class_name')}, with "
                f"{sorted(latent)[0]}); this command signs pixel-space pipelines"
            )
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # the position map is an unused weight to diffusers
    try:
        pipe = DiffusionPipeline.from_pretrained(source, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load diffusion pipeline {source!r}: {exc}") from exc
    finally:
        diffusers_logging.set_verbosity(verbosity)
    unet = getattr(pipe, "unet", None)
    scheduler = getattr(pipe, "scheduler", None)
    if not isinstance(unet, UNet2DModel) or scheduler is None:
        raise ConfigError(
            f"{source!r} is a {type(pipe).__name__}; expected a pixel pipeline with a "
            "UNet2DModel and a scheduler (e.g. DDPMPipeline)"
        )
    provenance = None
    if local.is_dir() and (local / PROVENANCE_NAME).is_file():
        provenance = json.loads((local / PROVENANCE_NAME).read_text(encoding="utf-8"))
    model = PixelDiffusion(unet, scheduler, source, provenance)
    saved_map = _saved_position_map(unet)
    if saved_map is not None:
        expected = (unet.conv_norm_out.num_channels, model.sample_size, model.sample_size)
        if tuple(saved_map.shape) != expected:
            raise CheckpointError(
                f"{source}: {POSITION_MAP_KEY} has shape {tuple(saved_map.shape)}, expected {expected}"
            )
        with torch.no_grad():
            with_position_map(model).unet.conv_norm_out.position_map.copy_(saved_map)
    model.unet.to(device).eval()
    return model


def save_pixel_diffusion(model: PixelDiffusion, out: str | Path, *, provenance: dict | None = None):
    """Write a ``DDPMPipeline`` folder atomically (temporary sibling, then rename)."""
    from diffusers import DDPMPipeline

    out = Path(out)
    tmp = temp_sibling_dir(out)
    unet = model.unet
    was_device = next(unet.parameters()).device
    DDPMPipeline(unet=unet.cpu(), scheduler=model.scheduler).save_pretrained(
        tmp, safe_serialization=True
    )
    unet.to(was_device)
    if provenance is not None:
        (tmp / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    return swap_in_dir(tmp, out)


def tiny_unet_config(sample_size: int = 32) -> dict:
    """A small ``UNet2DModel`` (0.69 M parameters) that trains on a CPU: the demo DDPM."""
    return dict(
        sample_size=sample_size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=32,
    )


def new_pixel_diffusion(
    sample_size: int = 32, *, seed: int = 0, **unet_overrides
) -> PixelDiffusion:
    """A randomly initialised tiny DDPM (UNet2DModel + 1000-step DDPM schedule), for pre-training."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(**{**tiny_unet_config(sample_size), **unet_overrides})
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    return PixelDiffusion(unet, scheduler, source=f"new:{sample_size}")


def toy_pixel_diffusion(*, seed: int = 0) -> PixelDiffusion:
    """A random 32x32 DDPM with an 8-16 channel UNet: a training step in milliseconds (tests)."""
    return new_pixel_diffusion(
        32, seed=seed, block_out_channels=(8, 16), down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2, norm_num_groups=4, attention_head_dim=8,
    )  # fmt: skip


@torch.inference_mode()
def sample_images(
    model: PixelDiffusion,
    indices: range | list[int],
    *,
    steps: int = 50,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> torch.Tensor:
    """Samples ``indices`` of the model's deterministic DDIM (eta 0) stream: float (N, 3, s, s)."""
    from diffusers import DDIMScheduler

    indices = list(indices)
    device = next(model.unet.parameters()).device
    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(steps)
    s, c = model.sample_size, model.in_channels
    out = []
    bar = tqdm(total=len(indices), desc="sample", unit="img", disable=not progress)
    model.unet.eval()
    for k in range(0, len(indices), batch_size):
        chunk = indices[k : k + batch_size]
        x = torch.stack([initial_noise(i, seed, (c, s, s)) for i in chunk]).to(device)
        for t in scheduler.timesteps:
            eps = model.unet(x, t).sample
            x = scheduler.step(eps, t, x, eta=0.0).prev_sample
        out.append((x / 2 + 0.5).clamp(0, 1).float().cpu())
        bar.update(len(chunk))
    bar.close()
    return torch.cat(out) if out else torch.empty(0, c, s, s)
