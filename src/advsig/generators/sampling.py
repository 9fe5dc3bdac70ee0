"""Sampling: deterministic DDIM for pixel diffusion, per-image seeds, resumable folders of any generator."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from advsig.data.writers import save_image
from advsig.generators.pixel import PixelDiffusion


def initial_noise(index: int, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The starting noise of sample ``index``: fixed by (seed, index), whatever the batching.

    Why: a resumed or sharded run must produce exactly the images an uninterrupted one would.
    """
    gen = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return torch.randn(shape, generator=gen)


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


def sample_name(index: int) -> str:
    return f"sample-{index:06d}.png"


def generate_to_folder(
    model,
    out: str | Path,
    num_images: int,
    *,
    steps: int = 50,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
) -> list[Path]:
    """Write ``sample-000000.png`` ... atomically; samples already on disk are kept (resume).

    ``model`` is any :class:`advsig.generators.base.GeneratorModel`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / sample_name(i) for i in range(num_images)]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    bar = tqdm(total=num_images, initial=num_images - len(todo), desc="generate", unit="img",
               disable=not progress)  # fmt: skip
    for k in range(0, len(todo), batch_size):
        chunk = todo[k : k + batch_size]
        images = model.sample(chunk, steps=steps, seed=seed, batch_size=batch_size)
        for i, img in zip(chunk, images):
            save_image(img, paths[i])
        bar.update(len(chunk))
    bar.close()
    return paths
