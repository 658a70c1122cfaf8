"""The learning rate across the token horizon (issue 23, item 3): the best learning rate falls as a
power law in the tokens trained, lr*(t) ∝ t^(−α) (Bjorck et al. 2024, arXiv 2409.19913), so a
target run on g× the base's tokens may want the base winner's rate × g^(−α).

:func:`fit_horizon` fits α from plain observations (a run's held-out loss at a token count): at
each token count the best learning rate per batch size (a quadratic in log lr through the grid's
lowest point and its neighbours), then log lr* = a_batch − α log t, one slope and an intercept per
batch size. Its 95% interval resamples *runs* (a run's whole curve is one unit, resampled within its
batch size): the optima at different token counts come from prefixes of the same runs, so their
residuals are correlated and a t-interval on the slope would treat 9 correlated points as 9
independent ones. Resampling runs keeps that correlation; it covers the grid's noise and the
quadratic's fit, not the training seed (every run of a pool shares one).

:class:`HorizonChoice` (:func:`choose_alpha`) is what ``--horizon-transfer`` applies to the
target runs: α from the base study's own trials when they determine it (an interval excluding 0),
else the constant ``bench/horizon.py`` measured for the task (:data:`MEASURED_ALPHA`), else none.
Under successive halving or a pruner only the survivors of early rungs reach late token counts,
and they survive for doing well early (a high learning rate): the late optimum is then often at the
edge of what survived and not located, so an in-study fit is rarely determined.

Example::

    fit = fit_horizon(observations)  # Observation(tokens, learning_rate, batch_size, loss, run)
    fit.alpha, fit.alpha_ci, fit.factor(base_tokens, target_tokens)
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hpogrow.record.run import HorizonTransfer

MEASURED_ALPHA: dict[str, tuple[float, tuple[float, float]]] = {"lm": (0.069, (-0.019, 0.125))}
"""α (and its 95% interval) measured by ``bench/horizon.py`` per built-in task, the fallback of
``--horizon-transfer auto`` when a study's own trials do not determine it. ``lm``: the 32-rate grid
at base width 64 (``studies/pool-w64.json``, training seed 0, 8k–139k tokens; bench/RESULTS.md,
2026-12-07): its interval includes 0, so ``auto`` applies no correction to the LM. The 16-rate
grid at width 128 gave 0.269 [0.152, 0.364], and neither factor (×0.918, ×0.719) beat the
winner's rate at the target (width 64 → 128, 3 seeds)."""
MEASURED_SOURCE = "bench/horizon.py"


@dataclass(frozen=True)
class Observation:
    """One run's held-out loss after ``tokens`` tokens (a constant learning rate: the run to that budget)."""

    tokens: int
    learning_rate: float
    batch_size: int
    loss: float
    run: int
    """Which run it comes from: the resampling unit (a pool's run index, a study's trial number)."""


@dataclass(frozen=True)
class Optimum:
    """The best learning rate of one batch size at one token count (``None``: not located)."""

    tokens: int
    batch_size: int
    learning_rate: float | None
    loss: float
    """The quadratic's minimum (the grid's lowest loss when the optimum was not located)."""
    grid_learning_rate: float
    """The grid point with the lowest loss."""
    reason: str | None = None
    """Why the optimum was not located: at the grid's edge, or the quadratic not convex."""


@dataclass(frozen=True)
class HorizonFit:
    """lr*(t) = exp(a_batch) · t^(−α), fitted by :func:`fit_horizon`."""

    alpha: float
    alpha_ci: tuple[float, float] | None
    """95% percentile interval over resampled runs (``None``: too few resamples could be fitted)."""
    intercepts: tuple[tuple[int, float], ...]
    """(batch size, a_batch) with a_batch the log learning rate at one token."""
    alpha_per_batch: tuple[tuple[int, float], ...]
    """α fitted on each batch size alone (their runs are independent of each other's)."""
    optima: tuple[Optimum, ...]
    resamples: int
    resamples_fitted: int

    @property
    def determined(self) -> bool:
        """Whether the interval excludes 0 (a horizon effect the data can tell from none)."""
        return self.alpha_ci is not None and (self.alpha_ci[0] > 0 or self.alpha_ci[1] < 0)

    def factor(self, base_tokens: float, target_tokens: float) -> float:
        """The learning-rate multiplier from ``base_tokens`` to ``target_tokens``: (target/base)^(−α)."""
        return horizon_factor(self.alpha, base_tokens, target_tokens)

    def learning_rate(self, tokens: float, batch_size: int) -> float:
        return math.exp(dict(self.intercepts)[batch_size] - self.alpha * math.log(tokens))


