"""What ``hpogrow advise`` runs (the ladder) and what it predicts for (the target)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from hpogrow.errors import UsageError
from hpogrow.options import (NOT_A_FLAG, PositiveFloat, PositiveInt, RunOptions, StudyOptions, TaskDefaults,
                             ThreadOptions, bad_flag, flag)

if TYPE_CHECKING:
    from hpogrow.tasks.base import Task

CANDIDATE_GROWTH_FACTORS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
"""The growth factors the advice predicts for (the recommendation is one of them)."""
MIN_BUDGET_SPAN = 16.0
"""The narrowest span of budgets in tokens the scratch ladder may cover."""


@dataclass(frozen=True)
class AdviseConfig(TaskDefaults, StudyOptions, RunOptions, ThreadOptions):
    """The ladder of cheap runs and the target of the prediction; ``None`` fields take the task's defaults."""

    TASK_DEFAULTS = {  # mlp: under 10 minutes on 2 CPU cores (bench/RESULTS.md)
        "mlp": {"widths": (16, 24, 32, 48, 64), "tokens": 64 * 2400, "growth_factors": (2.0, 4.0, 8.0),
                "pair_tokens_per_param": (5.0, 20.0), "learning_rate": 2.0**-7, "batch_size": 64, "seeds": 3},
        # lm: widths step by the head size, so from base 64 the factors 2, 3.4, 7.2 reach widths 96, 128, 192
        # (from base 32, g 2, 3 and 4 all land on width 64). Not yet timed on this machine.
        "lm": {"widths": (64, 96, 128, 192), "tokens": 16 * 128 * 256, "growth_factors": (2.0, 3.4, 7.2),
               "pair_tokens_per_param": (0.5, 2.0), "learning_rate": 2.0**-5, "batch_size": 16, "seeds": 2},
    }

    target_params: PositiveInt | None = None
    """Parameter count to advise for (default: the task's model at ``target_width``)."""
    target_width: PositiveInt | None = None
    """Width to advise for (default: 8 × the base width when no ``target_params``)."""
    target_tokens_per_param: PositiveFloat = 20.0
    """Budget of the advised run, in tokens per parameter."""
    widths: tuple[PositiveInt, ...] | None = None
    """Increasing widths of the scratch ladder; the first is the μP base width and the width of
    every warmstart's base; each is held out of the loss law's fit in turn (default mlp 16 24 32
    48 64; lm 64 96 128 192)."""
    tokens: PositiveInt | None = None
    """Largest budget of the scratch ladder: each width and seed trains one run this long. On the
    constant schedule the run's loss after D tokens is the loss of a run with budget D, so its
    evaluations at ``tokens/budget_span`` … ``tokens`` (two per octave) are its shorter budgets
    (default mlp 153,600; lm 524,288)."""
    budget_span: float = 16.0
    """Ratio of the scratch ladder's largest budget to its smallest (at least 16: with a narrower
    span the D-term of the loss law is not identified)."""
    growth_factors: tuple[float, ...] | None = None
    """Growth factors of the warmstart/scratch pairs, at least three (default mlp 2 4 8; lm 2 3.4 7.2)."""
    pair_tokens_per_param: tuple[PositiveFloat, ...] | None = None
    """Budgets of the pairs in tokens per parameter, the base at its size and the target at its
    (default mlp 5 20; lm 0.5 2)."""
    holdout_growth_factor: float | None = None
    """The g left out of the gain model's out-of-sample check (default: the largest)."""
    learning_rate: PositiveFloat | None = None
    """Learning rate of every run (μTransfer: one rate for every width; default mlp 2^-7, lm 2^-5)."""
    batch_size: PositiveInt | None = None
    """Batch size of every run (default mlp 64, lm 16)."""
    seeds: PositiveInt | None = None
    """Seeds of each scratch ladder width and of each pair configuration, from ``seed`` on, at
    least 2: the loss law's out-of-sample error is measured in units of the seed spread, and each
    seed of a budget grows its own base (default mlp 3, lm 2)."""
    bootstrap: PositiveInt = 100
    """Bootstrap resamples of the loss law (over runs) and of the gain model (over bases)."""
    workers: PositiveInt = 2
    """Runs trained side by side, each in its own process with ``threads`` threads (1: in this
    process)."""
    operator: str = field(default="szp", metadata=NOT_A_FLAG)
    """Growth operator of the warmstarts."""
    shrink: float = field(default=0.4, metadata=NOT_A_FLAG)
    """λ_shrink of the warmstarts' szp."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.widths is not None and (len(self.widths) < 3 or list(self.widths) != sorted(set(self.widths))):
            raise bad_flag("widths", self.widths, "give at least three increasing widths, the base first "
                           "(the largest is held out of the fit)")
        if self.growth_factors is not None and (len(self.growth_factors) < 3 or min(self.growth_factors) <= 1
                                                or list(self.growth_factors) != sorted(set(self.growth_factors))):
            raise bad_flag("growth_factors", self.growth_factors, "give at least three increasing factors above 1 "
                           "(one is held out of the gain model)")
        if self.pair_tokens_per_param is not None and not self.pair_tokens_per_param:
            raise bad_flag("pair_tokens_per_param", self.pair_tokens_per_param, "give positive budgets")
        if self.target_params is not None and self.target_width is not None:
            raise UsageError(f"{flag('target_params')} and {flag('target_width')} both name the target; give one")
        if self.evaluations < 6:
            raise bad_flag("evaluations", self.evaluations, "need at least 6 (speedups read smoothed curves)")
        if not self.budget_span >= MIN_BUDGET_SPAN:
            raise bad_flag("budget_span", self.budget_span, f"give at least {MIN_BUDGET_SPAN:g} (a narrower span "
                           "leaves the loss law's D-term unidentified)")
        if self.seeds is not None and self.seeds < 2:
            raise bad_flag("seeds", self.seeds, "give at least 2 (the loss law is checked against the seed spread)")

    def checked_for(self, task: Task) -> AdviseConfig:
        """Widths checked against the task, the held-out g filled in."""
        from hpogrow.parametrize import check_width

        for width in self.widths:
            check_width(task, width)
        if self.target_width is not None:
            check_width(task, self.target_width, flag("target_width"))
        holdout = self.holdout_growth_factor
        if holdout is not None and holdout not in self.growth_factors:
            raise UsageError(f"{flag('holdout_growth_factor')} {holdout:g}: not one of {flag('growth_factors')} "
                             f"{list(self.growth_factors)}")
        if self.batch_size * task.tokens_per_example * max(self.evaluations, self.budget_span) > self.tokens:
            raise bad_flag("tokens", self.tokens, f"fewer than {max(self.evaluations, self.budget_span):g} batches; "
                           f"raise {flag('tokens')}")
        return replace(self, holdout_growth_factor=holdout or max(self.growth_factors))

    @property
    def base_width(self) -> int:
        return self.widths[0]
