"""Student's t quantiles, the one place hpogrow computes them (numpy has none, and hpogrow does not
depend on scipy).

Used for the t-intervals of speedups over bases and seeds (:mod:`hpogrow.speedup`), of the
coordinate check's paired gaps over seeds (:mod:`hpogrow.coordcheck`) and of transfercheck's drift
(:mod:`hpogrow.transfer.verdict`).

Example::

    student_t_quantile(0.975, 4)  # 2.776..., the two-sided 95% factor for 5 values
"""

from __future__ import annotations

import functools
import math


__all__ = ["student_t_quantile"]


@functools.lru_cache(maxsize=256)
def student_t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """Quantile of Student's t distribution: the ``t`` with ``P(T ≤ t) = probability`` (bisection
    on the CDF to float precision; pure, so cached).

    Args:
        probability: in (0, 1); 0.975 gives the factor of a two-sided 95% interval.
        degrees_of_freedom: at least 1, whole or fractional (Welch).

    Raises:
        ValueError: ``probability`` outside (0, 1) or fewer than 1 degree of freedom.
    """
    if not 0 < probability < 1 or not degrees_of_freedom >= 1:
        raise ValueError("need 0 < probability < 1 and at least 1 degree of freedom")
    if probability < 0.5:
        return -student_t_quantile(1 - probability, degrees_of_freedom)
    low, high = 0.0, 1.0
    while _student_t_cdf(high, degrees_of_freedom) < probability:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if _student_t_cdf(middle, degrees_of_freedom) < probability else (low, middle)
    return (low + high) / 2


def _student_t_cdf(t: float, degrees_of_freedom: float) -> float:
    """P(T ≤ t) for t ≥ 0, through the regularised incomplete beta function."""
    x = degrees_of_freedom / (degrees_of_freedom + t * t)
    return 1 - 0.5 * _incomplete_beta(degrees_of_freedom / 2, 0.5, x)


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes §6.4)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1 - _incomplete_beta(b, a, 1 - x)
    tiny, c, d = 1e-300, 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return front * fraction / a
