"""Signing files and folder trees: layout kept, resumable, bad files reported, inputs untouched."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advsig.data.io import load_image
from advsig.errors import CodeError, OutputError
from advsig.kit import Kit
from advsig.signing import plan_outputs, sign_files


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) by relative path, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _digests(root: Path) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in _tree(root).items()}


def _sign(kit: Kit, src: Path, dst: Path, **kwargs):
    return sign_files(kit, src, dst, progress=False, **kwargs)


def test_folder_tree_keeps_relative_paths_with_png_suffix(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "signed"
    results = _sign(tiny_kit, photo_folder, dst, code="a5")
    assert sorted(_tree(dst)) == ["a.png", "b.png", "sub/c.png", "sub/deeper/d.png"]
    assert [r.status for r in results] == ["signed"] * 4
    for r in results:
        src, out = Path(r.src), Path(r.dst)
        assert out == dst / src.relative_to(photo_folder).with_suffix(".png")
        before, after = load_image(src).image, load_image(out).image
        assert after.shape == before.shape
        assert not torch.equal(after, before)  # the signature changed pixels
        assert math.isfinite(r.psnr) and r.psnr > 0 and r.error is None


def test_inputs_are_byte_identical_after_signing(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    before = _digests(photo_folder)
    _sign(tiny_kit, photo_folder, tmp_path / "signed")
    assert _digests(photo_folder) == before


def test_no_temporary_files_are_left_behind(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "signed"
    _sign(tiny_kit, photo_folder, dst, batch_size=3)
    leftovers = [p for p in dst.rglob("*") if p.name.startswith(".") or ".tmp-" in p.name]
    assert leftovers == []
    assert not any(".tmp-" in p.name for p in photo_folder.rglob("*"))


def test_second_run_skips_everything_and_leaves_outputs_alone(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "signed"
    _sign(tiny_kit, photo_folder, dst)
    first = _tree(dst)
    results = _sign(tiny_kit, photo_folder, dst, code="ff")
    assert [r.status for r in results] == ["skipped"] * 4
    assert _tree(dst) == first


def test_interrupted_run_resumes_with_the_missing_files(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "signed"
    _sign(tiny_kit, photo_folder, dst)
    (dst / "sub" / "c.png").unlink()
    results = _sign(tiny_kit, photo_folder, dst)
    by_status = {r.status: [] for r in results}
    for r in results:
        by_status[r.status].append(Path(r.src).name)
    assert by_status == {"skipped": ["a.png", "b.jpg", "d.png"], "signed": ["c.png"]}


def test_overwrite_redoes_existing_outputs(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "signed"
    _sign(tiny_kit, photo_folder, dst, code="00")
    first = _tree(dst)
    results = _sign(tiny_kit, photo_folder, dst, code="ff", overwrite=True)
    assert [r.status for r in results] == ["signed"] * 4
    assert _tree(dst) != first  # another code, another signature


def test_corrupt_file_fails_while_the_others_are_signed(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    bad = photo_folder / "sub" / "broken.png"
    bad.write_bytes((photo_folder / "a.png").read_bytes()[:300])
    dst = tmp_path / "signed"
    results = _sign(tiny_kit, photo_folder, dst, batch_size=2)
    status = {Path(r.src).name: r for r in results}
    assert status["broken.png"].status == "failed"
    assert str(bad) in status["broken.png"].error
    assert status["broken.png"].dst is None
    assert [status[n].status for n in ("a.png", "b.jpg", "c.png", "d.png")] == ["signed"] * 4
    assert not (dst / "sub" / "broken.png").exists()


def test_image_over_max_pixels_fails_alone(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    Image.new("RGB", (200, 100)).save(photo_folder / "big.png")
    results = _sign(tiny_kit, photo_folder, tmp_path / "signed", max_pixels=150 * 100)
    failed = [r for r in results if r.status == "failed"]
    assert [Path(r.src).name for r in failed] == ["big.png"]
    assert sum(r.status == "signed" for r in results) == 4


def test_elongated_image_fails_alone(tiny_kit: Kit, photo_folder: Path, tmp_path: Path) -> None:
    Image.new("RGB", (2000, 40), (90, 120, 30)).save(photo_folder / "banner.png")
    results = _sign(tiny_kit, photo_folder, tmp_path / "signed")
    failed = [r for r in results if r.status == "failed"]
    assert [Path(r.src).name for r in failed] == ["banner.png"]
    assert "elongated" in failed[0].error
    assert sum(r.status == "signed" for r in results) == 4


def test_batch_size_does_not_change_the_outputs(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    _sign(tiny_kit, photo_folder, tmp_path / "one", batch_size=1, code="3c")
    _sign(tiny_kit, photo_folder, tmp_path / "many", batch_size=8, code="3c")
    for rel in _tree(tmp_path / "one"):
        a = load_image(tmp_path / "one" / rel).image
        b = load_image(tmp_path / "many" / rel).image
        assert (a - b).abs().max() <= 1 / 255 + 1e-6  # at most one rounding step apart


def test_destination_inside_source_is_refused(tiny_kit: Kit, photo_folder: Path) -> None:
    before = _tree(photo_folder)
    for dst in (photo_folder / "signed", photo_folder):
        with pytest.raises(OutputError, match="inside the input folder"):
            _sign(tiny_kit, photo_folder, dst)
    assert _tree(photo_folder) == before


def test_output_that_would_overwrite_its_input_is_refused(
    tiny_kit: Kit, photo_folder: Path
) -> None:
    src = photo_folder / "a.png"
    before = src.read_bytes()
    for dst in (src, photo_folder / "a.jpg", photo_folder):
        with pytest.raises(OutputError, match="overwrite its input"):
            _sign(tiny_kit, src, dst, overwrite=True)
    assert src.read_bytes() == before


def test_two_inputs_with_one_output_are_refused(photo_folder: Path, tmp_path: Path) -> None:
    Image.open(photo_folder / "a.png").save(photo_folder / "a.webp")
    with pytest.raises(OutputError, match="both be written"):
        plan_outputs(photo_folder, tmp_path / "signed", format="png")


def test_folder_into_an_existing_file_is_refused(photo_folder: Path, tmp_path: Path) -> None:
    dst = tmp_path / "signed.txt"
    dst.write_text("not a folder")
    with pytest.raises(OutputError, match="not a folder"):
        plan_outputs(photo_folder, dst)


def test_single_file_into_a_folder_or_a_file_name(photo_folder: Path, tmp_path: Path) -> None:
    src = photo_folder / "b.jpg"
    assert plan_outputs(src, tmp_path / "out") == [(src, tmp_path / "out" / "b.png")]
    assert plan_outputs(src, tmp_path / "x.png") == [(src, tmp_path / "x.png")]
    assert plan_outputs(src, tmp_path / "x.png", format="jpeg") == [(src, tmp_path / "x.jpg")]


def test_missing_source_is_refused(tiny_kit: Kit, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no such file"):
        _sign(tiny_kit, tmp_path / "nothing", tmp_path / "signed")


def test_bad_code_is_refused_before_anything_is_written(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "signed"
    for code in ("not-hex", "1ff"):  # not hexadecimal; more than the kit's 8 bits
        with pytest.raises(CodeError):
            _sign(tiny_kit, photo_folder, dst, code=code)
    assert not dst.exists()
    _sign(tiny_kit, photo_folder, dst)
    with pytest.raises(CodeError):  # also when every output exists and nothing is left to sign
        _sign(tiny_kit, photo_folder, dst, code="not-hex")


def test_rgba_input_keeps_its_alpha(tiny_kit: Kit, photo_folder: Path, tmp_path: Path) -> None:
    src = photo_folder / "logo.png"
    rgba = Image.open(photo_folder / "a.png").convert("RGBA")
    alpha = np.zeros((96, 96), np.uint8)
    alpha[20:70, 10:90] = 200
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(src)
    [result] = _sign(tiny_kit, src, tmp_path / "signed")
    out = load_image(result.dst)
    np.testing.assert_array_equal(out.alpha, alpha)
    assert not torch.equal(out.image, load_image(src).image)


def test_transparent_input_cannot_become_jpeg(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    src = photo_folder / "logo.png"
    rgba = Image.open(photo_folder / "a.png").convert("RGBA")
    rgba.putalpha(128)
    rgba.save(src)
    [result] = _sign(tiny_kit, src, tmp_path / "signed", format="jpeg")
    assert result.status == "failed" and "alpha" in result.error
    assert not (tmp_path / "signed").exists() or _tree(tmp_path / "signed") == {}


def test_opaque_alpha_input_can_become_jpeg(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    src = photo_folder / "screenshot.png"
    Image.open(photo_folder / "a.png").convert("RGBA").save(src)  # alpha 255 everywhere
    [result] = _sign(tiny_kit, src, tmp_path / "signed", format="jpeg")
    assert result.status == "signed"
    assert Image.open(result.dst).format == "JPEG"


def test_jpeg_format_uses_jpg_suffix_and_quality(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    high = _sign(tiny_kit, photo_folder, tmp_path / "q95", format="jpeg", quality=95)
    low = _sign(tiny_kit, photo_folder, tmp_path / "q40", format="jpeg", quality=40)
    assert sorted(_tree(tmp_path / "q95")) == ["a.jpg", "b.jpg", "sub/c.jpg", "sub/deeper/d.jpg"]
    for h, lo in zip(high, low):
        assert Image.open(h.dst).format == "JPEG"
        assert Path(lo.dst).stat().st_size < Path(h.dst).stat().st_size


def test_shards_cover_every_file_exactly_once(
    tiny_kit: Kit, photo_folder: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "signed"
    parts = [_sign(tiny_kit, photo_folder, dst, process_index=i, num_processes=3) for i in range(3)]
    srcs = [r.src for part in parts for r in part]
    assert sorted(srcs) == sorted(str(p) for p in photo_folder.rglob("*.*"))
    assert all(r.status == "signed" for part in parts for r in part)
    assert len(_tree(dst)) == 4


def test_on_result_sees_every_result(tiny_kit: Kit, photo_folder: Path, tmp_path: Path) -> None:
    seen = []
    results = _sign(tiny_kit, photo_folder, tmp_path / "signed", on_result=seen.append)
    assert seen == results
