"""The loss law L(N, D) = E + A/N^α + B/D^β, fitted as Hoffmann et al. (2022) do (approach 3).

The fit minimises the Huber loss (δ = 1e-3) between the logarithm of the predicted loss,
``logsumexp(a − α·log N, b − β·log D, e)`` with ``A = eᵃ``, ``B = eᵇ``, ``E = eᵉ``, and the
logarithm of the measured loss, with L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search,
float64) from every point of a grid of initialisations, the best end point wins: the grid is
minimised at once (the objective is a sum over initialisations, separable, so its minimum is
every initialisation's own), and the best :data:`POLISHED` end points are then each refined by
an L-BFGS of their own. Bootstrap intervals resample whole
runs (the points of one run share its noise), each resample refitted from the full fit's optimum.

Example::

    import numpy as np
    n, d = np.meshgrid([1e3, 4e3, 16e3], [1e4, 4e4, 16e4])
    loss = 0.3 + 40 / n.ravel() ** 0.6 + 90 / d.ravel() ** 0.5
    law = fit_loss_law(n.ravel(), d.ravel(), loss)
    print(law.E, law.alpha, law(2e4, 2e5))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

HUBER_DELTA = 1e-3
"""Hoffmann et al.'s δ: residuals of log loss above 0.1% count linearly (robust to outliers)."""
POLISHED = 8
"""End points of the joint grid minimisation refined one by one."""
INITIAL_GRID = {  # Hoffmann et al.'s grid, coarser in α, β, e (900 points, not 6,000), e reaching lower:
    # hpogrow's MLP losses are below 0.5
    "a": (0.0, 5.0, 10.0, 15.0, 20.0), "b": (0.0, 5.0, 10.0, 15.0, 20.0),
    "e": (-3.0, -1.5, 0.0, 1.0), "alpha": (0.25, 0.75, 1.5), "beta": (0.25, 0.75, 1.5),
}


@dataclass(frozen=True)
class LossLaw:
    """A fitted L(N, D) = E + A/N^α + B/D^β."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    huber: float = math.nan
    """The objective at the optimum (mean Huber loss of log residuals)."""

    def __call__(self, params: float | np.ndarray, tokens: float | np.ndarray) -> float | np.ndarray:
        with np.errstate(over="ignore"):  # a huge exponent makes its term 0, as it should
            return self.E + self.A / np.power(params, self.alpha) + self.B / np.power(tokens, self.beta)

    def as_dict(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "alpha": self.alpha, "B": self.B, "beta": self.beta}


def _huber_objective(theta: torch.Tensor, log_n: torch.Tensor, log_d: torch.Tensor, log_loss: torch.Tensor,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Huber loss of log residuals of each row of theta (K, 5) as (a, b, e, α, β) → (K,);
    ``weights`` (K, points): how often each point counts in row k (bootstrap multiplicities)."""
    a, b, e, alpha, beta = theta.unbind(dim=1)  # each (K,)
    terms = torch.stack([a[:, None] - alpha[:, None] * log_n, b[:, None] - beta[:, None] * log_d,
                         e[:, None].expand(-1, len(log_n))])  # (3, K, points)
    residual = torch.logsumexp(terms, dim=0) - log_loss  # (K, points)
    huber = torch.nn.functional.huber_loss(residual, torch.zeros_like(residual), reduction="none", delta=HUBER_DELTA)
    if weights is None:
        return huber.mean(dim=1)
    return (huber * weights).sum(dim=1) / weights.sum(dim=1)


