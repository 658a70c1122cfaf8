"""What a transfer check sweeps: widths, a log grid of learning rates, equal tokens, seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpogrow.options import PositiveInt, RunOptions, StudyOptions, TaskDefaults, ThreadOptions, bad_flag, flag

if TYPE_CHECKING:
    from hpogrow.tasks.base import Task

PARAMETERIZATIONS = ("μP", "SP")


@dataclass(frozen=True)
class TransferConfig(TaskDefaults, StudyOptions, RunOptions, ThreadOptions):
    """What ``hpogrow transfercheck`` sweeps; ``None`` fields take the task's defaults."""

    TASK_DEFAULTS = {  # each about 10 minutes on 2 busy CPU cores (bench/RESULTS.md)
        "mlp": {"widths": (16, 32, 64, 128, 256), "learning_rates": tuple(2.0**e for e in range(-11, -3)),
                "batch_size": 64, "tokens": 64 * 600, "seeds": 3},
        "lm": {"widths": (32, 64, 128), "learning_rates": tuple(2.0**e for e in range(-9, -3)),
               "batch_size": 16, "tokens": 16 * 128 * 64, "seeds": 1},
    }

    widths: tuple[PositiveInt, ...] | None = None
    """Increasing widths; the first is the μP base width (default mlp 16 32 64 128 256; lm 32 64 128)."""
    learning_rates: tuple[float, ...] | None = None
    """Learning rates, increasing and evenly spaced in log: one grid step is their common ratio
    (default mlp 2^-11 … 2^-4, lm 2^-9 … 2^-4; step ×2)."""
    batch_size: PositiveInt | None = None
    """Examples per step, the same for every run (default mlp 64, lm 16)."""
    tokens: PositiveInt | None = None
    """Token budget of every run, the same at every width (default mlp 38,400; lm 131,072)."""
    seeds: PositiveInt | None = None
    """Initialisation seeds per width and learning rate: ``seed``, ``seed`` + 1, … (default mlp 3, lm 1)."""
    max_drift: float = 0.25
    """Bound on |drift|, octaves of learning rate per doubling of width: 0.25 moves the optimum by
    one ×2 grid step over the default MLP check's 16× width range (4 doublings), so a learning
    rate tuned at the base width and used 16× wider is off by at most a factor 2
    (docs/checks.md#transfer-check)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.widths is not None and (len(self.widths) < 2 or list(self.widths) != sorted(set(self.widths))):
            raise bad_flag("widths", self.widths, "give at least two increasing positive widths, the base first")
        if self.learning_rates is not None:
            grid_step(self.learning_rates)
        if not self.max_drift > 0:
            raise bad_flag("max_drift", self.max_drift, "give a positive bound (octaves per doubling of width)")

    def checked_for(self, task: Task) -> TransferConfig:
        """Widths checked against the task, and at least one batch per run."""
        from hpogrow.parametrize import check_width

        for width in self.widths:
            check_width(task, width)
        if self.batch_size * task.tokens_per_example > self.tokens:
            raise bad_flag("tokens", self.tokens, f"less than one batch ({self.batch_size * task.tokens_per_example} "
                           f"tokens); raise {flag('tokens')}")
        return self


def grid_step(learning_rates: Sequence[float]) -> float:
    """The common ratio of a log-spaced grid; a :class:`UsageError` for anything else."""
    rates = list(learning_rates)
    if len(rates) < 3 or any(not rate > 0 for rate in rates) or rates != sorted(set(rates)):
        raise bad_flag("learning_rates", tuple(rates), "give at least three increasing positive learning rates")
    ratios = [math.log(high / low) for low, high in zip(rates, rates[1:])]
    if max(ratios) > 1.25 * min(ratios):
        raise bad_flag("learning_rates", tuple(rates), "space them evenly in log (e.g. 1e-3 2e-3 4e-3 8e-3), "
                       "so that one grid step means the same everywhere")
    return math.exp(sum(ratios) / len(ratios))

