"""Capture chains: other codecs, recompression, uploads and screenshots behave as named."""

from __future__ import annotations

import pytest
import torch

from advsig.attacks import (
    AVIF,
    JPEG,
    Recompress,
    Screenshot,
    SocialMedia,
    WebP,
    capture_grid,
    create_attack,
)
from advsig.bench.runner import resolve_attacks
from advsig.data.datasets import embedded_image, fit_within
from advsig.errors import ConfigError


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return fit_within(embedded_image("coffee"), 96)  # (3, 64, 96)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).square().mean()))


@pytest.mark.parametrize("attack", capture_grid(), ids=lambda a: a.label)
def test_capture_attacks_keep_layout_range_and_are_repeatable(attack, photo):
    out = attack(photo, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and out.shape[0] == 3
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    again = attack(photo, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # codecs and resampling are deterministic


def test_lower_quality_loses_more(photo):
    for strong, weak in [(WebP(90), WebP(50)), (AVIF(80), AVIF(60))]:
        assert _psnr(strong(photo), photo) > _psnr(weak(photo), photo) + 1
        assert _psnr(weak(photo), photo) < 45  # a real lossy round trip, not a copy


def test_recompression_is_repeated_jpeg(photo):
    three = Recompress(75, times=3)(photo)
    manual = JPEG(75)(JPEG(75)(JPEG(75)(photo)))
    assert torch.equal(three, manual)
    assert not torch.equal(three, JPEG(75)(photo))
    assert Recompress(75, times=3).label == "jpeg75x3"


def test_social_media_shrinks_then_compresses(photo):
    out = SocialMedia(0.5, 80)(photo)
    assert out.shape[-2:] == (32, 48)
    same_size = SocialMedia(1.0, 80)(photo)
    assert torch.equal(same_size, JPEG(80)(photo))


def test_screenshot_rescales_and_quantises(photo):
    out = Screenshot(1.5)(photo)
    assert out.shape[-2:] == (96, 144)
    assert torch.equal(out, (out * 255).round() / 255)  # an 8-bit capture
    assert Screenshot(0.8)(photo).shape[-2:] == (51, 77)


def test_capture_spec_and_labels_resolve():
    grid = resolve_attacks("capture")
    assert [a.label for a in grid] == [a.label for a in capture_grid()]
    picked = resolve_attacks("webp50,social0.5-q70,jpeg75")
    assert [a.label for a in picked] == ["webp50", "social0.5-q70", "jpeg75"]
    assert isinstance(create_attack("webp", 60), WebP)


@pytest.mark.parametrize(
    "build",
    [lambda: WebP(0), lambda: AVIF(101), lambda: Recompress(80, times=0),
     lambda: SocialMedia(1.5), lambda: Screenshot(10)],
)  # fmt: skip
def test_bad_settings_are_refused_by_name(build):
    with pytest.raises(ConfigError):
        build()
