"""The loss law L(N, D) = E + A/N^α + B/D^β, fitted as Hoffmann et al. (2022) do (approach 3).

The fit minimises the Huber loss (δ = 1e-3) between the logarithm of the predicted loss,
``logsumexp(a − α·log N, b − β·log D, e)`` with ``A = eᵃ``, ``B = eᵇ``, ``E = eᵉ``, and the
logarithm of the measured loss, from every point of a grid of initialisations; the best end point
wins. Each start is its own optimisation: all starts descend together with Adam, whose update of
an element reads only that element's gradient, so on a sum of separate objectives it is that many
independent runs (L-BFGS on the sum is not: its line search and curvature history are shared);
the best :data:`POLISHED` end points are then each refined by an L-BFGS of their own.

E is fitted, or held at a known floor (``floor``: the Bayes loss of the data, 0 for a noiseless
target); with ``floor=0`` the law is A/N^α + B/D^β. ``params_term=False`` fits L(D) = E + B/D^β
alone (a baseline: what the model size adds). Bootstrap intervals resample whole runs (the
points of one run share its noise and its seed), and each resample is refitted on its own from
:data:`BOOTSTRAP_GRID` and the full fit's optimum.

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
POLISHED = 4
"""Best end points of the grid's descent refined one by one by L-BFGS."""
INITIAL_GRID = {  # Hoffmann et al.'s grid, coarser in α, β, e (900 points, not 6,000), e reaching lower:
    # hpogrow's MLP losses are below 0.5
    "a": (0.0, 5.0, 10.0, 15.0, 20.0), "b": (0.0, 5.0, 10.0, 15.0, 20.0),
    "e": (-3.0, -1.5, 0.0, 1.0), "alpha": (0.25, 0.75, 1.5), "beta": (0.25, 0.75, 1.5),
}
BOOTSTRAP_GRID = {"a": (2.0, 10.0), "b": (2.0, 10.0), "e": (-2.0, 0.0), "alpha": (0.3, 1.0), "beta": (0.3, 1.0)}
"""Starts of each bootstrap refit, besides the full fit's optimum (16 or 32 with E free)."""
DESCENT_STEPS = 400
"""Adam steps of every start (learning rate 0.1, cosine-decayed to 0.001; L-BFGS polishes the best)."""
PARAMETERS = ("b", "beta", "a", "alpha", "e")
"""The order of θ's columns; ``a``, ``alpha`` only with the N-term, ``e`` only where E is fitted."""


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
    floor_fixed: bool = False
    """E was held at a known floor, not fitted."""

    def __call__(self, params: float | np.ndarray, tokens: float | np.ndarray) -> float | np.ndarray:
        with np.errstate(over="ignore"):  # a huge exponent makes its term 0, as it should
            return self.E + self.A / np.power(params, self.alpha) + self.B / np.power(tokens, self.beta)

    def as_dict(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "alpha": self.alpha, "B": self.B, "beta": self.beta}


@dataclass(frozen=True)
class _Points:
    """Log N, log D and log loss of the fitted points, each ``(points,)``; E's log when fixed;
    whether the law has its N-term."""

    log_n: torch.Tensor
    log_d: torch.Tensor
    log_loss: torch.Tensor
    log_floor: float | None
    params_term: bool = True

    @property
    def columns(self) -> tuple[str, ...]:
        """θ's columns, in :data:`PARAMETERS` order."""
        return tuple(name for name in PARAMETERS if (self.params_term or name not in ("a", "alpha"))
                     and (self.log_floor is None or name != "e"))

    def objective(self, theta: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Mean Huber loss of log residuals of each row of θ ``(K, columns)`` → ``(K,)``;
        ``weights`` ``(K, points)``: how often each point counts in row k (bootstrap multiplicities)."""
        column = {name: theta[:, index:index + 1] for index, name in enumerate(self.columns)}  # each (K, 1)
        terms = [column["b"] - column["beta"] * self.log_d]  # each (K, points)
        if self.params_term:
            terms.append(column["a"] - column["alpha"] * self.log_n)
        if self.log_floor is None:
            terms.append(column["e"].expand_as(terms[0]))
        elif math.isfinite(self.log_floor):  # a floor of 0 adds no term
            terms.append(torch.full_like(terms[0], self.log_floor))
        residual = torch.logsumexp(torch.stack(terms), dim=0) - self.log_loss  # (K, points)
        huber = torch.nn.functional.huber_loss(residual, torch.zeros_like(residual), reduction="none",
                                               delta=HUBER_DELTA)
        if weights is None:
            return huber.mean(dim=1)
        return (huber * weights).sum(dim=1) / weights.sum(dim=1)


def _finite(values: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(values), values, torch.inf)


def _descend(theta: torch.Tensor, points: _Points, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Adam from every row of θ ``(K, P)`` at once; each row its own optimisation (Adam's update is
    elementwise and row k's objective depends on row k only). Returns the end points ``(K, P)``."""
    theta = theta.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, DESCENT_STEPS, eta_min=1e-3)
    for _ in range(DESCENT_STEPS):
        optimizer.zero_grad()
        values = points.objective(theta, weights)
        _finite(values).clamp(max=1e6).sum().backward()  # a row that overflows stops moving, the others do not
        theta.grad.nan_to_num_(0.0)
        optimizer.step()
        schedule.step()
    return theta.detach()


