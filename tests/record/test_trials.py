"""The Optuna record: trial claims shared by concurrent drivers, abandoned trials, states."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import optuna
import pytest

from hpogrow import record
from hpogrow.coordination import FileCoordinator
from hpogrow.runs import RunSummary
from hpogrow.search.space import load_space
from hpogrow.storage import open_storage
from hpogrow.train import Evaluation

TrialState = optuna.trial.TrialState

_DRIVER = textwrap.dedent("""
    import sys, time
    import optuna
    from hpogrow import record
    from hpogrow.coordination import coordinator_for
    from hpogrow.search.space import load_space
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, total = sys.argv[1], int(sys.argv[2])
    coordinator = coordinator_for(url, "/tmp")
    coordinator.register()
    from hpogrow.storage import open_storage
    study = optuna.load_study(study_name="s/base", storage=open_storage(url))
    while (trial := record.claim_base_trial(study, load_space(None, "mlp").distributions(), total,
                                            record.RunRecord(role=record.BASE), coordinator)) is not None:
        time.sleep(0.25)  # a trial's work: long enough for every driver to start on a busy machine
        study.tell(trial, trial.params["learning_rate"])
""")


@pytest.mark.parametrize("backend", ["sqlite", "journal", "postgresql"])
def test_concurrent_drivers_claim_exactly_the_trials_asked_for(tmp_path, backend, request):
    url = {"sqlite": f"sqlite:///{tmp_path}/study.db", "journal": f"journal:{tmp_path}/study.log"}.get(backend) \
        or request.getfixturevalue("postgres_url")
    url_for_optuna = open_storage(url)
    optuna.create_study(study_name="s/base", storage=url_for_optuna)
    drivers = [subprocess.Popen([sys.executable, "-c", _DRIVER, url, "12"]) for _ in range(4)]
    assert [driver.wait(timeout=300) for driver in drivers] == [0] * 4
    study = optuna.load_study(study_name="s/base", storage=open_storage(url))
    assert len(study.trials) == 12 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({t.user_attrs["driver"] for t in study.trials}) >= 2  # shared, not one driver doing all
    assert len({t.params["learning_rate"] for t in study.trials}) == 12  # no configuration twice


def test_a_driverless_running_trial_is_abandoned_under_the_claim_lock(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="s/base", storage=url)
    coordinator = FileCoordinator(tmp_path / "locks")
    orphan = study.ask()  # as a driver killed between ask and recording itself leaves it
    trial = record.claim_base_trial(study, load_space(None, "mlp").distributions(), 2, record.RunRecord(role=record.BASE), coordinator)
    left = study.trials[orphan.number]
    assert left.state == TrialState.FAIL and left.user_attrs["abandoned"] is True and left.user_attrs["role"] == "base"
    assert not record.counts_towards_total(left, coordinator)
    assert trial.number == orphan.number + 1 and study.trials[trial.number].user_attrs["driver"] == coordinator.driver


def test_states_and_attributes_of_finished_runs():
    study = optuna.create_study()
    summary = RunSummary(n_params=10, compute_params=8, tokens=64, data_position=4, initial_loss=2.0,
                         final_loss=1.0, tokens_per_second=5.0, checkpoint="/c", extra={"device": "cpu"})
    complete, pruned, diverged = (study.ask() for _ in range(3))
    for trial in (complete, pruned):
        for tokens, loss in ((0, 2.0), (32, 1.5), (64, 1.0), (64, 1.0)):
            record.report(trial, Evaluation(tokens // 16, tokens, loss, None))
    assert record.finish(study, complete, summary, complete=True) == TrialState.COMPLETE
    assert record.finish(study, pruned, summary, complete=False) == TrialState.PRUNED
    record.fail(study, diverged, "loss became nan", fidelity_reached=32, diverged=True)
    done, stopped, failed = study.trials
    assert done.value == 1.0 and done.intermediate_values == {0: 2.0, 32: 1.5, 64: 1.0}
    assert done.user_attrs["flops"] == 6 * 8 * 64 and done.user_attrs["fidelity_reached"] == 64
    assert done.user_attrs["checkpoint"] == "/c" and done.user_attrs["device"] == "cpu"
    assert stopped.state == TrialState.PRUNED and stopped.value == 1.0
    assert failed.state == TrialState.FAIL and failed.user_attrs == {
        "fidelity_reached": 32, "diverged": True, "fail_reason": "loss became nan"}
    assert os.environ.get("HPOGROW_CRASH_AT") is None
