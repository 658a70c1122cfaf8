"""How much compute a warmstarted run saves against training from scratch, with its uncertainty.

The estimator, in three steps (pure functions: no Optuna, no Ray, no torch):

1. :func:`smooth_curve`: Gaussian smoothing of a validation-loss curve, as paper 002 does
   before comparing curves ("Gaussian smoothing is used for loss comparison across runs"; the
   paper gives no width). hpogrow smooths with σ = :data:`SMOOTHING_SIGMA` evaluation spacings
   and a local-linear Gaussian fit, so that the ends of a still-falling curve are not pulled up
   towards earlier, higher losses (a renormalised kernel alone would raise scratch's final loss).
2. :func:`seed_speedup`: one warmstart/scratch pair (same seed, same tokens): scratch's smoothed
   final loss is the target (or, with ``fraction``, its smoothed loss at that share of its
   budget: tokens-to-match at several targets), the tokens the warmstarted run needs to reach it
   are read off its smoothed curve, and the ratios follow (tokens, FLOPs, each with and without
   the cost of the base the pair grew). A pair that cannot be read exactly is *censored* and
   still counts, at a bound.
3. :func:`aggregate_speedups`: the geometric mean over pairs with a 95% t-interval on log
   speedups that resamples *bases*: pairs grown from the same base share its luck, so with two
   bases or more the interval is a t-interval on the bases' mean log speedups (bases − 1 degrees
   of freedom); :meth:`SpeedupEstimate.as_attrs` gives the attributes the record stores.

Example::

    warm = [(0, 3.0), (100, 2.2), (200, 1.9), (300, 1.8), (400, 1.75)]
    scratch = [(0, 5.5), (100, 2.8), (200, 2.3), (300, 2.0), (400, 1.9)]
    pair = seed_speedup(warm, scratch, flops_per_token=6 * 1000, seed=0)
    estimate = aggregate_speedups([pair])
    print(estimate.describe())  # one seed: no interval
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from hpogrow.stats import student_t_quantile

Curve = Sequence[tuple[float, float]]
"""``(tokens, validation loss)`` pairs in increasing token order."""

SMOOTHING_SIGMA = 1.0
"""Gaussian width in evaluation spacings (the median token distance between evaluations): a
curve is averaged over about ±2 evaluations. Chosen on synthetic pairs
(``bench/speedup_smoothing.py``: power-law curves, independent noise of 0.25–1% of the final
loss, true speedups 1.4–6.7×, 8 or 16 evaluations). σ = 1 cut the root-mean-square error of
log speedup against the raw curves by 8–18% in 8 of 9 settings at 16 evaluations and by 3–16%
in all 9 at 8, with a bias of −4% to +5% (+14–23% only in the noisiest setting with the fastest
warmstart, where the raw curves give +18–35%). σ = 1.5 cuts it more at 16 evaluations (11–27%),
but at 8 its kernel spans enough of the curve's bend to bias speedups by −6% to −10% and to do
worse than the raw curves in the quieter settings. A renormalised kernel (no linear term)
overstated speedups by 4–77% at 16 evaluations and up to 181% at 8."""
MIN_SMOOTHED_EVALUATIONS = 6
"""Curves with fewer evaluations after the start are not smoothed: the kernel would span so much
of the curve that its bend biases the reading more than the noise it removes."""
CONFIDENCE = 0.95
"""Level of every interval."""
MATCH_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
"""Loss targets of tokens-to-match: scratch's smoothed loss at these shares of its budget. One
target (the final loss) says little about a curve: the warmstart's lead is largest early and
shrinks as both runs flatten."""
Censoring = Literal["reached", "not reached", "below at start"]
"""How a seed's speedup was read: exactly (``reached``); the warmstarted run never reached
scratch's final loss, so its speedup is *at most* the value given (``not reached``); or it was
already below that loss at its first evaluation, so its speedup is *at least* the value given
(``below at start``)."""


def smooth_curve(curve: Curve, sigma: float = SMOOTHING_SIGMA) -> list[tuple[float, float]]:
    """Gaussian-smoothed copy of ``curve``, at the same token counts.

    Each loss is replaced by a local-linear fit with Gaussian weights of width ``sigma``
    evaluation spacings (the median token distance between evaluations) around its token
    count. In the middle of an evenly spaced curve this is the plain Gaussian average; at the
    ends the linear term removes the bias a one-sided (renormalised) average would have, at a
    price in noise: at σ = 1 independent noise keeps ×0.93 of its standard deviation at the last
    evaluation, against ×0.54 in the middle. An
    evaluation at 0 tokens (before the first step, no training noise, followed by the steepest
    drop) is kept as it is and not used for its neighbours. ``sigma = 0``, or fewer than
    :data:`MIN_SMOOTHED_EVALUATIONS` evaluations after the start, returns the curve as it is.

    Args:
        curve: ``(tokens, loss)`` pairs in increasing token order.
        sigma: kernel width in evaluation spacings.

    Returns:
        ``(tokens, smoothed loss)`` pairs.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be at least 0, got {sigma}")
    points = [(float(tokens), float(loss)) for tokens, loss in curve]
    start = [point for point in points if point[0] <= 0]
    trained = [point for point in points if point[0] > 0]
    if sigma == 0 or len(trained) < MIN_SMOOTHED_EVALUATIONS:
        return points
    spacing = statistics.median(b[0] - a[0] for a, b in zip(trained, trained[1:]))
    width = sigma * spacing
    smoothed = []
    for center, _ in trained:
        weights = [math.exp(-0.5 * ((tokens - center) / width) ** 2) for tokens, _ in trained]
        smoothed.append((center, _local_linear(trained, weights, center)))
    return start + smoothed