def _polish(theta: torch.Tensor, points: _Points, weights: torch.Tensor | None = None) -> torch.Tensor:
    """One L-BFGS (strong Wolfe, float64) from one θ ``(P,)``; ``weights`` ``(points,)``."""
    theta = theta[None].clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([theta], lr=1.0, max_iter=100, history_size=20, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")
    row_weights = None if weights is None else weights[None]

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = points.objective(theta, row_weights).sum() / HUBER_DELTA  # scaled: δ·|r| is tiny next to the tolerances
        value.backward()
        return value

    optimizer.step(closure)
    return theta.detach()[0]


def _law(theta: torch.Tensor, value: float, points: _Points) -> LossLaw:
    fitted = {"a": -math.inf, "alpha": 0.0, "e": points.log_floor, **dict(zip(points.columns, theta.tolist()))}
    return LossLaw(E=math.exp(fitted["e"]), A=math.exp(fitted["a"]), alpha=fitted["alpha"], B=math.exp(fitted["b"]),
                   beta=fitted["beta"], huber=value, floor_fixed=points.log_floor is not None)


def _theta(law: LossLaw, points: _Points) -> list[float]:
    values = {"a": math.log(law.A) if law.A > 0 else 0.0, "b": math.log(law.B), "alpha": law.alpha,
              "beta": law.beta, "e": math.log(law.E) if law.E > 0 else -3.0}
    return [values[name] for name in points.columns]


def _grid(grid: dict[str, tuple[float, ...]], points: _Points) -> torch.Tensor:
    return torch.tensor(list(itertools.product(*(grid[name] for name in points.columns))), dtype=torch.float64)  # (K, P)


def _as_points(params: Sequence[float], tokens: Sequence[float], losses: Sequence[float],
               floor: float | None, params_term: bool = True) -> _Points:
    n, d, loss = (np.asarray(values, dtype=float) for values in (params, tokens, losses))
    if not (n.shape == d.shape == loss.shape) or len(n) < 5:
        raise ValueError(f"need at least 5 (N, D, loss) points of equal length, got {len(n)}")
    if not (np.all(n > 0) and np.all(d > 0) and np.all(loss > 0)):
        raise ValueError("parameters, tokens and losses must be positive")
    if floor is not None and not 0 <= floor < loss.min():
        raise ValueError(f"the loss floor {floor} must lie in [0, the smallest loss {loss.min():.4g})")
    log_floor = None if floor is None else (-math.inf if floor == 0 else math.log(floor))
    return _Points(*(torch.from_numpy(np.log(values)) for values in (n, d, loss)), log_floor, params_term)


def fit_loss_law(params: Sequence[float], tokens: Sequence[float], losses: Sequence[float],
                 floor: float | None = None, params_term: bool = True) -> LossLaw:
    """Fit L(N, D) to points ``(params[i], tokens[i], losses[i])`` from every start of :data:`INITIAL_GRID`.

    Args:
        floor: hold E at this known floor (0: no E term); ``None``: fit E.
        params_term: ``False``: fit L(D) = E + B/D^β, the points' N ignored (A = 0).
    """
    points = _as_points(params, tokens, losses, floor, params_term)
    ends = _descend(_grid(INITIAL_GRID, points), points)
    best = ends[torch.argsort(_finite(points.objective(ends)))[:POLISHED]]
    polished = torch.stack([_polish(theta, points) for theta in best])  # (POLISHED, P)
    values = _finite(points.objective(polished))
    index = int(torch.argmin(values))
    return _law(polished[index], float(values[index]), points)


def bootstrap_loss_laws(runs: Sequence[Sequence[tuple[float, float, float]]], law: LossLaw, resamples: int = 200,
                        seed: int = 0, floor: float | None = None) -> list[LossLaw]:
    """Refits on resamples of whole runs (each run: its ``(N, D, loss)`` points), each resample its
    own fit from :data:`BOOTSTRAP_GRID` and ``law`` (a resample is a multiplicity weight on each
    run's points); resamples with a single model size (α not identified) are skipped.

    Args:
        floor: as in :func:`fit_loss_law` (give the full fit's).
    """
    generator = np.random.default_rng(seed)
    points = [point for run in runs for point in run]
    owner = np.repeat(np.arange(len(runs)), [len(run) for run in runs])  # (points,)
    counts = np.stack([np.bincount(generator.integers(0, len(runs), len(runs)), minlength=len(runs))
                       for _ in range(resamples)])  # (resamples, runs)
    sizes = np.array([run[0][0] for run in runs])
    counts = counts[[len(set(sizes[row > 0])) > 1 for row in counts]]  # two model sizes at least
    if len(counts) == 0:
        return []
    data = _as_points(*zip(*points), floor)
    starts = torch.cat([_grid(BOOTSTRAP_GRID, data), torch.tensor([_theta(law, data)], dtype=torch.float64)])
    weights = torch.from_numpy(counts[:, owner].astype(float))  # (resamples, points)
    rows = weights.repeat_interleave(len(starts), dim=0)  # (resamples · starts, points)
    ends = _descend(starts.repeat(len(counts), 1), data, rows)
    values = _finite(data.objective(ends, rows)).reshape(len(counts), len(starts))
    laws = []
    for index, row in enumerate(torch.argmin(values, dim=1).tolist()):
        theta = _polish(ends[index * len(starts) + row], data, weights[index])
        value = float(data.objective(theta[None], weights[index][None])[0])
        if math.isfinite(value):
            laws.append(_law(theta, value, data))
    return laws
