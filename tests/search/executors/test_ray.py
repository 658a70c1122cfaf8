"""Base trials on a real local Ray runtime: the Optuna record ASHA, HyperBand, NaN and a killed
driver leave behind, and joining a separately started cluster."""

from __future__ import annotations

import io
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import optuna
import pytest
import ray
import ray.cloudpickle
import torch
from rich.console import Console

import hpogrow.storage
from hpogrow.checkpoint import read_checkpoint
from hpogrow.errors import UsageError
from hpogrow.coordination import driver_id
from hpogrow.search.executors.ray import RayExecutor
from hpogrow.search.executors.ray_bridge import OptunaBridge
from hpogrow.search import SearchConfig
from hpogrow.search.pipeline import best_full_budget_trial, run_pipeline
from hpogrow.search.plan import make_plan
from hpogrow.cli.progress import RichDisplay
from hpogrow.runs import run_scratch
from hpogrow.search.schedule import rung_schedule
from hpogrow.search.space import load_space
from hpogrow.train import TrainConfig
from tests.search import test_pipeline
from tests.search.test_pipeline import WaveRegression

TrialState = optuna.trial.TrialState
STUDY = "wave-regression-w16/base"
ROOT = Path(__file__).resolve().parents[3]  # the repository: the driver imports tests.search.test_pipeline
# Ray workers cannot import this test folder: ship the custom task's class by value.
ray.cloudpickle.register_pickle_by_value(test_pipeline)


@pytest.fixture(scope="module", autouse=True)
def ray_runtime():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture
def space_file(tmp_path) -> str:
    path = tmp_path / "space.yaml"
    path.write_text("learning_rate: {low: 1.0e-3, high: 1.0, log: true}\nbatch_size: {powers_of_two: [32, 64]}\n")
    return str(path)


def _config(tmp_path, space: str, trials: int, **overrides) -> SearchConfig:
    return SearchConfig(base_width=16, trials=trials, tokens_per_param=16, workdir=str(tmp_path / "work"), space=space,
                        evaluations=8, scheduler="none", device="cpu", **{"executor": "ray", **overrides})


def _run(config: SearchConfig, scheduler: str):
    executor = RayExecutor(scheduler=scheduler, storage_path=str(Path(config.workdir) / "ray"))
    result = run_pipeline(WaveRegression(), config, executor=executor, console=Console(file=io.StringIO(), width=120))
    return result, optuna.load_study(study_name=STUDY, storage=hpogrow.storage.open_storage(config.storage_url))


def _check_record(study: optuna.Study, budget: int) -> None:
    """What every Ray search must leave: nothing RUNNING, true states, curves and attributes."""
    assert not study.get_trials(states=(TrialState.RUNNING,))
    for trial in study.trials:
        assert trial.user_attrs["driver"] == driver_id() and trial.user_attrs["ray_trial_id"]
        assert trial.user_attrs["node"]
        assert trial.user_attrs["role"] == "base" and trial.user_attrs["width"] == 16
        if trial.state == TrialState.FAIL:
            continue
        steps = sorted(trial.intermediate_values)
        assert steps[0] == 0 and trial.user_attrs["fidelity_reached"] == steps[-1] == trial.user_attrs["tokens"]
        assert trial.value == trial.intermediate_values[steps[-1]]  # the last value before a stop is kept
        assert trial.user_attrs["flops"] == 6 * trial.user_attrs["compute_params"] * steps[-1]
        if trial.state == TrialState.COMPLETE:
            assert steps[-1] == budget and len(steps) >= 8 + 1
            assert read_checkpoint(trial.user_attrs["checkpoint"]).state.tokens_seen == steps[-1]
        else:
            assert trial.state == TrialState.PRUNED and steps[-1] < budget and "checkpoint" not in trial.user_attrs


