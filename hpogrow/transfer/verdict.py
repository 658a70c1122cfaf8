"""Reading the optimum of each width and judging its drift against a bound (pure functions, no I/O).

**The test.** Per seed, the drift is the least-squares slope of the refined optimum (log2 learning
rate) against log2 width: octaves of learning rate per doubling of width. Over seeds it gets a
95% t-interval (``n − 1`` degrees of freedom; none from one seed). With the bound ``B``
(:attr:`TransferConfig.max_drift`, stated before any run): ``pass`` when the interval lies
inside ``(−B, B)``, ``fail`` when it lies wholly above ``B`` or below ``−B``, ``undecided``
otherwise (and when some width's optimum, of the seed mean or of one seed alone, sits at the edge
of the grid, where the refined optimum is clamped, a ``pass`` is demoted to ``undecided``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpogrow.stats import student_t_quantile
from hpogrow.transfer.config import TransferConfig


@dataclass(frozen=True)
class TransferRun:
    """One finished run of the sweep."""

    parameterization: str
    width: int
    learning_rate: float
    seed: int
    final_loss: float
    """Final held-out loss; ``inf`` when the run diverged."""
    curve: tuple[tuple[int, float], ...]
    """``(tokens seen, held-out loss)`` at each evaluation (up to divergence)."""
    n_params: int
    fail_reason: str | None = None

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.final_loss)


@dataclass(frozen=True)
class WidthOptimum:
    """Where the loss-against-learning-rate curve of one width bottoms out."""

    width: int
    mean_losses: tuple[float, ...]
    """Per learning rate, the mean final loss over seeds (``inf`` if any seed diverged)."""
    diverged: tuple[int, ...]
    """Per learning rate, diverged seeds."""
    best_index: int | None
    """Grid argmin of ``mean_losses``; ``None`` when every run diverged."""
    seed_best_indices: tuple[int | None, ...]
    """The same argmin for each seed alone."""
    refined_learning_rate: float | None
    """Vertex of a parabola in log learning rate through the argmin and its neighbours (the grid
    argmin itself at the edge of the grid)."""

    @property
    def at_edge(self) -> bool:
        """The argmin of the seed mean, or of some seed alone, lies at the edge of the grid, where
        its refined optimum is clamped (a drift read there is pulled towards 0)."""
        edges = (0, len(self.mean_losses) - 1)
        return self.best_index in edges or any(index in edges for index in self.seed_best_indices)


@dataclass(frozen=True)
class Verdict:
    """Does the optimum of one parameterization stay put across widths?"""

    parameterization: str
    optima: tuple[WidthOptimum, ...]
    shifts: tuple[int | None, ...]
    """Per width, grid steps from the base width's optimum (``None``: no optimum); descriptive."""
    drift: float
    """Octaves of learning rate the optimum moves per doubling of width (least squares over
    widths on the refined optima of the seed-mean losses; 0 for perfect transfer, about -1 for SP
    with Adam)."""
    seed_drifts: tuple[float, ...]
    """The same drift read from each seed's runs alone (``nan``: a width without optimum)."""
    drift_interval: tuple[float, float]
    """95% t-interval of the mean of :attr:`seed_drifts` (``nan`` from fewer than two seeds)."""
    max_drift: float
    """The bound ``B`` the interval is judged against."""

    @property
    def drift_range(self) -> tuple[float, float]:
        """Lowest and highest drift over seeds."""
        known = [drift for drift in self.seed_drifts if not math.isnan(drift)]
        return (min(known), max(known)) if known else (math.nan, math.nan)

    @property
    def label(self) -> str:
        """``pass``, ``fail`` or ``undecided`` (module docstring)."""
        low, high = self.drift_interval
        if low > self.max_drift or high < -self.max_drift:
            return "fail"
        inside = -self.max_drift < low and high < self.max_drift
        return "pass" if inside and not any(optimum.at_edge for optimum in self.optima) else "undecided"

    @property
    def transfers(self) -> bool:
        """The drift surely lies within the bound (:attr:`label` is ``pass``)."""
        return self.label == "pass"

    @property
    def max_shift(self) -> int | None:
        known = [abs(shift) for shift in self.shifts if shift is not None]
        return max(known) if len(known) == len(self.shifts) else None