def horizon_factor(alpha: float, base_tokens: float, target_tokens: float) -> float:
    return (target_tokens / base_tokens) ** (-alpha)


def best_learning_rate(points: Sequence[tuple[float, float]], neighbours: int = 2) -> tuple[float | None, float, str | None]:
    """The learning rate of least loss among ``points`` ((learning rate, loss), repeats allowed;
    an infinite loss for a run that diverged before): a quadratic in log lr through the finite
    points at the distinct rates within ``neighbours`` of the lowest one.

    Returns (learning rate or ``None``, fitted or grid loss, why ``None``): an optimum at the
    grid's edge, a concave fit or a vertex outside the window is not located.
    """
    finite = [(lr, loss) for lr, loss in points if math.isfinite(loss)]
    rates = sorted({lr for lr, _ in points})  # a diverged run (infinite loss) still bounds the grid
    best_lr, best_loss = min(finite, key=lambda point: point[1])
    index = rates.index(best_lr)
    if index == 0 or index == len(rates) - 1:
        return None, best_loss, "at the grid's edge"
    window = set(rates[max(0, index - neighbours):index + neighbours + 1])
    x = np.array([math.log(lr) for lr, _ in finite if lr in window])
    y = np.array([loss for lr, loss in finite if lr in window])
    if len(set(x.tolist())) < 3:
        return None, best_loss, "too few finite points around it"
    curvature, slope, constant = np.polyfit(x, y, 2)
    if curvature <= 0:
        return None, best_loss, "not convex"
    vertex = -slope / (2 * curvature)
    if not x.min() <= vertex <= x.max():
        return None, best_loss, "vertex outside the window"
    return math.exp(vertex), float(constant - slope * slope / (4 * curvature)), None


def optima(observations: Iterable[Observation], tokens: Iterable[int] | None = None,
           neighbours: int = 2) -> list[Optimum]:
    """The best learning rate per batch size at each token count (``tokens``: all that every
    batch size has at 3 or more learning rates)."""
    grouped: dict[tuple[int, int], list[Observation]] = {}
    for observation in observations:
        grouped.setdefault((observation.tokens, observation.batch_size), []).append(observation)
    wanted = None if tokens is None else set(tokens)
    found = []
    for (count, batch), group in sorted(grouped.items()):
        if (wanted is not None and count not in wanted) or len({o.learning_rate for o in group}) < 3:
            continue
        if not any(math.isfinite(o.loss) for o in group):
            continue
        rate, loss, reason = best_learning_rate([(o.learning_rate, o.loss) for o in group], neighbours)
        grid = min((o for o in group if math.isfinite(o.loss)), key=lambda o: o.loss).learning_rate
        found.append(Optimum(count, batch, rate, loss, grid, reason))
    return found


def _slope(points: Sequence[Optimum]) -> tuple[float, dict[int, float]] | None:
    """Least squares of log lr* on log t with an intercept per batch size: (α, intercepts), or
    ``None`` with fewer than 3 located optima or no spread in tokens."""
    located = [p for p in points if p.learning_rate is not None]
    if len(located) < 3:
        return None
    groups: dict[int, list[tuple[float, float]]] = {}
    for p in located:
        groups.setdefault(p.batch_size, []).append((math.log(p.tokens), math.log(p.learning_rate)))
    sxy = sxx = 0.0
    means = {}
    for batch, pairs in groups.items():
        mx, my = sum(x for x, _ in pairs) / len(pairs), sum(y for _, y in pairs) / len(pairs)
        means[batch] = (mx, my)
        sxy += sum((x - mx) * (y - my) for x, y in pairs)
        sxx += sum((x - mx) ** 2 for x, _ in pairs)
    if sxx <= 0:
        return None
    slope = sxy / sxx
    return -slope, {batch: my - slope * mx for batch, (mx, my) in means.items()}


