"""Calibration with images scored whole (e.g. unsigned generator samples) beside photo crops."""

from __future__ import annotations

import torch

from advsig.bench.runner import resolve_attacks
from advsig.codes.calibration import StratifiedCalibration
from advsig.data.io import list_images
from advsig.kit import Kit
from advsig.training import trainer


def test_whole_images_get_a_stratum_per_source_and_size(tiny_kit_dir, photo_folder, monkeypatch):
    monkeypatch.setattr(trainer, "MIN_STRATUM", 5)  # short run: 20 crops per size suffice
    kit = Kit.from_pretrained(tiny_kit_dir)
    gen = torch.Generator().manual_seed(0)
    whole = {
        "ddpm-samples": [torch.rand(3, 32, 32, generator=gen) for _ in range(30)]
        + [torch.rand(3, 16, 16, generator=gen) for _ in range(3)],  # below every size
        "few": [torch.rand(3, 64, 64, generator=gen) for _ in range(2)],  # too few for a tail
    }
    summary = trainer.calibrate(kit, list_images(photo_folder), num=100, seed=0, whole=whole)
    cal = kit.calibration
    assert isinstance(cal, StratifiedCalibration)
    assert sorted(cal.strata) == ["128px", "32px", "32px:ddpm-samples", "48px", "64px", "96px"]
    assert cal.strata["32px:ddpm-samples"].num_clean == 30
    assert cal.strata["64px"].num_clean == 20 + 2  # the two joined the photo crops
    assert summary["whole"]["ddpm-samples"]["num"] == 30 and summary["whole_too_small"] == 3
    worst = max(cal.strata["32px"].threshold(1e-2), cal.strata["32px:ddpm-samples"].threshold(1e-2))
    assert kit.threshold(1e-2, size=(32, 32)) == worst[0]
    assert kit.threshold(1e-2, size=(128, 128)) == cal.strata["128px"].threshold(1e-2)[0]


def test_processed_clean_crops_get_a_stratum_each_and_the_worst_case_decides(
    tiny_kit_dir, photo_folder, monkeypatch
):
    monkeypatch.setattr(trainer, "MIN_STRATUM", 5)
    kit = Kit.from_pretrained(tiny_kit_dir)
    attacks = resolve_attacks("jpeg75,noise0.02")
    summary = trainer.calibrate(kit, list_images(photo_folder), num=100, seed=0, processed=attacks)
    cal = kit.calibration
    assert summary["processed"] == ["jpeg75", "noise0.02"]
    for size in ("32px", "64px", "128px"):
        assert cal.strata[f"{size}:jpeg75"].num_clean == cal.strata[size].num_clean == 20
    # The processed crops really are processed: their scores differ from the plain crops'.
    plain, noisy = cal.strata["64px"], cal.strata["64px:noise0.02"]
    assert plain.to_dict() != noisy.to_dict()
    worst = max(cal.strata[f"64px{s}"].threshold(1e-2)[0] for s in ("", ":jpeg75", ":noise0.02"))
    assert kit.threshold(1e-2, size=(64, 64)) == worst


def test_by_source_gives_every_photo_its_own_strata_and_the_worst_photo_decides(
    tiny_kit_dir, photo_folder, monkeypatch
):
    monkeypatch.setattr(trainer, "MIN_STRATUM", 5)
    kit = Kit.from_pretrained(tiny_kit_dir)
    files = list_images(photo_folder)
    attacks = resolve_attacks("noise0.02")
    summary = trainer.calibrate(
        kit, files, num=100 * len(files), seed=0, processed=attacks, by_source=True
    )
    cal = kit.calibration
    names = trainer.source_names(files)
    assert summary["by_source"] == sorted(names)
    assert summary["whole"]["noise0.02"]["num"] == summary["num_clean"]  # pooled in the summary
    for name in names:  # each photo: its crops, and its crops after the processing
        assert (
            cal.strata[f"64px:{name}"].num_clean == cal.strata[f"64px:noise0.02@{name}"].num_clean
        )
    assert "64px" not in cal.strata  # no mixed stratum: every crop knows its photo
    keys = [k for k in cal.strata if k.startswith("64px:")]
    assert len(keys) == 2 * len(names)
    worst = max(cal.strata[k].threshold(1e-2)[0] for k in keys)
    assert kit.threshold(1e-2, size=(64, 64)) == worst


def test_source_names_are_stems_made_unique(tmp_path):
    paths = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.jpg", tmp_path / "y.png"]
    assert trainer.source_names([*paths, torch.zeros(3, 8, 8)]) == ["x", "x-2", "y", "photo3"]


def test_synthetic_flat_images_are_a_source_of_their_own(tiny_kit_dir, photo_folder, monkeypatch):
    monkeypatch.setattr(trainer, "MIN_STRATUM", 5)
    kit = Kit.from_pretrained(tiny_kit_dir)
    files = list_images(photo_folder)
    attacks = resolve_attacks("noise0.02")
    summary = trainer.calibrate(
        kit, files, num=100 * len(files), seed=0, processed=attacks, synthetic=6
    )
    cal = kit.calibration
    assert summary["synthetic"] == 6
    # As many crops as one photo would get, each size a stratum, processed ones too.
    assert cal.strata["64px:synthetic"].num_clean == 20
    assert cal.strata["64px:noise0.02@synthetic"].num_clean == 20
    assert cal.strata["64px"].num_clean == cal.strata["64px:noise0.02"].num_clean == 80
    worst = max(v.threshold(1e-2)[0] for k, v in cal.strata.items() if k.startswith("64px"))
    assert kit.threshold(1e-2, size=(64, 64)) == worst


def test_a_v2_threshold_at_or_below_zero_is_reported(tiny_kit_dir, photo_folder, monkeypatch):
    """A v2 score reads a flat image as exactly 0, so a threshold <= 0 flags flat images."""
    monkeypatch.setattr(trainer, "MIN_STRATUM", 5)
    kit = Kit.from_pretrained(tiny_kit_dir)
    assert kit.bound
    assert kit.logits([torch.full((3, 64, 64), 0.3)])[0, 0].item() == 0.0
    real = kit.logits
    monkeypatch.setattr(kit, "logits", lambda images: real(images) - 1e3)  # every clean score < 0
    summary = trainer.calibrate(kit, list_images(photo_folder), num=100, seed=0)
    assert summary["threshold_at_or_below_zero_px"] == [32, 48, 64, 96, 128]
    monkeypatch.setattr(kit, "logits", lambda images: real(images) + 1e3)  # every clean score > 0
    summary = trainer.calibrate(kit, list_images(photo_folder), num=100, seed=0)
    assert "threshold_at_or_below_zero_px" not in summary
