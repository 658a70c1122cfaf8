"""Several drivers, one study: the same ``hpogrow search`` command started twice at once against
one storage (Optuna's distributed pattern), as real processes.

They share the base search (``--trials`` is the study's total), never run a configuration twice,
and grow the winner and train the target pair exactly once; both print the same report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import hpogrow
from hpogrow import record
from hpogrow.storage import open_storage

TrialState = optuna.trial.TrialState
TRIALS = 4
STUDY = "mlp-w16"


@pytest.fixture(params=["postgresql", "journal"])
def shared_storage_url(request, tmp_path) -> str:
    if request.param == "journal":
        return f"journal:{tmp_path / 'studies' / 'hpogrow.log'}"
    return request.getfixturevalue("postgres_url")


def _search(url: str, workdir: Path) -> list[str]:
    """Tiny, but with target runs (grow factor 8) that outlast the 2 s a driver waiting for the
    other's base trials sleeps between looks: so the two drivers meet at the target lock. Trials
    one at a time (median pruner): successive halving claims a whole bracket per driver."""
    return [sys.executable, "-m", "hpogrow", "search", "--task", "mlp", "--base-width", "16", "--depth", "1",
            "--tokens-per-param", "2", "--evaluations", "4", "--executor", "local", "--scheduler", "median",
            "--device", "cpu",
            "--trials", str(TRIALS), "--grow-factor", "8", "--seeds", "1", "--bases", "1",  # one target pair: drivers, not seeds
            "--storage", url, "--workdir", str(workdir)]


def _report(stdout: str) -> str:
    """The final report: from the base study's table title (its last appearance) to the end."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip().startswith(f"{STUDY}/base:"))
    return "\n".join(lines[start:])


@pytest.mark.slow
def test_two_drivers_share_one_study_and_train_the_target_pair_once(shared_storage_url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(hpogrow.__file__).parents[1]), "OMP_NUM_THREADS": "1",
           "COLUMNS": "160"}
    drivers = [subprocess.Popen(_search(shared_storage_url, tmp_path / "work"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [driver.communicate(timeout=240) for driver in drivers]
    for driver, (out, err) in zip(drivers, outputs):
        assert driver.returncode == 0, f"{out[-2000:]}\n{err[-3000:]}"
        assert "Traceback" not in err, err[-3000:]

    storage = open_storage(shared_storage_url)
    base = optuna.load_study(study_name=f"{STUDY}/base", storage=storage)
    assert len(base.trials) == TRIALS  # the study's total, not per driver
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in base.trials)
    configurations = [(t.params["learning_rate"], t.params["batch_size"]) for t in base.trials]
    assert len(set(configurations)) == TRIALS  # no configuration run twice
    pids = {driver.pid for driver in drivers}
    base_drivers = {int(t.user_attrs["driver"].rsplit(":", 1)[1]) for t in base.trials}
    assert base_drivers == pids, "both drivers ran base trials"

    (target_name,) = set(optuna.get_all_study_names(storage)) - {base.study_name}
    target = optuna.load_study(study_name=target_name, storage=storage)
    assert sorted((t.user_attrs["role"], t.state) for t in target.trials) == \
        [("scratch", TrialState.COMPLETE), ("warmstart", TrialState.COMPLETE)]
    (target_driver,) = {int(t.user_attrs["driver"].rsplit(":", 1)[1]) for t in target.trials}
    winner = min(base.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    assert all(t.user_attrs["base_trial"] == winner.number for t in target.trials)

    reports = [_report(out) for out, _ in outputs]
    assert reports[0] == reports[1]
    assert f"{STUDY}/base#{winner.number}" in reports[0] and "speedup" in reports[0]
    # the other driver waited for the pair (or found it trained) and trained nothing itself
    reused = [driver.pid for driver, (out, _) in zip(drivers, outputs) if "reusing finished trial" in out]
    assert reused == [pid for pid in (driver.pid for driver in drivers) if pid != target_driver]


@pytest.mark.slow
def test_a_driver_killed_mid_search_leaves_its_trial_abandoned_and_the_other_finishes_the_total(postgres_url, tmp_path):
    """One driver dies by SIGKILL at its first tell (a base trial trained, not yet told; or its
    target pair, had the other driver claimed every base trial first): the other marks those
    trials FAIL (abandoned), runs a replacement so the study holds ``--trials`` counted trials, and
    trains the target pair."""
    env = {**os.environ, "PYTHONPATH": str(Path(hpogrow.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    command = _search(postgres_url, tmp_path / "work")
    doomed = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**env, "HPOGROW_CRASH_AT": "before-tell"})
    survivor = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = survivor.communicate(timeout=240)
    doomed.communicate(timeout=60)
    assert doomed.returncode == -9
    assert survivor.returncode == 0, f"{out[-2000:]}\n{err[-3000:]}"

    storage = open_storage(postgres_url)
    trials = [t for name in optuna.get_all_study_names(storage)
              for t in optuna.load_study(study_name=name, storage=storage).trials]
    abandoned = [t for t in trials if t.state == TrialState.FAIL]
    assert abandoned and all(record.RunRecord.of(t).abandoned is True for t in abandoned)
    assert all(t.user_attrs["driver"].endswith(f":{doomed.pid}") for t in abandoned)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    base = optuna.load_study(study_name=f"{STUDY}/base", storage=storage)
    assert len([t for t in base.trials if not record.RunRecord.of(t).abandoned]) == TRIALS  # replaced
    (target_name,) = set(optuna.get_all_study_names(storage)) - {base.study_name}
    target = optuna.load_study(study_name=target_name, storage=storage)
    finished = sorted(t.user_attrs["role"] for t in target.trials if t.state == TrialState.COMPLETE)
    assert finished == ["scratch", "warmstart"]