def test_rung_schedule_is_the_schedulers_own(tmp_path):
    from ray.tune.schedulers import AsyncHyperBandScheduler

    schedule = rung_schedule(160_000, 4096, "asha", 2)  # 2.5 → 20 tokens/param at 20, whole steps of 4,096
    assert schedule.rungs == (20_480, 40_960, 81_920, 163_840) and schedule.budget == 163_840
    assert rung_schedule(160_000, 4096, "hyperband", 3).rungs == (4096 * 1, 4096 * 3, 4096 * 9, 4096 * 27)
    assert rung_schedule(20_000, 4096, "asha", 2).rungs == (4096, 8192, 16_384)  # the smallest rung is one step at least
    assert rung_schedule(160_000, 4096, "none").rungs == (159_744,)
    for factor, rungs in ((2, 3), (3, 3), (10, 3), (3, 5)):  # ASHA counts rungs with a float log
        executor = RayExecutor(scheduler="asha", reduction_factor=factor, max_rungs=rungs)
        schedule = executor.schedule(factor ** rungs * 1000, 10)
        milestones = sorted(m for m, _ in executor._scheduler(rungs)._brackets[0]._rungs)
        assert [round(m * schedule.rungs[0]) for m in milestones] == list(schedule.rungs)


def test_study_that_maximizes_is_refused():
    study = optuna.create_study(direction="maximize")
    space = load_space(None, "mlp")
    with pytest.raises(UsageError, match="maximizes"):
        OptunaBridge(study, space, 1)
    with pytest.raises(UsageError, match="minimizes"):
        OptunaBridge(optuna.create_study(), space, 1, mode="max")


def test_asha_prunes_early_stopped_trials_with_their_curves(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=8)
    result, study = _run(config, "asha")
    _check_record(study, result.plan.base_tokens)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) >= 1 and states.count(TrialState.COMPLETE) >= 1
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert all(len(t.intermediate_values) >= 2 for t in pruned)  # stopped at a rung, not before the first
    assert result.winner.number == best_full_budget_trial(study).number
    assert not list((tmp_path / "work" / "ray").glob("*/*/checkpoint_*"))  # retention: rung checkpoints dropped
    # the target runs were Ray tasks too, recorded in the driver with their whole curves
    for run in (result.warmstart, result.scratch):
        assert run.state == TrialState.COMPLETE and run.user_attrs["ray_task_id"]
        assert len(run.intermediate_values) == 8 + 1
        assert run.user_attrs["tokens"] == max(run.intermediate_values) >= result.plan.target_tokens
    assert "speedup_tokens" in result.warmstart.user_attrs


def test_hyperband_full_length_winner_is_complete_and_grown(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=8)
    result, study = _run(config, "hyperband")
    _check_record(study, result.plan.base_tokens)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert result.winner.state == TrialState.COMPLETE
    assert result.winner.number == min(complete, key=lambda t: t.value).number
    assert result.warmstart.user_attrs["grown_from_trial"] == f"{STUDY}#{result.winner.number}"
    assert any(t.state == TrialState.PRUNED for t in study.trials)  # paused at a rung, then stopped
    # promoted trials continued from their rung checkpoint, not from step 0 …
    promoted = [t for t in complete if t.user_attrs["resumed_at_tokens"]]
    assert promoted
    # … and ended exactly where an uninterrupted run with the same hyperparameters ends
    trial = promoted[0]
    plan = make_plan(WaveRegression(), replace(config, scheduler="hyperband"))
    alone = replace(plan.base_trial(), checkpoint_dir=tmp_path / "alone").run(trial.params, 0)
    assert alone.state.tokens_seen == trial.user_attrs["tokens"]
    assert alone.state.data_position == trial.user_attrs["data_position"]
    assert alone.final_loss == pytest.approx(trial.value, rel=1e-3)


