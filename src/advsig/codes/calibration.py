"""From clean-image scores to thresholds and p-values.

The detector's score is a logit; what a user needs is "how often does an unsigned image score
this high". We measure that on clean validation images the networks never trained on. Inside
the measured range the answer is the empirical tail frequency; beyond it (small FPRs that the
sample cannot resolve) we extrapolate a normal distribution fitted to the upper tail, and say so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

MIN_TAIL_COUNT = 10  # an empirical quantile needs this many clean scores above it


@dataclass(frozen=True)
class Calibration:
    """Summary of clean scores, enough to give p-values and thresholds.

    Attributes:
        num_clean: number of clean scores measured.
        survival: [[score, p], ...] empirical P(clean score >= score), decreasing p.
        tail_mean / tail_std: normal fitted to the upper 10% of clean scores (quantile fit).
    """

    num_clean: int
    survival: list[list[float]]
    tail_mean: float
    tail_std: float

    @classmethod
    def fit(cls, clean_scores: np.ndarray) -> Calibration:
        s = np.sort(np.asarray(clean_scores, dtype=np.float64))[::-1]  # descending
        n = len(s)
        if n < 20:
            raise ValueError(f"calibration needs at least 20 clean scores, got {n}")
        # Empirical survival at log-spaced ranks: p = (rank + 1) / (n + 1), conservative.
        ranks = np.unique(np.round(np.geomspace(1, n, num=min(n, 120))).astype(int)) - 1
        survival = [[float(s[r]), float((r + 1) / (n + 1))] for r in ranks]
        # Normal quantile fit on the top 10% (at least 10 points): score ~ mean + std * z(p).
        k = max(10, n // 10)
        p = (np.arange(k) + 1) / (n + 1)
        z = stats.norm.isf(p)
        std, mean = np.polyfit(z, s[:k], 1)
        std = max(float(std), 1e-3)
        return cls(num_clean=n, survival=survival, tail_mean=float(mean), tail_std=std)

    def p_value(self, score: float) -> float:
        """Estimated P(clean score >= score)."""
        scores = [row[0] for row in self.survival]
        probs = [row[1] for row in self.survival]
        if score <= scores[-1]:
            return 1.0
        if score <= scores[0]:
            # Largest empirical p among points with score >= given score.
            for sc, pr in reversed(list(zip(scores, probs))):
                if sc >= score:
                    return pr
        # Beyond every clean score: normal tail, never above the smallest empirical p.
        tail = float(stats.norm.sf((score - self.tail_mean) / self.tail_std))
        return min(tail, probs[0])

    def threshold(self, fpr: float) -> tuple[float, bool]:
        """(score threshold for false-positive rate ``fpr``, whether it is extrapolated)."""
        if not 0 < fpr < 1:
            raise ValueError(f"fpr must be in (0, 1), got {fpr!r}")
        if fpr * self.num_clean >= MIN_TAIL_COUNT:
            for sc, pr in self.survival:
                if pr >= fpr:
                    return float(np.nextafter(sc, math.inf)), False
        tail = float(self.tail_mean + self.tail_std * stats.norm.isf(fpr))
        # Never below what the sample itself shows: at most k = max(1, fpr * n) clean scores
        # may lie at or above the threshold. Guards against tails heavier than normal.
        k = max(1, math.floor(fpr * self.num_clean))
        bound = max(sc for sc, pr in self.survival if pr * (self.num_clean + 1) <= k + 1e-9)
        return max(tail, float(np.nextafter(bound, math.inf))), True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(**data)


@dataclass(frozen=True)
class StratifiedCalibration:
    """One :class:`Calibration` per image-size stratum; decisions take the worst case.

    Why: an image of one tile gives F a single look, a large image an average over many tiles,
    so clean scores of small images have heavier tails. A threshold fitted to a mix of sizes
    would overshoot the stated false-positive rate on the smallest ones (measured: 2% instead of
    0.1% on 32x32 crops for the ``small`` kit). Taking the largest threshold and p-value over
    strata keeps the stated rate for every size.
    """

    strata: dict[str, Calibration]

    @property
    def num_clean(self) -> int:
        return sum(c.num_clean for c in self.strata.values())

    @classmethod
    def fit(cls, scores_by_stratum: dict[str, np.ndarray]) -> StratifiedCalibration:
        if not scores_by_stratum:
            raise ValueError("stratified calibration needs at least one stratum")
        return cls({k: Calibration.fit(v) for k, v in scores_by_stratum.items()})

    def p_value(self, score: float) -> float:
        return max(c.p_value(score) for c in self.strata.values())

    def threshold(self, fpr: float) -> tuple[float, bool]:
        return max(c.threshold(fpr) for c in self.strata.values())

    def for_size(self, side: int) -> Calibration | StratifiedCalibration:
        """The calibration for an image whose shorter working side is ``side`` pixels.

        The strata of the largest calibrated size not above ``side`` (the smallest size below
        every size): clean tails shrink as images grow (more tiles averaged), so a smaller
        stratum's threshold is conservative for a larger image. A size can hold several
        sources (``"32px"`` photo crops, ``"32px:ddpm-samples"`` images scored whole); then
        the worst case over them.
        """
        sizes = sorted({stratum_size(k) for k in self.strata})
        chosen = max((size for size in sizes if size <= side), default=sizes[0])
        keys = [k for k in self.strata if stratum_size(k) == chosen]
        if len(keys) == 1:
            return self.strata[keys[0]]
        return StratifiedCalibration({k: self.strata[k] for k in keys})

    def to_dict(self) -> dict:
        return {"strata": {k: c.to_dict() for k, c in self.strata.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> StratifiedCalibration:
        return cls({k: Calibration.from_dict(v) for k, v in data["strata"].items()})


def stratum_size(key: str) -> int:
    """The image side of a stratum key: ``"32px"`` or ``"32px:source"`` -> 32."""
    return int(key.split(":", 1)[0].removesuffix("px"))


def calibration_from_dict(data: dict) -> Calibration | StratifiedCalibration:
    """Either kind, as written by ``to_dict``."""
    return (
        StratifiedCalibration.from_dict(data) if "strata" in data else Calibration.from_dict(data)
    )
