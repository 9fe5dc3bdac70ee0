"""What every generator family offers advsig, and loading any of them by folder or name.

Three families (registered in :mod:`advsig.generators.families`), one interface
(:class:`GeneratorModel`): ``pixel`` (diffusers UNet2DModel
pipelines, :mod:`advsig.generators.pixel`), ``latent`` (LDMPipeline with a VQModel,
Stable Diffusion-style folders with an AutoencoderKL, :mod:`advsig.generators.latent`) and
``gan`` (a latent-to-image ``nn.Module`` factory with safetensors weights,
:mod:`advsig.generators.gan`). Sampling, generation folders, evaluation and the demo only use
this interface, so they work for all three.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from advsig.errors import CheckpointError, ConfigError
from advsig.generators.families import get_family
from advsig.generators.folders import GAN_CONFIG_NAME, resolve_model_path


@runtime_checkable
class GeneratorModel(Protocol):
    """A generator advsig can sample, sign and save.

    ``sample`` is deterministic per (seed, index), whatever the batching, so resumed or
    sharded generation gives the images an uninterrupted run would, and two models sampled
    with the same seed give paired images.
    """

    family: str
    source: str
    provenance: dict | None

    @property
    def sample_size(self) -> int: ...

    def sample(
        self, indices: list[int], *, seed: int = 0, steps: int = 50, batch_size: int = 64
    ) -> torch.Tensor:
        """Float (N, 3, s, s) in [0, 1]. ``steps`` is ignored by one-step generators (GANs)."""
        ...

    def save(self, out: str | Path, *, provenance: dict | None = None) -> Path:
        """Write a folder that :func:`load_generator` (and diffusers, for diffusion) loads."""
        ...


def generator_family(name_or_path: str | Path) -> str:
    """``pixel``, ``latent`` or ``gan`` for a folder, shipped name or Hub id (Hub ids: diffusers)."""
    local = Path(resolve_model_path(name_or_path))
    if not local.is_dir():
        return _hub_family(str(local))
    if (local / GAN_CONFIG_NAME).is_file():
        return "gan"
    index = local / "model_index.json"
    if not index.is_file():
        raise CheckpointError(
            f"{local}: neither a diffusers pipeline (model_index.json) nor an advsig GAN "
            f"folder ({GAN_CONFIG_NAME})"
        )
    return _family_from_index(_read_json(index), str(local))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc


def _family_from_index(components: dict, source: str) -> str:
    if {"vae", "vqvae"} & set(components):
        return "latent"
    if "unet" in components:
        return "pixel"
    raise ConfigError(
        f"{source}: pipeline {components.get('_class_name')!r} has neither a UNet nor a VAE; "
        "advsig signs pixel and latent diffusion pipelines and GANs"
    )


def _hub_family(repo_id: str) -> str:
    from huggingface_hub import hf_hub_download

    try:
        index = hf_hub_download(repo_id, "model_index.json")
    except Exception as exc:  # network, missing repo, gated: say which
        raise CheckpointError(
            f"cannot read model_index.json of Hub model {repo_id!r}: {exc}"
        ) from exc
    return _family_from_index(_read_json(Path(index)), repo_id)


def load_generator(name_or_path: str | Path, *, device: str | torch.device = "cpu"):
    """Load any supported generator as a :class:`GeneratorModel` (its family's loader)."""
    return get_family(generator_family(name_or_path)).load(name_or_path, device=device)
