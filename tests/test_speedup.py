import pytest

from hpogrow.speedup import compute_speedup, tokens_to_reach


def test_tokens_to_reach_interpolates_between_evaluations():
    curve = [(0, 5.0), (100, 3.0), (200, 2.0)]
    assert tokens_to_reach(curve, 2.5) == pytest.approx(150)
    assert tokens_to_reach(curve, 5.5) == 0
    assert tokens_to_reach(curve, 1.0) is None


def test_speedup_with_and_without_the_base_cost():
    scratch = [(0, 5.5), (500, 3.0), (1000, 2.0)]
    warm = [(0, 3.0), (250, 2.0), (1000, 1.8)]
    speedup = compute_speedup(warm, scratch, compute_params=10, base_tokens=250, base_flops=6 * 5 * 250)
    assert speedup.tokens == pytest.approx(4.0) and speedup.flops == pytest.approx(4.0)
    assert speedup.tokens_with_base == pytest.approx(2.0)
    assert speedup.flops_with_base == pytest.approx(6 * 10 * 1000 / (6 * 10 * 250 + 6 * 5 * 250))
    assert compute_speedup([(0, 9.0), (1000, 8.0)], scratch, 10, 0, 0).tokens is None
