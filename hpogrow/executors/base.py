"""The executor extension point: who runs the base trials of a study, and the target runs."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Protocol

import optuna

from hpogrow.runs import BaseTrial, RunOutcome
from hpogrow.space import SearchSpace
from hpogrow.train import Report

Run = Callable[[Report | None, object], RunOutcome]
"""A training run: ``run(report, progress) -> RunOutcome`` (a picklable closure)."""


class Job(Protocol):
    def result(self, report: Report | None) -> RunOutcome:
        """Wait for the run and pass each of its evaluations to ``report``."""


class Executor(ABC):
    """Runs ``n_trials`` new trials of ``study`` with ``run_trial`` and records them, and runs
    the target-scale runs (warmstart, scratch) that the pipeline submits.

    Implementations must record every evaluation as an intermediate value with step = tokens
    seen, tell COMPLETE only for trials that ran their full budget, PRUNED for trials stopped
    early, and FAIL (with a ``fail_reason``) for diverged ones, and set the user attributes
    ``role``, ``width``, ``n_params``, ``tokens``, ``flops``, ``fidelity_reached`` and, for
    complete trials, ``checkpoint``.
    """

    @abstractmethod
    def run(self, study: optuna.Study, space: SearchSpace, n_trials: int, run_trial: BaseTrial,
            progress=None) -> None:
        """Run and record the trials; return when all have ended."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Resources held across :meth:`run` and :meth:`submit` (e.g. a Ray runtime)."""
        yield

    def submit(self, run: Run, label: str, tokens: int, progress=None) -> Job:
        """Start a target-scale run of ``tokens`` tokens. This default runs it in process, one at
        a time, when its result is asked for; the Ray executor starts it at once as a Ray task,
        so independent runs (warmstart and scratch) train concurrently."""
        return _Deferred(run, progress)


class _Deferred:
    def __init__(self, run: Run, progress) -> None:
        self.run, self.progress = run, progress

    def result(self, report: Report | None) -> RunOutcome:
        return self.run(report, self.progress)
