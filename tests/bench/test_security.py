"""No-box forgery and removal rows: transplant, averaging, the one-image forger."""

from __future__ import annotations

import pytest
import torch

from advsig.attacks.forgery import (
    ForgerConfig,
    OneImageForger,
    average_residual,
    mean_pairwise_cosine,
    scale_to_psnr,
    transplant,
)
from advsig.bench.metrics import psnr
from advsig.bench.security import run_security
from advsig.errors import ConfigError


def _images(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 8, 8, generator=g)
    return list(torch.nn.functional.interpolate(base, size=64, mode="bilinear"))


def test_transplant_hits_its_psnr_and_averaging_cancels_opposite_residuals() -> None:
    clean = torch.full((2, 3, 64, 64), 0.5)
    residual = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.01
    forged = transplant(clean, residual, psnr=40.0)
    assert abs(psnr(forged[0], clean[0]) - 40.0) < 0.2
    assert torch.equal(forged, (forged * 255).round() / 255)  # saved as 8 bits
    assert average_residual([residual, -residual]).abs().max() == 0
    assert mean_pairwise_cosine(torch.stack([residual, residual])) == pytest.approx(1.0)
    assert mean_pairwise_cosine(torch.stack([residual, -residual])) == pytest.approx(-1.0)
    assert scale_to_psnr(residual, 20).square().mean().sqrt() == pytest.approx(0.1, rel=1e-4)
    with pytest.raises(ConfigError):
        average_residual([])


def test_one_image_forger_learns_a_content_dependent_residual() -> None:
    """On a signature that is a fixed function of content (here: the image's own fine detail
    doubled), the forger must learn it from one image and reproduce it on another."""
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 24, 24, generator=g), size=96,
                                        mode="bicubic").clamp(0, 1)[0]  # fmt: skip
    forger = OneImageForger(ForgerConfig(steps=150, crop=48, batch_size=4))
    before = forger(x[None]).abs().mean()
    forger.fit(x, generator=torch.Generator().manual_seed(1))
    assert forger(x[None]).abs().mean() > before  # it learned to predict some residual
    out = forger.forge(x[None], psnr=40.0)
    assert abs(psnr(out[0], x) - 40.0) < 0.5


def test_run_security_rows(tiny_kit) -> None:
    rows = run_security(tiny_kit, _images(3, 0), attacker_clean=_images(4, 1), ks=(1, 2),
                        forger=False, progress=False)  # fmt: skip
    kinds = {r["adversary"] for r in rows}
    assert {"unattacked", "transplant-oracle", "transplant-highpass", "average-oracle-forgery",
            "average-oracle-removal", "average-highpass-forgery",
            "average-highpass-removal"} <= kinds  # fmt: skip
    for r in rows:
        assert 0 <= r["success_rate"] <= 1 and r["n"] == 3 and r["source"] == "photos"
    forty = [r for r in rows if r.get("strength") == "40 dB" or r.get("value") == "40 dB"]
    assert forty and all(abs(r["psnr"] - 40) < 1.0 for r in forty)
    # Signed images from elsewhere (no clean pairs): high-pass estimates only.
    only = run_security(tiny_kit, _images(3, 0), attacker_clean=[],
                        attacker_signed=_images(2, 2), source="gen", ks=(1, 2), forger=False,
                        progress=False)  # fmt: skip
    assert not any("oracle" in r["adversary"] for r in only)
    assert {r["source"] for r in only} == {"gen"}
