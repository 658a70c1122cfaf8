"""What the search prints about base trials (hpogrow/search/report.py): ``trial_line`` and ``base_table``."""

from __future__ import annotations

import io

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from rich.console import Console

from hpogrow.record import RunFacts, RunRecord
from hpogrow.record.codec import to_attrs
from hpogrow.search.report import base_table, trial_line

TrialState = optuna.trial.TrialState
DISTRIBUTIONS = {"learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
                 "batch_size": CategoricalDistribution([16, 32])}


def _trial(state: TrialState, value: float | None, record: RunRecord, lr: float = 3e-3, batch: int = 16,
           number: int = 0) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(state=state, value=value, params={"learning_rate": lr, "batch_size": batch},
                                      distributions=DISTRIBUTIONS, user_attrs=to_attrs(record, defaults=False))
    trial.number = number
    return trial


def test_trial_line_of_a_failed_trial_says_how_far_it_got_and_why():
    trial = _trial(TrialState.FAIL, None, RunRecord(fidelity_reached=12_288, fail_reason="loss became nan"), number=4)
    assert trial_line(trial) == "trial 4 FAIL after 12,288 tokens (lr 3.00e-03, batch 16): loss became nan"


def test_trial_line_of_a_complete_trial_gives_its_loss_and_mfu_when_known():
    record = RunRecord(fidelity_reached=65_536, facts=RunFacts(device="cuda", mfu=0.314))
    line = trial_line(_trial(TrialState.COMPLETE, 2.345678, record, lr=1e-2, batch=32, number=7))
    assert line == "trial 7 COMPLETE at 65,536 tokens, val loss 2.3457 (lr 1.00e-02, batch 32, MFU 31.4%)"
    without_mfu = trial_line(_trial(TrialState.PRUNED, 3.0, RunRecord(fidelity_reached=1024), number=1))
    assert without_mfu == "trial 1 PRUNED at 1,024 tokens, val loss 3.0000 (lr 3.00e-03, batch 16)"


def test_base_table_ranks_trials_with_a_value_complete_first_and_keeps_the_top():
    study = optuna.create_study(study_name="s/base")
    for number, (state, value) in enumerate([(TrialState.COMPLETE, 3.0), (TrialState.PRUNED, 1.0),
                                             (TrialState.COMPLETE, 2.0), (TrialState.FAIL, None),
                                             (TrialState.COMPLETE, 4.0)]):
        study.add_trial(_trial(state, value, RunRecord(fidelity_reached=100 * (number + 1)), number=number))
    table = base_table(study, top=3)
    assert table.row_count == 3
    assert list(table.columns[0].cells) == ["2", "0", "4"]  # complete ones by loss; the pruned one after
    assert list(table.columns[4].cells) == ["300", "100", "500"]
    assert base_table(study).row_count == 4  # the failed trial has no value
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    assert "5 trials (3 complete, 1 pruned, 1 fail)" in console.file.getvalue()
