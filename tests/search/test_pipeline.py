"""The whole pipeline through the Python API, with a custom objective that is not a built-in."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from dataclasses import replace

import mup
import optuna
import pytest
import torch
from rich.console import Console
from torch import nn

import hpogrow
import hpogrow.storage
from hpogrow.errors import PipelineError
from hpogrow.record import RunRecord
from hpogrow.search import SearchConfig
from hpogrow.search.pipeline import run_pipeline

TrialState = optuna.trial.TrialState


class WaveRegression(hpogrow.Task):
    """A user's own objective: a tanh MLP regressing a 2-D wave, MSE loss."""

    name = "wave-regression"

    def build_model(self, width: int) -> nn.Module:
        return nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                             mup.MuReadout(width, 1))

    def batch(self, position: int, batch_size: int, device: torch.device):
        generator = torch.Generator().manual_seed(position)
        x = torch.rand(batch_size, 2, generator=generator) * 4 - 2
        y = torch.sin(2 * x[:, :1]) * torch.cos(x[:, 1:])
        return x.to(device), y.to(device)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(model(x), y)


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("learning_rate: {low: 1.0e-3, high: 1.0e+30, log: true}\nbatch_size: {powers_of_two: [32, 64]}\n")
    return str(path)


def _config(tmp_path, space_file, trials: int, seeds: int = 1, bases: int = 1) -> SearchConfig:
    return SearchConfig(base_width=16, trials=trials, tokens_per_param=16, workdir=str(tmp_path / "work"),
                        space=space_file, evaluations=4, scheduler="none", device="cpu", executor="local", seeds=seeds,
                        bases=bases)


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _enqueue(config: SearchConfig, *learning_rates: float) -> optuna.Study:
    storage = hpogrow.storage.open_storage(config.storage_url)
    study = optuna.create_study(study_name="wave-regression-w16/base", storage=storage, load_if_exists=True)
    for learning_rate in learning_rates:
        study.enqueue_trial({"learning_rate": learning_rate, "batch_size": 32})
    return study


def test_custom_objective_pipeline_records_base_warmstart_and_scratch(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=3)
    _enqueue(config, 1e-2, 3e-2, 1e-1)
    result = run_pipeline(WaveRegression(), config, console=_quiet())

    base = optuna.load_study(study_name="wave-regression-w16/base", storage=config.storage_url)
    assert [t.state for t in base.trials] == [TrialState.COMPLETE] * 3
    assert all(len(t.intermediate_values) == 5 for t in base.trials)  # initial + 4 evaluations
    assert all(t.user_attrs["role"] == "base" and t.user_attrs["width"] == 16 for t in base.trials)
    winner = min(base.trials, key=lambda t: t.value)
    assert result.winner.number == winner.number

    target = optuna.load_study(study_name=f"wave-regression-w16/target-w{result.plan.growth.target_width}",
                               storage=config.storage_url)
    roles = {t.user_attrs["role"]: t for t in target.trials}
    assert set(roles) == {"warmstart", "scratch"} and all(t.state == TrialState.COMPLETE for t in target.trials)
    warm, scratch = roles["warmstart"], roles["scratch"]
    assert warm.params == scratch.params == winner.params  # μTransfer: same LR and batch size
    lineage = RunRecord.of(warm).lineage
    assert lineage.grown_from_trial == f"wave-regression-w16/base#{winner.number}"
    assert lineage.grown_from == winner.user_attrs["checkpoint"]
    assert lineage.grow_factor == 2.0 and lineage.param_ratio == pytest.approx(2.0, rel=0.15)  # asked, achieved
    assert lineage.shrink == 0.4
    for trial in (warm, scratch):
        assert trial.user_attrs["n_params"] > winner.user_attrs["n_params"]
        assert trial.user_attrs["tokens"] == scratch.user_attrs["tokens"] > 0
        assert trial.user_attrs["flops"] == 6 * trial.user_attrs["compute_params"] * trial.user_attrs["tokens"]
    for key in ("speedup_tokens", "speedup_flops", "speedup_tokens_with_base", "speedup_flops_with_base"):
        assert key in warm.user_attrs
    # both target runs start where the base stopped in the data stream
    assert warm.user_attrs["data_position"] == scratch.user_attrs["data_position"] > winner.user_attrs["data_position"]
    assert (tmp_path / "work" / "plots").exists() and target.user_attrs["plot"].endswith(".png")


