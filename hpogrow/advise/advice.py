"""From the ladder's runs to the advice: the two fits, their out-of-sample checks, the prediction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpogrow.advise.config import CANDIDATE_GROWTH_FACTORS, AdviseConfig
from hpogrow.advise.gain import GainModel, bootstrap_gains, fit_gain, flops_speedup_with_base, percentile_interval
from hpogrow.advise.ladder import LadderRun
from hpogrow.advise.scaling import LossLaw, bootstrap_loss_laws, fit_loss_law
from hpogrow.speedup import SeedSpeedup, SpeedupEstimate, aggregate_speedups, seed_speedup
from hpogrow.tasks.base import Task
from hpogrow.throughput import training_flops

Interval = tuple[float, float]
MAX_SEARCHED_GROWTH_FACTOR = 64.0
"""The largest g the upper bound is looked for below."""


@dataclass(frozen=True)
class WidthHoldout:
    """The loss law fitted without one width, against that width's measured curve (the mean over
    seeds at each budget), in units of the seed spread, beside two baselines fitted or read
    without it: L(D) alone (the law without its N-term) and the next smaller width's curve."""

    width: int
    params: int
    law: LossLaw
    """The law fitted without this width."""
    error: float
    """Root mean square over the width's budgets of (log predicted − mean log measured) / σ, with σ
    the spread of one seed's log loss (the measured curve is a mean over seeds, so its own noise
    is σ/√seeds: an error of 1 is √seeds of the mean's standard errors)."""
    bias: float
    """Mean of the same (positive: the law predicts too high a loss)."""
    loss_of_tokens_error: float
    """The same for L(D) alone, fitted without this width."""
    smaller_width_error: float | None
    """The same for the next smaller width's measured curve (``None`` for the smallest width)."""
    budgets: int

    @property
    def beaten_by_baseline(self) -> bool:
        """The law predicts this width no better than a baseline: its N-dependence is not
        established there."""
        baselines = [self.loss_of_tokens_error] + ([] if self.smaller_width_error is None else [self.smaller_width_error])
        return self.error >= min(baselines)

    def as_dict(self) -> dict:
        return {"width": self.width, "params": self.params, "error": _number(self.error), "bias": _number(self.bias),
                "loss_of_tokens_error": _number(self.loss_of_tokens_error),
                "smaller_width_error": _number(self.smaller_width_error), "budgets": self.budgets,
                "beaten_by_baseline": self.beaten_by_baseline}


@dataclass(frozen=True)
class FitRange:
    """Where the loss law was fitted and how far a prediction lies outside it."""

    params: Interval
    tokens: Interval

    def factors(self, params: float, tokens: float) -> dict[str, float]:
        """How many times beyond the fitted range (1: inside) in N and in D."""
        return {"params": _beyond(params, self.params), "tokens": _beyond(tokens, self.tokens)}


def _beyond(value: float, interval: Interval) -> float:
    return max(1.0, value / interval[1], interval[0] / value)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class GainHoldout:
    """The gain model fitted without one g, against that g's measured pairs at one budget."""

    growth_factor: float
    tokens_per_param: float
    measured: SpeedupEstimate
    predicted_tokens: float
    predicted_tokens_interval: Interval
    predicted_flops_with_base: float
    predicted_flops_with_base_interval: Interval


@dataclass(frozen=True)
class Prediction:
    """The advice for one g at the target."""

    growth_factor: float
    token_speedup: float
    speedup: float
    """FLOPs speedup counting the base (S = 1/(1/s + 1/g²))."""
    speedup_interval: Interval
    warmstart_loss: float
    """L(N, s·D): the warmstarted run reaches what scratch reaches with s times its tokens."""


