"""When base trials are compared, in tokens: the budget and the rungs of a schedule.

Its own module, with no executor in it, so that the successive-halving design
(:mod:`hpogrow.search.halving`) and the executors that run it both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """When base trials are compared, in tokens: every rung is a whole number of steps of every
    batch size, so trials of different batch sizes are judged at exactly the same token counts."""

    budget: int
    """Tokens of a full-budget trial (the same for every batch size)."""
    rungs: tuple[int, ...]
    """Token counts at which the scheduler compares trials, increasing; the last is ``budget``."""


def round_to(tokens: float, unit: int) -> int:
    """``tokens`` rounded to a positive multiple of ``unit``."""
    return max(1, round(tokens / unit)) * unit


def rung_schedule(budget: float, step_tokens: int, scheduler: str = "asha", reduction_factor: int = 2,
                  max_rungs: int = 3) -> Schedule:
    """The budget near ``budget`` and the token milestones at which the scheduler compares trials.

    Every milestone is a whole number of ``step_tokens`` (one step of the largest batch), so
    every power-of-two batch size evaluates exactly there.

    Example::

        >>> rung_schedule(160_000, 4096, "asha", reduction_factor=2)
        Schedule(budget=163840, rungs=(20480, 40960, 81920, 163840))
    """
    if scheduler == "none":
        rounded = round_to(budget, step_tokens)
        return Schedule(rounded, (rounded,))
    rungs = max_rungs
    while rungs > 0 and budget / reduction_factor ** rungs < step_tokens:
        rungs -= 1
    smallest = round_to(budget / reduction_factor ** rungs, step_tokens)
    return Schedule(smallest * reduction_factor ** rungs,
                    tuple(smallest * reduction_factor ** k for k in range(rungs + 1)))
