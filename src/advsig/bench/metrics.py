"""Benchmark metrics: fidelity, detection at a false-positive rate set on clean images, codes.

Conventions that keep numbers comparable across methods and attacks:
- the threshold for a target FPR is set on the *clean images under the same attack*, never on
  the signed ones, and the FPR actually reached on those clean images is reported with it;
- bit codes are judged by an exact binomial test: how likely is this many right bits if the
  image carried no code at all (each bit a fair coin)?
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from skimage.metrics import structural_similarity
from sklearn.metrics import roc_auc_score

from advsig.errors import ConfigError


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between float images in [0, 1] ((3, H, W) or batches): inf when identical."""
    mse = float((a.float() - b.float()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def mean_psnr(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """Mean PSNR (dB) over image pairs, identical pairs (inf) left out; inf if all identical."""
    values = [psnr(x, y) for x, y in zip(a, b)]
    finite = [v for v in values if math.isfinite(v)]
    return float(sum(finite) / len(finite)) if finite else math.inf


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM (scikit-image, colour channels averaged) between two (3, H, W) images in [0, 1]."""
    x = a.permute(1, 2, 0).double().cpu().numpy()  # (H, W, 3)
    y = b.permute(1, 2, 0).double().cpu().numpy()
    return float(structural_similarity(x, y, channel_axis=2, data_range=1.0))


@dataclass(frozen=True)
class DetectionAtFPR:
    """TPR at the threshold that keeps the clean images' false-positive rate at ``target_fpr``.

    Attributes:
        threshold: the score threshold (flag when score > threshold).
        tpr: share of signed scores above it.
        fpr: share of clean scores above it (at most ``target_fpr``).
        num_signed / num_clean: how many scores each rate rests on. With n clean images a
            target below 1/n cannot be resolved: the threshold is then the largest clean score.
    """

    target_fpr: float
    threshold: float
    tpr: float
    fpr: float
    num_signed: int
    num_clean: int


def tpr_at_fpr(signed: np.ndarray, clean: np.ndarray, target_fpr: float) -> DetectionAtFPR:
    """Threshold from the clean scores: the smallest one with at most ``target_fpr`` above it."""
    signed, clean = np.asarray(signed, float), np.asarray(clean, float)
    if not 0 < target_fpr < 1:
        raise ConfigError(f"target FPR must be in (0, 1), got {target_fpr!r}")
    if len(signed) == 0 or len(clean) == 0:
        raise ConfigError("TPR at FPR needs signed and clean scores")
    allowed = math.floor(target_fpr * len(clean))  # clean scores that may lie above
    ordered = np.sort(clean)[::-1]
    threshold = float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1])
    return DetectionAtFPR(
        target_fpr=target_fpr,
        threshold=threshold,
        tpr=float((signed > threshold).mean()),
        fpr=float((clean > threshold).mean()),
        num_signed=len(signed),
        num_clean=len(clean),
    )


def auc(signed: np.ndarray, clean: np.ndarray) -> float:
    """ROC AUC of separating signed from clean scores (0.5 = chance)."""
    y = np.r_[np.ones(len(signed)), np.zeros(len(clean))]
    return float(roc_auc_score(y, np.r_[np.asarray(signed, float), np.asarray(clean, float)]))


@dataclass(frozen=True)
class BitTest:
    """Decoded bits against the embedded code for one image."""

    num_bits: int
    correct: int
    p_value: float  # P(at least ``correct`` right | no code: Binomial(num_bits, 1/2))

    @property
    def accuracy(self) -> float:
        return self.correct / self.num_bits


def bit_test(decoded: torch.Tensor, truth: torch.Tensor) -> BitTest:
    """Exact one-sided binomial test of a decoded bit vector against the true code."""
    decoded, truth = decoded.flatten().bool(), truth.flatten().bool()
    if decoded.shape != truth.shape or decoded.numel() == 0:
        raise ConfigError(
            f"bit vectors must match and be non-empty: {decoded.shape} vs {truth.shape}"
        )
    n, k = decoded.numel(), int((decoded == truth).sum())
    p = float(stats.binomtest(k, n, 0.5, alternative="greater").pvalue)
    return BitTest(num_bits=n, correct=k, p_value=p)