@dataclass
class Advice:
    """What :func:`hpogrow.advise` returns."""

    task: str
    config: AdviseConfig
    study_name: str
    storage: str
    target_params: int
    target_tokens: int
    law: LossLaw
    law_intervals: dict[str, Interval]
    loss_floor_source: str
    """Why E is what it is: the known floor held fixed, or fitted."""
    seed_spread: float
    """σ: the pooled standard deviation over seeds of a ladder run's log loss at one budget."""
    fit_range: FitRange
    holdout_by_width: list[WidthHoldout]
    gain_params: Interval
    """Range of the pairs' target sizes (the gain model's N)."""
    gain: GainModel
    gain_intervals: dict[str, Interval]
    scratch_loss: float
    scratch_loss_interval: Interval
    predictions: list[Prediction]
    recommended_growth_factor: float | None
    recommendation_significant: bool
    """Its predicted speedup's 95% interval lies above 1 (else only its mean does)."""
    max_growth_factor: float | None
    """Largest g with predicted speedup ≥ 1 (None: none below 64, or none at all)."""
    max_growth_factor_interval: Interval
    gain_holdouts: list[GainHoldout]
    measured: list[tuple[float, float, SpeedupEstimate]]
    """``(g, tokens/param, estimate)`` of every pair configuration of the ladder."""
    diverged_pairs: int
    gain_samples: list[GainModel] = field(default_factory=list)
    """The bootstrap refits of the gain model (for predictions at other budgets)."""
    plots: list[Path] = field(default_factory=list)
    trained: int = 0
    seconds: float = 0.0

    def predict_speedup(self, growth_factor: float, tokens_per_param: float) -> tuple[float, Interval]:
        """FLOPs speedup counting the base at any (g, tokens/param), with its bootstrap interval."""
        _, samples = _speedups_at(self.gain_samples, growth_factor, tokens_per_param)
        return float(self.gain.flops_speedup_with_base(growth_factor, tokens_per_param)), percentile_interval(samples)

    @property
    def extrapolation(self) -> dict[str, dict[str, float]]:
        """How many times beyond what was measured the target lies (1: inside): the loss law in N
        and D, the gain model in N (the pairs' target sizes) and tokens/param."""
        tau = self.config.target_tokens_per_param
        budgets = sorted({round(t, 6) for _, t, _ in self.measured}) or [tau]
        return {"loss_law": self.fit_range.factors(self.target_params, self.target_tokens),
                "gain": {"params": _beyond(self.target_params, self.gain_params),
                         "tokens_per_param": _beyond(tau, (budgets[0], budgets[-1]))}}

    @property
    def recommended(self) -> Prediction | None:
        return next((p for p in self.predictions if p.growth_factor == self.recommended_growth_factor), None)

    def summary(self) -> dict:
        """The study attribute ``advice`` (JSON-safe)."""
        number = _number
        best = self.recommended
        extrapolation = self.extrapolation
        return {
            "recommended_growth_factor": self.recommended_growth_factor,
            "recommendation_significant": self.recommendation_significant,
            "max_growth_factor": number(self.max_growth_factor),
            "max_growth_factor_interval": [number(v) for v in self.max_growth_factor_interval],
            "predicted_speedup": None if best is None else [number(best.speedup), *map(number, best.speedup_interval)],
            "speedup_measure": "FLOPs counting the base, base and target at the same tokens/param",
            "target_params": self.target_params, "target_tokens": self.target_tokens,
            "tokens_per_param": self.config.target_tokens_per_param,
            "scratch_loss": [number(self.scratch_loss), *map(number, self.scratch_loss_interval)],
            "fit": {**{key: number(value) for key, value in self.law.as_dict().items()},
                    "floor_fixed": self.law.floor_fixed, "floor_source": self.loss_floor_source,
                    "seed_spread": number(self.seed_spread),
                    "params_range": list(self.fit_range.params), "tokens_range": list(self.fit_range.tokens),
                    "intervals": {key: [number(v) for v in value] for key, value in self.law_intervals.items()}},
            "holdout_by_width": [holdout.as_dict() for holdout in self.holdout_by_width],
            "extrapolation": {**extrapolation,
                              "within_range": all(f == 1 for part in extrapolation.values() for f in part.values())},
            "gain": {**self.gain.as_dict(),
                     "intervals": {key: [number(v) for v in value] for key, value in self.gain_intervals.items()}},
            "gain_holdout": [{"g": h.growth_factor, "tokens_per_param": h.tokens_per_param,
                              "measured": [number(h.measured.flops_with_base),
                                           *([number(v) for v in h.measured.flops_with_base_ci]
                                             if h.measured.flops_with_base_ci else [None, None])],
                              "predicted": [number(h.predicted_flops_with_base),
                                            *map(number, h.predicted_flops_with_base_interval)],
                              "seeds": h.measured.seeds, "seeds_reached": h.measured.seeds_reached}
                             for h in self.gain_holdouts],
            "predictions": [{"g": p.growth_factor, "speedup": [number(p.speedup), *map(number, p.speedup_interval)],
                             "token_speedup": number(p.token_speedup), "warmstart_loss": number(p.warmstart_loss)}
                            for p in self.predictions],
            "diverged_pairs": self.diverged_pairs,
        }


