"""Content binding: the keyed mask a v2 signature is modulated by."""

from __future__ import annotations

import pytest
import torch

from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.models.factory import create_model
from advsig.modules import binding
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


@pytest.mark.parametrize(
    ("shape", "sigma"), [((2, 3, 96, 96), 4.0), ((1, 3, 37, 53), 1.0), ((2, 1, 9, 12), 4.0)]
)
def test_highpass_by_banded_products_equals_the_depthwise_blur(monkeypatch, shape, sigma) -> None:
    """The fast path (matrix products) and the large-image path (depthwise convolutions) give
    the same high-pass, including images smaller than the kernel (replicate padding)."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    fast = highpass(x, sigma)
    monkeypatch.setattr(binding, "_BAND_MAX_SIDE", 0)
    torch.testing.assert_close(fast, highpass(x, sigma), atol=1e-6, rtol=0)


def test_highpass_band_built_under_inference_mode_still_trains() -> None:
    """The band matrix is cached; one first built during detection must serve autograd later."""
    with torch.inference_mode():
        highpass(torch.rand(1, 3, 41, 43), 2.0)
    x = torch.rand(1, 3, 41, 43, requires_grad=True)
    highpass(x, 2.0).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_contrast_floor_stops_a_transplant_from_bringing_its_own_mask() -> None:
    x = _crops(64, 64, seed=3)
    contrast = highpass(x.mean(1, keepdim=True), 2.0).flatten(1).std(1)
    flat, textured = x[contrast.argsort()[:8]], x[contrast.argsort()[-8:]]
    # The attacker's lift: a textured image's high-pass at 40 dB (RMS 0.01), moved onto flat crops.
    lift = highpass(textured, 1.0)
    lift = lift * (0.01 / lift.square().mean(dim=(1, 2, 3), keepdim=True).sqrt())
    forged = (flat + lift).clamp(0, 1)

    def pull(mask: ContentBinding) -> float:
        """How far the forgery moves the flat crop's mask toward the source's own mask."""
        return float(((mask(forged) - mask(flat)) * mask(textured)).mean())

    key = b"k" * 32
    plain, floored = (
        ContentBinding(cell=8, channels=8, key=key),
        ContentBinding(cell=8, channels=8, key=key, floor=0.012),
    )
    assert pull(plain) > 0.02  # without a floor the lift sets its own mask on flat regions
    assert pull(floored) < 0.4 * pull(plain)  # measured: 0.039 -> 0.010
    # On textured images the floor leaves the mask nearly as it was (old kits: floor 0).
    assert _cos(floored(textured), plain(textured)).mean() > 0.9
    assert floored(flat).abs().mean() < 0.6 * plain(flat).abs().mean()


def test_dense_mask_moves_with_the_image_where_the_cell_grid_does_not() -> None:
    x = _crops(16, 128)
    dense = ContentBinding(cell=8, channels=8, key=b"k" * 32, dense=True, floor=0.012)
    cells = ContentBinding(cell=8, channels=8, key=b"k" * 32, floor=0.012)
    assert torch.allclose(dense(1 - x), -dense(x), atol=1e-3)  # still odd in contrast
    for mask in (dense, cells):
        m = mask(x)
        agree = []
        for d in (1, 3, 5):  # a crop d px off the grid, compared away from the borders
            moved = mask(x[..., d : d + 96, d : d + 96])[..., 16:80, 16:80]
            agree.append(_cos(moved, m[..., d + 16 : d + 80, d + 16 : d + 80]).mean())
        if mask is dense:
            assert min(agree) > 0.97
        else:
            assert min(agree) < 0.8  # the cell grid moved against the image
    # A dense mask is only nearly out of W's reach (see ``remove_cell_means``).
    torch.manual_seed(0)
    w = create_model("injector-tiny", num_bits=8, binding_dense=True)
    with torch.no_grad():
        w.out.weight.normal_(0.0, 0.05)
        xs = x[:4, :, :64, :64]
        res = w.residual(xs, torch.randint(0, 2, (4, 8)))
        assert (w.binding(xs + res) - w.binding(xs)).abs().mean() < 0.05
