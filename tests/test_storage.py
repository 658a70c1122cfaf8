"""Optuna storages on real backends: SQLite, Optuna's journal file, and a PostgreSQL server the
test session starts (``postgres_server`` in conftest): open, create and continue a study, the
signature check, two writer processes, a whole search, and one-line errors for storages that
cannot be used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

import hpogrow
from tests.postgres_server import free_port
from hpogrow.cli import main
from hpogrow.errors import UsageError
from hpogrow.storage import load_or_create_study, open_storage

TrialState = optuna.trial.TrialState
SIGNATURE = {"task": "mlp", "base_width": 16}


@pytest.fixture(params=["sqlite", "journal", "postgresql"])
def storage_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies' / 'hpogrow.db'}"
    if request.param == "journal":
        return f"journal:{tmp_path / 'studies' / 'hpogrow.log'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["journal", "postgresql"])
def shared_storage_url(request, tmp_path) -> str:
    """The storages meant for several writer processes."""
    if request.param == "journal":
        return f"journal:{tmp_path / 'hpogrow.log'}"
    return request.getfixturevalue("postgres_url")


def test_a_study_is_created_then_continued_with_its_trials(storage_url):
    study = load_or_create_study(open_storage(storage_url), "mlp-w16/base", SIGNATURE)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)

    again = load_or_create_study(open_storage(storage_url), "mlp-w16/base", SIGNATURE)  # a new connection
    assert again.user_attrs["signature"] == SIGNATURE
    assert [t.params for t in again.trials] == [t.params for t in study.trials]
    assert all(t.state == TrialState.COMPLETE for t in again.trials)


def test_a_study_made_with_other_settings_is_refused(storage_url):
    load_or_create_study(open_storage(storage_url), "mlp-w16/base", SIGNATURE)
    with pytest.raises(UsageError, match=r"exists with other settings \(base_width\)"):
        load_or_create_study(open_storage(storage_url), "mlp-w16/base", {**SIGNATURE, "base_width": 32})


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import optuna
    from hpogrow.storage import load_or_create_study, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, barrier, trials, name = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    (barrier / name).touch()
    while len(list(barrier.iterdir())) < 2:  # both writers open the new storage at the same moment
        time.sleep(0.01)
    study = load_or_create_study(open_storage(url), "shared/base", {"task": "x"},
                                 optuna.samplers.TPESampler(n_startup_trials=3))
    for _ in range(trials):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(-1, 1)})
        trial.set_user_attr("writer", name)
        study.tell(trial, trial.params["x"] ** 2)
    print("WROTE", trials)
""")


@pytest.mark.slow
def test_two_processes_ask_and_tell_into_one_study(shared_storage_url, tmp_path):
    """Both open the new storage at once (on PostgreSQL they race to create Optuna's tables),
    then ask and tell 15 trials each."""
    script, barrier, trials = tmp_path / "writer.py", tmp_path / "barrier", 15
    script.write_text(_WRITER)
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(hpogrow.__file__).parents[1])}  # the hpogrow under test
    writers = [subprocess.Popen([sys.executable, str(script), shared_storage_url, str(barrier), str(trials), name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for name in ("a", "b")]
    outputs = [writer.communicate(timeout=120) for writer in writers]
    for writer, (out, err) in zip(writers, outputs):
        assert writer.returncode == 0 and f"WROTE {trials}" in out, err[-2000:]
        assert "Traceback" not in err and "Error" not in err, err[-2000:]
    study = optuna.load_study(study_name="shared/base", storage=open_storage(shared_storage_url))
    assert len(study.trials) == 2 * trials
    assert sorted(t.number for t in study.trials) == list(range(2 * trials))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sorted(t.user_attrs["writer"] for t in study.trials) == ["a"] * trials + ["b"] * trials


@pytest.mark.slow
def test_search_end_to_end_on_a_shared_storage(shared_storage_url, tmp_path, capsys):
    workdir = tmp_path / "work"
    flags = ["--storage", shared_storage_url, "--workdir", str(workdir)]
    status = main(["search", "--task", "mlp", "--base-width", "16", "--depth", "1", "--trials", "2",
                   "--tokens-per-param", "1", "--evaluations", "2", "--device", "cpu", "--executor", "local", *flags])
    assert status == 0, capsys.readouterr().err[-2000:]
    storage = open_storage(shared_storage_url)
    base = optuna.load_study(study_name="mlp-w16/base", storage=storage)
    assert len(base.trials) == 2 and not base.get_trials(states=(TrialState.RUNNING,))
    target = optuna.load_study(study_name="mlp-w16/target-w24", storage=storage)
    roles = sorted(t.user_attrs["role"] for t in target.trials)
    # two pairs (the default --seeds 2) on two bases (--bases 2): the winner and one replicate base
    assert roles == ["replicate base", "scratch", "scratch", "warmstart", "warmstart"]
    assert all(t.state == TrialState.COMPLETE for t in target.trials)
    assert not (workdir / "hpogrow.db").exists()  # the storage asked for, not the default one
    capsys.readouterr()
    assert main(["report", "--study", "mlp-w16", *flags]) == 0
    assert "mlp-w16/base: 2 trials" in capsys.readouterr().out


def _usage_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("url, message", [
    (f"postgresql://postgres@127.0.0.1:{free_port()}/hpogrow", "cannot connect (Connection refused); check that the server runs"),
    ("postgresql+pg8000://postgres@127.0.0.1/hpogrow", "its database driver is not installed (no module 'pg8000')"),
    ("mysql://user:secret@127.0.0.1:1/hpogrow", "--storage mysql://user:***@127.0.0.1:1/hpogrow: its database driver"),
    ("no-such-scheme", "not a storage URL"),
])
def test_unusable_storage_is_one_line_and_writes_nothing(url, message, tmp_path, capsys):
    workdir = tmp_path / "work"
    err = _usage_error(["search", "--task", "mlp", "--base-width", "16", "--evaluations", "2", "--storage", url,
                        "--workdir", str(workdir)], capsys)
    assert message in err and "secret" not in err
    assert not workdir.exists()


def test_missing_database_on_a_running_server_is_named(postgres_server, tmp_path, capsys):
    url = postgres_server.url("no_such_database")
    err = _usage_error(["report", "--study", "mlp-w16", "--storage", url], capsys)
    assert 'database "no_such_database" does not exist on that server; create it first' in err


def test_postgresql_urls_use_the_installed_driver():
    """``postgresql://`` is SQLAlchemy's psycopg (3) dialect, and that driver comes with hpogrow."""
    from sqlalchemy.engine import make_url

    dialect = make_url("postgresql://user@host/database").get_dialect()
    assert dialect.driver == "psycopg"
    dialect.import_dbapi()  # raises ModuleNotFoundError without the driver


def test_journal_folder_that_cannot_be_made_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot create its folder"):
        open_storage(f"journal:{Path('/proc/no/such/folder/hpogrow.log')}")
