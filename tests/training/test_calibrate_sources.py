"""Calibration with images scored whole (e.g. unsigned generator samples) beside photo crops."""

from __future__ import annotations

import torch

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