def test_nan_trial_fails_and_the_search_finishes(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 1.0e+30, log: true}\nbatch_size: {powers_of_two: [32, 64]}\n")
    config = _config(tmp_path, str(space), trials=3)
    study = optuna.create_study(study_name=STUDY, storage=hpogrow.storage.open_storage(config.storage_url))
    for learning_rate in (1e30, 1e-2, 3e-2):
        study.enqueue_trial({"learning_rate": learning_rate, "batch_size": 32})
    result, study = _run(config, "asha")
    _check_record(study, result.plan.base_tokens)
    diverged = study.trials[0]
    assert diverged.state == TrialState.FAIL
    assert "learning rate is probably too high" in diverged.user_attrs["fail_reason"]
    assert diverged.user_attrs["fidelity_reached"] > 0
    assert result.winner.number in (1, 2)


_DRIVER = textwrap.dedent("""
    import sys
    sys.path[:0] = [{root!r}]
    import optuna, ray.cloudpickle
    from tests.search import test_pipeline
    from hpogrow.search.executors.ray import RayExecutor
    from hpogrow.search import SearchConfig
    from hpogrow.search.pipeline import run_pipeline
    ray.cloudpickle.register_pickle_by_value(test_pipeline)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = SearchConfig(**{config!r})
    run_pipeline(test_pipeline.WaveRegression(), config,
                 executor=RayExecutor(scheduler={scheduler!r}, num_cpus=2, storage_path=config.workdir + "/ray"))
    print("PIPELINE DONE")
""")


def _finished(storage_url: str) -> int:
    try:
        study = optuna.load_study(study_name=STUDY, storage=hpogrow.storage.open_storage(storage_url))
    except KeyError:
        return 0
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


@pytest.mark.parametrize("scheduler", ["asha", "sha"])
def test_killed_driver_rerun_keeps_finished_trials_and_runs_nothing_twice(tmp_path, space_file, scheduler):
    """Under sha the kill falls while the bracket's survivors wait at a rung: they are RUNNING."""
    config = replace(_config(tmp_path, space_file, trials=6), tokens_per_param=120, evaluations=4, seeds=1, bases=1)
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(root=str(ROOT), config=config.__dict__, scheduler=scheduler))
    command = [sys.executable, str(script)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    first = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _finished(config.storage_url) < 1 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert first.poll() is None, "the search ended before it could be killed"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        _kill_group(first.pid)  # whatever of that driver's local Ray runtime is left
    before = optuna.load_study(study_name=STUDY, storage=hpogrow.storage.open_storage(config.storage_url))
    kept = {t.number: t.state for t in before.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    running = [t.number for t in before.trials if t.state == TrialState.RUNNING]
    assert running  # the kill left trials RUNNING for the rerun to reconcile

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "PIPELINE DONE" in second.stdout, second.stderr[-2000:]
    study = optuna.load_study(study_name=STUDY, storage=hpogrow.storage.open_storage(config.storage_url))
    assert not study.get_trials(states=(TrialState.RUNNING,))
    counted = [t for t in study.trials if not t.user_attrs.get("abandoned")]
    assert len(counted) == 6 and len(study.trials) == 6 + len(running)  # abandoned ones replaced: not started over
    assert all(study.trials[n].state == state for n, state in kept.items())
    for number in running:
        assert study.trials[number].state == TrialState.FAIL and study.trials[number].user_attrs["abandoned"]
        # "driver process died", or "... before it recorded itself" when the kill fell between ask and that write
        assert study.trials[number].user_attrs["fail_reason"].startswith("driver process died")
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(params) == len(set(params))  # no configuration ran twice
    target = optuna.load_study(study_name="wave-regression-w16/target-w24", storage=hpogrow.storage.open_storage(config.storage_url))
    assert sorted(t.user_attrs["role"] for t in target.trials if t.state == TrialState.COMPLETE) == ["scratch", "warmstart"]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the session we started for that process, nothing else
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_search_joins_a_separately_started_cluster(tmp_path):
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="hpray", dir="/tmp")  # short: Ray's socket paths have a length limit
    log = tmp_path / "ray-start.log"
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}", "--include-dashboard=false",
                             "--disable-usage-stats"], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text() and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert head.poll() is None and "Ray runtime started" in log.read_text(), log.read_text()[-2000:]
        workdir = tmp_path / "work"
        search = subprocess.run(
            [sys.executable, "-m", "hpogrow", "search", "--task", "mlp", "--base-width", "16", "--depth", "1",
             "--trials", "3", "--tokens-per-param", "4", "--evaluations", "2", "--device", "cpu",
             "--executor", "ray", "--scheduler", "asha", "--ray-address", f"127.0.0.1:{port}", "--workdir", str(workdir),
             "--ray-storage", str(tmp_path / "ray-results")],
            cwd=ROOT, env={**os.environ, "RAY_ADDRESS": ""}, capture_output=True, text=True, timeout=240)
        assert search.returncode == 0, search.stderr[-2000:]
        assert "rungs" in search.stdout and "Ray Tune, asha" in search.stdout
        study = optuna.load_study(study_name="mlp-w16/base", storage=f"sqlite:///{workdir}/hpogrow.db")
        assert len(study.trials) == 3 and not study.get_trials(states=(TrialState.RUNNING,))
        assert any(t.state == TrialState.COMPLETE for t in study.trials)
        assert list((tmp_path / "ray-results").glob("mlp-w16-base-*/*/result.json"))  # Ray's results where asked
        assert not (workdir / "ray").exists()
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(head.pid)
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fractional_gpus_per_trial(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=4, device="auto", gpus_per_trial=0.5)
    executor = RayExecutor(scheduler="asha", gpus_per_trial=0.5, storage_path=str(tmp_path / "ray"))
    assert executor._concurrency(ray) == min(2, int(ray.cluster_resources().get("GPU", 0) / 0.5))
    result = run_pipeline(WaveRegression(), config, executor=executor, console=Console(file=io.StringIO()))
    study = optuna.load_study(study_name=STUDY, storage=config.storage_url)
    _check_record(study, result.plan.base_tokens)
    assert all(t.user_attrs["device"].startswith("cuda") for t in study.trials if t.state != TrialState.FAIL)
    assert math.isfinite(result.warmstart.value)


