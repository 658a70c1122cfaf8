"""The in-process executor (hpogrow/search/executors/local.py) on the Fourier task at width 16."""

from __future__ import annotations

import optuna
import pytest

from hpogrow.errors import TrainingDiverged, UsageError
from hpogrow.record import RunRecord
from hpogrow.runs import BaseTrial
from hpogrow.search.executors.local import LocalExecutor, run_in_process
from hpogrow.search.space import SearchSpace
from hpogrow.tasks import FourierTask
from hpogrow.train import TrainConfig

TrialState = optuna.trial.TrialState
SPACE = SearchSpace(learning_rate_low=1e-3, learning_rate_high=3e-2, learning_rate_log=True, batch_sizes=(8, 16))


@pytest.fixture
def base_trial(tmp_path) -> BaseTrial:
    task = FourierTask(depth=1, modes=64, eval_examples=64)
    return BaseTrial(task, 16, TrainConfig(1.0, 1, tokens=64, evaluations=2, device="cpu"), tmp_path / "trials")


def _study(tmp_path) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name="s/base", storage=f"sqlite:///{tmp_path / 'hpogrow.db'}",
                               sampler=optuna.samplers.RandomSampler(seed=0))


def test_runs_the_asked_number_of_trials_and_records_each_one(tmp_path, base_trial):
    study = _study(tmp_path)
    LocalExecutor(scheduler="none").run(study, SPACE, 2, base_trial)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    for trial in trials:
        run = RunRecord.of(trial)
        assert run.role == "base" and run.width == 16 and run.driver
        assert run.tokens == run.fidelity_reached == 64
        assert run.flops == 6 * run.compute_params * 64
        assert run.final_loss == pytest.approx(trial.value)
        assert run.checkpoint == str(tmp_path / "trials" / f"trial-{trial.number}")
        assert run.facts is not None and run.facts.device == "cpu"
        assert max(trial.intermediate_values) == 64  # every evaluation at step = tokens seen
        assert trial.params["batch_size"] in (8, 16)
    # a second run with the same total adds nothing: the study already holds 2 trials
    LocalExecutor(scheduler="none").run(study, SPACE, 2, base_trial)
    assert len(study.trials) == 2


class _RaisingTrial(BaseTrial):
    def run(self, params, number, report=None, **options):
        raise self.error


def _raising(base_trial: BaseTrial, error: BaseException) -> BaseTrial:
    trial = _RaisingTrial(base_trial.task, base_trial.base_width, base_trial.template, base_trial.checkpoint_dir)
    object.__setattr__(trial, "error", error)
    return trial


def test_a_diverged_trial_is_recorded_as_fail_and_the_search_goes_on(tmp_path, base_trial):
    study = _study(tmp_path)
    trial = study.ask(SPACE.distributions())
    run_in_process(study, trial, _raising(base_trial, TrainingDiverged(32, float("nan"))), prune=False)
    frozen = study.trials[0]
    run = RunRecord.of(frozen)
    assert frozen.state == TrialState.FAIL
    assert run.diverged and run.fidelity_reached == 32 and "nan" in run.fail_reason


def test_any_other_error_is_recorded_as_fail_and_raised(tmp_path, base_trial):
    study = _study(tmp_path)
    trial = study.ask(SPACE.distributions())
    with pytest.raises(RuntimeError, match="boom"):
        run_in_process(study, trial, _raising(base_trial, RuntimeError("boom")), prune=False)
    frozen = study.trials[0]
    run = RunRecord.of(frozen)
    assert frozen.state == TrialState.FAIL and run.fail_reason == "RuntimeError: boom" and not run.diverged


def test_an_unknown_scheduler_is_a_usage_error_naming_the_flag():
    with pytest.raises(UsageError, match="--scheduler sometimes"):
        LocalExecutor(scheduler="sometimes")
    assert isinstance(LocalExecutor(scheduler="median").pruner(100), optuna.pruners.MedianPruner)
    assert isinstance(LocalExecutor().pruner(100), optuna.pruners.NopPruner)  # successive halving stops trials itself
    assert isinstance(LocalExecutor(scheduler="none").pruner(100), optuna.pruners.NopPruner)
