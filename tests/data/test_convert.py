"""Images as people hold them, through Kit.sign / Kit.detect and the one-liner API."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import advsig
from advsig.data.datasets import embedded_image, fit_within
from advsig.data.io import to_uint8
from advsig.errors import CorruptImageError, ImageTooSmallError, UnsupportedImageError
from advsig.kit import Kit

CODE = "beef"


@pytest.fixture(scope="module")
def kit() -> Kit:
    """The shipped 16-bit kit for small images: real weights, so detection really works."""
    return advsig.load_kit("small")


def _photo(name: str = "astronaut", size: int = 96) -> Image.Image:
    return Image.fromarray(to_uint8(fit_within(embedded_image(name), size)))


def test_pil_in_pil_out_detected_with_its_code(kit: Kit):
    photo = _photo()
    signed = kit.sign(photo, code=CODE)
    assert isinstance(signed, Image.Image) and signed.size == photo.size and signed.mode == "RGB"
    diff = np.abs(np.asarray(signed, np.int16) - np.asarray(photo, np.int16))
    assert 0 < diff.mean() < 3  # changed, and nearly invisibly
    (hit,) = kit.detect(signed)
    (miss,) = kit.detect(photo)
    assert hit.is_signed and hit.bits == CODE.zfill(kit.num_bits // 4)
    assert not miss.is_signed


def test_rgba_alpha_is_kept_and_lists_stay_lists(kit: Kit):
    rgba = _photo("coffee").convert("RGBA")
    alpha = np.zeros(rgba.size[::-1], np.uint8)
    alpha[:, ::2] = 255
    rgba.putalpha(Image.fromarray(alpha))
    gray = _photo("camera").convert("L")
    out = kit.sign([rgba, gray], code=CODE)
    assert isinstance(out, list) and [im.mode for im in out] == ["RGBA", "RGB"]
    assert np.array_equal(np.asarray(out[0].getchannel("A")), alpha)
    assert all(r.is_signed for r in kit.detect(out))


def test_numpy_keeps_dtype_and_shape(kit: Kit):
    arr = np.asarray(_photo("chelsea"))  # uint8 (H, W, 3)
    signed = kit.sign(arr, code=CODE)
    assert signed.dtype == np.uint8 and signed.shape == arr.shape
    batch = kit.sign(np.stack([arr, arr]), code=CODE)
    assert batch.shape == (2, *arr.shape) and np.array_equal(batch[0], signed)
    floats = kit.sign(arr.astype(np.float32) / 255, code=CODE)
    assert floats.dtype == np.float32 and np.abs(floats * 255 - signed).max() <= 1
    assert kit.detect(signed)[0].is_signed and not kit.detect(arr)[0].is_signed


def test_same_signature_as_the_tensor_path(kit: Kit):
    photo = _photo("coffee")
    tensor = torch.from_numpy(np.asarray(photo).transpose(2, 0, 1).copy()).float() / 255
    via_tensor = to_uint8(kit.sign(tensor, code=CODE))
    via_pil = np.asarray(kit.sign(photo, code=CODE))
    assert np.abs(via_tensor.astype(int) - via_pil).max() <= 1


def test_paths_in_pil_out_and_results_name_the_file(kit: Kit, tmp_path: Path):
    src = tmp_path / "photo.png"
    _photo().save(src)
    before = src.read_bytes()
    signed = kit.sign(src, code=CODE)
    assert isinstance(signed, Image.Image) and src.read_bytes() == before  # input untouched
    signed.save(tmp_path / "signed.png")
    results = kit.detect([tmp_path / "signed.png", str(src)])
    assert [r.is_signed for r in results] == [True, False]
    assert results[0].path == str(tmp_path / "signed.png")


def test_bad_inputs_are_refused_by_name(kit: Kit, tmp_path: Path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(CorruptImageError, match="broken.png"):
        kit.sign(broken)
    with pytest.raises(ImageTooSmallError, match="smaller than the minimum side"):
        kit.detect(Image.new("RGB", (16, 16)))
    with pytest.raises(UnsupportedImageError, match="dtype int64"):
        kit.sign(np.zeros((64, 64, 3), np.int64))
    with pytest.raises(UnsupportedImageError, match=r"\[0, 1\]"):
        kit.sign(np.full((64, 64, 3), 2.0, np.float32))
    with pytest.raises(UnsupportedImageError, match="shape"):
        kit.sign(np.zeros((64, 64, 5), np.uint8))
    with pytest.raises(UnsupportedImageError, match="dict is not an image"):
        kit.detect([{}])


def test_one_liner_api(tmp_path: Path):
    photo = _photo("chelsea")
    signed = advsig.sign(photo, code=CODE, kit="small")
    assert isinstance(signed, Image.Image)
    assert advsig.detect(signed, kit="small")[0].is_signed
    assert not advsig.detect(photo, kit="small")[0].is_signed
    assert advsig.load_kit("small").num_bits == 16
