"""The base search's sampler: diverged trials teach TPE, randomness is drawn per trial."""

from __future__ import annotations

import random

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from hpogrow import record
from hpogrow.record import RunRecord
from hpogrow.search.sampler import make_sampler

TrialState = optuna.trial.TrialState
SPACE = {"learning_rate": FloatDistribution(1e-4, 1.0, log=True), "batch_size": CategoricalDistribution([16, 32])}


def _study_after_divergences(sampler: optuna.samplers.BaseSampler, seed: int) -> optuna.Study:
    """8 trials at learning rates above 0.1 diverged; 4 below it trained to about the same loss."""
    study = optuna.create_study(sampler=sampler)
    draw = random.Random(seed)
    for _ in range(8):
        study.enqueue_trial({"learning_rate": 10 ** draw.uniform(-1, 0), "batch_size": 16})
        trial = study.ask(SPACE)
        record.write(trial, RunRecord(diverged=True))
        trial.set_user_attr("fail_reason", "loss became nan")
        study.tell(trial, state=TrialState.FAIL)
    for learning_rate in (1e-4, 1e-3, 1e-2, 5e-2):
        study.enqueue_trial({"learning_rate": learning_rate, "batch_size": 16})
        study.tell(study.ask(SPACE), 1.0 + 0.01 * draw.random())
    return study


def _high_suggestions(study: optuna.Study, count: int = 20) -> int:
    high = 0
    for _ in range(count):
        trial = study.ask(SPACE)
        high += trial.params["learning_rate"] > 0.1
        study.tell(trial, state=TrialState.FAIL)  # no feedback: only the divergences above teach
    return high


@pytest.mark.parametrize("seed", range(3))
def test_later_suggestions_move_away_from_learning_rates_that_diverged(seed):
    plain = _high_suggestions(_study_after_divergences(optuna.samplers.TPESampler(seed=seed, n_startup_trials=4), seed))
    aware_study = _study_after_divergences(make_sampler(seed), seed)
    aware = _high_suggestions(aware_study)
    # a tenth of the log range lies above 0.1: plain TPE, blind to FAIL trials, keeps going there
    assert plain >= 4 and aware <= 1, (plain, aware)
    # the record still says what happened
    diverged = [t for t in aware_study.trials if RunRecord.of(t).diverged]
    assert len(diverged) == 8 and all(t.state == TrialState.FAIL for t in diverged)


def test_randomness_is_per_trial_number():
    def first_params(trials_before: int) -> dict:
        study = optuna.create_study(sampler=make_sampler(7))
        for _ in range(trials_before):
            study.tell(study.ask(SPACE), state=TrialState.FAIL)
        return study.ask(SPACE).params

    assert first_params(0) == first_params(0)  # reproducible
    assert first_params(0) != first_params(1)  # a continued study (or another driver's trial) draws anew
