"""Content-mask statistics behind docs/signature-v2.md: across images, across keys, and after
light processing (cosine of the mask with itself), on 200 crops of the test and val photos.

    python benchmarks/probe_mask.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advsig.attacks import JPEG, Brightness, GaussianNoise
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.modules.binding import ContentBinding


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def main() -> None:
    pool = ImagePool([im for s in ("test", "val") for _, im in embedded_images(s)], max_side=512)
    for cell, tile in ((8, 96), (4, 32)):
        x = RandomCrops(pool, tile).sample(200, torch.Generator().manual_seed(0))
        mask = ContentBinding(cell=cell, channels=8, key=b"a" * 32)
        m = mask(x)
        across = cos(m, m.roll(1, dims=0))
        other = cos(ContentBinding(cell=cell, channels=8, key=b"b" * 32)(x), m)
        g = torch.Generator().manual_seed(1)
        half = F.interpolate(F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True),
                             size=(tile, tile), mode="bilinear")  # fmt: skip
        kept = {repr(a): cos(mask(a(x, generator=g)), m).mean().item()
                for a in (JPEG(90), JPEG(50), GaussianNoise(0.02), Brightness(1.3))}  # fmt: skip
        kept["resize 0.5 and back"] = cos(mask(half), m).mean().item()
        print(f"cell {cell}, tile {tile}: |M| mean {m.abs().mean():.2f}; across images "
              f"{across.mean():.3f} +- {across.std():.3f}; other key {other.mean():.3f}; "
              + ", ".join(f"{k} {v:.3f}" for k, v in kept.items()))  # fmt: skip


if __name__ == "__main__":
    main()