def test_diverging_trial_is_failed_and_the_study_goes_on(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=3)
    _enqueue(config, 1e30, 1e-2, 3e-2)
    run_pipeline(WaveRegression(), config, console=_quiet())
    base = optuna.load_study(study_name="wave-regression-w16/base", storage=config.storage_url)
    states = [t.state for t in base.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "learning rate is probably too high" in base.trials[0].user_attrs["fail_reason"]


def test_rerun_continues_the_study(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=2)
    _enqueue(config, 1e-2, 3e-2, 1e-1, 3e-3)  # the third goes to the orphan, the fourth to the rerun
    first = run_pipeline(WaveRegression(), config, console=_quiet())

    # a driver killed mid-trial leaves a RUNNING trial behind
    study = optuna.load_study(study_name="wave-regression-w16/base", storage=config.storage_url)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = study.ask()
    orphan.set_user_attr("driver", f"{socket.gethostname()}:{dead.stdout.strip()}")

    second = run_pipeline(WaveRegression(), _config(tmp_path, space_file, trials=4), console=_quiet())
    base = optuna.load_study(study_name="wave-regression-w16/base", storage=config.storage_url)
    assert len(base.trials) == 5  # 2 kept + the orphan (abandoned, not counted) + 2 new: not started over
    assert base.trials[orphan.number].state == TrialState.FAIL
    assert base.trials[orphan.number].user_attrs["fail_reason"] == "driver process died"
    assert base.trials[orphan.number].user_attrs["abandoned"] is True
    assert not base.get_trials(states=(TrialState.RUNNING,))
    counted = [t for t in base.trials if not t.user_attrs.get("abandoned")]
    params = [tuple(sorted(t.params.items())) for t in counted]
    assert len(params) == len(set(params)) == 4  # 4 trials as asked; no configuration ran twice
    target = optuna.load_study(study_name=f"wave-regression-w16/target-w{first.plan.growth.target_width}",
                               storage=config.storage_url)
    runs = [t for t in target.trials if t.user_attrs["base_trial"] == second.winner.number]
    assert sorted(t.user_attrs["role"] for t in runs) == ["scratch", "warmstart"]  # reused or run once


def test_continued_study_draws_new_configurations(tmp_path):
    # the same seeded sampler in a new process would draw the first run's start-up configurations again
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 3.0e-2, log: true}\nbatch_size: {powers_of_two: [32, 64]}\n")
    for trials in (1, 2):
        run_pipeline(WaveRegression(), _config(tmp_path, str(space), trials=trials), console=_quiet())
    base = optuna.load_study(study_name="wave-regression-w16/base", storage=_config(tmp_path, str(space), 1).storage_url)
    assert len(base.trials) == 2
    assert base.trials[0].params != base.trials[1].params


def test_study_with_other_settings_is_refused(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=1)
    _enqueue(config, 1e-2)
    run_pipeline(WaveRegression(), config, console=_quiet())
    with pytest.raises(hpogrow.UsageError, match="exists with other settings"):
        run_pipeline(WaveRegression(), SearchConfig(**{**config.__dict__, "tokens_per_param": 80}), console=_quiet())


def test_no_full_budget_trial_is_a_clear_error(tmp_path, space_file):
    config = _config(tmp_path, space_file, trials=1)
    _enqueue(config, 1e30)
    with pytest.raises(PipelineError, match="no base trial .* ran its full budget"):
        run_pipeline(WaveRegression(), config, console=_quiet())


def test_successive_warmstarting_accounts_every_stage(tmp_path, space_file):
    config = SearchConfig(**{**_config(tmp_path, space_file, trials=1).__dict__, "stages": 2})
    _enqueue(config, 1e-2)
    result = run_pipeline(WaveRegression(), config, console=_quiet())
    widths = [step.target_width for step in result.plan.stages]
    assert len(widths) == 2 and 16 < widths[0] < widths[1]
    target = optuna.load_study(study_name=result.plan.target_study, storage=config.storage_url)
    roles = {t.user_attrs["role"]: t for t in target.trials}
    assert set(roles) == {"scratch", "stage 1", "warmstart"}
    stage, warm, scratch = roles["stage 1"], roles["warmstart"], roles["scratch"]
    assert stage.user_attrs["width"] == widths[0] and warm.user_attrs["width"] == scratch.user_attrs["width"] == widths[1]
    assert warm.user_attrs["stage_widths"] == widths
    base_tokens = result.winner.user_attrs["tokens"] + stage.user_attrs["tokens"]
    assert warm.user_attrs["base_tokens"] == base_tokens  # every earlier stage counts as the warmstart's cost
    assert warm.user_attrs["base_flops"] == result.winner.user_attrs["flops"] + stage.user_attrs["flops"]
    # each stage continues the token stream: fresh tokens all the way; scratch reads the final stage's tokens
    assert result.winner.user_attrs["data_position"] < stage.user_attrs["data_position"] < warm.user_attrs["data_position"]
    assert scratch.user_attrs["data_position"] == warm.user_attrs["data_position"]


