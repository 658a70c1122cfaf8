"""The base search's sampler: TPE that also learns from diverged trials.

A diverged trial (a non-finite loss, typically a learning rate that is too high for μP) is told
FAIL with its ``fail_reason`` and its curve up to the divergence, which is what happened. Optuna's
samplers never look at FAIL trials, so a plain TPE keeps proposing the learning rates that
diverge. :class:`DivergenceAwareSampler` shows the sampler each diverged trial as one more
observation, ranked below every trial that produced a loss (a PRUNED trial without intermediate
values: TPE's worst rank), while the study itself keeps the true state. Trials that failed for
other reasons (a killed driver, an error) teach nothing and stay invisible.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from hpogrow.record.study import is_diverged


def _as_worst_observation(trial: FrozenTrial) -> FrozenTrial:
    seen = copy.copy(trial)
    seen.state = TrialState.PRUNED
    seen.intermediate_values = {}  # TPE ranks pruned trials by (step reached, last value): no step is last
    seen.values = None
    return seen


class _StudyWithDivergedTrials:
    """The sampler's view of a study: diverged FAIL trials appear as the worst PRUNED ones."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _with_diverged(self, trials: list[FrozenTrial], states: Container[TrialState] | None) -> list[FrozenTrial]:
        if states is not None and TrialState.PRUNED not in states:
            return trials
        diverged = [_as_worst_observation(t) for t in self._study._get_trials(deepcopy=False, states=(TrialState.FAIL,))
                    if is_diverged(t)]
        return sorted([*trials, *diverged], key=lambda t: t.number)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        return self._with_diverged(self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache), states)

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._with_diverged(self._study.get_trials(deepcopy=deepcopy, states=states), states)


def _tpe(seed: int | None) -> BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)


class DivergenceAwareSampler(BaseSampler):
    """A sampler (TPE by default) that counts diverged trials as its worst observations and draws
    each trial's randomness from ``(seed, trial number)``.

    Example::

        study = optuna.create_study(sampler=DivergenceAwareSampler(seed=0))

    Args:
        seed: ``None`` for fresh randomness.
        make_base: builds the wrapped sampler from a seed.
    """

    def __init__(self, seed: int | None = None, make_base: Callable[[int | None], BaseSampler] = _tpe) -> None:
        self.seed, self.make_base = seed, make_base
        self.base = make_base(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.seed is not None:
            self.base = self.make_base((self.seed * 1_000_003 + trial.number) % 2**32)
        self.base.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(_StudyWithDivergedTrials(study), trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.base.sample_relative(_StudyWithDivergedTrials(study), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.base.sample_independent(_StudyWithDivergedTrials(study), trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.seed = None
        self.base.reseed_rng()


def make_sampler(seed: int) -> DivergenceAwareSampler:
    """TPE (4 random start-up trials) over the base study, seeded per trial, taught by diverged trials."""
    return DivergenceAwareSampler(seed)
