"""hpogrow transfercheck: the μTransfer verdict, its record in Optuna, reuse, usage errors, the CLI."""

from __future__ import annotations

import math

import optuna
import optuna_dashboard
import pytest
import torch
from optuna.artifacts import get_all_artifact_meta
from rich.console import Console

from hpogrow.cli import main
from hpogrow.parametrize import build_model, build_standard_model
from hpogrow.storage import open_storage
from hpogrow.tasks import FourierTask
from hpogrow.train import TrainConfig, make_optimizer
from hpogrow.transfer import TransferConfig, TransferRun, judge, run_transfercheck

# Where SP's optimum truly moves at tiny sizes: widths 16 → 128 (×8), 200 steps of 64 examples.
# Checked on seeds 0-4, each alone: μP's optimum stays within one step (shifts -1…+1), SP's moves
# 2-3 steps down on every seed (bench/RESULTS.md). Three seeds: the drift's t-interval over two
# (t = 12.7) is too wide to decide even SP.
TINY_SWEEP = TransferConfig(widths=(16, 128), learning_rates=tuple(2.0**e for e in range(-10, -4)),
                            batch_size=64, tokens=64 * 200, seeds=3, evaluations=2)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The tiny sweep on the MLP task, recorded in a fresh SQLite storage."""
    workdir = tmp_path_factory.mktemp("transfer")
    task = FourierTask(depth=2, modes=256, eval_examples=512)
    config = TransferConfig(**{**TINY_SWEEP.__dict__, "workdir": str(workdir)})
    return task, config, run_transfercheck(task, config, Console(quiet=True))


@pytest.mark.slow
def test_mu_p_transfers_and_standard_parameterization_does_not(swept):
    _, _, result = swept
    mu_p, standard = result.verdicts["μP"], result.verdicts["SP"]
    assert abs(mu_p.shifts[-1]) <= 1
    assert standard.shifts[-1] <= -2  # wider SP wants a smaller learning rate
    assert standard.drift < -0.5 < mu_p.drift  # octaves of learning rate per doubling of width
    # seeds 0-2: SP's drifts -0.70, -1.01, -0.91, interval [-1.27, -0.48]; μP's -0.05, -0.09, +0.07, [-0.23, +0.19]
    assert standard.label == "fail" and standard.drift_interval[1] < -standard.max_drift
    assert mu_p.label == "pass" and -mu_p.max_drift < mu_p.drift_interval[0] < mu_p.drift_interval[1] < mu_p.max_drift
    assert result.passed


@pytest.mark.slow
def test_every_run_is_one_transfer_trial_with_its_attributes(swept):
    _, config, result = swept
    study = optuna.load_study(study_name="mlp-transfer", storage=open_storage(result.storage))
    trials = study.get_trials()
    assert len(trials) == len(result.runs) == 2 * 2 * 6 * 3
    assert {trial.user_attrs["role"] for trial in trials} == {"transfer"}
    combinations = {(t.user_attrs["parameterization"], t.user_attrs["width"], t.user_attrs["learning_rate"],
                     t.user_attrs["seed"]) for t in trials}
    assert len(combinations) == len(trials)
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs["tokens"] == config.tokens and attrs["batch_size"] == config.batch_size
        assert attrs["diverged"] is (trial.state == optuna.trial.TrialState.FAIL)
        assert attrs["final_loss"] == trial.value
        assert max(trial.intermediate_values) == config.tokens  # equal tokens at every width
        assert attrs["base_width"] == (16 if attrs["parameterization"] == "μP" else attrs["width"])
    summary = study.user_attrs["transfer"]
    assert summary["verdicts"]["SP"]["verdict"] == "fail" and not summary["verdicts"]["SP"]["transfers"]
    assert summary["verdicts"]["μP"]["verdict"] == result.verdicts["μP"].label and summary["max_drift"] == 0.25
    assert summary["verdicts"]["SP"]["drift_interval"] == pytest.approx(list(result.verdicts["SP"].drift_interval))
    (artifact,) = get_all_artifact_meta(study)
    assert artifact.mimetype == "image/png" and result.plot.exists()
    assert study.user_attrs["plot"] == str(result.plot)
    note = optuna_dashboard.get_note(study)
    assert "SP fail: drift" in note and "| SP | 128 |" in note


@pytest.mark.slow
def test_a_rerun_reuses_finished_runs_and_trains_only_new_ones(swept):
    task, config, first = swept
    again = run_transfercheck(task, config, Console(quiet=True))
    assert again.trained == 0
    assert [run.final_loss for run in again.runs] == [run.final_loss for run in first.runs]
    wider_grid = TransferConfig(**{**config.__dict__, "learning_rates": config.learning_rates + (2.0**-4,)})
    extended = run_transfercheck(task, wider_grid, Console(quiet=True))
    assert extended.trained == 2 * 2 * 3  # the new learning rate at both widths, parameterizations and seeds
    study = optuna.load_study(study_name="mlp-transfer", storage=open_storage(first.storage))
    assert len(study.get_trials()) == 2 * 2 * 7 * 3
    assert len(get_all_artifact_meta(study)) == 2  # the figure is redrawn only when its runs changed


def _runs(losses: dict[tuple[int, int], list[float]], rates: list[float]) -> list[TransferRun]:
    """``(width, seed) -> loss per learning rate`` as μP runs."""
    return [TransferRun("μP", width, rate, seed, loss, (), 0) for (width, seed), row in losses.items()
            for rate, loss in zip(rates, row)]


def test_a_diverged_run_counts_as_the_worst_loss_and_is_counted():
    rates = [2.0**-8, 2.0**-7, 2.0**-6, 2.0**-5]
    runs = _runs({(16, 0): [0.5, 0.4, 0.3, 0.45], (16, 1): [0.5, 0.4, math.inf, 0.45],
                  (64, 0): [0.5, 0.4, 0.3, 0.45], (64, 1): [0.5, 0.4, 0.3, 0.45]}, rates)
    verdict = judge(runs, "μP", [16, 64], rates, [0, 1])
    base, wide = verdict.optima
    assert base.diverged == (0, 0, 1, 0)
    assert base.best_index == 1  # 2^-6 is best on seed 0, but it diverged on seed 1
    assert base.seed_best_indices == (2, 1)
    assert wide.best_index == 2 and verdict.shifts == (0, 1)


def test_the_refined_optimum_is_the_vertex_of_a_parabola_in_log_learning_rate():
    rates = [2.0**e for e in range(-9, -3)]
    vertex = {16: -6.3, 256: -8.3}  # the optimum halves with every doubling of width: drift -0.5
    runs = _runs({(width, 0): [0.2 + (math.log2(rate) - vertex[width]) ** 2 for rate in rates]
                  for width in vertex}, rates)
    verdict = judge(runs, "μP", [16, 256], rates, [0])
    assert [math.log2(o.refined_learning_rate) for o in verdict.optima] == pytest.approx([-6.3, -8.3])
    assert verdict.shifts == (0, -2) and verdict.label == "undecided"  # one seed: no interval
    assert verdict.drift == pytest.approx(-0.5) and verdict.drift_range == pytest.approx((-0.5, -0.5))


def test_standard_parameterization_has_no_width_scaling():
    task = FourierTask(depth=1, modes=16, eval_examples=16)
    config = TrainConfig(learning_rate=0.01, batch_size=4, tokens=4)
    standard = build_standard_model(task, 64, seed=3)
    assert {group["lr"] for group in make_optimizer(standard, config).param_groups} == {0.01}
    assert {group["lr"] for group in make_optimizer(build_model(task, 64, 16, 3), config).param_groups} == {0.01, 0.01 / 4}
    assert standard.readout.weight.abs().sum() > 0  # nn.Linear's init, not μP's zero readout
    assert torch.equal(standard.readout.weight, build_standard_model(task, 64, seed=3).readout.weight)
    assert float(standard.readout.weight.detach().abs().max()) <= 64**-0.5  # PyTorch default: U(±1/√fan_in)


@pytest.mark.parametrize("flags, message", [
    (["--widths", "64", "32"], "--widths [64, 32]: give at least two increasing"),
    (["--widths", "64"], "--widths [64]: give at least two increasing"),
    (["--lrs", "1e-3", "2e-3"], "give at least three increasing"),
    (["--lrs", "1e-3", "2e-3", "1e-2"], "space them evenly in log"),
    (["--lrs", "4e-3", "2e-3", "1e-3"], "give at least three increasing"),
    (["--task", "lm", "--widths", "48", "64"], "width 48 is not a positive multiple of 32"),
    (["--tokens", "10", "--batch-size", "64"], "less than one batch"),
])
def test_bad_widths_or_grids_are_usage_errors_and_write_nothing(tmp_path, capsys, flags, message):
    workdir = tmp_path / "work"
    code = main(["transfercheck", "--task", "mlp", "--workdir", str(workdir), *flags])
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1
    assert not workdir.exists()


@pytest.mark.slow
def test_cli_end_to_end_records_diverged_runs_and_the_figure(tmp_path, capsys):
    workdir = tmp_path / "work"
    code = main(["transfercheck", "--task", "mlp", "--widths", "8", "16", "--lrs", str(2.0**-6), str(2.0**3),
                 str(2.0**12), "--tokens", "320", "--batch-size", "32", "--seeds", "1", "--evaluations", "2",
                 "--workdir", str(workdir)])
    output = capsys.readouterr().out
    assert code == 0
    assert "μP" in output and "SP" in output and "optimal learning rate by width" in output
    assert (workdir / "plots" / "mlp-transfer.png").exists()
    study = optuna.load_study(study_name="mlp-transfer", storage=f"sqlite:///{workdir / 'hpogrow.db'}")
    diverged = [t for t in study.get_trials() if t.user_attrs["learning_rate"] == 2.0**12]
    assert len(diverged) == 4
    assert all(t.state == optuna.trial.TrialState.FAIL and t.user_attrs["diverged"] for t in diverged)
    assert all("loss became" in t.user_attrs["fail_reason"] for t in diverged)
    assert study.user_attrs["transfer"]["verdicts"]["SP"]["diverged_runs"] == 2
