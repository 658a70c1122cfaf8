"""Synchronous successive halving: promote only when a rung is complete.

A bracket of n trials trains every trial to the first rung; once **all** of them have been
evaluated there, the best ⌊n / η⌋ (at least one) continue from their rung checkpoints to the
next rung, and so on to the budget. Nothing is promoted on a partial view of a rung, so the
spend is the arithmetic's and no early arrival is favoured (Ray's asynchronous ASHA promotes the
first trial at every rung; at η = 2 and 16 trials it spent 0.48× a full search, bench/RESULTS.md).

Trials come in brackets of η^K (K rungs below the budget): a bracket halves exactly down to one
full-budget trial, and the sampler of a later bracket learns from the trials an earlier one
stopped. A last, smaller bracket holds what remains.

The default, η = 3 with K = 2 and the first rung at half its geometric place (rungs at B/18, B/3
and B, brackets of 9), was chosen by replaying candidate designs over full searches' logged losses
(``bench/halving_replay.py``, bench/RESULTS.md): at base width 64 and 1 token/parameter it kept the
full search's winner, or one within the eval set's noise of it, in 97% of 2,000 draws of 16
configurations, at 0.226× the tokens. The first cut keeps a third of the trials and is easy: its
hit rate stayed within the interval from B/9 to B/36 at both widths replayed, so its rung sits
cheaply. The cut before the budget is not: η = 4, cutting to a quarter at B/4, kept the winner in
62%. No design reached 95% at width 128, where early rungs keep favouring a learning rate that
loses by the budget.

This module holds the design and the rule, with no training in it: the executors run the waves
(:func:`run_brackets`), and the replay calls the same :func:`survivors`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpogrow.errors import UsageError
from hpogrow.search.schedule import Schedule, round_to, rung_schedule


@dataclass(frozen=True)
class Halving:
    """A successive-halving design: reduction factor η, K rungs below the budget, and where the
    first rung sits as a share of its geometric place B/η^K (the others are at B/η^k)."""

    reduction_factor: int = 3
    rungs_below: int = 2
    first_rung: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.reduction_factor, int) or self.reduction_factor < 2:
            raise UsageError(f"--reduction-factor {self.reduction_factor}: must be an integer of at least 2")
        if self.rungs_below < 1:
            raise UsageError(f"successive halving needs at least one rung below the budget, got {self.rungs_below}")
        if not 0 < self.first_rung <= 1:
            raise ValueError(f"the first rung's share of its geometric place must be in (0, 1], got {self.first_rung}")

    @property
    def bracket(self) -> int:
        """Trials per bracket: η^K, which halves exactly down to one full-budget trial."""
        return self.reduction_factor ** self.rungs_below

    def schedule(self, budget: float, step_tokens: int) -> Schedule:
        """The geometric rungs near ``budget``, the first of two or more below the budget moved to
        its share (a whole number of steps, at least one); a lone rung below the budget makes the
        only cut, the hard one, and stays.

        Example::

            >>> Halving().schedule(140_000, 4096)  # B/18, B/3, B: 2, 12 and 36 steps
            Schedule(budget=147456, rungs=(8192, 49152, 147456))
        """
        geometric = rung_schedule(budget, step_tokens, "sha", self.reduction_factor, self.rungs_below)
        if len(geometric.rungs) < 3:
            return geometric
        first = min(round_to(geometric.rungs[0] * self.first_rung, step_tokens), geometric.rungs[0])
        return Schedule(geometric.budget, (first, *geometric.rungs[1:]))

    def brackets(self, trials: int) -> list[int]:
        """Bracket sizes for ``trials`` trials: full brackets, then what remains."""
        full, rest = divmod(trials, self.bracket)
        return [self.bracket] * full + ([rest] if rest else [])

    def keep(self, entered: int) -> int:
        """Trials that go on from a rung that ``entered`` trials reached."""
        return max(1, entered // self.reduction_factor)

    def spend(self, trials: int, schedule: Schedule) -> float:
        """Tokens spent on ``trials`` trials as a fraction of ``trials`` full-budget trials,
        when no trial diverges.

        Example::

            >>> Halving(4, 2).spend(16, Schedule(1600, (100, 400, 1600)))  # 16 → 4 → 1 trials
            0.15625
        """
        tokens = 0
        for size in self.brackets(trials):
            entered, previous = size, 0
            for rung in schedule.rungs:
                tokens += entered * (rung - previous)
                entered, previous = self.keep(entered), rung
        return tokens / (trials * schedule.budget)

    @property
    def stopping(self) -> str:
        """The study signature's stopping rule."""
        share = "" if self.first_rung == 1 else f", the first at {self.first_rung:g} of its geometric place"
        return f"sha, reduction factor {self.reduction_factor}, {self.rungs_below} rungs below the budget{share}"

    def explain(self, schedule: Schedule, base_params: int) -> str:
        """One line for the plan."""
        per_param = " → ".join(f"{r / base_params:.3g}" for r in schedule.rungs)
        counts, entered = [], self.bracket
        for _ in schedule.rungs:
            counts.append(entered)
            entered = self.keep(entered)
        return (f"synchronous successive halving, reduction factor {self.reduction_factor}: "
                f"{' → '.join(f'{r:,}' for r in schedule.rungs)} tokens ({per_param} tokens/parameter); "
                f"brackets of {self.bracket} trials, {' → '.join(map(str, counts))} at the rungs, promoted only "
                "when a rung is complete")

    def describe(self, schedule: Schedule) -> dict[str, Any]:
        """The design as the base study records it (study attribute ``scheduler``)."""
        return {"name": "sha", "reduction_factor": self.reduction_factor, "rungs": list(schedule.rungs),
                "first_rung": self.first_rung, "bracket": self.bracket,
                "keep": f"max(1, n // {self.reduction_factor}) of the n trials at a rung"}


def survivors(losses: Mapping[int, float], reduction_factor: int) -> list[int]:
    """The trials that go on from a complete rung: the best ⌊n / η⌋ (at least one) by loss at the
    rung, ties by trial number; a non-finite loss (a diverged trial) never goes on.

    Example::

        >>> survivors({3: 2.1, 4: 1.9, 5: float("nan"), 6: 2.0}, 2)
        [4, 6]
    """
    finite = sorted((loss, number) for number, loss in losses.items() if math.isfinite(loss))
    return [number for _, number in finite[:max(1, len(losses) // reduction_factor)]]


Wave = Callable[[Sequence[int], int], Mapping[int, float]]
"""``wave(trials, tokens)`` trains each of ``trials`` (continuing from its last rung) to ``tokens``
and returns each one's loss there (non-finite: it diverged and is recorded as such); trials
left out of the next call are stopped (the executor records them PRUNED)."""


def run_bracket(trials: Sequence[int], halving: Halving, schedule: Schedule, wave: Wave,
                stop: Callable[[int], None]) -> None:
    """Run one bracket: every trial to the first rung, then the survivors of each complete rung to
    the next; ``stop(trial)`` for each trial a rung cuts."""
    alive = list(trials)
    for rung in schedule.rungs:
        losses = wave(alive, rung)
        if rung == schedule.budget:
            return
        kept = set(survivors(losses, halving.reduction_factor))
        for number in alive:
            if number not in kept and math.isfinite(losses[number]):
                stop(number)
        alive = [number for number in alive if number in kept]
