"""Warmstart's gain as a function of the growth factor g and the budget in tokens per parameter.

The model (stated, deliberately simple): the *token* speedup of a warmstarted run over scratch
at the same target size and budget (scratch's tokens over the tokens the warmstarted run needs
to reach scratch's final loss, the base's own tokens left out) is a power law,

    log s = c₀ + c_g·log g + c_τ·log τ,     τ = tokens per target parameter,

fitted by least squares on every measured warmstart/scratch pair (censored pairs enter at their
bound, see :mod:`hpogrow.speedup`), with bootstrap intervals over bases (the pairs grown from one
base share its noise and are drawn together). The base's cost then
follows from the budgets: a base trained at the same τ costs ``6·(N/g)·τ·(N/g)`` FLOPs against
scratch's ``6·N·τ·N``, so the FLOPs speedup counting the base is

    S(g) = 1 / (1/s + 1/g²),

below 1 for g near 1 (the base costs as much as scratch) and, when c_g < 0, again for large g:
the largest g with S ≥ 1 is where scratch becomes cheaper.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GainModel:
    """log s = intercept + g_slope·log g + budget_slope·log(tokens/param)."""

    intercept: float
    g_slope: float
    budget_slope: float

    def token_speedup(self, growth_factor: float | np.ndarray, tokens_per_param: float | np.ndarray) -> np.ndarray:
        return np.exp(self.intercept + self.g_slope * np.log(growth_factor)
                      + self.budget_slope * np.log(tokens_per_param))

    def flops_speedup_with_base(self, growth_factor: float | np.ndarray, tokens_per_param: float | np.ndarray) -> np.ndarray:
        return flops_speedup_with_base(self.token_speedup(growth_factor, tokens_per_param), growth_factor)

    def as_dict(self) -> dict[str, float]:
        return {"intercept": self.intercept, "g_slope": self.g_slope, "budget_slope": self.budget_slope}


def flops_speedup_with_base(token_speedup: float | np.ndarray, growth_factor: float | np.ndarray) -> np.ndarray:
    """S = 1/(1/s + 1/g²): the base, trained at the same tokens per parameter, counted. A token
    speedup that underflows to 0 (a bootstrap fit's extreme slope) gives S = 0."""
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 / np.asarray(token_speedup) + 1.0 / np.asarray(growth_factor, dtype=float) ** 2)


def fit_gain(growth_factors: Sequence[float], tokens_per_param: Sequence[float], speedups: Sequence[float]) -> GainModel:
    """Least squares of log speedup on (1, log g, log τ); a single τ leaves budget_slope at 0."""
    g, tau, s = (np.asarray(values, dtype=float) for values in (growth_factors, tokens_per_param, speedups))
    if len(s) < 2 or np.any(s <= 0) or np.any(g <= 1) or np.any(tau <= 0):
        raise ValueError("need at least two pairs with positive speedups, g > 1 and positive tokens per parameter")
    columns = [np.ones_like(g), np.log(g)]
    varies = np.ptp(np.log(tau)) > 1e-9
    if varies:
        columns.append(np.log(tau))
    coefficients, *_ = np.linalg.lstsq(np.stack(columns, axis=1), np.log(s), rcond=None)
    return GainModel(float(coefficients[0]), float(coefficients[1]), float(coefficients[2]) if varies else 0.0)


def bootstrap_gains(growth_factors: Sequence[float], tokens_per_param: Sequence[float], speedups: Sequence[float],
                    resamples: int = 1000, seed: int = 0, bases: Sequence[Hashable] | None = None) -> list[GainModel]:
    """Refits on resamples of the bases: the pairs grown from one base (``bases[i]``: pair i's
    base; default: each pair its own) are drawn together, and each budget in tokens per parameter
    keeps its number of bases (drawn with replacement among its own). Resamples with a single g
    (slope not identified) are skipped."""
    generator = np.random.default_rng(seed)
    data = [np.asarray(values, dtype=float) for values in (growth_factors, tokens_per_param, speedups)]
    owners = list(range(len(data[0]))) if bases is None else list(bases)
    members: dict[Hashable, list[int]] = {}
    for index, owner in enumerate(owners):
        members.setdefault(owner, []).append(index)
    strata: dict[float, list[Hashable]] = {}
    for owner, indices in members.items():
        strata.setdefault(round(float(data[1][indices[0]]), 6), []).append(owner)
    models = []
    for _ in range(resamples):
        drawn = [owner for group in strata.values() for owner in
                 (group[k] for k in generator.integers(0, len(group), len(group)))]
        chosen = np.array([index for owner in drawn for index in members[owner]])
        if len(set(data[0][chosen])) < 2:
            continue
        models.append(fit_gain(*(values[chosen] for values in data)))
    return models


def percentile_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` range of bootstrap values."""
    finite = np.asarray([value for value in values if math.isfinite(value)])
    if len(finite) == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(low), float(high)
