"""Sampling any generator: per-image seeds and resumable folders of samples (family-neutral)."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from advsig.data.writers import save_image


def initial_noise(index: int, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The starting noise of sample ``index``: fixed by (seed, index), whatever the batching.

    Why: a resumed or sharded run must produce exactly the images an uninterrupted one would.
    """
    gen = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return torch.randn(shape, generator=gen)


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
