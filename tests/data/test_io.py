"""Reading every kind of image file, and refusing hostile ones by name."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advsig.data.io import list_images, load_image
from advsig.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)


@pytest.fixture
def photo(photo_cache: dict[str, Path]) -> Image.Image:
    """A real 96x96 RGB photo with texture everywhere (truncation hits real data)."""
    return Image.open(photo_cache["astronaut"]).convert("RGB")


def _assert_refused(path: Path, error: type[Exception], **kwargs) -> None:
    with pytest.raises(error) as info:
        load_image(path, **kwargs)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- refused files


def test_zero_byte_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    _assert_refused(path, CorruptImageError)


def test_missing_file_is_corrupt(tmp_path: Path) -> None:
    _assert_refused(tmp_path / "nope.png", CorruptImageError)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file_is_corrupt(
    tmp_path: Path, photo: Image.Image, fmt: str, suffix: str, fraction: float
) -> None:
    full = tmp_path / f"full{suffix}"
    photo.save(full, format=fmt)
    data = full.read_bytes()
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(data[: int(len(data) * fraction)])
    _assert_refused(path, CorruptImageError)


@pytest.mark.parametrize("fraction", [0.4, 0.45])
def test_truncated_animated_gif_is_corrupt(tmp_path: Path, fraction: float) -> None:
    # Counting the frames of a damaged GIF makes PIL raise IndexError / struct.error.
    full = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (48, 48), c) for c in ("red", "green", "blue")]
    frames[0].save(full, save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = full.read_bytes()
    path = tmp_path / "truncated.gif"
    path.write_bytes(data[: int(len(data) * fraction)])
    _assert_refused(path, CorruptImageError)


def test_randomly_damaged_files_raise_only_named_errors(tmp_path: Path, photo: Image.Image) -> None:
    """Overwrite a few bytes of real files: each load succeeds in range or raises ImageError."""
    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x0112] = 6
    sources = {
        "png": (photo, {}),
        "jpg": (photo, {"exif": exif}),
        "gif": (photo, {"save_all": True, "append_images": [photo.rotate(90)]}),
        "tif": (photo, {}),
        "webp": (photo, {}),
    }
    for suffix, (im, kwargs) in sources.items():
        clean = tmp_path / f"clean.{suffix}"
        im.save(clean, **kwargs)
        data = np.frombuffer(clean.read_bytes(), dtype=np.uint8)
        for trial in range(40):
            damaged = data.copy()
            if trial % 2:
                damaged = damaged[: rng.integers(1, len(damaged))]
            else:
                at = rng.integers(0, min(len(damaged), 300), size=4)  # headers, mostly
                damaged[at] = rng.integers(0, 256, size=4)
            path = tmp_path / f"damaged-{trial}.{suffix}"
            path.write_bytes(damaged.tobytes())
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # PIL warns about corrupt EXIF
                    loaded = load_image(path)
            except ImageError as exc:
                assert str(path) in str(exc)
            else:
                assert 0 <= loaded.image.min() and loaded.image.max() <= 1


def test_text_file_with_image_suffix_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 20)
    _assert_refused(path, CorruptImageError)


def _png_claiming_size(path: Path, width: int, height: int) -> None:
    """A valid PNG signature and IHDR claiming ``width`` x ``height``, with almost no data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


@pytest.mark.parametrize("side", [10_000, 50_000])  # PIL's bomb warning, then its bomb error
def test_decompression_bomb_header_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    _png_claiming_size(path, side, side)
    assert path.stat().st_size < 200
    _assert_refused(path, ImageTooLargeError)


def test_image_above_max_pixels_is_too_large(tmp_path: Path, photo: Image.Image) -> None:
    path = tmp_path / "photo.png"
    photo.save(path)
    _assert_refused(path, ImageTooLargeError, max_pixels=96 * 96 - 1)
    assert load_image(path, max_pixels=96 * 96).image.shape == (3, 96, 96)