@pytest.mark.parametrize("argv, message", [
    (["--executor", "local", "--scheduler", "hyperband"], "--scheduler hyperband: with --executor local use sha"),
    (["--executor", "ray", "--scheduler", "median"], "--scheduler median: with --executor ray use sha"),
    (["--executor", "local", "--max-concurrent", "2"], "--max-concurrent applies to Ray trials; drop --executor local"),
    (["--reduction-factor", "1"], "must be an integer of at least 2"),
    (["--gpus-per-trial", "-1"], "must be 0 or more"),
    (["--executor", "ray", "--cpus-per-trial", "0"], "must be positive"),
    (["--gpus-per-trial", "0.5", "--device", "cpu"], "use --device auto or cuda"),
])
def test_ray_flags_are_checked_before_anything_starts(argv, message, tmp_path, capsys):
    from hpogrow.cli import main

    status = main(["search", *argv, "--workdir", str(tmp_path / "work")])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists()


def test_target_runs_on_ray_report_each_evaluation_while_they_train():
    """Warmstart and scratch train in Ray workers; each evaluation reaches the driver's report
    (the record's live curve) and bar as it happens, so the bar ends at the run's tokens and last
    loss, and the first evaluations arrive while the run is still training."""
    import ray

    executor = RayExecutor()
    config = TrainConfig(learning_rate=0.01, batch_size=32, tokens=32 * 1500, evaluations=4, device="cpu")  # seconds
    received: dict[int, list[tuple[int, bool]]] = {16: [], 32: []}
    jobs = []

    def report(width: int, evaluation) -> None:
        running = not ray.wait([jobs[[16, 32].index(width)].ref], timeout=0)[0]
        received[width].append((evaluation.tokens_seen, running))

    with executor.session(), RichDisplay(Console(file=io.StringIO())) as display:
        for width in (16, 32):
            jobs.append(executor.submit(partial(run_scratch, WaveRegression(), width, 16, config, 0, None),
                                        f"scratch w{width}", config.tokens, display, partial(report, width)))
        outcomes = [job.result() for job in jobs]
        for job, outcome, width in zip(jobs, outcomes, (16, 32)):
            bar = display._progress.tasks[job.bar._task]
            assert bar.completed == outcome.state.tokens_seen == config.tokens
            assert bar.fields["loss"] == outcome.final_loss
            tokens = [e.tokens_seen for e in outcome.evaluations]
            assert {t for t, _ in received[width]} == set(tokens)
            assert received[width][0] == (0, True)  # the first evaluation came while the run trained
    assert executor._feed.queue is None  # the session took its queue down


