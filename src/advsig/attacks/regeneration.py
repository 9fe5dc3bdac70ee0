"""Regeneration attacks: push an image through a generative model trained on clean images.

Why these matter: a model that never saw the signature reproduces the image's content but not
its fine residual, so regeneration is the cheapest signature remover an attacker has. Two kinds:

- :class:`DiffusionPurification` noises the image to timestep ``strength * T`` of a pixel
  diffusion model's schedule and denoises it back with deterministic DDIM (SDEdit / DiffPure);
- :class:`AutoencoderReencode` encodes and decodes with a diffusers ``AutoencoderKL`` or
  ``VQModel`` (the first stage of latent diffusion).

Both accept any diffusers folder or Hub id; the defaults are models trained by the repo on clean
embedded photos (``ddpm-32`` and the shipped ``ae-tiny``). Models are loaded once per process.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from advsig.attacks.base import Attack, register_attack
from advsig.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

DEFAULT_AUTOENCODER = "ae-tiny"


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad (B, C, H, W) on the bottom/right to sides divisible by ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    return x, h, w


def _default_generator(generator: torch.Generator | None) -> torch.Generator:
    # Attacks must be repeatable: no generator means a fixed seed, never the global RNG.
    return generator if generator is not None else torch.Generator().manual_seed(0)


# ---------------------------------------------------------------------- diffusion purification
@lru_cache(maxsize=4)
def _load_pixel(model: str):
    from advsig.generators.pixel import load_pixel_diffusion

    return load_pixel_diffusion(model)


@register_attack
class DiffusionPurification(Attack):
    """Noise to timestep ``strength * T``, then denoise with DDIM (eta 0): SDEdit purification.

    Args:
        strength: fraction of the diffusion schedule in (0, 1]; 0.1 on a 1000-step DDPM noises to
            t = 100 (noise std ~0.3 of the [-1, 1] signal for the linear schedule).
        model: a pixel diffusers pipeline folder, a shipped generator name or a Hub id, or a
            loaded :class:`advsig.generators.pixel.PixelDiffusion`. Default: ``ddpm-32``, trained
            on clean embedded photos. The UNet is fully convolutional, so any image size runs
            whole (sides padded to the UNet's multiple).
        steps: DDIM steps over the *full* schedule; the attack runs the ``strength * steps``
            of them below the start timestep (5 UNet calls at strength 0.1 by default).
    """

    name = "purify"

    def __init__(self, strength: float = 0.1, model="ddpm-32", steps: int = 50) -> None:
        if not 0 < strength <= 1:
            raise ConfigError(f"purification strength must be in (0, 1], got {strength!r}")
        if steps < 1:
            raise ConfigError(f"purification steps must be >= 1, got {steps!r}")
        self.strength, self.steps = float(strength), int(steps)
        self._model = None if isinstance(model, str | Path) else model
        self.model = str(model) if isinstance(model, str | Path) else model.source

    def params(self):
        return {"strength": self.strength, "model": self.model, "steps": self.steps}

    @property
    def label(self) -> str:
        return f"purify{self.strength:g}"

    def _pipeline(self):
        if self._model is None:
            self._model = _load_pixel(self.model)
        return self._model

    def _schedule(self, scheduler) -> tuple[object, list[int]]:
        from diffusers import DDIMScheduler

        ddim = DDIMScheduler.from_config(scheduler.config)
        ddim.set_timesteps(self.steps)
        t_start = self.strength * ddim.config.num_train_timesteps
        timesteps = [int(t) for t in ddim.timesteps if t <= t_start]
        return ddim, timesteps or [int(ddim.timesteps[-1])]

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, *, generator: torch.Generator | None = None):
        if images.dim() == 3:
            return self.apply(images, generator)
        return self._purify(images, _default_generator(generator))

    def apply(self, image, generator):
        return self._purify(image[None], _default_generator(generator))[0]

    @torch.no_grad()
    def _purify(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        pipe = self._pipeline()
        unet = pipe.unet
        device = next(unet.parameters()).device
        ddim, timesteps = self._schedule(pipe.scheduler)
        multiple = 2 ** (len(unet.config.block_out_channels) - 1)
        x0, h, w = _pad_to(images.float() * 2 - 1, multiple)  # (B, 3, H', W') in [-1, 1]
        # Noise drawn image by image so a batch equals its images attacked one at a time.
        noise = torch.stack([torch.randn(x0.shape[1:], generator=generator) for _ in x0])
        t0 = torch.tensor([timesteps[0]])
        x = ddim.add_noise(x0, noise, t0).to(device)
        for t in timesteps:
            eps = unet(x, t).sample
            x = ddim.step(eps, t, x, eta=0.0).prev_sample
        return (x[..., :h, :w].float().cpu() / 2 + 0.5).clamp(0, 1).to(images.device)


# ---------------------------------------------------------------------- autoencoder re-encoding
def shipped_autoencoders() -> list[str]:
    """Names of the autoencoder folders inside the package (``advsig/attacks/shipped``)."""
    root = resources.files("advsig.attacks") / "shipped"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file())


def resolve_autoencoder(name_or_path: str | Path) -> str:
    """A local folder, a shipped autoencoder name (``ae-tiny``) or a Hub id."""
    path = Path(name_or_path)
    if path.is_dir():
        return str(path)
    name = str(name_or_path)
    if name in shipped_autoencoders():
        return str(resources.files("advsig.attacks") / "shipped" / name)
    if name.count("/") == 1 and not path.exists():
        return name
    raise ConfigError(
        f"autoencoder {name!r} is not a folder, a shipped autoencoder "
        f"({', '.join(shipped_autoencoders()) or 'none'}) or a Hub id (owner/name)"
    )


@lru_cache(maxsize=4)
def load_autoencoder(name_or_path: str):
    """A diffusers ``AutoencoderKL`` or ``VQModel`` from a folder (or its ``vae`` subfolder)."""
    from diffusers import AutoencoderKL, VQModel

    source = resolve_autoencoder(name_or_path)
    local = Path(source)
    subfolder = None
    if local.is_dir() and not (local / "config.json").is_file() and (local / "vae").is_dir():
        subfolder = "vae"  # a whole latent pipeline: use its first stage
    cls = AutoencoderKL
    config = local / (subfolder or "") / "config.json"
    if config.is_file():
        try:
            kind = json.loads(config.read_text(encoding="utf-8")).get("_class_name")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{config}: invalid JSON ({exc})") from exc
        if kind == "VQModel":
            cls = VQModel
        elif kind != "AutoencoderKL":
            raise ConfigError(f"{config}: a {kind}, expected AutoencoderKL or VQModel")
    try:
        model = cls.from_pretrained(source, subfolder=subfolder, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load autoencoder {source!r}: {exc}") from exc
    return model.eval()


@register_attack
class AutoencoderReencode(Attack):
    """Encode and decode with an autoencoder: the image comes back through its latent space.

    Deterministic: ``AutoencoderKL`` uses the posterior mean, ``VQModel`` its nearest codes.

    Args:
        model: a diffusers ``AutoencoderKL`` / ``VQModel`` folder, a latent pipeline folder (its
            ``vae``), a Hub id, a loaded model, or ``ae-tiny`` (default; trained by
            ``benchmarks/train_attack_autoencoder.py`` on clean embedded photos).
    """

    name = "reencode"

    def __init__(self, model=DEFAULT_AUTOENCODER) -> None:
        self._model = None if isinstance(model, str | Path) else model.eval()
        self.model = str(model) if isinstance(model, str | Path) else type(model).__name__

    def params(self):
        return {"model": self.model}

    @property
    def label(self) -> str:
        return f"reencode-{Path(self.model).name}"

    def _autoencoder(self):
        if self._model is None:
            self._model = load_autoencoder(self.model)
        return self._model

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, *, generator: torch.Generator | None = None):
        if images.dim() == 3:
            return self.apply(images, generator)
        return self._reencode(images)

    def apply(self, image, generator):
        return self._reencode(image[None])[0]

    @torch.no_grad()
    def _reencode(self, images: torch.Tensor) -> torch.Tensor:
        from diffusers import VQModel

        ae = self._autoencoder()
        device = next(ae.parameters()).device
        multiple = 2 ** (len(ae.config.block_out_channels) - 1)
        x, h, w = _pad_to(images.float() * 2 - 1, multiple)  # (B, 3, H', W') in [-1, 1]
        x = x.to(device)
        if isinstance(ae, VQModel):
            out = ae.decode(ae.encode(x).latents).sample
        else:
            out = ae.decode(ae.encode(x).latent_dist.mode()).sample
        return (out[..., :h, :w].float().cpu() / 2 + 0.5).clamp(0, 1).to(images.device)


def regeneration_grid(
    strengths: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3), *, autoencoder: bool = True
) -> list[Attack]:
    """The regeneration attacks with the shipped models, as data (for ``--attacks all``)."""
    grid: list[Attack] = [DiffusionPurification(s) for s in strengths]
    if autoencoder and DEFAULT_AUTOENCODER in shipped_autoencoders():
        grid.append(AutoencoderReencode())
    return grid
