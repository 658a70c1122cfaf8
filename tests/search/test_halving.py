"""Synchronous successive halving: the design and rule (hpogrow/search/halving.py) and the driver
that runs it over a study, in process and on Ray (hpogrow/search/executors/halving_run.py)."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from hpogrow import record
from hpogrow.checkpoint import read_checkpoint
from hpogrow.errors import UsageError
from hpogrow.runs import BaseTrial
from hpogrow.search import SearchConfig
from hpogrow.search.executors.local import LocalExecutor
from hpogrow.search.halving import Halving, survivors
from hpogrow.search.plan import make_executor_for, make_plan
from hpogrow.search.schedule import Schedule
from hpogrow.search.space import SearchSpace
from hpogrow.tasks import FourierTask, LanguageTask
from hpogrow.train import TrainConfig

TrialState = optuna.trial.TrialState
SPACE = SearchSpace(learning_rate_low=1e-3, learning_rate_high=3e-2, learning_rate_log=True, batch_sizes=(8, 16))
HALVING = Halving(2, 2, first_rung=1.0)  # brackets of 4: 4 → 2 → 1, geometric rungs


def test_the_rule_keeps_the_best_share_and_never_a_diverged_trial():
    assert survivors({0: 2.0, 1: 1.0, 2: 3.0, 3: 1.5}, 2) == [1, 3]
    assert survivors({0: 2.0, 1: math.nan, 2: math.inf, 3: 1.5}, 2) == [3, 0]  # the share counts every entrant
    assert survivors({0: math.nan, 1: math.nan}, 2) == []
    assert survivors({5: 1.0, 6: 1.0, 7: 0.5}, 4) == [7]  # at least one


def test_the_design_spends_what_the_arithmetic_says():
    schedule = Schedule(1600, (100, 400, 1600))
    assert Halving(4, 2).spend(16, schedule) == (16 * 100 + 4 * 300 + 1 * 1200) / (16 * 1600)  # 0.156
    assert Halving(4, 2).spend(8, schedule) == (8 * 100 + 2 * 300 + 1 * 1200) / (8 * 1600)  # 8 → 2 → 1
    assert Halving(4, 2).brackets(20) == [16, 4] and HALVING.brackets(6) == [4, 2]
    with pytest.raises(UsageError, match="--reduction-factor 1"):
        Halving(1)


def test_the_default_search_halves_on_the_replays_choice(tmp_path):
    """``hpogrow search --base-width 64 --trials 16`` by its plan: rungs at B/18, B/3 and B in
    brackets of 9 (9 → 3 → 1, then 7 → 2 → 1), 0.226× the tokens of 16 full-budget trials: the
    design the replay chose, within the 0.25× goal (bench/RESULTS.md, halving_replay)."""
    for executor in ("local", "ray"):
        config = SearchConfig(base_width=64, trials=16, executor=executor, workdir=str(tmp_path), device="cpu")
        chosen = make_executor_for(config)
        plan = make_plan(LanguageTask(), config, chosen)
        design = chosen.design(plan.schedule)
        assert design["name"] == "sha" and design["bracket"] == 9 and design["first_rung"] == 0.5
        assert [plan.schedule.budget / rung for rung in plan.schedule.rungs] == [18, 3, 1]
        spend = (9 + 3 * 5 + 1 * 12 + 7 + 2 * 5 + 1 * 12) / 18 / 16  # in eighteenths of B
        assert chosen.spend(16, plan.schedule) == pytest.approx(spend) and spend <= 0.25


def test_the_first_rung_moves_to_its_share_in_whole_steps_and_a_lone_rung_stays():
    assert Halving(3, 2, first_rung=1.0).schedule(140_000, 4096).rungs == (16384, 49152, 147456)  # 4, 12, 36 steps
    assert Halving(3, 2, first_rung=0.5).schedule(140_000, 4096).rungs == (8192, 49152, 147456)
    assert Halving(3, 2, first_rung=0.1).schedule(140_000, 4096).rungs == (4096, 49152, 147456)  # at least a step
    assert Halving(3, 1, first_rung=0.5).schedule(140_000, 4096).rungs == (45056, 135168)  # the only cut stays
    with pytest.raises(ValueError, match="share"):
        Halving(3, 2, first_rung=0)


def test_a_search_halves_on_the_plans_rungs_when_its_rounded_budget_would_allow_more(tmp_path):
    """1 token/parameter at width 16: the asked budget leaves no rung below it, while the budget
    rounded up to whole steps would allow one that no trial evaluates at. The plan's rungs travel
    with the base trial, so the search halves on those."""
    config = SearchConfig(base_width=16, trials=2, tokens_per_param=1, evaluations=2, device="cpu", executor="local",
                          workdir=str(tmp_path))
    plan = make_plan(FourierTask(depth=1), config)
    executor = make_executor_for(config)
    derived = executor.schedule(plan.base_tokens, max(plan.space.batch_sizes))
    assert derived.rungs != plan.schedule.rungs  # the trap
    study = _study(tmp_path)
    executor.run(study, plan.space, 2, plan.base_trial())
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) >= 1
    assert all(set(t.intermediate_values) <= {0, *plan.template.eval_tokens} for t in study.trials)


def _base_trial(tmp_path: Path, cls: type[BaseTrial] = BaseTrial) -> BaseTrial:
    schedule = HALVING.schedule(256, 16)  # 64 → 128 → 256 tokens
    assert schedule.rungs == (64, 128, 256)
    template = TrainConfig(1.0, 16, tokens=256, evaluations=4, eval_tokens=(32, *schedule.rungs), device="cpu")
    return cls(FourierTask(depth=1, modes=64, eval_examples=64), 16, template, tmp_path / "trials")


def _study(tmp_path: Path) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name="s/base", storage=f"sqlite:///{tmp_path / 'hpogrow.db'}",
                               sampler=optuna.samplers.RandomSampler(seed=0))


def _check_halving(study: optuna.Study, brackets: list[list[int]], rungs: tuple[int, ...]) -> None:
    """Each bracket kept the best half at every complete rung; the rest stopped exactly there."""
    trials = study.trials
    assert not study.get_trials(states=(TrialState.RUNNING,))
    for bracket in brackets:
        alive = [n for n in bracket if trials[n].state != TrialState.FAIL]
        entered = len(bracket)
        for rung in rungs[:-1]:
            at = {n: trials[n].intermediate_values[rung] for n in alive}
            kept = sorted(at, key=lambda n: (at[n], n))[:max(1, entered // 2)]
            for number in set(alive) - set(kept):
                trial = trials[number]
                assert trial.state == TrialState.PRUNED and max(trial.intermediate_values) == rung
                assert record.RunRecord.of(trial).fidelity_reached == rung and trial.value == at[number]
            alive, entered = kept, len(kept)
        (winner,) = alive
        assert trials[winner].state == TrialState.COMPLETE
        assert record.RunRecord.of(trials[winner]).fidelity_reached == rungs[-1]


def test_in_process_halving_promotes_only_the_best_of_each_complete_rung(tmp_path):
    base_trial = _base_trial(tmp_path)
    schedule = HALVING.schedule(256, 16)
    study = _study(tmp_path)
    LocalExecutor(halving=HALVING).run(study, SPACE, 6, base_trial)  # brackets of 4, then 2
    _check_halving(study, [[0, 1, 2, 3], [4, 5]], schedule.rungs)
    spent = sum(record.RunRecord.of(t).fidelity_reached for t in study.trials)
    assert spent == HALVING.spend(6, schedule) * 6 * schedule.budget  # (4·64 + 2·64 + 1·128) + (2·64 + 1·192)
    assert not list((tmp_path / "trials" / "rungs").iterdir())  # rung checkpoints go with their trials
    # a promoted trial continued from its rung checkpoints and ends where an unbroken run ends
    for winner in study.get_trials(states=(TrialState.COMPLETE,)):
        run = record.RunRecord.of(winner)
        assert tuple(run.facts.resumed_at_tokens) == schedule.rungs[:-1]
        assert read_checkpoint(run.checkpoint).state.tokens_seen == schedule.budget
        alone = replace(base_trial, checkpoint_dir=tmp_path / "alone").run(winner.params, 0)
        assert alone.final_loss == pytest.approx(winner.value, rel=1e-5)
        assert alone.state.data_position == run.data_position


def test_a_diverged_trial_fails_and_the_rung_goes_on_without_it(tmp_path):
    base_trial = _base_trial(tmp_path)
    study = _study(tmp_path)
    for learning_rate in (1e30, 1e-2, 3e-3, 1e-3):
        study.enqueue_trial({"learning_rate": learning_rate, "batch_size": 16})
    space = replace(SPACE, learning_rate_high=1e30)
    LocalExecutor(halving=HALVING).run(study, space, 4, base_trial)
    diverged = study.trials[0]
    assert diverged.state == TrialState.FAIL and record.is_diverged(diverged)
    _check_halving(study, [[0, 1, 2, 3]], HALVING.schedule(256, 16).rungs)
    assert len(study.get_trials(states=(TrialState.PRUNED,))) == 2  # 2 of the 4 went on (the share counts it)


class _FailsOnSecondRung(BaseTrial):
    def run(self, params, number, report=None, *, resume=None, **options):
        if resume is not None:
            raise RuntimeError("disk full")
        return super().run(params, number, report, resume=resume, **options)


def test_an_error_fails_every_open_trial_of_the_bracket_and_is_raised(tmp_path):
    study = _study(tmp_path)
    with pytest.raises(RuntimeError, match="disk full"):
        LocalExecutor(halving=HALVING).run(study, SPACE, 4, _base_trial(tmp_path, _FailsOnSecondRung))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) == 2 and states.count(TrialState.FAIL) == 2  # cut at rung 1; the rest
    assert all(t.user_attrs["fail_reason"] == "RuntimeError: disk full" for t in study.trials
               if t.state == TrialState.FAIL)


def test_halving_on_ray_records_what_it_did_in_process(tmp_path):
    """The same search as Ray tasks: the same trials stopped at the same rungs, the same losses,
    each trial with the Ray node and task that ran it; the pipeline records the design."""
    from tests.search.test_pipeline import WaveRegression
    from hpogrow.search.executors.ray import RayExecutor
    from hpogrow.search.pipeline import run_pipeline

    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\nbatch_size: {powers_of_two: [32, 64]}\n")
    studies = {}
    for name in ("ray", "local"):
        config = SearchConfig(base_width=16, trials=4, tokens_per_param=16, workdir=str(tmp_path / name),
                              space=str(space), evaluations=4, device="cpu", executor=name, seeds=1)
        executor = (RayExecutor(halving=HALVING, storage_path=str(tmp_path / "ray-storage")) if name == "ray"
                    else LocalExecutor(halving=HALVING))
        result = run_pipeline(WaveRegression(), config, executor=executor, console=Console(file=io.StringIO()))
        studies[name] = optuna.load_study(study_name=result.plan.base_study, storage=config.storage_url)
        design = record.read_scheduler(studies[name])
        assert design["name"] == "sha" and design["reduction_factor"] == 2 and design["bracket"] == 4
        assert design["rungs"] == list(result.plan.schedule.rungs) and len(design["rungs"]) == 3
        _check_halving(studies[name], [[0, 1, 2, 3]], result.plan.schedule.rungs)
    on_ray, here = studies["ray"].trials, studies["local"].trials
    assert [t.state for t in on_ray] == [t.state for t in here]
    assert [t.params for t in on_ray] == [t.params for t in here]
    for a, b in zip(on_ray, here):
        assert a.intermediate_values == pytest.approx(b.intermediate_values, rel=1e-5)
        assert a.user_attrs["node"] and a.user_attrs["ray_task_id"] and "node" not in b.user_attrs