def test_local_and_ray_give_the_same_speedup_for_one_configuration(tmp_path, space_file):
    """One configuration (the same enqueued base trial, seeds 0 and 1) through ``--executor local``
    and through Ray: the target runs are the same computations in other processes, so the
    speedups' 95% intervals overlap; here, with one torch thread in both, they agree exactly."""
    results = {}
    for executor in ("local", "ray"):
        config = _config(tmp_path / executor, space_file, trials=1, seeds=2, executor=executor)
        test_pipeline._enqueue(config, 1e-2)
        if executor == "ray":
            results[executor], _ = _run(config, "none")
        else:
            results[executor] = run_pipeline(WaveRegression(), config, console=Console(file=io.StringIO(), width=120))
    local, remote = (results[name].warmstart.user_attrs for name in ("local", "ray"))
    (low_local, high_local), (low_ray, high_ray) = local["speedup_tokens_ci"], remote["speedup_tokens_ci"]
    assert low_local <= high_ray and low_ray <= high_local  # the intervals overlap
    assert local["speedup_tokens_per_seed"] == pytest.approx(remote["speedup_tokens_per_seed"], rel=1e-6)


class _DiesOnce:
    """A target run whose Ray worker is SIGKILLed right after its ``after``-th evaluation, the
    first time only (``marker`` remembers it): the worker dies as in a crash, and Ray retries."""

    def __init__(self, run, after: int, marker: Path) -> None:
        self.run, self.after, self.marker = run, after, marker

    def __call__(self, report, on_tokens):
        seen = []

        def dying(evaluation):
            report(evaluation)
            seen.append(evaluation)
            if len(seen) == self.after and not self.marker.exists():
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)

        return self.run(dying, on_tokens)


def test_a_target_run_whose_ray_worker_dies_is_retried_from_its_partial_checkpoint(tmp_path):
    from hpogrow.resume import ResumePoint
    from hpogrow.runs import CheckpointOwner

    config = TrainConfig(learning_rate=0.01, batch_size=32, tokens=32 * 40, evaluations=4, device="cpu")
    owner = CheckpointOwner("k", "s/target", 0)

    def scratch(folder: Path):
        return partial(run_scratch, WaveRegression(), 32, 16, config, 0, folder / "final", owner=owner,
                       resume=ResumePoint(folder / "resume"))

    received = []
    executor = RayExecutor()
    with executor.session():
        job = executor.submit(_DiesOnce(scratch(tmp_path / "ray"), 3, tmp_path / "died"), "scratch", config.tokens,
                              report=received.append)
        outcome = job.result()
    unbroken = scratch(tmp_path / "here")(None, None)
    assert (tmp_path / "died").exists()  # the first worker was killed
    assert outcome.extra["resumed_at_tokens"] == (unbroken.evaluations[2].tokens_seen,)
    assert [e.tokens_seen for e in outcome.evaluations] == [e.tokens_seen for e in unbroken.evaluations]
    assert [e.val_loss for e in outcome.evaluations] == pytest.approx([e.val_loss for e in unbroken.evaluations],
                                                                       rel=1e-6)
    assert {e.tokens_seen for e in received} == {e.tokens_seen for e in unbroken.evaluations}


