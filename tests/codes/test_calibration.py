import numpy as np
import pytest

from advsig.codes.calibration import Calibration, StratifiedCalibration, calibration_from_dict


@pytest.fixture
def normal_scores():
    return np.random.default_rng(0).normal(-5.0, 1.0, size=5000)


def test_empirical_threshold_matches_its_fpr(normal_scores):
    cal = Calibration.fit(normal_scores)
    thr, extrapolated = cal.threshold(1e-2)
    assert not extrapolated
    assert np.mean(normal_scores >= thr) <= 1e-2 + 1e-3


def test_small_fpr_is_extrapolated_from_the_tail(normal_scores):
    cal = Calibration.fit(normal_scores)
    thr, extrapolated = cal.threshold(1e-4)
    assert extrapolated
    # True N(-5, 1) quantile for 1e-4 is -5 + 3.72 = -1.28.
    assert abs(thr - (-1.28)) < 0.4
    fresh = np.random.default_rng(1).normal(-5.0, 1.0, size=200_000)
    assert np.mean(fresh >= thr) < 5e-4


def test_p_values_are_monotone_and_bounded(normal_scores):
    cal = Calibration.fit(normal_scores)
    grid = np.linspace(-10, 10, 200)
    p = np.array([cal.p_value(s) for s in grid])
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p) <= 1e-12)
    assert cal.p_value(-20) == 1.0
    assert cal.p_value(10) < 1e-10


def test_round_trip_through_dict(normal_scores):
    cal = Calibration.fit(normal_scores)
    again = Calibration.from_dict(cal.to_dict())
    assert again.threshold(1e-3) == cal.threshold(1e-3)


def test_needs_enough_scores():
    with pytest.raises(ValueError, match="at least 20"):
        Calibration.fit(np.zeros(5))


def test_extrapolation_never_undercuts_the_sample_on_heavy_tails():
    # Student-t with 2 degrees of freedom: the upper tail is far heavier than a normal fit.
    scores = np.random.default_rng(2).standard_t(2, size=2000)
    cal = Calibration.fit(scores)
    thr, extrapolated = cal.threshold(1e-3)  # 1e-3 * 2000 = 2 scores: below the empirical limit
    assert extrapolated
    assert np.sum(scores >= thr) <= 2
    thr4, _ = cal.threshold(1e-4)
    assert thr4 > scores.max()


def test_stratified_threshold_holds_the_rate_in_every_stratum():
    """Small images with a heavier clean tail must not be flagged more often than stated."""
    rng = np.random.default_rng(0)
    light = rng.normal(-8, 1.0, 4000)  # many-tile images: scores concentrate
    heavy = rng.normal(-6, 2.5, 4000)  # one-tile images: wider spread
    pooled = Calibration.fit(np.concatenate([light, heavy[:500]]))
    strat = StratifiedCalibration.fit({"256px": light, "32px": heavy})
    fresh_heavy = rng.normal(-6, 2.5, 200_000)
    pooled_rate = float((fresh_heavy >= pooled.threshold(1e-2)[0]).mean())
    strat_rate = float((fresh_heavy >= strat.threshold(1e-2)[0]).mean())
    assert pooled_rate > 2e-2  # the pooled threshold breaks its promise on the heavy stratum
    assert strat_rate <= 1.3e-2
    assert strat.p_value(0.0) == max(c.p_value(0.0) for c in strat.strata.values())
    again = calibration_from_dict(strat.to_dict())
    assert isinstance(again, StratifiedCalibration) and again.threshold(1e-3) == strat.threshold(
        1e-3
    )
    assert isinstance(calibration_from_dict(pooled.to_dict()), Calibration)


def test_a_size_with_several_sources_takes_the_worst_case_of_them():
    """Unsigned generator samples with a fatter tail than photo crops of the same size must set
    that size's threshold; other sizes keep their own."""
    rng = np.random.default_rng(1)
    photos32, generated32 = rng.normal(-6, 1.0, 4000), rng.normal(-5, 2.0, 4000)
    photos64 = rng.normal(-8, 1.0, 4000)
    strat = StratifiedCalibration.fit(
        {"32px": photos32, "32px:ddpm-samples": generated32, "64px": photos64}
    )
    small = strat.for_size(40)  # between the sizes: the 32px strata decide
    assert small.threshold(1e-2) == strat.strata["32px:ddpm-samples"].threshold(1e-2)
    assert small.p_value(-2.0) == strat.strata["32px:ddpm-samples"].p_value(-2.0)
    fresh = rng.normal(-5, 2.0, 200_000)
    assert float((fresh >= small.threshold(1e-2)[0]).mean()) <= 1.3e-2
    assert float((fresh >= strat.strata["32px"].threshold(1e-2)[0]).mean()) > 5e-2
    assert strat.for_size(300) is strat.strata["64px"]
    again = calibration_from_dict(strat.to_dict())
    assert again.for_size(32).threshold(1e-3) == small.threshold(1e-3)
