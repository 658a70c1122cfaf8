"""The trials of advise's ladder and of transfercheck (hpogrow/record/checks.py), written at once
by add_finished and told apart when read back."""

from __future__ import annotations

import optuna
import pytest

from hpogrow import record
from hpogrow.record.checks import TRANSFER, LadderRecord, TransferRecord

LADDER = LadderRecord(role="scratch", width=32, tokens=4096, seed=1, data_position=0, growth_factor=None,
                      param_ratio=None, n_params=1000, compute_params=900, base_tokens=None, base_flops=None,
                      diverged=False, tokens_per_param=4.1, learning_rate=1e-2, batch_size=32, schedule="cosine")
TRANSFER_RUN = TransferRecord(parameterization="μP", width=64, base_width=16, learning_rate=3e-3, batch_size=32,
                              seed=0, tokens=2048, n_params=5000, diverged=False, final_loss=1.5)
DISTRIBUTIONS = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'checks.db'}")


def test_each_record_reads_back_from_its_own_trial_and_none_from_the_other(study):
    record.add_finished(study, {"learning_rate": 1e-2}, DISTRIBUTIONS, [(1024, 2.0), (4096, 1.7)], LADDER, value=1.7)
    record.add_finished(study, {"learning_rate": 3e-3}, DISTRIBUTIONS, [(2048, 1.5)], TRANSFER_RUN, value=1.5)
    ladder, transfer = study.trials
    assert ladder.state == transfer.state == optuna.trial.TrialState.COMPLETE
    assert ladder.intermediate_values == {1024: 2.0, 4096: 1.7}
    assert LadderRecord.of(ladder) == LADDER and TransferRecord.of(ladder) is None
    assert TransferRecord.of(transfer) == TRANSFER_RUN and LadderRecord.of(transfer) is None
    assert transfer.user_attrs["role"] == TRANSFER


def test_a_failed_run_is_one_failed_trial_with_its_reason_and_no_infinite_losses(study):
    diverged = TransferRecord(parameterization="SP", width=64, base_width=64, learning_rate=1.0, batch_size=32,
                              seed=0, tokens=2048, n_params=5000, diverged=True, fail_reason="loss became nan")
    record.add_finished(study, {"learning_rate": 1.0}, DISTRIBUTIONS, [(512, 3.0), (1024, float("inf"))], diverged,
                        fail_reason="loss became nan")
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.value is None
    assert trial.intermediate_values == {512: 3.0}
    assert TransferRecord.of(trial) == diverged and trial.user_attrs["fail_reason"] == "loss became nan"


def test_a_search_trial_is_neither(study):
    trial = study.ask()
    record.write(trial, record.RunRecord(role="base", width=16))
    study.tell(trial, 1.0)
    (frozen,) = study.trials
    assert LadderRecord.of(frozen) is None and TransferRecord.of(frozen) is None
