"""An interrupted calibration resumes from the stages it scored, and only from matching ones."""

from __future__ import annotations

import json

import pytest
import torch

from advsig.bench.runner import resolve_attacks
from advsig.data.datasets import embedded_images
from advsig.kit import Kit
from advsig.training.score_cache import ScoreCache, images_digest, kit_fingerprint
from advsig.training.trainer import calibrate


class Interrupted(Exception):
    pass


def _calibrate(kit: Kit, **kw) -> dict:
    val = [img for _, img in embedded_images("val")]
    attacks = resolve_attacks("jpeg75,noise0.02,brightness1.3")
    return calibrate(kit, val, num=40, seed=3, min_size=48, processed=attacks, **kw)


def _count_reads(kit: Kit, monkeypatch, *, stop_when=None) -> list[int]:
    """Patch ``kit.logits`` to count the images it reads; raise once ``stop_when()`` holds."""
    seen: list[int] = []
    read = kit.logits

    def counting(images, **kw):
        if stop_when is not None and stop_when():
            raise Interrupted
        seen.append(len(images))
        return read(images, **kw)

    monkeypatch.setattr(kit, "logits", counting)
    return seen


def test_an_interrupted_calibration_resumes_to_the_same_thresholds(
    tiny_kit_dir, tmp_path, monkeypatch
):
    whole = Kit.from_pretrained(tiny_kit_dir)
    full_reads = _count_reads(whole, monkeypatch)
    expected = _calibrate(whole)

    cache = tmp_path / "cache"
    first = Kit.from_pretrained(tiny_kit_dir)
    # Killed while scoring the second processing: the crops and jpeg75 are kept.
    _count_reads(first, monkeypatch, stop_when=lambda: (cache / "processed-jpeg75.json").exists())
    with pytest.raises(Interrupted):
        _calibrate(first, cache_dir=cache)
    assert sorted(p.name for p in cache.iterdir()) == ["clean.json", "processed-jpeg75.json"]

    again = Kit.from_pretrained(tiny_kit_dir)
    resumed_reads = _count_reads(again, monkeypatch)
    summary = _calibrate(again, cache_dir=cache)
    assert again.thresholds() == whole.thresholds()
    assert summary == expected
    # What was kept is not read again: the crops' scores and one processing's.
    assert sum(resumed_reads) < sum(full_reads) - 40

    # Another recipe (seed) is scored anew, not read back.
    other = Kit.from_pretrained(tiny_kit_dir)
    other_reads = _count_reads(other, monkeypatch)
    val = [img for _, img in embedded_images("val")]
    calibrate(other, val, num=40, seed=4, min_size=48, cache_dir=cache)
    assert other_reads[0] == 40  # every clean crop read


def test_the_fingerprint_follows_weights_reads_and_recipe(tiny_kit_dir):
    kit = Kit.from_pretrained(tiny_kit_dir)
    recipe = {"num": 40, "seed": 3}
    fp = kit_fingerprint(kit, recipe)
    assert kit_fingerprint(Kit.from_pretrained(tiny_kit_dir), recipe) == fp
    assert kit_fingerprint(kit, {"num": 40, "seed": 4}) != fp
    assert kit_fingerprint(kit.with_mirror_reads(True), recipe) != fp
    moved = Kit.from_pretrained(tiny_kit_dir)
    with torch.no_grad():
        next(moved.detector.parameters()).add_(1e-3)
    assert kit_fingerprint(moved, recipe) != fp
    refitted = Kit.from_pretrained(tiny_kit_dir)  # thresholds do not change a score
    refitted.calibration = None
    assert kit_fingerprint(refitted, recipe) == fp


def test_the_crops_digest_follows_pixels_and_shapes():
    crops = [torch.rand(3, 48, 48), torch.rand(3, 64, 48)]
    digest = images_digest(crops)
    assert images_digest([c.clone() for c in crops]) == digest
    changed = crops[1].clone()
    changed[0, 0, 0] = 1.0 - changed[0, 0, 0].round()  # one pixel, well past 8-bit rounding
    assert images_digest([crops[0], changed]) != digest
    assert images_digest([crops[0], crops[1].reshape(3, 48, 64)]) != digest


def test_a_damaged_or_foreign_stage_is_scored_again(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"scores": [1.0, 2.0]}

    cache = ScoreCache(tmp_path, "abc")
    assert cache.get("clean", compute) == {"scores": [1.0, 2.0]} and len(calls) == 1
    assert cache.get("clean", compute) == {"scores": [1.0, 2.0]} and len(calls) == 1
    assert cache.reused == ["clean"]
    assert ScoreCache(tmp_path, "other").get("clean", compute) and len(calls) == 2
    (tmp_path / "clean.json").write_text('{"fingerprint": "abc", "val')  # cut short
    assert cache.get("clean", compute) == {"scores": [1.0, 2.0]} and len(calls) == 3
    assert json.loads((tmp_path / "clean.json").read_text())["fingerprint"] == "abc"
    cache.clear()
    assert not tmp_path.exists()
