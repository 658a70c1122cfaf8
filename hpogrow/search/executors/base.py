"""The executor extension point: who runs the base trials of a study, and the target runs.

The pipeline talks to executors through this interface only: what a base trial's budget and
rungs are (:meth:`Executor.schedule`), what stops trials early (:attr:`Executor.stopping`, part
of the study's signature, and :meth:`Executor.pruner`), what to show in the plan, and how to run
base trials and target runs. The record itself is written by :mod:`hpogrow.record`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from hpogrow.coordination import Coordinator
from hpogrow.progress import QUIET, Display, TokensCallback, run_bar
from hpogrow.runs import BaseTrial, RunOutcome
from hpogrow.search.schedule import Schedule
from hpogrow.search.space import SearchSpace
from hpogrow.train import Report

Run = Callable[[Report | None, TokensCallback | None], RunOutcome]
"""A training run: ``run(report, on_tokens) -> RunOutcome`` (a picklable closure)."""


class Job(Protocol):
    def result(self) -> RunOutcome:
        """Wait for the run (its evaluations went to the ``report`` it was submitted with)."""


class Executor(ABC):
    """Runs base trials of a study until it holds the number asked for, and the target-scale
    runs (warmstart, scratch) that the pipeline submits. Trials are created with
    :func:`hpogrow.record.claim_base_trial` and recorded with :mod:`hpogrow.record`."""

    @property
    @abstractmethod
    def stopping(self) -> str:
        """What stops base trials early (a study keeps one: it decides what PRUNED means)."""

    @abstractmethod
    def schedule(self, budget: float, step_tokens: int) -> Schedule:
        """The budget near ``budget`` and the rungs, all multiples of ``step_tokens`` (the tokens of
        one step of the largest batch size, which every smaller power-of-two batch divides)."""

    @abstractmethod
    def run(self, study: optuna.Study, space: SearchSpace, trials: int, base_trial: BaseTrial,
            display: Display = QUIET, coordinator: Coordinator | None = None) -> None:
        """Run and record base trials until ``study`` holds ``trials`` (counting those of other
        live drivers), showing them on ``display``; return when all this executor started have ended."""

    def base_schedule(self, base_trial: BaseTrial, space: SearchSpace) -> Schedule:
        """The plan's schedule, as the base trial carries it; derived from its budget for a base
        trial built without a plan (a rounded budget can allow a rung the asked one did not)."""
        if base_trial.rungs:
            return Schedule(base_trial.template.tokens, tuple(base_trial.rungs))
        return self.schedule(base_trial.template.tokens, max(space.batch_sizes) * base_trial.task.tokens_per_example)

    def design(self, schedule: Schedule) -> dict[str, Any]:
        """How trials are stopped, as the base study records it (study attribute ``scheduler``)."""
        return {"name": self.stopping, "rungs": list(schedule.rungs)}

    def spend(self, trials: int, schedule: Schedule) -> float:
        """Expected tokens of ``trials`` base trials as a fraction of that many full-budget trials
        (for the plan's time estimate; 1 when nothing stops trials by design)."""
        return 1.0

    def pruner(self, budget: int) -> optuna.pruners.BasePruner:
        """The Optuna pruner of the base study (none: trials are stopped by the executor)."""
        return optuna.pruners.NopPruner()

    def plan_rows(self, schedule: Schedule, base_params: int) -> list[tuple[str, str]]:
        """Rows the plan table shows about how trials are stopped."""
        return []

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Resources held across :meth:`run` and :meth:`submit` (e.g. a Ray runtime)."""
        yield

    def submit(self, run: Run, label: str, tokens: int, display: Display = QUIET,
               report: Report | None = None) -> Job:
        """Start a target-scale run of ``tokens`` tokens, with a bar on ``display``; each of its
        evaluations goes to ``report`` in this process as it happens (the record's live curve).
        This default runs it in process, one at a time, when its result is asked for; the Ray
        executor starts it at once as a Ray task, so independent runs (warmstart and scratch)
        train concurrently."""
        return _Deferred(run, label, tokens, display, report)


@dataclass
class _Deferred:
    run: Run
    label: str
    tokens: int
    display: Display
    report: Report | None

    def result(self) -> RunOutcome:
        with run_bar(self.display, self.label, self.tokens) as on_tokens:
            return self.run(self.report, on_tokens)
