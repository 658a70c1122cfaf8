"""What the growth benchmarks share: a task as a benchmark runs it, one seed's speedup read from two
runs, and an estimate as a table cell (held-out standard errors come from :func:`hpogrow.runs.paired_eval_gap`
and each run's recorded ``val_loss_se``).

Speedups go through :mod:`hpogrow.speedup` (smoothed curves, censored seeds counted at their
bound, geometric mean with a 95% t-interval over seeds). FLOPs are the package's one convention,
6·N·D (:func:`hpogrow.throughput.training_flops`, N the compute parameters, embeddings excluded), the
count ``hpogrow search`` and ``hpogrow advise`` report their speedups in; attention is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from hpogrow.parametrize import count_parameters
from hpogrow.runs import RunOutcome
from hpogrow.speedup import SeedSpeedup, SpeedupEstimate, seed_speedup
from hpogrow.tasks import Task
from hpogrow.throughput import training_flops

_CENSORING_MARK = {"upper": "≤", "lower": "≥", "both": "~"}


@dataclass(frozen=True)
class Setting:
    """One task as a benchmark runs it: its base width, learning rate and batch size."""

    label: str
    task: Task
    base_width: int
    learning_rate: float
    batch_size: int


def curve(outcome: RunOutcome) -> list[tuple[int, float]]:
    """``(tokens, validation loss)`` of a run, its tokens counted from its own start."""
    return [(evaluation.tokens_seen, evaluation.val_loss) for evaluation in outcome.evaluations]


def pair_speedup(warm: RunOutcome, scratch: RunOutcome, *, target: nn.Module, base: nn.Module, base_tokens: int,
                 seed: int) -> SeedSpeedup:
    """:func:`hpogrow.speedup.seed_speedup` of a warmstarted run against scratch of the same seed;
    FLOPs 6·N·D, ``target``'s N for both runs and ``base``'s for the base's ``base_tokens``."""
    target_params, base_params = count_parameters(target).compute, count_parameters(base).compute
    return seed_speedup(curve(warm), curve(scratch), flops_per_token=training_flops(target_params, 1),
                        base_tokens=base_tokens, base_flops=training_flops(base_params, base_tokens), seed=seed)


def interval_cell(estimate: SpeedupEstimate, measure: str) -> str:
    """``1.42 (1.10–1.83)`` (a ratio, ×); ``≤``/``≥`` in front when censored seeds make the mean a bound."""
    value, interval = getattr(estimate, measure), getattr(estimate, f"{measure}_ci")
    mark = _CENSORING_MARK.get(estimate.bound, "")
    text = f"{mark}{value:.2f}"
    return text if interval is None else f"{text} ({interval[0]:.2f}–{interval[1]:.2f})"