def loss_points(run: LadderRun) -> list[tuple[float, float, float]]:
    """``(N, D, loss)`` of a ladder run at each of its budgets (its evaluations after step 0)."""
    return [(float(run.n_params), float(tokens), loss) for tokens, loss in run.curve if tokens > 0 and math.isfinite(loss)]


def _log_curves(runs: Sequence[LadderRun]) -> dict[int, tuple[int, np.ndarray, np.ndarray]]:
    """Per width: its parameter count, its budgets ``(B,)`` and its log losses ``(seeds, B)`` at
    the budgets every seed reached."""
    curves = {}
    for width in sorted({run.width for run in runs}):
        own = [dict((tokens, loss) for _, tokens, loss in loss_points(run)) for run in runs if run.width == width]
        budgets = sorted(set.intersection(*(set(curve) for curve in own)))
        curves[width] = (next(run.n_params for run in runs if run.width == width), np.array(budgets, dtype=float),
                         np.log([[curve[b] for b in budgets] for curve in own]))
    return curves


def seed_spread(runs: Sequence[LadderRun]) -> float:
    """σ: the pooled standard deviation over seeds of log loss, over every width and budget."""
    squares, freedom = 0.0, 0
    for _, _, logs in _log_curves(runs).values():
        squares += float(((logs - logs.mean(axis=0)) ** 2).sum())
        freedom += logs.shape[1] * (logs.shape[0] - 1)
    return math.sqrt(squares / freedom) if freedom else math.nan


def _scaled_errors(predicted_log: np.ndarray, measured_logs: np.ndarray, spread: float) -> np.ndarray:
    return (predicted_log - measured_logs.mean(axis=0)) / spread  # (B,)


def width_holdouts(runs: Sequence[LadderRun], floor: float | None, spread: float) -> list[WidthHoldout]:
    """For every width: the law (and L(D) alone) fitted on the other widths' runs, and the next
    smaller width's curve, against the width's measured curve."""
    curves = _log_curves(runs)
    holdouts = []
    for index, (width, (params, budgets, logs)) in enumerate(curves.items()):
        others = [point for run in runs if run.width != width for point in loss_points(run)]
        law = fit_loss_law(*zip(*others), floor=floor)
        tokens_only = fit_loss_law(*zip(*others), floor=floor, params_term=False)
        errors = _scaled_errors(np.log(law(params, budgets)), logs, spread)
        baseline = _scaled_errors(np.log(tokens_only(params, budgets)), logs, spread)
        smaller = None
        if index > 0:
            _, smaller_budgets, smaller_logs = list(curves.values())[index - 1]
            shared = np.isin(budgets, smaller_budgets)
            smaller_mean = smaller_logs[:, np.isin(smaller_budgets, budgets)].mean(axis=0)
            smaller = _rms(_scaled_errors(smaller_mean, logs[:, shared], spread))
        holdouts.append(WidthHoldout(width, params, law, _rms(errors), float(errors.mean()), _rms(baseline), smaller,
                                     len(budgets)))
    return holdouts


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def pair_speedup(scratch: LadderRun, warmstart: LadderRun) -> SeedSpeedup:
    # every (budget, seed) trains a base of its own: within one g and budget, a pair's seed names its base
    return seed_speedup(list(warmstart.curve), list(scratch.curve), flops_per_token=training_flops(scratch.compute_params, 1),
                        base_tokens=warmstart.base_tokens, base_flops=warmstart.base_flops, seed=scratch.seed,
                        base=scratch.seed)