def test_depth_growth_with_carried_optimizer(tmp_path):
    config = SearchConfig(base_width=16, trials=1, tokens_per_param=16, workdir=str(tmp_path / "work"), evaluations=4,
                          scheduler="none", device="cpu", grow_op="szp+zero-block", carry_optimizer=True,
                          executor="local", seeds=1, bases=1)
    result = run_pipeline(hpogrow.FourierTask(depth=2, modes=64), config, console=_quiet())
    assert result.plan.target_study.endswith(f"-d{result.plan.growth.target_depth}") and result.plan.growth.target_depth == 3
    warm = result.warmstart.user_attrs
    assert warm["grow_op"] == "szp+zero-block" and warm["target_depth"] == 3 and warm["carry_optimizer"] is True
    grown = result.plan.checkpoint_dir / result.plan.target_study.split("/")[1] / "pair0" / "grown"
    assert (grown / "optimizer.pt").exists()
    assert hpogrow.read_checkpoint(grown).config["task"]["depth"] == 3


def _file_hashes(folder) -> dict:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_two_storages_sharing_a_workdir_never_share_a_checkpoint(tmp_path, space_file):
    first = SearchConfig(**{**_config(tmp_path, space_file, trials=1).__dict__, "storage": f"sqlite:///{tmp_path}/a.db"})
    second = SearchConfig(**{**first.__dict__, "storage": f"sqlite:///{tmp_path}/b.db"})
    for config in (first, second):
        _enqueue(config, 1e-2)
    result_a = run_pipeline(WaveRegression(), first, console=_quiet())
    before = _file_hashes(result_a.plan.checkpoint_dir)
    result_b = run_pipeline(WaveRegression(), second, console=_quiet())
    assert result_a.plan.checkpoint_dir != result_b.plan.checkpoint_dir
    assert result_a.plan.checkpoint_dir.parent.parent == result_b.plan.checkpoint_dir.parent.parent  # same workdir
    assert _file_hashes(result_a.plan.checkpoint_dir) == before  # byte-identical after the second search
    owner = hpogrow.read_checkpoint(result_a.winner.user_attrs["checkpoint"]).config["owner"]
    assert owner == {"storage_key": first.storage_key, "study": "wave-regression-w16/base",
                     "trial": result_a.winner.number}


def test_growth_refuses_a_checkpoint_its_trial_did_not_write(tmp_path, space_file):
    import shutil

    config = _config(tmp_path, space_file, trials=2)
    _enqueue(config, 1e-2, 3e-2)
    result = run_pipeline(WaveRegression(), config, console=_quiet())
    base = optuna.load_study(study_name="wave-regression-w16/base", storage=config.storage_url)
    winner, other = result.winner, next(t for t in base.trials if t.number != result.winner.number)
    # another writer replaced the winner's folder with another trial's weights
    shutil.rmtree(winner.user_attrs["checkpoint"])
    shutil.copytree(other.user_attrs["checkpoint"], winner.user_attrs["checkpoint"])
    with pytest.raises(hpogrow.UsageError, match=f"belongs to .*trial {other.number}, not to trial {winner.number}"):
        run_pipeline(WaveRegression(), SearchConfig(**{**config.__dict__, "grow_factor": 3.0}), console=_quiet())