def _lbfgs(theta: torch.Tensor, data: tuple[torch.Tensor, ...], iterations: int,
           weights: torch.Tensor | None = None) -> torch.Tensor:
    """L-BFGS on the sum over initialisations; returns each initialisation's end point (K, 5)."""
    theta = theta.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([theta], lr=1.0, max_iter=iterations, history_size=20, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = _huber_objective(theta, *data, weights).sum() / HUBER_DELTA  # scaled: δ·|r| is tiny next to the tolerances
        value.backward()
        return value

    optimizer.step(closure)
    return theta.detach()


def _law(theta: np.ndarray, value: float) -> LossLaw:
    a, b, e, alpha, beta = (float(x) for x in theta)
    return LossLaw(E=math.exp(e), A=math.exp(a), alpha=alpha, B=math.exp(b), beta=beta, huber=value)


def _as_data(params: Sequence[float], tokens: Sequence[float], losses: Sequence[float]) -> tuple[torch.Tensor, ...]:
    n, d, loss = (np.asarray(values, dtype=float) for values in (params, tokens, losses))
    if not (n.shape == d.shape == loss.shape) or len(n) < 5:
        raise ValueError(f"need at least 5 (N, D, loss) points of equal length, got {len(n)}")
    if not (np.all(n > 0) and np.all(d > 0) and np.all(loss > 0)):
        raise ValueError("parameters, tokens and losses must be positive")
    return tuple(torch.from_numpy(np.log(values)) for values in (n, d, loss))


def fit_loss_law(params: Sequence[float], tokens: Sequence[float], losses: Sequence[float],
                 start: LossLaw | None = None) -> LossLaw:
    """Fit L(N, D) to points ``(params[i], tokens[i], losses[i])``.

    Args:
        start: begin L-BFGS from this law only (bootstrap refits); default: every point of
            :data:`INITIAL_GRID`.
    """
    data = _as_data(params, tokens, losses)
    if start is not None:
        starts = torch.tensor([[math.log(start.A), math.log(start.B), math.log(start.E), start.alpha, start.beta]],
                              dtype=torch.float64)
    else:
        grid = INITIAL_GRID
        starts = torch.tensor(list(itertools.product(grid["a"], grid["b"], grid["e"], grid["alpha"], grid["beta"])),
                              dtype=torch.float64)  # (K, 5)
        ends = _lbfgs(starts, data, iterations=40)
        values = _huber_objective(ends, *data)  # (K,)
        values = torch.where(torch.isfinite(values), values, torch.inf)
        starts = ends[torch.argsort(values)[:POLISHED]]
    ends = torch.cat([_lbfgs(theta[None], data, iterations=500) for theta in starts])  # (polished, 5)
    values = _huber_objective(ends, *data)
    values = torch.where(torch.isfinite(values), values, torch.inf)
    best = int(torch.argmin(values))
    return _law(ends[best].numpy(), float(values[best]))


def bootstrap_loss_laws(runs: Sequence[Sequence[tuple[float, float, float]]], law: LossLaw, resamples: int = 200,
                        seed: int = 0) -> list[LossLaw]:
    """Refits of ``law`` on resamples of whole runs (each run: its ``(N, D, loss)`` points), all
    minimised at once from ``law`` (a resample is a multiplicity weight on each run's points)."""
    generator = np.random.default_rng(seed)
    points = [point for run in runs for point in run]
    owner = np.repeat(np.arange(len(runs)), [len(run) for run in runs])  # (points,)
    counts = np.stack([np.bincount(generator.integers(0, len(runs), len(runs)), minlength=len(runs))
                       for _ in range(resamples)])  # (resamples, runs)
    sizes = np.array([points[np.nonzero(owner == index)[0][0]][0] for index in range(len(runs))])
    identified = [(row > 0).sum() > 0 and len(set(sizes[row > 0])) > 1 for row in counts]  # two model sizes at least
    counts = counts[identified]
    if len(counts) == 0:
        return []
    data = _as_data(*zip(*points))
    weights = torch.from_numpy(counts[:, owner].astype(float))  # (resamples, points)
    start = torch.tensor([[math.log(law.A), math.log(law.B), math.log(law.E), law.alpha, law.beta]],
                         dtype=torch.float64).repeat(len(counts), 1)
    ends = _lbfgs(start, data, iterations=500, weights=weights)
    values = _huber_objective(ends, *data, weights)
    return [_law(end.numpy(), float(value)) for end, value in zip(ends, values) if torch.isfinite(value)]


def r_squared(measured: Sequence[float], predicted: Sequence[float]) -> float:
    """1 − residual sum of squares / total sum of squares around the measured mean."""
    measured, predicted = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    total = float(np.sum((measured - measured.mean()) ** 2))
    return math.nan if total == 0 else 1.0 - float(np.sum((measured - predicted) ** 2)) / total
