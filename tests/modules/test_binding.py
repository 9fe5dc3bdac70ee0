"""Content binding: the keyed mask a v2 signature is modulated by."""

from __future__ import annotations

import torch

from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.models.factory import create_model
from advsig.modules.binding import ContentBinding, highpass


def _crops(n: int, size: int, seed: int = 0) -> torch.Tensor:
    pool = ImagePool([img for _, img in embedded_images("test")], max_side=256)
    return RandomCrops(pool, size).sample(n, torch.Generator().manual_seed(seed))


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def test_mask_is_keyed_bounded_and_odd_in_contrast() -> None:
    x = _crops(16, 64)
    one = ContentBinding(cell=8, channels=8, key=b"a" * 32)
    m = one(x)
    assert m.shape == (16, 1, 64, 64) and m.abs().max() < 1
    assert torch.equal(m, ContentBinding(cell=8, channels=8, key=b"a" * 32)(x))
    other = ContentBinding(cell=8, channels=8, key=b"b" * 32)(x)
    assert _cos(m, other).abs().mean() < 0.3  # another key: an unrelated mask
    # Odd in contrast (no biases, tanh): the photographic negative gets the opposite mask,
    # which is why the mean mask over many images tends to zero.
    assert torch.allclose(one(1 - x), -m, atol=1e-3)


def test_mask_differs_across_images_and_survives_light_processing() -> None:
    x = _crops(32, 64)
    b = ContentBinding(cell=8, channels=8, key=b"k" * 32)
    m = b(x)
    across = _cos(m, m.roll(1, dims=0))
    assert across.abs().mean() < 0.2
    noisy = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(
        0, 1
    )
    assert _cos(b(noisy), m).mean() > 0.9
    assert _cos(b((x * 1.3).clamp(0, 1)), m).mean() > 0.85  # brightness: normalised away


def test_injector_cannot_move_the_mask_it_is_read_with() -> None:
    torch.manual_seed(0)
    w = create_model("injector-tiny", num_bits=8)
    with torch.no_grad():
        w.out.weight.normal_(0.0, 0.05)  # a learned, image-dependent gain map
    x = _crops(4, 64)
    res = w.residual(x, torch.randint(0, 2, (4, 8)))
    cells = torch.nn.functional.avg_pool2d(res, 8).abs()
    # Zero mean in every mask cell, up to the few pixels clipped at the +-max_delta bound.
    assert cells.median() < 1e-8 and cells.max() < 0.01 * w.config.max_delta
    assert torch.allclose(w.binding(x + res), w.binding(x), atol=1e-3)


def test_highpass_removes_constants() -> None:
    flat = torch.full((1, 3, 40, 40), 0.3)
    assert highpass(flat, 4.0).abs().max() < 1e-6