def test_seeds_give_pairs_on_fresh_tokens_and_a_speedup_with_its_interval(tmp_path, space_file):
    """``seeds=2``: two warmstart/scratch pairs, each with its own seed, growth perturbation and
    tokens (pair 1 reads after pair 0), on two bases (the defaults); the speedup over both, its
    95% interval over bases, the eval set's standard error beside the loss gap, and the dashboard
    notes; a rerun reuses every run, the replicate base included."""
    from optuna_dashboard import get_note

    config = _config(tmp_path, space_file, trials=1, seeds=2, bases=2)
    _enqueue(config, 1e-2)
    result = run_pipeline(WaveRegression(), config, console=_quiet())
    assert [t.user_attrs["pair"] for t in result.warmstarts] == [t.user_attrs["pair"] for t in result.scratches] == [0, 1]
    assert [t.user_attrs["seed"] for t in result.warmstarts] == [0, 1]
    segment = result.plan.supply.budget.pair_examples
    start = result.winner.user_attrs["data_position"]
    for pair, (warm, scratch) in enumerate(zip(result.warmstarts, result.scratches)):
        assert warm.params == scratch.params == result.winner.params
        # the pair's two runs read the same tokens, in a segment of its own: [start + pair·S, start + (pair + 1)·S)
        end = warm.user_attrs["data_position"]
        assert scratch.user_attrs["data_position"] == end and start + pair * segment < end <= start + (pair + 1) * segment
    grown = [hpogrow.read_checkpoint(result.plan.checkpoint_dir / result.plan.target_study.split("/")[1] / f"pair{k}" /
                                     "grown") for k in (0, 1)]
    assert [g.config["seed"] for g in grown] == [0, 1]  # each pair's growth perturbation has its own seed

    attrs = result.warmstart.user_attrs
    for measure in ("tokens", "flops", "tokens_with_base", "flops_with_base"):
        value, (low, high) = attrs[f"speedup_{measure}"], attrs[f"speedup_{measure}_ci"]
        assert 0 < low < value < high
        per_pair = attrs[f"speedup_{measure}_per_seed"]
        assert len(per_pair) == 2 and value == pytest.approx((per_pair[0] * per_pair[1]) ** 0.5)  # geometric mean
    assert attrs["seeds"] == 2 and 0 <= attrs["seeds_reached"] <= 2
    assert attrs["speedup_seed"] == [0, 1] and len(attrs["speedup_censoring"]) == 2  # every pair counted
    assert result.warmstarts[1].user_attrs["speedup_tokens_ci"] == attrs["speedup_tokens_ci"]
    # the eval set's standard error, beside the gap it has to resolve
    assert all(t.user_attrs["val_loss_se"] > 0 for t in (*result.warmstarts, *result.scratches))
    gaps = [w.value - s.value for w, s in zip(result.warmstarts, result.scratches)]
    assert attrs["final_loss_gap_per_pair"] == pytest.approx(gaps, abs=1e-6)  # re-scored from the checkpoints
    assert attrs["final_loss_gap"] == pytest.approx(sum(gaps) / 2, abs=1e-6)
    # paired on the same units: far below the error of one loss (what independent errors would give)
    assert 0 < attrs["eval_gap_se"] < max(t.user_attrs["val_loss_se"] for t in result.warmstarts)
    assert attrs["gap_in_eval_se"] == pytest.approx(abs(attrs["final_loss_gap"]) / attrs["eval_gap_se"])

    target = optuna.load_study(study_name=result.plan.target_study, storage=config.storage_url)
    assert target.user_attrs["speedup"]["speedup_tokens_ci"] == attrs["speedup_tokens_ci"]
    note = get_note(target)
    low, high = attrs["speedup_tokens_ci"]
    assert f"{attrs['speedup_tokens']:.2f}× ({low:.2f}–{high:.2f})" in note and "warmstart" in note
    for trial in target.trials:
        which = "base " if trial.user_attrs["role"] == "replicate base" else "pair "
        assert get_note(optuna.Trial(target, trial._trial_id)).startswith(f"## {trial.user_attrs['role']} ({which}")
    assert "FLOPs with the base's cost" in note and "Tokens-to-match at several loss targets" in note

    # the pairs grew two independently trained bases: the winner and its configuration retrained
    (replicate,) = [t for t in target.trials if t.user_attrs["role"] == "replicate base"]
    assert replicate.state == TrialState.COMPLETE and replicate.params == result.winner.params
    assert replicate.user_attrs["seed"] == 1 and replicate.user_attrs["base_replicate"] == 1
    assert replicate.user_attrs["width"] == 16 and replicate.user_attrs["tokens"] == result.winner.user_attrs["tokens"]
    assert replicate.user_attrs["data_position"] == result.winner.user_attrs["data_position"]  # the base's tokens
    assert replicate.intermediate_values.keys() == result.winner.intermediate_values.keys()  # at the same points
    assert replicate.intermediate_values != result.winner.intermediate_values  # but another model
    lineages = [RunRecord.of(t).lineage for t in result.warmstarts]
    assert [lineage.grown_from_trial for lineage in lineages] == [
        f"wave-regression-w16/base#{result.winner.number}", f"{result.plan.target_study}#{replicate.number}"]
    assert lineages[1].grown_from == replicate.user_attrs["checkpoint"] != result.winner.user_attrs["checkpoint"]
    assert [t.user_attrs["base_replicate"] for t in result.warmstarts] == [0, 1]
    assert lineages[1].base_flops == replicate.user_attrs["flops"]  # each pair's cost is its own base's
    assert attrs["speedup_bases"] == 2 and attrs["speedup_base_per_seed"] == [0, 1]
    assert target.user_attrs["speedup"]["speedup_bases"] == 2
    assert attrs["speedup_summary"].startswith("FLOPs with the base's cost: ") and "on 2 bases" in attrs["speedup_summary"]
    # tokens-to-match at several loss targets, the last one scratch's final loss
    assert attrs["speedup_match_fraction"] == [0.25, 0.5, 0.75, 1.0]
    assert attrs["speedup_match_tokens"][-1] == pytest.approx(attrs["speedup_tokens"])
    assert attrs["speedup_match_flops_with_base"][-1] == pytest.approx(attrs["speedup_flops_with_base"])
    assert attrs["speedup_match_target_loss"] == sorted(attrs["speedup_match_target_loss"], reverse=True)
    assert all(len(interval) == 2 for interval in attrs["speedup_match_tokens_ci"])

    # a rerun reuses every run: no new trial, the same replicate base
    before = len(target.trials)
    console = Console(file=io.StringIO(), width=200)
    again = run_pipeline(WaveRegression(), config, console=console)
    assert len(optuna.load_study(study_name=result.plan.target_study, storage=config.storage_url).trials) == before
    assert f"replicate base (base 1): reusing finished trial {replicate.number}" in console.file.getvalue()
    assert again.speedup.speedup_tokens_ci == pytest.approx(attrs["speedup_tokens_ci"])


