"""The method's central claim at demo scale: a generator fine-tuned on signed images is signed."""

from __future__ import annotations

import pytest

from advsig.generators.evaluate import flag_statistics
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.pixel import load_pixel_diffusion, sample_images
from advsig.kit import Kit

STEPS = 500  # the benchmark reaches 100% flagged and 0.98 bit accuracy at 450 (BENCHMARKS.md)


@pytest.mark.slow
def test_shipped_ddpm_fine_tuned_on_signed_crops_samples_signed_images(tmp_path):
    kit = Kit.from_pretrained("small")
    out = tmp_path / "signed"
    config = FinetuneConfig(
        model="ddpm-32", out=str(out), kit="small", code="c3a5", steps=STEPS, lr=2e-3,
        checkpoint_every=STEPS,
    )  # fmt: skip
    finetune_generator(config)
    signed = (sample_images(load_pixel_diffusion(out), range(32), steps=25) * 255).round() / 255
    original = sample_images(load_pixel_diffusion("ddpm-32"), range(32), steps=25)
    original = (original * 255).round() / 255
    s = flag_statistics(kit, signed, code="c3a5")
    o = flag_statistics(kit, original, code="c3a5")
    assert s.flag_rate_1e3 >= 0.9, s
    assert s.bit_accuracy >= 0.9, s
    assert o.flag_rate_1e3 <= 1 / 32, o  # the same noise through the original model
    assert s.mean_score > o.mean_score + 10
