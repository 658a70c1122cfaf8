"""The speedup estimator: smoothing, one pair's reading and its censoring, tokens-to-match at several
targets, aggregation over pairs with an interval that resamples bases."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from hpogrow.speedup import (SMOOTHING_SIGMA, SeedSpeedup, aggregate_speedups, log_t_interval,
                             seed_speedup, smooth_curve, student_t_quantile, tokens_to_reach)


def _line(intercept: float, slope: float, budget: float = 1000, evaluations: int = 10) -> list[tuple[float, float]]:
    return [(k * budget / evaluations, intercept + slope * k * budget / evaluations) for k in range(evaluations + 1)]


def _power_law(tokens: float) -> float:
    return 1.8 + 3.7 * (1 + tokens / 0.02) ** -0.6


def test_tokens_to_reach_interpolates_between_evaluations():
    curve = [(0, 5.0), (100, 3.0), (200, 2.0)]
    assert tokens_to_reach(curve, 2.5) == pytest.approx(150)
    assert tokens_to_reach(curve, 5.5) == 0
    assert tokens_to_reach(curve, 1.0) is None


def test_speedup_with_and_without_the_base_cost():
    scratch = [(0, 5.5), (500, 3.0), (1000, 2.0)]
    warm = [(0, 3.0), (250, 2.0), (1000, 1.8)]
    speedup = seed_speedup(warm, scratch, flops_per_token=6 * 10, base_tokens=250, base_flops=6 * 5 * 250)
    assert speedup.tokens == pytest.approx(4.0) and speedup.flops == pytest.approx(4.0)
    assert speedup.tokens_with_base == pytest.approx(2.0)
    assert speedup.flops_with_base == pytest.approx(6 * 10 * 1000 / (6 * 10 * 250 + 6 * 5 * 250))
    never = seed_speedup([(0, 9.0), (1000, 8.0)], scratch, flops_per_token=60)
    assert never.censoring == "not reached" and never.tokens == pytest.approx(1.0)  # counted at its bound


def test_smoothing_keeps_straight_lines_to_their_ends_and_the_start_point():
    curve = [(0, 9.0)] + _line(3.0, -1e-3)[1:]  # a jump before the first step, then a line
    smoothed = smooth_curve(curve, sigma=2.0)
    assert smoothed[0] == (0.0, 9.0)  # the start point is kept and does not pull its neighbours up
    for (tokens, value), (same_tokens, smooth_value) in zip(curve[1:], smoothed[1:]):
        assert same_tokens == tokens and smooth_value == pytest.approx(value, abs=1e-12)
    assert smooth_curve(curve, sigma=0) == [(float(t), float(v)) for t, v in curve]


def test_smoothing_averages_noise_at_the_ends_too():
    generator = random.Random(0)
    raw_ends, smooth_ends, raw_middles, smooth_middles = [], [], [], []
    for _ in range(2000):
        curve = [(tokens, 2.0 + generator.gauss(0, 0.01)) for tokens in range(100, 1700, 100)]
        smoothed = smooth_curve(curve)
        raw_ends.append(curve[-1][1]), smooth_ends.append(smoothed[-1][1])
        raw_middles.append(curve[8][1]), smooth_middles.append(smoothed[8][1])
    # the unbiased end costs variance: measured ×0.93 at the end and ×0.54 in the middle (σ = 1)
    assert statistics.stdev(smooth_ends) < 0.96 * statistics.stdev(raw_ends)
    assert statistics.stdev(smooth_middles) < 0.6 * statistics.stdev(raw_middles)


def test_short_curves_are_not_smoothed():
    curve = [(0, 5.0), (100, 3.0), (200, 2.6), (300, 2.5), (400, 2.3), (500, 2.25)]
    assert smooth_curve(curve) == [(float(t), float(v)) for t, v in curve]  # 5 evaluations after the start
    assert smooth_curve([*curve, (600, 2.2)]) != [(float(t), float(v)) for t, v in [*curve, (600, 2.2)]]


def test_known_curves_give_known_speedups():
    scratch = _line(3.0, -1e-3)             # reaches 2.0 at its budget, 1,000 tokens
    warmstart = _line(2.5, -1e-3)           # reaches 2.0 at 500 tokens
    pair = seed_speedup(warmstart, scratch, flops_per_token=60.0, base_tokens=250, base_flops=30.0 * 250, seed=4)
    assert pair.censoring == "reached" and pair.reached and pair.seed == 4
    assert pair.target_loss == pytest.approx(2.0) and pair.scratch_tokens == 1000
    assert pair.warmstart_tokens == pytest.approx(500)
    assert pair.tokens == pytest.approx(2.0) and pair.flops == pytest.approx(2.0)
    assert pair.tokens_with_base == pytest.approx(1000 / 750)
    assert pair.flops_with_base == pytest.approx(60 * 1000 / (60 * 500 + 30 * 250))


def test_a_seed_that_never_reaches_scratch_counts_at_its_bound():
    scratch = _line(3.0, -1e-3)
    never = seed_speedup(_line(3.5, -1e-3), scratch, flops_per_token=1.0, base_tokens=100, seed=2)
    assert never.censoring == "not reached" and not never.reached
    assert never.warmstart_tokens == 1000 and never.tokens == pytest.approx(1.0)  # at most 1000 / 1000
    assert never.tokens_with_base == pytest.approx(1000 / 1100)
    fast = [seed_speedup(_line(intercept, -1e-3), scratch, flops_per_token=1.0, seed=seed)
            for seed, intercept in enumerate((2.5, 2.8))]
    estimate = aggregate_speedups([*fast, never])
    assert estimate.seeds == 3 and estimate.seeds_reached == 2 and estimate.bound == "upper"
    assert estimate.tokens == pytest.approx((2.0 * 1000 / 800 * 1.0) ** (1 / 3))  # geometric mean over all three
    assert estimate.as_attrs()["speedup_censoring"] == ["reached", "reached", "not reached"]
    assert "1 counted at its bound: the mean is an upper bound" in estimate.describe()


def test_a_seed_below_scratch_at_its_start_is_bounded_by_the_evaluation_spacing():
    pair = seed_speedup(_line(1.9, -1e-4), _line(3.0, -1e-3), flops_per_token=1.0)
    assert pair.censoring == "below at start"
    assert pair.warmstart_tokens == 100 and pair.tokens == pytest.approx(10.0)  # at least 1000 / 100
    estimate = aggregate_speedups([pair, seed_speedup(_line(2.5, -1e-3), _line(3.0, -1e-3), flops_per_token=1.0)])
    assert estimate.bound == "lower" and estimate.seeds_reached == 1


@pytest.mark.parametrize("evaluations", [8, 16])
def test_smoothing_brings_the_crossing_closer_to_the_truth(evaluations):
    """A known smooth pair (warmstart = scratch 60% of the budget ahead: speedup 2.5) read through
    noise: over many draws the smoothed reading is closer to 2.5 than the raw one."""
    tokens = [k / evaluations for k in range(evaluations + 1)]
    scratch = [(t, _power_law(t)) for t in tokens]
    warmstart = [(t, _power_law(t + 0.6)) for t in tokens]
    generator = random.Random(1)
    errors = {"raw": [], "smoothed": []}
    for _ in range(500):
        noisy_warmstart, noisy_scratch = ([(t, v + (generator.gauss(0, 0.01) if t else 0.0)) for t, v in curve]
                                          for curve in (warmstart, scratch))
        for name, sigma in (("raw", 0.0), ("smoothed", SMOOTHING_SIGMA)):
            reading = seed_speedup(noisy_warmstart, noisy_scratch, flops_per_token=1.0, sigma=sigma).tokens
            errors[name].append(math.log(reading / 2.5))
    rms = {name: math.sqrt(statistics.fmean(e * e for e in values)) for name, values in errors.items()}
    assert rms["smoothed"] < 0.9 * rms["raw"]  # measured 0.82 at 8 and at 16 evaluations
    assert abs(statistics.fmean(errors["smoothed"])) < 0.05  # and nearly unbiased (−3.5% and −0.7%)


def _pair(speedup: float, seed: int, base: int = 0) -> SeedSpeedup:
    return SeedSpeedup(seed=seed, target_loss=2.0, scratch_tokens=1000.0, warmstart_tokens=1000 / speedup,
                       censoring="reached", tokens=speedup, flops=speedup, tokens_with_base=speedup / 2,
                       flops_with_base=speedup / 2, base=base)


@pytest.mark.parametrize("seeds", [3, 5])
def test_interval_covers_the_true_speedup_about_95_percent_of_the_time(seeds):
    generator = random.Random(seeds)
    true_median, draws, covered = 1.6, 2000, 0
    for _ in range(draws):
        estimate = aggregate_speedups([_pair(true_median * math.exp(generator.gauss(0, 0.3)), seed)
                                       for seed in range(seeds)])
        low, high = estimate.tokens_ci
        covered += low <= true_median <= high
        assert estimate.tokens_with_base_ci[0] == pytest.approx(low / 2)
    assert 0.93 <= covered / draws <= 0.97


def test_one_seed_gives_no_interval_and_says_so():
    estimate = aggregate_speedups([_pair(1.5, 0)])
    assert estimate.tokens == pytest.approx(1.5) and estimate.tokens_ci is None and estimate.bound is None
    attrs = estimate.as_attrs()
    required = {"speedup_tokens", "speedup_tokens_ci", "speedup_flops", "speedup_flops_ci", "speedup_tokens_with_base",
                "speedup_tokens_with_base_ci", "speedup_flops_with_base", "speedup_flops_with_base_ci", "seeds",
                "seeds_reached"}
    assert required <= set(attrs) and all(attrs[f"{key}"] is None for key in required if key.endswith("_ci"))
    assert attrs["seeds"] == 1 and attrs["seeds_reached"] == 1 and attrs["speedup_tokens_per_seed"] == [1.5]
    assert "one seed: no interval" in estimate.describe()
    two = aggregate_speedups([_pair(1.5, 0), _pair(2.0, 1)]).as_attrs()
    assert len(two["speedup_tokens_ci"]) == 2 and two["speedup_tokens_ci"][0] < 1.5 < 2.0 < two["speedup_tokens_ci"][1]


def test_student_t_quantiles_match_the_tables():
    for degrees, expected in ((1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042)):
        assert student_t_quantile(0.975, degrees) == pytest.approx(expected, abs=1e-3)


def test_tokens_to_match_at_a_share_of_scratchs_budget():
    """The target is scratch's loss at that share of its budget (interpolated); the ratio is
    scratch's tokens to it over the warmstart's; the full budget is the final-loss reading."""
    scratch = [(0, 5.5), (500, 3.0), (1000, 2.0)]
    warm = [(0, 4.0), (250, 3.0), (1000, 1.8)]
    half = seed_speedup(warm, scratch, flops_per_token=60, fraction=0.5)
    assert half.target_loss == 3.0 and half.scratch_tokens == 500 and half.warmstart_tokens == pytest.approx(250)
    assert half.tokens == pytest.approx(2.0) and half.reached
    three_quarters = seed_speedup(warm, scratch, flops_per_token=60, base_tokens=100, fraction=0.75)
    assert three_quarters.target_loss == pytest.approx(2.5)  # halfway from 3.0 at 500 to 2.0 at 1000
    assert three_quarters.warmstart_tokens == pytest.approx(250 + 750 * 0.5 / 1.2)
    assert three_quarters.tokens == pytest.approx(750 / (250 + 750 * 0.5 / 1.2))
    assert three_quarters.tokens_with_base == pytest.approx(750 / (250 + 750 * 0.5 / 1.2 + 100))
    assert seed_speedup(warm, scratch, flops_per_token=60, fraction=1.0) == seed_speedup(warm, scratch, flops_per_token=60)
    with pytest.raises(ValueError, match="fraction"):
        seed_speedup(warm, scratch, flops_per_token=60, fraction=0.0)


def test_the_interval_resamples_bases_not_pairs():
    """Four pairs on two bases: a t-interval on the two bases' mean log speedups (1 degree of
    freedom), centred on their mean; pairs of one base agree closely, so an interval over the
    four pairs would be far narrower than the bases' disagreement allows."""
    pairs = [_pair(1.2, 0, base=0), _pair(2.0, 1, base=1), _pair(1.3, 2, base=0), _pair(2.2, 3, base=1)]
    estimate = aggregate_speedups(pairs)
    means = [(math.log(1.2) + math.log(1.3)) / 2, (math.log(2.0) + math.log(2.2)) / 2]
    half = student_t_quantile(0.975, 1) * statistics.stdev(means) / math.sqrt(2)
    assert estimate.bases == 2 and estimate.seeds == 4
    assert estimate.tokens == pytest.approx(math.exp(statistics.fmean(means)))
    assert estimate.tokens_ci == pytest.approx((math.exp(statistics.fmean(means) - half),
                                                math.exp(statistics.fmean(means) + half)))
    naive = log_t_interval([1.2, 2.0, 1.3, 2.2])[1]
    assert estimate.tokens_ci[1] / estimate.tokens_ci[0] > 3 * naive[1] / naive[0]
    assert "over 4 pairs on 2 bases" in estimate.describe() and "1 degree of freedom" in estimate.describe()
    attrs = estimate.as_attrs()
    assert attrs["speedup_bases"] == 2 and attrs["speedup_base_per_seed"] == [0, 1, 0, 1]