def test_a_replicate_base_is_the_winners_run_with_another_seed(tmp_path, space_file):
    """With the winner's own seed, the replicate base's run reproduces the winner's base trial
    (curve and final loss, bit for bit on CPU): the same configuration, budget, evaluation points
    and tokens, trained the way every base trial is."""
    from functools import partial
    from dataclasses import replace

    from hpogrow.runs import run_scratch
    from hpogrow.search.plan import make_plan

    config = _config(tmp_path, space_file, trials=1)
    _enqueue(config, 1e-2)
    result = run_pipeline(WaveRegression(), config, console=_quiet())
    plan = make_plan(WaveRegression(), config)
    same_seed = replace(plan.template, learning_rate=1e-2, batch_size=32, seed=config.seed)
    outcome = partial(run_scratch, WaveRegression(), 16, 16, same_seed, 0, None)(None, None)
    assert {e.tokens_seen: e.val_loss for e in outcome.evaluations} == result.winner.intermediate_values


def test_one_seed_gives_the_same_figures_twice(tmp_path, space_file):
    """Reproducible: the same configuration in two fresh workdirs (in process, one torch thread)
    records the same base curves and the same speedup, bit for bit."""
    results = []
    for run in ("a", "b"):
        config = _config(tmp_path / run, space_file, trials=2)
        _enqueue(config, 1e-2, 3e-2)
        results.append(run_pipeline(WaveRegression(), config, console=_quiet()))
    first, second = results
    assert first.winner.intermediate_values == second.winner.intermediate_values
    for key in ("speedup_tokens", "speedup_flops_with_base", "final_loss_gap", "val_loss_se"):
        assert first.warmstart.user_attrs[key] == second.warmstart.user_attrs[key]
    assert first.scratch.intermediate_values == second.scratch.intermediate_values


class _ThreadsSeen(WaveRegression):
    """Records torch's thread count at every evaluation of a run (the plan's throughput probe, which
    trains a few steps before the runs start, does not evaluate)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def evaluate(self, model: nn.Module, batches) -> float:
        self.threads.add(torch.get_num_threads())
        return super().evaluate(model, batches)


@pytest.mark.parametrize("cpus", [1, 2])
def test_in_process_runs_train_on_their_cpu_share_of_threads(tmp_path, space_file, cpus):
    """--executor local gives every run --cpus-per-trial torch threads, as Ray gives a trial its
    CPUs, not torch's default of one per core (many times slower beside another busy process)."""
    task, previous = _ThreadsSeen(), torch.get_num_threads()
    torch.set_num_threads(3)  # a default that is neither share
    try:
        config = replace(_config(tmp_path, space_file, trials=1), tokens_per_param=4, cpus_per_trial=cpus)
        run_pipeline(task, config, console=_quiet())
        assert task.threads == {cpus}  # the base trial and the target pair alike
        assert torch.get_num_threads() == 3  # restored
    finally:
        torch.set_num_threads(previous)