def _gain_data(pairs: Sequence[tuple]) -> tuple[list, list, list]:
    """g reached, tokens/param and token speedup of ``(g, τ, SeedSpeedup, g reached, base, N)`` pairs."""
    return [p[3] for p in pairs], [p[1] for p in pairs], [p[2].tokens for p in pairs]


def _speedups_at(gains: Sequence[GainModel], growth_factor: float, tokens_per_param: float) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.array([g.token_speedup(growth_factor, tokens_per_param) for g in gains])
    return tokens, flops_speedup_with_base(tokens, growth_factor)


def _max_growth_factor(gain: GainModel, tokens_per_param: float) -> float | None:
    """Largest g on a fine log grid with predicted speedup ≥ 1, when it falls below 1 above it."""
    grid = np.geomspace(1.01, MAX_SEARCHED_GROWTH_FACTOR, 600)
    paying = gain.flops_speedup_with_base(grid, tokens_per_param) >= 1
    if not paying.any() or paying[-1]:
        return None
    return float(grid[np.nonzero(paying)[0][-1]])


def recommend(predictions: Sequence[Prediction], largest_measured: float) -> tuple[float | None, bool]:
    """The g with the highest predicted speedup counting the base, among the candidates no larger
    than the ladder's largest g (no extrapolation in g) whose 95% interval lies above 1; failing
    that, among those whose mean lies above 1, flagged not significant; ``None`` when no g pays."""
    within = [p for p in predictions if p.growth_factor <= largest_measured]
    for candidates, significant in (([p for p in within if p.speedup_interval[0] > 1], True),
                                    ([p for p in within if p.speedup > 1], False)):
        if candidates:
            return max(candidates, key=lambda p: p.speedup).growth_factor, significant
    return None, False


def loss_floor(task: Task) -> tuple[float | None, str]:
    """E where the data says what it is, and why: 0 for the noiseless Fourier target, the entropy
    floor of the synthetic language's evaluation set; ``None`` (fitted) otherwise."""
    from hpogrow.tasks import FourierTask  # a light import; the tasks package loads the corpora lazily

    if isinstance(task, FourierTask):
        return 0.0, "held at 0: the Fourier target is noiseless"
    entropy = task.data_summary().get("entropy_floor")
    if entropy:
        return float(entropy["value"]), "held at the synthetic language's entropy floor"
    return None, "fitted (no known floor)"