def test_a_base_trial_whose_worker_dies_continues_from_its_last_rung_checkpoint(tmp_path, space_file):
    """A Ray worker SIGKILLed after its sixth evaluation (once: HPOGROW_CRASH_MARKER): Tune
    restores the trial from its last rung checkpoint in a new worker, and the Optuna trial is
    told its outcome after that, with ``resumed_at_tokens`` at the rung; nothing FAILs."""
    config = replace(_config(tmp_path, space_file, trials=2), evaluations=8, seeds=1, bases=1)
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(root=str(ROOT), config=config.__dict__, scheduler="asha"))
    marker = tmp_path / "worker-killed"
    env = {**os.environ, "RAY_ADDRESS": "", "HPOGROW_CRASH_AT": "base-evaluation@6", "HPOGROW_CRASH_MARKER": str(marker)}
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         start_new_session=True)
    assert run.returncode == 0 and "PIPELINE DONE" in run.stdout, run.stderr[-2000:]
    assert marker.exists()  # a worker died
    study = optuna.load_study(study_name=STUDY, storage=hpogrow.storage.open_storage(config.storage_url))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials), \
        [(t.number, t.state, t.user_attrs.get("fail_reason")) for t in study.trials]
    (resumed,) = [t for t in study.trials if t.user_attrs.get("resumed_at_tokens")]
    plan = make_plan(WaveRegression(), replace(config, scheduler="asha"))
    (at,) = resumed.user_attrs["resumed_at_tokens"]
    points = sorted(resumed.intermediate_values)
    assert at in plan.schedule.rungs[:-1] and at < points[5]  # the last rung before the sixth evaluation, not token 0
    reached = resumed.user_attrs["fidelity_reached"]
    assert points == [0, *(t for t in plan.template.eval_tokens if t <= reached)]  # no point lost


def test_a_driver_stopped_by_sigterm_during_the_target_runs_leaves_them_to_the_next_one(tmp_path, space_file):
    """SIGTERM (a scheduler's time limit, ``kill PID``) reaches a Ray driver as ``SystemExit``
    while it waits on a target run: that trial stays RUNNING instead of FAIL, and the same
    command again adopts both target trials and continues them from their partial checkpoints."""
    config = replace(_config(tmp_path, space_file, trials=2), tokens_per_param=60, evaluations=8, seeds=1, bases=1)
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(root=str(ROOT), config=config.__dict__, scheduler="asha"))
    command = [sys.executable, str(script)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    target_name = "wave-regression-w16/target-w24"
    first = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while first.poll() is None and time.monotonic() < deadline:
            try:
                target = optuna.load_study(study_name=target_name, storage=hpogrow.storage.open_storage(config.storage_url))
                if any(len(t.intermediate_values) >= 3 for t in target.get_trials(states=(TrialState.RUNNING,))):
                    break
            except KeyError:
                pass
            time.sleep(0.2)
        assert first.poll() is None, "the search ended before it could be stopped"
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    finally:
        _kill_group(first.pid)
    storage = hpogrow.storage.open_storage(config.storage_url)
    left = {t.user_attrs["role"]: t.number for t in optuna.load_study(study_name=target_name, storage=storage).trials
            if t.state == TrialState.RUNNING}
    assert sorted(left) == ["scratch", "warmstart"]  # neither was told FAIL

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "PIPELINE DONE" in second.stdout, second.stderr[-2000:]
    target = optuna.load_study(study_name=target_name, storage=storage)
    assert all(t.state == TrialState.COMPLETE for t in target.trials)
    finished = {t.user_attrs["role"]: t for t in target.trials}
    assert {role: t.number for role, t in finished.items()} == left  # adopted, not started again
    assert any(t.user_attrs["resumed_at_tokens"] for t in finished.values())
    for trial in finished.values():
        assert len(trial.intermediate_values) == 9  # each evaluation once (8 and the one before the first step)
