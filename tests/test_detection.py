"""Detecting files and folders: one result per file, in order, errors in place of bad files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from advsig.data.io import load_image
from advsig.detection import collect_files, detect_files
from advsig.errors import ConfigError
from advsig.kit import Kit


def _detect(kit: Kit, files, **kwargs):
    return detect_files(kit, files, progress=False, **kwargs)


def test_corrupt_file_gives_an_error_result_in_place(tiny_kit: Kit, photo_folder: Path) -> None:
    bad = photo_folder / "sub" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    files, missing = collect_files([photo_folder])
    assert missing == []
    results = _detect(tiny_kit, files, fpr=1e-2, batch_size=2)
    assert [r.path for r in results] == [str(f) for f in files]
    for r in results:
        if r.path == str(bad):
            assert str(bad) in r.error
            assert not r.is_signed and math.isnan(r.score) and r.bits is None
        else:
            assert r.error is None
            assert math.isfinite(r.score) and 0 <= r.p_value <= 1
            assert r.fpr == 1e-2 and r.is_signed == (r.score >= r.threshold)


def test_file_results_match_the_library_call(tiny_kit: Kit, photo_folder: Path) -> None:
    files, _ = collect_files([photo_folder])
    results = _detect(tiny_kit, files)
    direct = tiny_kit.detect([load_image(f).image for f in files])
    for r, d in zip(results, direct, strict=True):
        assert r.score == pytest.approx(d.score, abs=1e-5)
        assert r.p_value == pytest.approx(d.p_value)


def test_batch_size_does_not_change_scores(tiny_kit: Kit, photo_folder: Path) -> None:
    files, _ = collect_files([photo_folder])
    one = _detect(tiny_kit, files, batch_size=1)
    many = _detect(tiny_kit, files, batch_size=16)
    assert [r.score for r in one] == pytest.approx([r.score for r in many], abs=1e-5)


def test_shards_together_cover_every_file_once(tiny_kit: Kit, photo_folder: Path) -> None:
    files, _ = collect_files([photo_folder])
    parts = [_detect(tiny_kit, files, process_index=i, num_processes=3) for i in range(3)]
    assert sorted(r.path for part in parts for r in part) == sorted(str(f) for f in files)


def test_collect_files_sorts_dedupes_and_reports_missing_paths(
    photo_folder: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "gone.png"
    files, missing = collect_files(
        [photo_folder / "sub", photo_folder, photo_folder / "a.png", gone]
    )
    assert files == sorted(p for p in photo_folder.rglob("*") if p.is_file())
    assert len(files) == 4
    assert [m.path for m in missing] == [str(gone)]
    assert "no such file" in missing[0].error and math.isnan(missing[0].p_value)


def test_elongated_image_is_an_error_not_a_crash(tiny_kit: Kit, photo_folder: Path) -> None:
    thin = photo_folder / "banner.png"
    Image.new("RGB", (2000, 40), (90, 120, 30)).save(thin)  # a 5-pixel sliver at work size 128
    files, _ = collect_files([photo_folder])
    results = _detect(tiny_kit, files)
    errors = [r for r in results if r.error]
    assert [r.path for r in errors] == [str(thin)]
    assert "elongated" in errors[0].error
    assert sum(math.isfinite(r.score) for r in results) == 4


def test_odd_sized_image_is_scored(tiny_kit: Kit, tmp_path: Path) -> None:
    path = tmp_path / "odd.png"
    Image.new("RGB", (97, 65), (200, 10, 10)).save(path)
    [result] = _detect(tiny_kit, [path])
    assert result.error is None and math.isfinite(result.score)


def test_injector_only_kit_is_refused_before_reading(
    tiny_kit: Kit, tmp_path: Path, photo_folder: Path
) -> None:
    tiny_kit.save_pretrained(tmp_path / "publisher", include_detector=False)
    publisher = Kit.from_pretrained(tmp_path / "publisher")
    with pytest.raises(ConfigError, match="only the injector"):
        _detect(publisher, [tmp_path / "never-read.png"])


@pytest.mark.parametrize("fpr", [0.0, 1.0, -0.1, 2.0])
def test_fpr_outside_unit_interval_is_refused(tiny_kit: Kit, photo_folder: Path, fpr) -> None:
    with pytest.raises(ConfigError, match="fpr"):
        _detect(tiny_kit, [photo_folder / "a.png"], fpr=fpr)