def _local_linear(points: list[tuple[float, float]], weights: list[float], center: float) -> float:
    """Weighted least-squares line through ``points``, evaluated at ``center``."""
    total = sum(weights)
    mean_x = sum(w * x for w, (x, _) in zip(weights, points)) / total
    mean_y = sum(w * y for w, (_, y) in zip(weights, points)) / total
    spread = sum(w * (x - mean_x) ** 2 for w, (x, _) in zip(weights, points))
    if spread <= 1e-12 * total * (mean_x ** 2 + 1):
        return mean_y
    slope = sum(w * (x - mean_x) * (y - mean_y) for w, (x, y) in zip(weights, points)) / spread
    return mean_y + slope * (center - mean_x)


def tokens_to_reach(curve: Curve, loss: float) -> float | None:
    """First token count at which ``curve`` (``(tokens, val_loss)`` pairs, in order) reaches
    ``loss``, interpolating linearly between evaluations; ``None`` if it never does."""
    previous = None
    for tokens, value in curve:
        if value <= loss:
            if previous is None:
                return float(tokens)
            (t0, v0) = previous
            return t0 + (tokens - t0) * (v0 - loss) / (v0 - value)
        previous = (tokens, value)
    return None


@dataclass(frozen=True)
class SeedSpeedup:
    """One warmstart/scratch pair. Ratios above 1: the warmstarted run needed less.

    With ``censoring`` other than ``"reached"`` the ratios are bounds (see :data:`Censoring`)
    and ``warmstart_tokens`` is the token count they were computed from.
    """

    seed: int | None
    target_loss: float
    """Scratch's smoothed validation loss at the target: its final loss (or at ``fraction`` of its budget)."""
    scratch_tokens: float
    """Scratch's tokens at the target: its budget (tokens at its last evaluation), or ``fraction`` of it."""
    warmstart_tokens: float
    """Tokens the warmstarted run needed to reach ``target_loss`` (its own tokens, base not
    included), or the bound used when censored: its whole budget (not reached) or its first
    evaluation after the start (below at start)."""
    censoring: Censoring
    tokens: float
    """Scratch tokens over warmstart tokens."""
    flops: float
    """Scratch FLOPs over warmstart FLOPs."""
    tokens_with_base: float
    """As ``tokens``, the base's own tokens (and those of earlier stages) added to the warmstart."""
    flops_with_base: float
    """As ``flops``, the base's own FLOPs (at its size) added to the warmstart."""
    base: int = 0
    """The base the pair grew: 0 is the search's winner, k ≥ 1 its k-th replicate (the winning
    configuration retrained with another seed). Pairs of one base are not independent."""

    @property
    def reached(self) -> bool:
        return self.censoring == "reached"


