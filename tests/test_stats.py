"""Student's t quantiles (hpogrow/stats.py): the one copy, against the printed tables."""

from __future__ import annotations

import pytest

from hpogrow import coordcheck, speedup, stats
from hpogrow.stats import student_t_quantile
from hpogrow.transfer import verdict


@pytest.mark.parametrize("probability, freedom, table", [
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 10, 2.228), (0.975, 30, 2.042),
    (0.95, 1, 6.314), (0.95, 5, 2.015), (0.995, 3, 5.841), (0.9, 20, 1.325), (0.975, 1000, 1.962),
])
def test_quantiles_match_the_printed_tables(probability, freedom, table):
    assert student_t_quantile(probability, freedom) == pytest.approx(table, abs=5e-4)


def test_lower_quantiles_mirror_the_upper_ones_and_the_median_is_zero():
    assert student_t_quantile(0.025, 4) == -student_t_quantile(0.975, 4)
    assert abs(student_t_quantile(0.5, 7)) < 1e-12


def test_fractional_freedom_lies_between_its_whole_neighbours():
    low, middle, high = (student_t_quantile(0.975, nu) for nu in (2, 2.5, 3))
    assert high < middle < low


@pytest.mark.parametrize("probability, freedom", [(0.0, 3), (1.0, 3), (0.975, 0), (0.975, 0.5)])
def test_outside_the_domain_is_a_value_error(probability, freedom):
    with pytest.raises(ValueError, match="at least 1 degree of freedom"):
        student_t_quantile(probability, freedom)


def test_speedup_and_coordcheck_use_this_copy():
    assert speedup.student_t_quantile is stats.student_t_quantile
    assert coordcheck.student_t_quantile is stats.student_t_quantile
    assert verdict.student_t_quantile is stats.student_t_quantile
