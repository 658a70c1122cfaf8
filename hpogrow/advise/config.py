"""What ``hpogrow advise`` runs (the ladder) and what it predicts for (the target)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hpogrow.errors import UsageError
from hpogrow.parametrize import check_width
from hpogrow.tasks.base import Task

_DEFAULTS = {  # mlp: about 10 minutes on 2 busy CPU cores (bench/RESULTS.md)
    "mlp": {"widths": (16, 24, 32, 48, 64), "tokens": 64 * 1200, "growth_factors": (2.0, 4.0, 8.0),
            "pair_tokens_per_param": (5.0, 20.0), "learning_rate": 2.0**-7, "batch_size": 64, "seeds": 3},
    # lm: widths step by the head size, so from base 64 the factors 2, 3.4, 7.2 reach widths 96, 128, 192
    # (from base 32, g 2, 3 and 4 all land on width 64). Not yet timed on this machine.
    "lm": {"widths": (64, 96, 128, 192), "tokens": 16 * 128 * 32, "growth_factors": (2.0, 3.4, 7.2),
           "pair_tokens_per_param": (0.5, 2.0), "learning_rate": 2.0**-5, "batch_size": 16, "seeds": 1},
}
_TASK_DEFAULTS = ("widths", "tokens", "growth_factors", "pair_tokens_per_param", "learning_rate", "batch_size", "seeds")
CANDIDATE_GROWTH_FACTORS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
"""The growth factors the advice predicts for (the recommendation is one of them)."""


@dataclass(frozen=True)
class AdviseConfig:
    """The ladder of cheap runs and the target of the prediction; ``None`` fields take the task's defaults."""

    widths: tuple[int, ...] | None = None
    """Increasing widths of the scratch ladder; the first is the μP base width and the width of
    every warmstart's base (mlp 16 24 32 48 64; lm 64 96 128 192). The largest is held out of
    the out-of-sample check of the loss law."""
    tokens: int | None = None
    """Budget of each scratch ladder run. The schedule is constant, so the run's loss after D
    tokens is the loss of a run with budget D: each run gives a row of budgets (mlp 76,800)."""
    growth_factors: tuple[float, ...] | None = None
    """Growth factors of the warmstart/scratch pairs (mlp 2 4 8; lm 2 3.4 7.2)."""
    pair_tokens_per_param: tuple[float, ...] | None = None
    """Budgets of the pairs in tokens per parameter, the base at its size and the target at its
    (mlp 5 20; lm 0.5 2)."""
    learning_rate: float | None = None
    """Learning rate of every run (μTransfer: one rate for every width; mlp 2^-7, lm 2^-5)."""
    batch_size: int | None = None
    seeds: int | None = None
    """Seeds of each pair configuration, from ``seed`` on (mlp 3, lm 1)."""
    seed: int = 0
    holdout_growth_factor: float | None = None
    """The g left out of the gain model's out-of-sample check (default: the largest)."""
    target_params: int | None = None
    """Parameter count to advise for (default: the task's model at ``target_width``)."""
    target_width: int | None = None
    """Width to advise for (default: 8 × the base width when no ``target_params``)."""
    target_tokens_per_param: float = 20.0
    """Budget of the advised run, in tokens per parameter."""
    min_budget_fraction: float = 0.25
    """Points of a run's curve enter the loss law from this fraction of its budget on (earlier
    points are the start-up transient, not a budget's end)."""
    bootstrap: int = 100
    """Bootstrap resamples of the loss law (over runs) and of the gain model (over pairs)."""
    operator: str = "szp"
    shrink: float = 0.4
    study: str | None = None
    """Study name; default ``{task}-advice``. Rerunning reuses its runs."""
    storage: str | None = None
    workdir: str = "studies"
    evaluations: int = 16
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.widths is not None and (len(self.widths) < 3 or list(self.widths) != sorted(set(self.widths))):
            raise UsageError(f"--widths {list(self.widths)}: give at least three increasing widths, the base first "
                             "(the largest is held out of the fit)")
        if self.growth_factors is not None and (len(self.growth_factors) < 3 or min(self.growth_factors) <= 1
                                                or list(self.growth_factors) != sorted(set(self.growth_factors))):
            raise UsageError(f"--growth-factors {list(self.growth_factors)}: give at least three increasing factors "
                             "above 1 (one is held out of the gain model)")
        if self.pair_tokens_per_param is not None and (not self.pair_tokens_per_param
                                                       or min(self.pair_tokens_per_param) <= 0):
            raise UsageError(f"--pair-tokens-per-param {list(self.pair_tokens_per_param)}: give positive budgets")
        for flag, value in (("--tokens", self.tokens), ("--batch-size", self.batch_size), ("--seeds", self.seeds),
                            ("--target-params", self.target_params), ("--target-width", self.target_width)):
            if value is not None and value < 1:
                raise UsageError(f"{flag} {value}: must be a positive integer")
        if self.target_params is not None and self.target_width is not None:
            raise UsageError("--target-params and --target-width both name the target; give one")
        if not self.target_tokens_per_param > 0:
            raise UsageError(f"--tokens-per-param {self.target_tokens_per_param}: must be positive")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise UsageError(f"--lr {self.learning_rate}: must be positive")
        if self.evaluations < 6:
            raise UsageError(f"--evaluations {self.evaluations}: need at least 6 (speedups read smoothed curves)")
        if not 0 <= self.min_budget_fraction < 1:
            raise UsageError(f"min_budget_fraction {self.min_budget_fraction}: must be in [0, 1)")

    def for_task(self, task: Task) -> AdviseConfig:
        """This config with the task's defaults filled in, checked against the task."""
        missing = [name for name in _TASK_DEFAULTS if getattr(self, name) is None]
        if missing and task.name not in _DEFAULTS:
            raise UsageError(f"task {task.name!r} has no advise defaults; pass {', '.join(missing)}")
        resolved = replace(self, **{name: _DEFAULTS[task.name][name] for name in missing})
        for width in resolved.widths:
            check_width(task, width)
        if resolved.target_width is not None:
            check_width(task, resolved.target_width, "--target-width")
        holdout = resolved.holdout_growth_factor
        if holdout is not None and holdout not in resolved.growth_factors:
            raise UsageError(f"--holdout-growth-factor {holdout:g}: not one of --growth-factors "
                             f"{list(resolved.growth_factors)}")
        if resolved.batch_size * task.tokens_per_example * resolved.evaluations > resolved.tokens:
            raise UsageError(f"--tokens {resolved.tokens}: fewer than {resolved.evaluations} batches; raise --tokens")
        return replace(resolved, holdout_growth_factor=holdout or max(resolved.growth_factors))

    @property
    def base_width(self) -> int:
        return self.widths[0]