def seed_speedup(warmstart: Curve, scratch: Curve, *, flops_per_token: float, base_tokens: float = 0.0,
                 base_flops: float = 0.0, sigma: float = SMOOTHING_SIGMA, seed: int | None = None, base: int = 0,
                 fraction: float = 1.0) -> SeedSpeedup:
    """Speedup of one warmstarted run over the scratch run of the same seed, size and budget.

    Both curves are smoothed (:func:`smooth_curve`); the target is scratch's smoothed loss at
    ``fraction`` of its budget (1: its final loss); the warmstarted run's tokens to reach it are
    interpolated on its smoothed curve. A run that never reaches the target is censored at its
    budget (it needed more), a run already below it at its first evaluation at one evaluation
    spacing (it needed at most that); both count.

    Args:
        warmstart: the warmstarted run's ``(tokens, loss)``, its tokens counted from its own start.
        scratch: the scratch run's ``(tokens, loss)``.
        flops_per_token: training FLOPs per token of the target model (the same for both runs).
        base_tokens: tokens spent before the warmstarted run (base and earlier stages).
        base_flops: FLOPs spent before it, each model at its own size.
        sigma: smoothing width in evaluation spacings.
        seed: recorded with the result.
        base: the base the pair grew (recorded; :func:`aggregate_speedups` resamples bases).
        fraction: the share of scratch's budget at which its loss is the target, in (0, 1].
    """
    if not flops_per_token > 0:
        raise ValueError(f"flops_per_token must be positive, got {flops_per_token}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if len(warmstart) < 2 or len(scratch) < 2:
        raise ValueError("each curve needs at least two evaluations")
    smooth_warmstart, smooth_scratch = smooth_curve(warmstart, sigma), smooth_curve(scratch, sigma)
    scratch_tokens = fraction * smooth_scratch[-1][0]
    target = loss_at(smooth_scratch, scratch_tokens)
    needed = tokens_to_reach(smooth_warmstart, target)
    first_trained = next((tokens for tokens, _ in smooth_warmstart if tokens > 0), smooth_warmstart[-1][0])
    if needed is None:
        censoring, needed = "not reached", smooth_warmstart[-1][0]
    elif smooth_warmstart[0][1] <= target:
        censoring, needed = "below at start", first_trained
    else:
        censoring = "reached"
    scratch_flops = scratch_tokens * flops_per_token
    return SeedSpeedup(seed=seed, target_loss=target, scratch_tokens=scratch_tokens, warmstart_tokens=needed,
                       censoring=censoring, tokens=scratch_tokens / needed,
                       flops=scratch_flops / (needed * flops_per_token),
                       tokens_with_base=scratch_tokens / (needed + base_tokens),
                       flops_with_base=scratch_flops / (needed * flops_per_token + base_flops), base=base)


def loss_at(curve: Curve, tokens: float) -> float:
    """The loss of ``curve`` at ``tokens``, interpolated linearly between evaluations (held at
    the ends)."""
    points = [(float(t), float(v)) for t, v in curve]
    if tokens <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if tokens == t1:  # an evaluation: its own value, exactly
            return v1
        if tokens < t1:
            return v0 + (v1 - v0) * (tokens - t0) / (t1 - t0)
    return points[-1][1]


_MEASURES = ("tokens", "flops", "tokens_with_base", "flops_with_base")
_BOUND_MEANING = {"upper": "the mean is an upper bound", "lower": "the mean is a lower bound",
                  "both": "bounds of both kinds, the mean is neither"}


@dataclass(frozen=True)
class SpeedupEstimate:
    """Speedups aggregated over pairs: geometric means, each with a 95% interval that resamples bases.

    Pairs are nested in bases: every pair grown from one base checkpoint shares that base's luck,
    so an interval over pairs alone covers the perturbation seed and the data segment but not
    base-to-base variance. With two bases or more, each base's pairs are first averaged (mean
    log speedup) and the interval is a t-interval on those base means with bases − 1 degrees of
    freedom, exponentiated; the center is the mean of the base means (each base weighs the
    same). Under log-normal spread at both levels the base means are independent and normal with
    a common variance when every base has as many pairs, so the interval is exact then
    (``bench/speedup_bases.py``, 4,000 simulated searches per design: 94.5–96.0% coverage with
    2–3 bases and 2–6 pairs, unbalanced designs included — with one base, 37–95%, 95% only when
    bases do not differ; with a base effect as large as a pair's
    or 3×, the interval over pairs that ignores the bases covers 77–92%, and a cluster bootstrap,
    with 2² or 3³ resamples, 47–49% with 2 bases and 66–68% with 3). With one base the interval is the t-interval
    over its pairs, and :meth:`describe` says that it does not cover the base. Censored pairs
    enter at their bound (:data:`Censoring`): with pairs that did not reach scratch's loss the
    mean is an upper bound, with pairs below it at their start a lower bound (``bound``). One pair
    gives no interval (``*_ci`` is ``None``).
    """

    per_seed: tuple[SeedSpeedup, ...]
    tokens: float
    tokens_ci: tuple[float, float] | None
    flops: float
    flops_ci: tuple[float, float] | None
    tokens_with_base: float
    tokens_with_base_ci: tuple[float, float] | None
    flops_with_base: float
    flops_with_base_ci: tuple[float, float] | None

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    @property
    def bases(self) -> int:
        """Independently trained bases the pairs grew (the interval's resampling unit when ≥ 2)."""
        return len({pair.base for pair in self.per_seed})

    @property
    def seeds_reached(self) -> int:
        return sum(pair.reached for pair in self.per_seed)

    @property
    def bound(self) -> Literal["upper", "lower", "both"] | None:
        """What censored pairs make of the means: ``None`` (every pair reached the target),
        ``"upper"`` (some did not: the means are upper bounds), ``"lower"`` (some were below it
        at their start: lower bounds) or ``"both"`` (each kind: neither)."""
        kinds = {pair.censoring for pair in self.per_seed} - {"reached"}
        if not kinds:
            return None
        return "both" if len(kinds) == 2 else ("upper" if kinds == {"not reached"} else "lower")

    def describe(self, measure: str = "tokens", target: str = "scratch's final loss") -> str:
        """One line for a report, e.g. ``1.42× geometric mean over 4 pairs on 2 bases (95% CI
        1.10–1.83, t on the bases' mean log speedups, 1 degree of freedom); 3 reached scratch's
        final loss, 1 counted at its bound: the mean is an upper bound``, or ``1.39× from one
        seed: no interval; it reached scratch's final loss`` (``target`` names the loss read)."""
        value, interval = getattr(self, measure), getattr(self, f"{measure}_ci")
        if interval is None:
            return f"{value:.2f}× from one seed: no interval; it {'reached' if self.seeds_reached else 'did not reach'} " \
                   f"{target}" + ("" if self.bound is None else f" (a bound: {_BOUND_MEANING[self.bound]})")
        if self.bases >= 2:
            over = f"{self.seeds} pairs on {self.bases} bases"
            how = f"t on the bases' mean log speedups, {self.bases - 1} degree{'' if self.bases == 2 else 's'} of freedom"
        else:
            over = f"{self.seeds} pairs of one base"
            how = "t on log speedups over its pairs: base-to-base variance not covered"
        text = f"{value:.2f}× geometric mean over {over} ({CONFIDENCE:.0%} CI {interval[0]:.2f}–{interval[1]:.2f}, {how})"
        text += f"; {self.seeds_reached} reached {target}"
        censored = self.seeds - self.seeds_reached
        return text + (f", {censored} counted at {'its' if censored == 1 else 'their'} bound: {_BOUND_MEANING[self.bound]}"
                       if self.bound else "")

    def as_attrs(self) -> dict:
        """The estimate as its record's fields (:class:`hpogrow.record.SpeedupRecord`; ``None`` kept)."""
        from hpogrow.record.run import SpeedupRecord  # the record imports this module

        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(SpeedupRecord.from_estimate(self)).items()}


