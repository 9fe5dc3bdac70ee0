"""Saving images: atomic, alpha kept in PNG, refused in JPEG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advsig.data.io import load_image
from advsig.data.writers import save_image
from advsig.errors import OutputError, UnsupportedImageError


@pytest.fixture
def image() -> torch.Tensor:
    torch.manual_seed(0)
    return (torch.rand(3, 40, 48) * 255).round() / 255  # exactly representable in 8 bits


def test_png_round_trip_is_lossless_and_leaves_no_temp_files(
    tmp_path: Path, image: torch.Tensor
) -> None:
    out = tmp_path / "new" / "nested" / "out.png"
    save_image(image, out)
    assert torch.equal(load_image(out).image, image)
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.png"]


def test_save_replaces_an_existing_file_whole(tmp_path: Path, image: torch.Tensor) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"old contents")
    save_image(image, out)
    assert torch.equal(load_image(out).image, image)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failed_replace_leaves_no_temp_file(tmp_path: Path, image: torch.Tensor) -> None:
    out = tmp_path / "out.png"
    out.mkdir()  # the encoded temp file cannot replace a folder
    with pytest.raises(OSError):
        save_image(image, out)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert out.is_dir() and list(out.iterdir()) == []


def test_alpha_round_trips_in_png(tmp_path: Path, image: torch.Tensor) -> None:
    out = tmp_path / "out.png"
    alpha = np.tile(np.arange(48, dtype=np.uint8) * 5, (40, 1))  # (H, W)
    save_image(image, out, alpha=alpha)
    loaded = load_image(out)
    np.testing.assert_array_equal(loaded.alpha, alpha)
    assert torch.equal(loaded.image, image)


def test_alpha_with_jpeg_is_refused_and_nothing_written(
    tmp_path: Path, image: torch.Tensor
) -> None:
    out = tmp_path / "out.jpg"
    with pytest.raises(UnsupportedImageError, match="alpha") as info:
        save_image(image, out, alpha=np.full((40, 48), 255, np.uint8), format="jpeg")
    assert str(out) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_jpeg_quality_changes_file_size(tmp_path: Path, image: torch.Tensor) -> None:
    save_image(image, tmp_path / "q95.jpg", format="jpeg", quality=95)
    save_image(image, tmp_path / "q30.jpg", format="jpeg", quality=30)
    assert Image.open(tmp_path / "q95.jpg").format == "JPEG"
    assert (tmp_path / "q30.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size


@pytest.mark.parametrize("kwargs", [{"format": "gif"}, {"format": "jpeg", "quality": 0}])
def test_bad_options_are_refused(tmp_path: Path, image: torch.Tensor, kwargs: dict) -> None:
    with pytest.raises(OutputError):
        save_image(image, tmp_path / "out", **kwargs)