def analyse(config: AdviseConfig, scratch_runs: Sequence[LadderRun], pairs: Sequence[tuple], target_params: int,
            task: str, study_name: str, storage: str, floor: tuple[float | None, str] = (None, "fitted")) -> Advice:
    """Fit, check out of sample and predict (``pairs``: ``(_Pair, scratch run, warmstarted run)``;
    ``floor``: E's known value and its source, :func:`loss_floor`)."""
    resamples = config.bootstrap
    ladder = [run for run in scratch_runs if not run.diverged and run.curve and run.data_position == 0
              and run.tokens == config.tokens]
    spread = seed_spread(ladder)
    holdouts = width_holdouts(ladder, floor[0], spread)
    by_run = [points for points in (loss_points(run) for run in ladder) if points]
    everything = [point for points in by_run for point in points]
    law = fit_loss_law(*zip(*everything), floor=floor[0])
    laws = bootstrap_loss_laws(by_run, law, resamples, seed=config.seed, floor=floor[0])
    law_intervals = {key: percentile_interval([l.as_dict()[key] for l in laws]) for key in law.as_dict()}
    fit_range = FitRange((min(p[0] for p in everything), max(p[0] for p in everything)),
                         (min(p[1] for p in everything), max(p[1] for p in everything)))

    measured_pairs, diverged = [], 0
    for pair, scratch, warmstart in pairs:
        if scratch.diverged or warmstart.diverged:
            diverged += 1
            continue
        measured_pairs.append((pair.growth_factor, pair.tokens_per_param, pair_speedup(scratch, warmstart),  # τ as asked:
                               # the budgets' rounding to whole steps would give the gain model a spurious τ-slope
                               warmstart.param_ratio, pair.base.key, scratch.n_params))
    configurations = sorted({(g, round(tau, 6)) for g, tau, *_ in measured_pairs})
    measured = [(g, tau, aggregate_speedups([p[2] for p in measured_pairs if p[0] == g and round(p[1], 6) == tau]))
                for g, tau in configurations]

    held_g = config.holdout_growth_factor
    fitting = [p for p in measured_pairs if p[0] != held_g]
    held_gain = fit_gain(*_gain_data(fitting))
    held_gains = bootstrap_gains(*_gain_data(fitting), resamples, config.seed, bases=[p[4] for p in fitting])
    gain_holdouts = []
    for g, tau, estimate in measured:
        if g != held_g:
            continue
        ratio = float(np.mean([p[3] for p in measured_pairs if p[0] == g]))
        tokens, with_base = _speedups_at(held_gains, ratio, tau)
        point_tokens = float(held_gain.token_speedup(ratio, tau))
        gain_holdouts.append(GainHoldout(g, tau, estimate, point_tokens, percentile_interval(tokens),
                                         float(flops_speedup_with_base(point_tokens, ratio)),
                                         percentile_interval(with_base)))

    gain = fit_gain(*_gain_data(measured_pairs))
    gains = bootstrap_gains(*_gain_data(measured_pairs), resamples, config.seed, bases=[p[4] for p in measured_pairs])
    gain_intervals = {key: percentile_interval([m.as_dict()[key] for m in gains]) for key in gain.as_dict()}

    tau = config.target_tokens_per_param
    target_tokens = round(tau * target_params)
    scratch_loss = float(law(target_params, target_tokens))
    scratch_interval = percentile_interval([float(l(target_params, target_tokens)) for l in laws])
    predictions = []
    for g in CANDIDATE_GROWTH_FACTORS:
        token_speedup = float(gain.token_speedup(g, tau))
        _, with_base = _speedups_at(gains, g, tau)
        predictions.append(Prediction(g, token_speedup, float(flops_speedup_with_base(token_speedup, g)),
                                      percentile_interval(with_base), float(law(target_params, token_speedup * target_tokens))))
    recommended, significant = recommend(predictions, max(config.growth_factors))
    bounds = [_max_growth_factor(m, tau) for m in gains]
    return Advice(task=task, config=config, study_name=study_name, storage=storage, target_params=target_params,
                  target_tokens=target_tokens, law=law, law_intervals=law_intervals, loss_floor_source=floor[1],
                  seed_spread=spread, fit_range=fit_range, holdout_by_width=holdouts,
                  gain_params=(min(p[5] for p in measured_pairs), max(p[5] for p in measured_pairs)), gain=gain,
                  gain_intervals=gain_intervals, scratch_loss=scratch_loss, scratch_loss_interval=scratch_interval,
                  predictions=predictions, recommended_growth_factor=recommended,
                  recommendation_significant=significant,
                  max_growth_factor=_max_growth_factor(gain, tau),
                  max_growth_factor_interval=percentile_interval(  # no bound below 64 counts as 64
                      [MAX_SEARCHED_GROWTH_FACTOR if b is None else b for b in bounds]),
                  gain_holdouts=gain_holdouts, measured=measured, diverged_pairs=diverged, gain_samples=gains)