def aggregate_speedups(pairs: Sequence[SeedSpeedup]) -> SpeedupEstimate:
    """Geometric means over pairs and 95% t-intervals on log speedups that resample the pairs'
    bases (see :class:`SpeedupEstimate`)."""
    if not pairs:
        raise ValueError("no seeds to aggregate")
    bases = [pair.base for pair in pairs]
    figures = {}
    for measure in _MEASURES:
        mean, interval = clustered_log_t_interval([getattr(pair, measure) for pair in pairs], bases)
        figures[measure], figures[f"{measure}_ci"] = mean, interval
    return SpeedupEstimate(per_seed=tuple(pairs), **figures)


def clustered_log_t_interval(ratios: Sequence[float], clusters: Sequence[int],
                             confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float] | None]:
    """Geometric mean of positive ``ratios`` nested in ``clusters`` (one label per ratio) and its
    t-interval: over the clusters' mean logs (clusters − 1 degrees of freedom) when there are two
    clusters or more, else over the ratios (:func:`log_t_interval`)."""
    groups: dict[int, list[float]] = {}
    for ratio, cluster in zip(ratios, clusters, strict=True):
        groups.setdefault(cluster, []).append(math.log(ratio))
    if len(groups) < 2:
        return log_t_interval(ratios, confidence)
    return _t_interval([statistics.fmean(logs) for logs in groups.values()], confidence)


def log_t_interval(ratios: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float] | None]:
    """Geometric mean of positive ``ratios`` and its t-interval (``None`` for one value)."""
    return _t_interval([math.log(ratio) for ratio in ratios], confidence)


def _t_interval(logs: Sequence[float], confidence: float) -> tuple[float, tuple[float, float] | None]:
    """``exp`` of the mean of ``logs`` and of its t-interval (``None`` for one value)."""
    center = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(center), None
    half = student_t_quantile(0.5 + confidence / 2, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(center), (math.exp(center - half), math.exp(center + half))
