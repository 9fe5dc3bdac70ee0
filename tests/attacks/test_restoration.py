"""The restoration attack: a small network trained on (signed, clean) pairs to undo W."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advsig.attacks import ATTACKS
from advsig.attacks.restoration import (
    RestorationAttack,
    Restorer,
    RestorerConfig,
    train_restorer,
)
from advsig.data.datasets import embedded_image, fit_within
from advsig.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def pairs() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Clean crops and 'signed' copies with a content-dependent change M can learn (PSNR ~30).

    Why not a fixed noise pattern: M is convolutional and sees random crops, so, like the
    paper's M, it can only undo what it can infer from the image content.
    """
    img = fit_within(embedded_image("astronaut"), 96)
    clean = [img[:, y : y + 32, x : x + 32] for y in (0, 32, 64) for x in (0, 32, 64)]
    signed = [c * 0.9 + 0.05 for c in clean]
    return signed, clean


def test_untrained_restorer_is_the_identity() -> None:
    x = torch.rand(2, 3, 30, 45)  # odd sizes are padded and cropped back
    assert torch.equal(Restorer()(x), x)
    assert 100_000 < sum(p.numel() for p in Restorer().parameters()) < 1_000_000


def test_training_learns_to_remove_the_signature(pairs) -> None:
    signed, clean = pairs
    calls = []
    fit = train_restorer(signed, clean, steps=40, batch_size=8, crop_size=32, seed=0,
                         callback=lambda step, model: calls.append(step))  # fmt: skip
    assert calls == list(range(1, 41)) and len(fit.losses) == 40
    assert sum(fit.losses[-5:]) < sum(fit.losses[:5])
    before = F.mse_loss(torch.stack(signed), torch.stack(clean))
    with torch.no_grad():
        after = F.mse_loss(fit.model(torch.stack(signed)), torch.stack(clean))
    assert after < 0.5 * before  # M's outputs are closer to the clean originals
    again = train_restorer(signed, clean, steps=40, batch_size=8, crop_size=32, seed=0)
    assert again.losses == fit.losses  # same seed, same run


def test_restoration_attack_save_load_and_protocol(pairs, tmp_path) -> None:
    signed, clean = pairs
    model = train_restorer(signed, clean, steps=3, crop_size=32, seed=1).model
    model.save_pretrained(tmp_path / "m")
    attack = RestorationAttack(tmp_path / "m")
    assert ATTACKS["restore"] is RestorationAttack
    assert attack.label == "restore" and str(tmp_path / "m") in repr(attack)
    x = signed[0]
    out = attack(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, RestorationAttack(model)(x))  # save -> load -> same output
    assert torch.allclose(attack(torch.stack([x, x]))[1], out, atol=1e-6)


def test_restorer_errors(pairs, tmp_path) -> None:
    signed, clean = pairs
    with pytest.raises(ConfigError, match="as many"):
        train_restorer(signed, clean[:-1], steps=1)
    with pytest.raises(ConfigError, match="shapes"):
        train_restorer([signed[0]], [clean[0][:, :16]], steps=1)
    Restorer(RestorerConfig(channels=8)).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"channels": 8, "depth": 3}')
    with pytest.raises(CheckpointError):
        Restorer.from_pretrained(tmp_path / "m")
