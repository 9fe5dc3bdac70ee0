"""Pixel-space diffusion pipelines (diffusers ``UNet2DModel`` + a noise scheduler).

advsig reads and writes plain diffusers folders, so a signed model loads with
``DDPMPipeline.from_pretrained(folder)`` and no advsig installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from advsig.errors import CheckpointError, ConfigError
from advsig.utils import swap_in_dir, temp_sibling_dir

# Written next to model_index.json by advsig: what was done to the model (ignored by diffusers).
PROVENANCE_NAME = "advsig.json"


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
        from advsig.generators.sampling import sample_images

        return sample_images(self, indices, steps=steps, seed=seed, batch_size=batch_size)

    def save(self, out: str | Path, *, provenance: dict | None = None) -> Path:
        return save_pixel_diffusion(self, out, provenance=provenance)


def shipped_generators() -> list[str]:
    """Names of the generator folders inside the package (``advsig/generators/shipped``)."""
    root = resources.files("advsig.generators") / "shipped"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def resolve_model_path(name_or_path: str | Path) -> str:
    """A local folder, a shipped generator name, or a Hub id (returned as is for diffusers)."""
    path = Path(name_or_path)
    if path.is_dir():
        return str(path)
    name = str(name_or_path)
    if name in shipped_generators():
        return str(resources.files("advsig.generators") / "shipped" / name)
    if name.count("/") == 1 and not path.exists():
        return name
    raise ConfigError(
        f"model {name!r} is not a folder, a shipped generator "
        f"({', '.join(shipped_generators()) or 'none'}) or a Hub id (owner/name)"
    )


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
    try:
        pipe = DiffusionPipeline.from_pretrained(source, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load diffusion pipeline {source!r}: {exc}") from exc
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
    return PixelDiffusion(unet.to(device).eval(), scheduler, source, provenance)


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
