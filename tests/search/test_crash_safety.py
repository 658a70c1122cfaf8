"""SIGKILL of the driver at any point, then the same command again: the record stays true.

Each test runs the whole pipeline in a child process (a custom task, in process, tiny) that a
fault-injection hook (``HPOGROW_CRASH_AT``, :mod:`hpogrow._crash`) kills at a named point, or
that the test kills at random times, and then runs the same command to its end. Afterwards:
no trial RUNNING or WAITING, every trial under its true role, no COMPLETE trial lost, no
configuration run twice, and the pipeline's result is there.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest

TrialState = optuna.trial.TrialState
ROOT = Path(__file__).resolve().parents[2]  # the repository: the driver imports tests.search.test_pipeline
STUDY = "wave-regression-w16"

_DRIVER = textwrap.dedent("""
    import sys
    sys.path[:0] = [{root!r}]
    import optuna, io
    from rich.console import Console
    from tests.search import test_pipeline
    from hpogrow.search import SearchConfig
    from hpogrow.search.pipeline import run_pipeline
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = SearchConfig(base_width=16, trials=3, tokens_per_param=16, workdir={workdir!r}, space={space!r},
                          evaluations=4, scheduler="none", device="cpu", executor="local", seeds={seeds},
                          bases={bases})
    run_pipeline(test_pipeline.WaveRegression(), config, console=Console(file=io.StringIO()))
    print("PIPELINE DONE")