@dataclass
class TransferResult:
    """What :func:`hpogrow.run_transfercheck` returns."""

    config: TransferConfig
    """The config with the task's defaults filled in."""
    study_name: str
    storage: str
    runs: list[TransferRun]
    verdicts: dict[str, Verdict]
    plot: Path
    trained: int
    """Runs trained by this call (the others were reused from the study)."""
    seconds: float
    seeds: tuple[int, ...] = ()

    @property
    def passed(self) -> bool:
        """μP passes and SP fails: the contrast the check is for."""
        return self.verdicts["μP"].label == "pass" and self.verdicts["SP"].label == "fail"


def run_key(parameterization: str, width: int, learning_rate: float, seed: int) -> tuple:
    """Identifies a run; learning rates match to 9 significant digits (they travel through JSON
    and the command line)."""
    return parameterization, width, float(f"{learning_rate:.9g}"), seed


def _argmin(losses: Sequence[float]) -> int | None:
    finite = [index for index, loss in enumerate(losses) if math.isfinite(loss)]
    return min(finite, key=lambda index: losses[index]) if finite else None


def _refine(log_rates: np.ndarray, losses: Sequence[float], best: int | None) -> float | None:
    """log2 of the vertex of the parabola through the argmin and its neighbours."""
    if best is None:
        return None
    if best in (0, len(losses) - 1) or not all(math.isfinite(losses[i]) for i in (best - 1, best + 1)):
        return float(log_rates[best])
    around = slice(best - 1, best + 2)
    curvature, slope, _ = np.polyfit(log_rates[around], np.asarray(losses[around]), 2)
    if curvature <= 0:
        return float(log_rates[best])
    return float(np.clip(-slope / (2 * curvature), log_rates[best - 1], log_rates[best + 1]))


def _drift(widths: Sequence[int], log_optima: Sequence[float | None]) -> float:
    points = [(math.log2(width), optimum) for width, optimum in zip(widths, log_optima) if optimum is not None]
    if len(points) < 2:
        return math.nan
    return float(np.polyfit(*zip(*points), 1)[0])


def drift_interval(seed_drifts: Sequence[float]) -> tuple[float, float]:
    """95% t-interval of the mean drift over seeds; ``nan`` from fewer than two known drifts."""
    known = np.array([drift for drift in seed_drifts if not math.isnan(drift)])
    if len(known) < 2 or len(known) < len(seed_drifts):
        return math.nan, math.nan
    half = student_t_quantile(0.975, len(known) - 1) * float(known.std(ddof=1)) / math.sqrt(len(known))
    return float(known.mean()) - half, float(known.mean()) + half


def judge(runs: Sequence[TransferRun], parameterization: str, widths: Sequence[int],
          learning_rates: Sequence[float], seeds: Sequence[int], max_drift: float = 0.25) -> Verdict:
    """The verdict of one parameterization from its runs (one per width × rate × seed).

    Args:
        max_drift: the bound on |drift| (octaves per doubling of width).
    """
    by_key = {run_key(run.parameterization, run.width, run.learning_rate, run.seed): run.final_loss for run in runs}
    grid = np.array([[[by_key[run_key(parameterization, width, rate, seed)] for seed in seeds]
                      for rate in learning_rates] for width in widths])  # (widths, rates, seeds)
    log_rates = np.log2(np.asarray(learning_rates))
    optima = []
    for width, losses in zip(widths, grid):  # losses: (rates, seeds)
        mean = tuple(float(value) for value in losses.mean(axis=1))  # inf when any seed diverged
        best = _argmin(mean)
        refined = _refine(log_rates, mean, best)
        optima.append(WidthOptimum(
            width=width, mean_losses=mean, diverged=tuple(int(n) for n in (~np.isfinite(losses)).sum(axis=1)),
            best_index=best, seed_best_indices=tuple(_argmin(losses[:, seed]) for seed in range(len(seeds))),
            refined_learning_rate=None if refined is None else 2.0**refined))
    seed_drifts = tuple(
        _drift(widths, [_refine(log_rates, list(grid[w, :, seed]), optimum.seed_best_indices[seed])
                        for w, optimum in enumerate(optima)]) for seed in range(len(seeds)))
    refined = [None if o.refined_learning_rate is None else math.log2(o.refined_learning_rate) for o in optima]
    return Verdict(parameterization=parameterization, optima=tuple(optima),
                   shifts=shifts_from_base([optimum.best_index for optimum in optima]),
                   drift=_drift(widths, refined), seed_drifts=seed_drifts,
                   drift_interval=drift_interval(seed_drifts), max_drift=max_drift)


def shifts_from_base(best_indices: Sequence[int | None]) -> tuple[int | None, ...]:
    """Grid steps of each width's optimum from the base width's (the first)."""
    base = best_indices[0]
    return tuple(None if base is None or index is None else index - base for index in best_indices)