def fit_horizon(observations: Sequence[Observation], tokens: Iterable[int] | None = None, *, resamples: int = 1000,
                seed: int = 0, neighbours: int = 2) -> HorizonFit | None:
    """α of lr*(t) ∝ t^(−α) with its 95% interval over resampled runs (see the module docstring);
    ``None`` when fewer than 3 optima are located (e.g. every optimum at the grid's edge)."""
    tokens = None if tokens is None else sorted(set(tokens))
    points = optima(observations, tokens, neighbours)
    fitted = _slope(points)
    if fitted is None:
        return None
    alpha, intercepts = fitted
    per_batch = []
    for batch in sorted({p.batch_size for p in points}):
        alone = _slope([p for p in points if p.batch_size == batch])
        if alone is not None:
            per_batch.append((batch, alone[0]))
    runs: dict[int, dict[int, list[Observation]]] = {}
    for observation in observations:
        runs.setdefault(observation.batch_size, {}).setdefault(observation.run, []).append(observation)
    generator, alphas = random.Random(seed), []
    for _ in range(resamples):
        drawn = []
        for by_run in runs.values():
            names = list(by_run)
            for name in generator.choices(names, k=len(names)):
                drawn.extend(by_run[name])
        again = _slope(optima(drawn, tokens, neighbours))
        if again is not None:
            alphas.append(again[0])
    alphas.sort()
    interval = None
    if alphas and len(alphas) >= 0.9 * resamples:
        interval = (alphas[int(0.025 * (len(alphas) - 1))], alphas[math.ceil(0.975 * (len(alphas) - 1))])
    return HorizonFit(alpha, interval, tuple(sorted(intercepts.items())), tuple(per_batch), tuple(points),
                      resamples, len(alphas))


def log_spaced_tokens(available: Iterable[int], low: float, high: float, count: int = 9) -> list[int]:
    """``count`` token counts log-spaced from ``low`` to ``high``, each the nearest of ``available``."""
    available = sorted(available)
    wanted = [math.exp(math.log(low) + (math.log(high) - math.log(low)) * k / (count - 1)) for k in range(count)]
    return sorted({min(available, key=lambda t: abs(math.log(t / w))) for w in wanted})


def study_observations(trials: Iterable) -> list[Observation]:
    """A study's base trials as observations: each trial's intermediate values (held-out loss
    keyed by tokens seen, after the first evaluation at 0 tokens) at its learning rate and batch size."""
    found = []
    for trial in trials:
        params = trial.params
        if "learning_rate" not in params or "batch_size" not in params:
            continue
        for tokens, loss in trial.intermediate_values.items():
            if tokens > 0:
                found.append(Observation(int(tokens), params["learning_rate"], params["batch_size"], loss, trial.number))
    return found


@dataclass(frozen=True)
class HorizonChoice:
    """α for ``--horizon-transfer`` and where it came from (``alpha`` ``None``: no correction)."""

    mode: str
    alpha: float | None
    alpha_ci: tuple[float, float] | None
    source: str

    def transfer(self, learning_rate: float, base_tokens: int, run_tokens: int) -> HorizonTransfer:
        """The record of a run on ``run_tokens`` tokens grown from a base trained at ``learning_rate`` on ``base_tokens``."""
        factor = 1.0 if self.alpha is None else horizon_factor(self.alpha, base_tokens, run_tokens)
        return HorizonTransfer(self.mode, factor, learning_rate * factor, self.alpha, self.alpha_ci, self.source,
                               base_tokens, run_tokens)


def choose_alpha(mode: str, task_name: str, base_trials: Sequence, base_tokens: int) -> HorizonChoice:
    """α under ``mode`` (see the module docstring): the study's own fit over token counts from
    ``base_tokens``/16 to ``base_tokens`` when its interval excludes 0, else the task's measured
    constant when its interval excludes 0, else none (a correction the data cannot tell from
    none is not applied)."""
    if mode == "off":
        return HorizonChoice(mode, None, None, "off")
    observations = study_observations(base_trials)
    available = {o.tokens for o in observations if base_tokens / 16 <= o.tokens <= base_tokens}
    fit = fit_horizon(observations, available, resamples=400) if len(available) >= 3 else None
    if fit is not None and fit.determined:
        return HorizonChoice(mode, fit.alpha, fit.alpha_ci, f"the base study's own {len(base_trials)} trials")
    own = ("the base study's trials locate too few optima" if fit is None
           else f"the base study's fit α={fit.alpha:.3g} has an interval that includes 0")
    if task_name not in MEASURED_ALPHA:
        return HorizonChoice(mode, None, None, f"{own}, and none is measured for task {task_name}: no correction")
    alpha, interval = MEASURED_ALPHA[task_name]
    measured = f"α={alpha:.3g} [{interval[0]:.3g}, {interval[1]:.3g}] measured for task {task_name} by {MEASURED_SOURCE}"
    if interval[0] > 0 or interval[1] < 0:
        return HorizonChoice(mode, alpha, interval, f"{own}; {measured}")
    return HorizonChoice(mode, None, interval, f"{own}, and {measured} includes 0: no correction")