""")


def _driver(tmp_path: Path, seeds: int = 1, bases: int = 1) -> list[str]:
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 3.0e-2, log: true}\nbatch_size: {powers_of_two: [32, 64]}\n")
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(root=str(ROOT), workdir=str(tmp_path / "work"), space=str(space), seeds=seeds,
                                     bases=bases))
    return [sys.executable, str(script)]


def _studies(tmp_path: Path) -> list[optuna.Study]:
    url = f"sqlite:///{tmp_path / 'work' / 'hpogrow.db'}"
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(url)]
    except Exception:
        return []
    return [optuna.load_study(study_name=name, storage=url) for name in sorted(names)]


def _complete(tmp_path: Path) -> dict[tuple[str, int], dict]:
    return {(study.study_name, t.number): t.params for study in _studies(tmp_path)
            for t in study.get_trials(states=(TrialState.COMPLETE,))}


def _check_record(tmp_path: Path, complete_before: dict) -> None:
    studies = {study.study_name: study for study in _studies(tmp_path)}
    base, targets = studies[f"{STUDY}/base"], [s for name, s in studies.items() if "/target-" in name]
    for study in studies.values():
        assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING)), study.study_name
    assert all(t.user_attrs.get("role") == "base" for t in base.trials)
    counted = [t for t in base.trials if not t.user_attrs.get("abandoned")]
    assert len(counted) == 3  # as asked: abandoned trials are replaced, not counted
    params = [tuple(sorted(t.params.items())) for t in counted]
    assert len(params) == len(set(params))  # no configuration ran twice
    assert len(targets) == 1
    target = targets[0]
    assert all(t.user_attrs.get("role") in ("scratch", "warmstart") for t in target.trials if not t.user_attrs.get("abandoned"))
    finished = sorted(t.user_attrs["role"] for t in target.get_trials(states=(TrialState.COMPLETE,)))
    assert finished == ["scratch", "warmstart"]  # each run completed once, none twice
    for (name, number), trial_params in complete_before.items():  # no COMPLETE trial lost or changed
        trial = studies[name].trials[number]
        assert trial.state == TrialState.COMPLETE and trial.params == trial_params
    for trial in (t for s in studies.values() for t in s.trials if t.state == TrialState.FAIL):
        assert trial.user_attrs.get("abandoned") and trial.user_attrs["fail_reason"].startswith("driver process died")


@pytest.mark.slow
def test_kill_at_each_named_point_then_rerun(tmp_path):
    """The same command killed at one point after another (each run continues the study the
    previous one left), then run to its end."""
    command = _driver(tmp_path)
    complete_before: dict = {}
    for point in ("base-after-ask",        # asked, driver not recorded yet
                  "before-tell@2",         # a base trial trained, its attributes written, not told
                  "after-growth",          # the grown checkpoint written, no target trial started yet
                  "target-after-enqueue",  # the scratch trial enqueued (WAITING), not asked
                  "target-after-ask@2",    # scratch running, the warmstart asked
                  "between-target-runs"):  # scratch COMPLETE, warmstart still running
        killed = subprocess.run(command, env={**os.environ, "HPOGROW_CRASH_AT": point}, capture_output=True,
                                text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        left = [t for s in _studies(tmp_path) for t in s.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        assert bool(left) == (point != "after-growth"), f"the kill at {point} left {len(left)} trials to reconcile"
        now = _complete(tmp_path)
        assert complete_before.items() <= now.items()  # a COMPLETE trial is never lost or changed
        complete_before = now
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "PIPELINE DONE" in rerun.stdout, rerun.stderr[-2000:]
    _check_record(tmp_path, complete_before)
    reasons = {t.user_attrs["fail_reason"] for s in _studies(tmp_path) for t in s.trials if t.state == TrialState.FAIL}
    assert reasons == {"driver process died", "driver process died before it recorded itself",
                       "driver process died before the trial started"}


@pytest.mark.slow
def test_ten_kills_at_random_times_then_a_full_run(tmp_path):
    command = _driver(tmp_path)
    draw = random.Random(11)
    complete_before: dict = {}
    for _ in range(10):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(draw.uniform(1.0, 8.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = _complete(tmp_path)
        assert complete_before.items() <= now.items()  # a COMPLETE trial is never lost or changed
        complete_before = now
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "PIPELINE DONE" in rerun.stdout, rerun.stderr[-2000:]
    _check_record(tmp_path, complete_before)


@pytest.mark.slow
def test_a_warmstart_run_killed_after_its_third_evaluation_continues_from_it(tmp_path):
    """The driver SIGKILLed right after the warmstart run's third evaluation (its partial
    checkpoint written there), then the same command again: the rerun adopts the trial and
    continues at that evaluation's tokens, and the curve and final loss are those of a run never
    interrupted (bit-identical on CPU), each point once."""
    command = _driver(tmp_path)
    # evaluations of target runs in this process, in order: scratch 0-4, then warmstart 0-4
    killed = subprocess.run(command, env={**os.environ, "HPOGROW_CRASH_AT": "target-evaluation@9"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    target = next(s for s in _studies(tmp_path) if "/target-" in s.study_name)
    (left,) = target.get_trials(states=(TrialState.RUNNING,))
    assert left.user_attrs["role"] == "warmstart" and len(left.intermediate_values) == 4  # steps 0..3 of 4
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "PIPELINE DONE" in rerun.stdout, rerun.stderr[-2000:]
    _check_record(tmp_path, {})
    target = next(s for s in _studies(tmp_path) if "/target-" in s.study_name)
    finished = {t.user_attrs["role"]: t for t in target.get_trials(states=(TrialState.COMPLETE,))}
    warmstart, scratch = finished["warmstart"], finished["scratch"]
    assert warmstart.number == left.number  # adopted, not started again
    steps = sorted(warmstart.intermediate_values)
    budget = warmstart.user_attrs["tokens"]
    assert steps == [*sorted(left.intermediate_values), budget]  # each point once, none lost
    assert warmstart.user_attrs["resumed_at_tokens"] == [steps[3]]  # retrained 1 of its 4 intervals
    assert scratch.user_attrs["resumed_at_tokens"] == []
    assert not list((tmp_path / "work" / "checkpoints").rglob("resume/*"))  # gone once their trials were told

    unbroken = tmp_path / "unbroken"
    unbroken.mkdir()
    again = subprocess.run(_driver(unbroken), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    reference = next(s for s in _studies(unbroken) if "/target-" in s.study_name)
    (whole,) = [t for t in reference.get_trials(states=(TrialState.COMPLETE,)) if t.user_attrs["role"] == "warmstart"]
    assert whole.intermediate_values == warmstart.intermediate_values
    assert whole.value == warmstart.value


@pytest.mark.slow
def test_a_replicate_base_killed_mid_run_continues_from_its_partial_checkpoint(tmp_path):
    """Two pairs on two bases: the driver SIGKILLed right after the replicate base's third
    evaluation (it trains first: pair 1 waits for it, pair 0's runs train when collected), then
    the same command again: the rerun adopts the replicate trial, continues it from that
    evaluation and ends with the curve of a run never interrupted; pair 1 grows it."""
    from dataclasses import replace

    from hpogrow.runs import run_scratch
    from hpogrow.search import SearchConfig
    from hpogrow.search.plan import make_plan
    from tests.search.test_pipeline import WaveRegression

    command = _driver(tmp_path, seeds=2, bases=2)
    killed = subprocess.run(command, env={**os.environ, "HPOGROW_CRASH_AT": "target-evaluation@3"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    target = next(s for s in _studies(tmp_path) if "/target-" in s.study_name)
    running = {t.user_attrs["role"]: t for t in target.get_trials(states=(TrialState.RUNNING,))}
    assert sorted(running) == ["replicate base", "scratch", "warmstart"]  # pair 0's runs submitted, not started
    left = running["replicate base"]
    assert len(left.intermediate_values) == 3  # steps 0..2 of 4
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "PIPELINE DONE" in rerun.stdout, rerun.stderr[-2000:]

    target = next(s for s in _studies(tmp_path) if "/target-" in s.study_name)
    assert not target.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    finished = target.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.user_attrs["role"] for t in finished) == ["replicate base", "scratch", "scratch", "warmstart",
                                                               "warmstart"]  # each run once, none twice
    (replicate,) = [t for t in finished if t.user_attrs["role"] == "replicate base"]
    assert replicate.number == left.number  # adopted, not started again
    steps = sorted(replicate.intermediate_values)
    assert steps[:3] == sorted(left.intermediate_values) and len(steps) == 5  # each point once, none lost
    assert replicate.user_attrs["resumed_at_tokens"] == [steps[2]]  # retrained 2 of its 4 intervals
    warmstarts = sorted((t for t in finished if t.user_attrs["role"] == "warmstart"), key=lambda t: t.user_attrs["pair"])
    assert warmstarts[1].user_attrs["grown_from"] == replicate.user_attrs["checkpoint"]
    assert all(t.user_attrs["speedup_bases"] == 2 for t in warmstarts)
    assert not list((tmp_path / "work" / "checkpoints").rglob("resume/*"))  # gone once their trials were told

    # the replicate's curve is that of the same run never interrupted (bit-identical on CPU)
    config = SearchConfig(base_width=16, trials=3, tokens_per_param=16, workdir=str(tmp_path / "work"),
                          space=str(tmp_path / "space.yaml"), evaluations=4, scheduler="none", device="cpu",
                          executor="local", seeds=2, bases=2)
    plan = make_plan(WaveRegression(), config)
    unbroken = run_scratch(WaveRegression(), 16, 16, replace(plan.template, **replicate.params, seed=1), 0, None)
    assert {e.tokens_seen: e.val_loss for e in unbroken.evaluations} == replicate.intermediate_values
