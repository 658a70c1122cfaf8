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
from hpogrow.advise.scaling import LossLaw, bootstrap_loss_laws, fit_loss_law, r_squared
from hpogrow.speedup import SeedSpeedup, SpeedupEstimate, aggregate_speedups, seed_speedup
from hpogrow.throughput import training_flops

Interval = tuple[float, float]
MAX_SEARCHED_GROWTH_FACTOR = 64.0
"""The largest g the upper bound is looked for below."""


@dataclass(frozen=True)
class LossHoldout:
    """The loss law fitted without the largest width, against that width's run."""

    width: int
    params: int
    law: LossLaw
    measured_final: float
    predicted_final: float
    r2: float
    """R² of the held-out run's curve points (from ``min_budget_fraction`` of its budget on)."""
    points: int

    @property
    def relative_error(self) -> float:
        return (self.predicted_final - self.measured_final) / self.measured_final


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
    loss_holdout: LossHoldout
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
    def recommended(self) -> Prediction | None:
        return next((p for p in self.predictions if p.growth_factor == self.recommended_growth_factor), None)

    def summary(self) -> dict:
        """The study attribute ``advice`` (JSON-safe)."""
        def number(value: float | None) -> float | None:
            return None if value is None or not math.isfinite(value) else float(value)

        best = self.recommended
        holdout = self.loss_holdout
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
                    "r2_holdout": number(holdout.r2), "holdout_width": holdout.width,
                    "holdout_relative_error": number(holdout.relative_error),
                    "intervals": {key: [number(v) for v in value] for key, value in self.law_intervals.items()}},
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


def loss_points(run: LadderRun, min_fraction: float) -> list[tuple[float, float, float]]:
    """``(N, D, loss)`` of a run's evaluations from ``min_fraction`` of its budget on."""
    return [(float(run.n_params), float(tokens), loss) for tokens, loss in run.curve
            if tokens > 0 and tokens >= min_fraction * run.tokens and math.isfinite(loss)]


def fit_with_holdout(runs: Sequence[LadderRun], holdout: LadderRun, min_fraction: float) -> LossHoldout:
    """The law fitted on the runs smaller than ``holdout``, scored on it."""
    points = [point for run in runs if run.n_params < holdout.n_params for point in loss_points(run, min_fraction)]
    law = fit_loss_law(*zip(*points))
    held = loss_points(holdout, min_fraction)
    predicted = [float(law(n, d)) for n, d, _ in held]
    return LossHoldout(holdout.width, holdout.n_params, law, holdout.final_loss,
                       float(law(holdout.n_params, holdout.curve[-1][0])), r_squared([p[2] for p in held], predicted),
                       len(held))


def pair_speedup(scratch: LadderRun, warmstart: LadderRun) -> SeedSpeedup:
    return seed_speedup(list(warmstart.curve), list(scratch.curve), flops_per_token=training_flops(scratch.compute_params, 1),
                        base_tokens=warmstart.base_tokens, base_flops=warmstart.base_flops, seed=scratch.seed)


def _gain_data(pairs: Sequence[tuple[float, float, SeedSpeedup, float]]) -> tuple[list, list, list]:
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


def analyse(config: AdviseConfig, scratch_runs: Sequence[LadderRun], pairs: Sequence[tuple], target_params: int,
            task: str, study_name: str, storage: str) -> Advice:
    """Fit, check out of sample and predict (``pairs``: ``(_Pair, scratch run, warmstarted run)``)."""
    fraction, resamples = config.min_budget_fraction, config.bootstrap
    finite = [run for run in scratch_runs if not run.diverged and run.curve]
    largest = max(config.widths)
    holdout_run = next(run for run in finite if run.width == largest and run.data_position == 0)
    loss_holdout = fit_with_holdout(finite, holdout_run, fraction)
    by_run = [points for points in (loss_points(run, fraction) for run in finite) if points]
    law = fit_loss_law(*zip(*[point for points in by_run for point in points]))
    laws = bootstrap_loss_laws(by_run, law, resamples, seed=config.seed)
    law_intervals = {key: percentile_interval([l.as_dict()[key] for l in laws]) for key in law.as_dict()}

    measured_pairs, diverged = [], 0
    for pair, scratch, warmstart in pairs:
        if scratch.diverged or warmstart.diverged:
            diverged += 1
            continue
        measured_pairs.append((pair.growth_factor, scratch.tokens / scratch.n_params, pair_speedup(scratch, warmstart),
                               warmstart.param_ratio))
    configurations = sorted({(g, round(tau, 6)) for g, tau, _, _ in measured_pairs})
    measured = [(g, tau, aggregate_speedups([p[2] for p in measured_pairs if p[0] == g and round(p[1], 6) == tau]))
                for g, tau in configurations]

    held_g = config.holdout_growth_factor
    fitting = [p for p in measured_pairs if p[0] != held_g]
    held_gain, held_gains = fit_gain(*_gain_data(fitting)), bootstrap_gains(*_gain_data(fitting), resamples, config.seed)
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
    gains = bootstrap_gains(*_gain_data(measured_pairs), resamples, config.seed)
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
                  target_tokens=target_tokens, law=law, law_intervals=law_intervals, gain=gain,
                  gain_intervals=gain_intervals, scratch_loss=scratch_loss, scratch_loss_interval=scratch_interval,
                  predictions=predictions, recommended_growth_factor=recommended,
                  recommendation_significant=significant,
                  max_growth_factor=_max_growth_factor(gain, tau),
                  max_growth_factor_interval=percentile_interval(  # no bound below 64 counts as 64
                      [MAX_SEARCHED_GROWTH_FACTOR if b is None else b for b in bounds]),
                  loss_holdout=loss_holdout, gain_holdouts=gain_holdouts, measured=measured, diverged_pairs=diverged,
                  gain_samples=gains)
