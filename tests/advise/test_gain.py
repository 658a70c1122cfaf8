"""The gain model of growth advice (hpogrow/advise/gain.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpogrow.advise.gain import GainModel, bootstrap_gains, fit_gain, flops_speedup_with_base, percentile_interval


def test_the_base_costs_one_over_g_squared_of_scratch():
    assert flops_speedup_with_base(4.0, 2.0) == pytest.approx(2.0)  # 1 / (1/4 + 1/4)
    assert flops_speedup_with_base(0.0, 2.0) == 0.0  # an underflowed token speedup
    assert np.allclose(flops_speedup_with_base(np.array([1.0, 1e12]), 3.0), [0.9, 9.0])


def test_a_noiseless_power_law_is_recovered():
    model = GainModel(intercept=0.5, g_slope=-0.3, budget_slope=-0.1)
    g, tau = np.array([1.5, 2.0, 3.0, 4.0, 2.0]), np.array([1.0, 4.0, 2.0, 8.0, 16.0])
    fitted = fit_gain(g, tau, model.token_speedup(g, tau))
    assert fitted.as_dict() == pytest.approx(model.as_dict())
    assert fitted.flops_speedup_with_base(2.0, 4.0) == pytest.approx(
        flops_speedup_with_base(model.token_speedup(2.0, 4.0), 2.0))


def test_one_budget_leaves_its_slope_at_zero_and_bad_pairs_are_refused():
    assert fit_gain([2.0, 4.0], [1.0, 1.0], [2.0, 3.0]).budget_slope == 0.0
    for bad in ([[2.0], [1.0], [2.0]], [[1.0, 2.0], [1.0, 1.0], [2.0, 2.0]], [[2.0, 3.0], [1.0, 1.0], [0.0, 2.0]]):
        with pytest.raises(ValueError):
            fit_gain(*bad)


def test_the_bootstrap_skips_resamples_with_one_growth_factor():
    models = bootstrap_gains([2.0, 4.0], [1.0, 1.0], [2.0, 3.0], resamples=50, seed=1)
    assert 0 < len(models) < 50  # about half draw the same pair twice
    assert all(model.g_slope == pytest.approx(math.log(1.5) / math.log(2.0)) for model in models)
    assert bootstrap_gains([2.0, 4.0], [1.0, 1.0], [2.0, 3.0], resamples=50, seed=1) == models  # seeded


def test_the_interval_ignores_non_finite_values():
    assert percentile_interval([math.nan, *range(101)], confidence=0.9) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(bound) for bound in percentile_interval([math.inf, math.nan]))


def test_the_bootstrap_draws_bases_whole_and_keeps_each_budgets_count():
    """Two bases per budget, each grown by 2, 4 and 8, each base shifting its pairs' log speedup
    by ±0.2: a resample of bases keeps the g-slope exact (every base brings all three g) and moves
    the intercept only by whole bases; a resample of pairs would tilt the slope."""
    g = np.tile([2.0, 4.0, 8.0], 4)
    tau = np.repeat([5.0, 20.0], 6)
    bases = np.repeat(["5a", "5b", "20a", "20b"], 3)
    shift = np.repeat([0.2, -0.2, 0.2, -0.2], 3)
    speedups = np.exp(0.5 - 0.4 * np.log(g) - 0.1 * np.log(tau) + shift)
    models = bootstrap_gains(g, tau, speedups, resamples=200, seed=0, bases=bases)
    assert len(models) == 200
    assert all(model.g_slope == pytest.approx(-0.4) for model in models)
    for budget in (5.0, 20.0):  # each budget's prediction moves by its own bases' mean shift: ±0.2 or 0
        moves = {round(float(np.log(model.token_speedup(2.0, budget))) - (0.5 - 0.4 * np.log(2.0) - 0.1 * np.log(budget)), 6)
                 for model in models}
        assert moves == {-0.2, 0.0, 0.2}
    by_pairs = bootstrap_gains(g, tau, speedups, resamples=200, seed=0)
    assert max(abs(model.g_slope + 0.4) for model in by_pairs) > 0.05