def test_image_below_min_side_is_too_small(tmp_path: Path) -> None:
    path = tmp_path / "thin.png"
    Image.new("RGB", (100, 20)).save(path)
    _assert_refused(path, ImageTooSmallError)
    assert load_image(path, min_side=20).image.shape == (3, 20, 100)


def test_float_image_with_nan_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    values = np.full((40, 40), 0.5, np.float32)
    values[3, 3] = np.nan
    Image.fromarray(values).save(path)
    _assert_refused(path, UnsupportedImageError)


def test_animated_gif_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (48, 48), c) for c in ("red", "green", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    _assert_refused(path, UnsupportedImageError)


# ----------------------------------------------------------------------------- accepted modes


def _pixel(loaded, x: int, y: int) -> list[float]:
    return loaded.image[:, y, x].tolist()


def test_rgb_png_round_trips_exactly(tmp_path: Path, photo: Image.Image) -> None:
    path = tmp_path / "photo.png"
    photo.save(path)
    loaded = load_image(path)
    assert loaded.image.dtype == torch.float32
    assert loaded.alpha is None and loaded.source_mode == "RGB"
    expected = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 255
    assert torch.equal(loaded.image, expected)


def test_grayscale_l_becomes_three_equal_channels(tmp_path: Path, photo: Image.Image) -> None:
    path = tmp_path / "gray.png"
    gray = photo.convert("L")
    gray.save(path)
    loaded = load_image(path)
    assert loaded.source_mode == "L" and loaded.alpha is None
    assert loaded.image.shape == (3, 96, 96)
    assert torch.equal(loaded.image[0], loaded.image[1])
    assert torch.equal(loaded.image[0], loaded.image[2])
    assert torch.equal(loaded.image[0], torch.from_numpy(np.array(gray)).float() / 255)


def test_bilevel_mode_1_becomes_black_and_white(tmp_path: Path) -> None:
    path = tmp_path / "bw.png"
    im = Image.new("1", (40, 40), 0)
    im.paste(1, (20, 0, 40, 40))  # right half white
    im.save(path)
    loaded = load_image(path)
    assert loaded.source_mode == "1"
    assert _pixel(loaded, 5, 5) == [0.0, 0.0, 0.0]
    assert _pixel(loaded, 30, 5) == [1.0, 1.0, 1.0]


def test_palette_without_transparency_gives_rgb_and_no_alpha(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    im = Image.new("RGB", (40, 40), (255, 0, 0))
    im.paste((0, 0, 255), (0, 20, 40, 40))
    im.convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    loaded = load_image(path)
    assert loaded.source_mode == "P" and loaded.alpha is None
    assert _pixel(loaded, 5, 5) == [1.0, 0.0, 0.0]
    assert _pixel(loaded, 5, 30) == [0.0, 0.0, 1.0]


def test_palette_with_transparency_returns_alpha(tmp_path: Path) -> None:
    path = tmp_path / "palette_t.png"
    im = Image.new("P", (40, 40), 1)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(0, (0, 0, 10, 40))  # left strip: index 0, declared transparent
    im.save(path, transparency=0)
    loaded = load_image(path)
    assert loaded.alpha is not None and loaded.alpha.dtype == np.uint8
    assert loaded.alpha.shape == (40, 40)
    assert (loaded.alpha[:, :10] == 0).all() and (loaded.alpha[:, 10:] == 255).all()
    assert _pixel(loaded, 20, 20) == [0.0, 1.0, 0.0]


def test_rgb_png_colour_key_becomes_alpha(tmp_path: Path) -> None:
    path = tmp_path / "keyed.png"
    im = Image.new("RGB", (40, 40), (255, 0, 0))
    im.paste((0, 255, 0), (0, 0, 10, 40))
    im.save(path, transparency=(0, 255, 0))  # tRNS chunk: pure green is transparent
    loaded = load_image(path)
    assert loaded.alpha is not None
    assert (loaded.alpha[:, :10] == 0).all() and (loaded.alpha[:, 10:] == 255).all()
    assert _pixel(loaded, 20, 20) == [1.0, 0.0, 0.0]


def test_float_image_in_unit_range_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    values = np.linspace(0, 1, 40 * 40, dtype=np.float32).reshape(40, 40)
    Image.fromarray(values).save(path)
    loaded = load_image(path)
    assert loaded.source_mode == "F"
    assert torch.allclose(loaded.image[1], torch.from_numpy(values))


def test_rgba_returns_alpha_separately(tmp_path: Path, photo: Image.Image) -> None:
    path = tmp_path / "rgba.png"
    alpha = np.tile(np.arange(96, dtype=np.uint8) * 2, (96, 1))  # (H, W) horizontal ramp
    rgba = photo.copy()
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(path)
    loaded = load_image(path)
    assert loaded.source_mode == "RGBA"
    np.testing.assert_array_equal(loaded.alpha, alpha)
    expected = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 255
    assert torch.equal(loaded.image, expected)  # colour kept, not premultiplied


def test_la_returns_gray_and_alpha(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    gray = Image.new("L", (40, 40), 128)
    alpha = Image.new("L", (40, 40), 255)
    alpha.paste(0, (0, 0, 40, 10))
    Image.merge("LA", (gray, alpha)).save(path)
    loaded = load_image(path)
    assert loaded.source_mode == "LA"
    assert loaded.image.shape == (3, 40, 40)
    assert torch.allclose(loaded.image, torch.full((3, 40, 40), 128 / 255))
    assert (loaded.alpha[:10] == 0).all() and (loaded.alpha[10:] == 255).all()


def test_16_bit_png_keeps_its_precision(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    values = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    values[0, 0], values[0, 1] = 1, 65534  # neighbours of the extremes, lost in 8 bits
    Image.fromarray(values).save(path)
    loaded = load_image(path)
    assert loaded.source_mode in ("I;16", "I")
    expected = torch.from_numpy(values.astype(np.float64) / 65535).float()
    assert (loaded.image - expected).abs().max() <= 1 / 65535
    assert loaded.image[0, 0, 0] > 0 and loaded.image[0, 0, 1] < 1
    assert loaded.image.min() >= 0 and loaded.image.max() <= 1


def test_cmyk_jpeg_is_converted_to_rgb_with_sane_colours(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    im = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # red
    im.paste((255, 255, 0, 0), (0, 32, 64, 64))  # blue bottom half
    im.save(path, quality=95)
    loaded = load_image(path)
    assert loaded.source_mode == "CMYK"
    red = torch.tensor(_pixel(loaded, 32, 8))
    blue = torch.tensor(_pixel(loaded, 32, 56))
    assert torch.allclose(red, torch.tensor([1.0, 0.0, 0.0]), atol=0.1)
    assert torch.allclose(blue, torch.tensor([0.0, 0.0, 1.0]), atol=0.1)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    im = Image.new("RGB", (64, 48), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 16, 16))  # white mark at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    im.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.image.shape == (3, 64, 48)  # width and height swapped
    h, w = loaded.image.shape[1:]
    assert loaded.image[:, 4, w - 5].mean() > 0.9  # the mark is now at the top-right
    assert loaded.image[:, 4, 4].mean() < 0.1


def test_single_frame_gif_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "still.gif"
    Image.new("RGB", (48, 40), (255, 0, 0)).save(path)
    loaded = load_image(path)
    assert loaded.image.shape == (3, 40, 48)
    assert _pixel(loaded, 10, 10) == [1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- listing


def test_list_images_recurses_sorts_and_skips_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    wanted = [tmp_path / "a.PNG", tmp_path / "b" / "deep" / "c.jpg", tmp_path / "b" / "z.webp"]
    skipped = [
        tmp_path / ".hidden.png",
        tmp_path / ".cache" / "x.png",
        tmp_path / "b" / ".out.png.tmp-123",
        tmp_path / "notes.txt",
    ]
    for p in wanted + skipped:
        p.write_bytes(b"x")
    assert list_images(tmp_path) == sorted(wanted)
    assert list_images(wanted[1]) == [wanted[1]]


def test_list_images_of_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        list_images(tmp_path / "nothing-here")
