"""The passive detector baseline: it learns what it is shown, and is measured on held-out sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advsig.bench.passive import (
    PassiveConfig,
    evaluate_passive,
    load_images,
    passive_benchmark,
    score_passive,
    train_passive,
)
from advsig.errors import ConfigError

CONFIG = PassiveConfig(steps=80, batch_size=32, width=8, seed=0)


def _smooth(n: int, seed: int) -> torch.Tensor:
    """'Real': smooth images (noise upsampled from 4x4)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return F.interpolate(low, size=32, mode="bilinear", align_corners=False)  # (n, 3, 32, 32)


def _with_grid(x: torch.Tensor) -> torch.Tensor:
    """'Generated': the same kind of image with a faint checkerboard (an upsampling artefact)."""
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    grid = ((yy + xx) % 2).float() * 2 - 1  # (32, 32)
    return (x + 0.04 * grid).clamp(0, 1)


def test_separates_what_it_trained_on_and_is_deterministic():
    results = passive_benchmark(
        _smooth(256, 0), _with_grid(_smooth(256, 1)), _smooth(100, 2),
        {"same": _with_grid(_smooth(100, 3)), "other": _smooth(100, 4)},
        config=CONFIG,
    )  # fmt: skip
    same, other = results["same"], results["other"]
    assert same.auc > 0.98 and same.tpr_at_1e_2 > 0.9
    assert same.num_real == 100 and same.fpr <= 0.01
    assert 0.3 < other.auc < 0.7  # 'other' is just more real images: chance level
    a = train_passive(_smooth(64, 0), _with_grid(_smooth(64, 1)), config=CONFIG)
    b = train_passive(_smooth(64, 0), _with_grid(_smooth(64, 1)), config=CONFIG)
    x = _smooth(8, 5)
    np.testing.assert_array_equal(score_passive(a, x), score_passive(b, x))
    assert evaluate_passive(a, x, _with_grid(x)).num_fake == 8


def test_folders_and_refusals(photo_folder):
    imgs = load_images(photo_folder, size=32)
    assert imgs.shape == (4, 3, 32, 32) and 0 <= imgs.min() and imgs.max() <= 1
    with pytest.raises(ConfigError, match=r"\(N, 3, H, W\)"):
        load_images(torch.rand(3, 32, 32))
    with pytest.raises(ConfigError, match="at least 2"):
        train_passive(torch.rand(1, 3, 32, 32), torch.rand(4, 3, 32, 32), config=CONFIG)