def test_pairs_of_one_base_get_an_interval_that_says_it_leaves_the_base_out():
    estimate = aggregate_speedups([_pair(1.2, 0), _pair(1.3, 1)])
    assert estimate.bases == 1 and estimate.tokens_ci is not None
    assert "base-to-base variance not covered" in estimate.describe()
    assert estimate.as_attrs()["speedup_bases"] == 1


def test_with_a_base_effect_only_the_interval_over_bases_keeps_its_level():
    """Log speedups = log μ + base luck (shared by a base's pairs) + pair noise, two pairs on
    each of two bases, the base's luck twice the pair's: the interval over bases covers μ about
    95% of the time (exact here); one over the four pairs, ignoring the bases, far less."""
    generator = random.Random(21)
    true_median, draws, covered, covered_by_pairs = 1.6, 2000, 0, 0
    for _ in range(draws):
        luck = [generator.gauss(0, 0.2) for _ in range(2)]
        pairs = [_pair(true_median * math.exp(luck[k % 2] + generator.gauss(0, 0.1)), k, base=k % 2) for k in range(4)]
        low, high = aggregate_speedups(pairs).tokens_ci
        covered += low <= true_median <= high
        low, high = log_t_interval([pair.tokens for pair in pairs])[1]
        covered_by_pairs += low <= true_median <= high
    assert 0.93 <= covered / draws <= 0.97
    assert covered_by_pairs / draws < 0.85  # measured 0.947 and 0.80
