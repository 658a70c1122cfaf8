"""The μTransfer verdict (hpogrow/transfer/verdict.py) on sweeps whose optimum is known."""

from __future__ import annotations

import math

import pytest

from hpogrow.transfer.verdict import TransferRun, judge, run_key, shifts_from_base

WIDTHS = (16, 32, 64, 128)
RATES = tuple(2.0**k for k in range(-12, -3))  # one octave per grid step
SEEDS = (0, 1)


def _runs(parameterization: str, optimum, diverge_above: float = math.inf) -> list[TransferRun]:
    """A parabola in log2 learning rate with its vertex at ``optimum(width)`` (log2), per seed."""
    return [TransferRun(parameterization, width, rate, seed,
                        math.inf if rate > diverge_above else 1.0 + (math.log2(rate) - optimum(width)) ** 2
                        + 0.01 * seed, curve=(), n_params=width * width)
            for width in WIDTHS for rate in RATES for seed in SEEDS]


def test_an_optimum_that_stays_put_transfers_with_no_drift():
    verdict = judge(_runs("μP", lambda width: -7.3, diverge_above=2.0**-5), "μP", WIDTHS, RATES, SEEDS)
    assert verdict.transfers and verdict.shifts == (0, 0, 0, 0) and verdict.max_shift == 0
    assert verdict.seeds_transferring == 2
    assert verdict.drift == pytest.approx(0.0, abs=1e-9)
    optimum = verdict.optima[0]
    assert optimum.best_index == 5 and not optimum.at_edge  # 2^-7 is the grid point nearest 2^-7.3
    assert optimum.refined_learning_rate == pytest.approx(2.0**-7.3)  # the parabola's vertex
    assert optimum.diverged == (0,) * 8 + (2,) and optimum.mean_losses[-1] == math.inf


def test_an_optimum_that_halves_per_doubling_fails_with_drift_minus_one():
    verdict = judge(_runs("SP", lambda width: -6 - math.log2(width / 16)), "SP", WIDTHS, RATES, SEEDS)
    assert not verdict.transfers and verdict.shifts == (0, -1, -2, -3) and verdict.max_shift == 3
    assert verdict.seeds_transferring == 0
    assert verdict.drift == pytest.approx(-1.0) and verdict.drift_range == pytest.approx((-1.0, -1.0))
    assert judge(_runs("SP", lambda width: -6 - math.log2(width / 16)), "SP", WIDTHS[:2], RATES, SEEDS,
                 tolerance=1).transfers  # one step is within the default tolerance


def test_a_width_where_every_run_diverged_has_no_optimum():
    runs = _runs("SP", lambda width: -6, diverge_above=0.0)
    verdict = judge(runs, "SP", WIDTHS, RATES, SEEDS)
    assert verdict.optima[0].best_index is None and verdict.optima[0].refined_learning_rate is None
    assert verdict.shifts == (None,) * 4 and verdict.max_shift is None and not verdict.transfers
    assert math.isnan(verdict.drift)
    assert shifts_from_base([3, None, 5]) == (0, None, 2)


def test_learning_rates_match_after_a_trip_through_text():
    assert run_key("μP", 64, 0.1 + 0.2, 0) == run_key("μP", 64, float(repr(0.30000000000000004)[:11]), 0)
    assert run_key("μP", 64, 3e-3, 0) != run_key("μP", 64, 3.1e-3, 0)
