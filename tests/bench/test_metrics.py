"""Benchmark metrics: thresholds set on clean scores, exact binomial bit test, fidelity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from advsig.bench.metrics import auc, bit_test, psnr, ssim, tpr_at_fpr
from advsig.errors import ConfigError


def test_threshold_comes_from_clean_scores_and_keeps_the_rate():
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 1, 10_000)
    signed = rng.normal(3, 1, 1000)
    r = tpr_at_fpr(signed, clean, 1e-2)
    assert r.fpr <= 1e-2 and r.fpr > 0.008  # as close to the target as the sample allows
    assert r.threshold == pytest.approx(2.33, abs=0.1)  # the normal's 99% quantile
    assert 0.7 < r.tpr < 0.8  # P(N(3,1) > 2.33) = 0.75
    tiny = tpr_at_fpr(signed, clean[:100], 1e-3)  # 1e-3 cannot be resolved with 100 clean
    assert tiny.fpr == 0 and tiny.threshold == clean[:100].max()


def test_auc_and_refusals():
    assert auc([2, 3, 4], [0, 1]) == 1.0
    assert auc([0, 1], [2, 3]) == 0.0
    with pytest.raises(ConfigError):
        tpr_at_fpr([], [1.0], 0.1)
    with pytest.raises(ConfigError):
        tpr_at_fpr([1.0], [1.0], 0.0)


def test_binomial_bit_test_is_exact():
    truth = torch.tensor([1, 0] * 16)
    perfect = bit_test(truth, truth)
    assert perfect.correct == 32 and perfect.p_value == pytest.approx(2**-32)
    half = bit_test(truth, torch.tensor([1, 1] * 16))
    assert half.accuracy == 0.5 and half.p_value > 0.5
    one_wrong = bit_test(truth, torch.cat([1 - truth[:1], truth[1:]]))
    assert one_wrong.p_value == pytest.approx(33 / 2**32)  # P(>= 31 of 32) = (32 + 1) / 2^32
    with pytest.raises(ConfigError):
        bit_test(truth, truth[:8])


def test_fidelity_metrics():
    img = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert psnr(img, img) == math.inf and ssim(img, img) == pytest.approx(1.0)
    noisy = (img + 0.01).clamp(0, 1)
    assert 35 < psnr(img, noisy) < 41
    assert ssim(img, noisy) < 1.0
