"""hpogrow advise: the loss-law fit, the gain model, the stored advice and --grow-factor auto."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import optuna
import pytest

from hpogrow.advise import AdviseConfig, advise, auto_growth_factor, fit_gain, fit_loss_law
from hpogrow.advise.gain import bootstrap_gains, percentile_interval
from hpogrow.cli import main
from hpogrow.errors import UsageError
from hpogrow.search import SearchConfig
from hpogrow.search.plan import make_plan
from hpogrow.storage import open_storage
from hpogrow.tasks import FourierTask


@pytest.mark.slow
def test_loss_law_fit_recovers_known_parameters():
    params, tokens = np.meshgrid([1.2e3, 2.6e3, 4.5e3, 9.9e3, 1.7e4], np.geomspace(5e3, 1.5e5, 10))
    params, tokens = params.ravel(), tokens.ravel()
    noise = np.exp(np.random.default_rng(0).normal(0.0, 0.002, params.size))  # 0.2% multiplicative
    losses = (0.3 + 40.0 / params**0.6 + 90.0 / tokens**0.5) * noise
    law = fit_loss_law(params, tokens, losses)
    assert law.E == pytest.approx(0.3, rel=0.05)
    assert law.alpha == pytest.approx(0.6, abs=0.05)
    assert law.beta == pytest.approx(0.5, abs=0.05)
    assert law.A == pytest.approx(40.0, rel=0.3)
    assert law.B == pytest.approx(90.0, rel=0.3)
    assert float(law(2e4, 1e5)) == pytest.approx(0.3 + 40.0 / 2e4**0.6 + 90.0 / 1e5**0.5, rel=0.01)


def test_gain_model_recovers_a_known_relation():
    generator = np.random.default_rng(1)
    growth = np.repeat([2.0, 4.0, 8.0], 6)
    budget = np.tile([5.0, 10.0, 20.0], 6)
    speedups = np.exp(0.9 - 0.5 * np.log(growth) - 0.3 * np.log(budget) + generator.normal(0, 0.02, growth.size))
    model = fit_gain(growth, budget, speedups)
    assert model.intercept == pytest.approx(0.9, abs=0.1)
    assert model.g_slope == pytest.approx(-0.5, abs=0.03)
    assert model.budget_slope == pytest.approx(-0.3, abs=0.05)
    low, high = percentile_interval([m.g_slope for m in bootstrap_gains(growth, budget, speedups, 300)])
    assert low < -0.5 < high and high - low < 0.1
    # speedup counting a base trained at the same tokens/param: 1 / (1/s + 1/g²)
    assert model.flops_speedup_with_base(2.0, 5.0) == pytest.approx(
        1 / (1 / model.token_speedup(2.0, 5.0) + 0.25))


_ADVICE = {"recommended_growth_factor": 3.0, "recommendation_significant": True, "max_growth_factor": 6.5, "max_growth_factor_interval": [5.0, 9.0],
           "predicted_speedup": [1.4, 1.1, 1.8], "target_params": 67329, "tokens_per_param": 20.0,
           "fit": {"E": 0.3, "A": 40.0, "alpha": 0.6, "B": 90.0, "beta": 0.5},
           "holdout_by_width": [{"width": 16, "error": 1.4}, {"width": 24, "error": 0.8}],
           "extrapolation": {"loss_law": {"params": 3.9, "tokens": 1.0}, "gain": {"params": 6.8, "tokens_per_param": 1.0}},
           "predictions": [{"g": 2.0}, {"g": 3.0}, {"g": 4.0}]}


def _search_config(tmp_path, **overrides) -> SearchConfig:
    return SearchConfig(base_width=16, trials=1, tokens_per_param=20.0, grow_factor="auto", executor="local",
                        workdir=str(tmp_path), storage=f"sqlite:///{tmp_path}/hpogrow.db", **overrides)


def test_grow_factor_auto_uses_the_stored_advice(tmp_path):
    study = optuna.create_study(study_name="mlp-advice", storage=open_storage(f"sqlite:///{tmp_path}/hpogrow.db"))
    study.set_user_attr("advice", _ADVICE)
    plan = make_plan(FourierTask(eval_examples=64), _search_config(tmp_path))
    assert plan.grow_factor == 3.0
    assert plan.growth.param_ratio == pytest.approx(3.0, rel=0.1)
    assert "g 3" in plan.growth_reason and "1.40×" in plan.growth_reason and "6.50" in plan.growth_reason
    assert "w16 1.4, w24 0.8 seed spreads" in plan.growth_reason
    assert "loss_law params ×3.9, gain params ×6.8" in plan.growth_reason


def test_grow_factor_auto_without_advice_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(UsageError, match="run `hpogrow advise --task mlp`"):
        make_plan(FourierTask(eval_examples=64), _search_config(tmp_path))
    status = main(["search", "--task", "mlp", "--grow-factor", "auto", "--executor", "local", "--base-width", "16",
                   "--workdir", str(tmp_path)])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and "hpogrow advise" in error
    assert not (tmp_path / "hpogrow.db").exists()  # nothing written
    with pytest.raises(UsageError, match="--grow-factor sometimes"):
        SearchConfig(grow_factor="sometimes")


def test_grow_factor_auto_refuses_advice_that_no_g_pays(tmp_path):
    study = optuna.create_study(study_name="mlp-advice", storage=open_storage(f"sqlite:///{tmp_path}/hpogrow.db"))
    study.set_user_attr("advice", {**_ADVICE, "recommended_growth_factor": None})
    with pytest.raises(UsageError, match="no g pays"):
        auto_growth_factor(f"sqlite:///{tmp_path}/hpogrow.db", "mlp")


@pytest.mark.slow
def test_advise_records_the_advice_and_its_figures(tmp_path):
    task = FourierTask(modes=64, eval_examples=256)
    config = AdviseConfig(widths=(8, 12, 16), tokens=64 * 64, growth_factors=(2.0, 3.0, 4.0),
                          pair_tokens_per_param=(4.0,), seeds=2, bootstrap=20, evaluations=8, workers=2,
                          workdir=str(tmp_path))
    advice = advise(task, config)
    study = optuna.load_study(study_name="mlp-advice", storage=f"sqlite:///{tmp_path}/hpogrow.db")
    stored = study.user_attrs["advice"]
    json.dumps(stored)
    assert {"recommended_growth_factor", "max_growth_factor", "predicted_speedup", "fit"} <= set(stored)
    assert {"E", "A", "alpha", "B", "beta", "intervals", "seed_spread"} <= set(stored["fit"])
    assert stored["fit"]["E"] == 0.0 and stored["fit"]["floor_fixed"]  # the Fourier target is noiseless
    held = stored["holdout_by_width"]
    assert [h["width"] for h in held] == [8, 12, 16] and all(h["budgets"] == 9 for h in held)  # 16× at 2 per octave
    assert all(h["error"] >= 0 and h["loss_of_tokens_error"] >= 0 for h in held)
    assert held[0]["smaller_width_error"] is None and all(h["smaller_width_error"] >= 0 for h in held[1:])
    # the stored flag compares every width with L(D) alone, the smallest too
    assert [h["beaten_by_baseline"] for h in held] == [
        h["error"] >= min(x for x in (h["loss_of_tokens_error"], h["smaller_width_error"]) if x is not None) for h in held]
    beyond = stored["extrapolation"]  # the default target (8 × the base width) lies beyond the ladder
    assert not beyond["within_range"] and beyond["loss_law"]["params"] > 1 and beyond["loss_law"]["tokens"] > 1
    assert stored["recommended_growth_factor"] == advice.recommended_growth_factor
    if advice.recommended_growth_factor is not None:
        mean, low, high = stored["predicted_speedup"]
        assert low <= mean <= high
    roles = [trial.user_attrs["role"] for trial in study.trials]
    assert roles.count("advice-warmstart") == 6  # 3 g × 1 budget × 2 seeds
    assert roles.count("advice-scratch") == 3 * 2 + 2 + 6  # ladder (3 widths × 2 seeds), bases, scratch sides
    assert all(t.user_attrs["growth_factor"] in (2.0, 3.0, 4.0) for t in study.trials if t.user_attrs["role"] == "advice-warmstart")
    assert [path.exists() for path in advice.plots] == [True, True]
    artifacts = optuna.artifacts.get_all_artifact_meta(study)
    assert sorted(meta.filename for meta in artifacts) == sorted(path.name for path in advice.plots)
    assert advice.gain_holdouts[0].growth_factor == 4.0
    again = advise(task, replace(config, workers=1))  # reuses every run; the same numbers in one process
    assert again.trained == 0 and again.law.alpha == pytest.approx(advice.law.alpha, rel=1e-6)


def test_recommendation_stays_within_the_ladder_and_says_when_it_is_not_significant():
    from hpogrow.advise.advice import Prediction, recommend

    def prediction(g: float, speedup: float, low: float) -> Prediction:
        return Prediction(g, speedup, speedup, (low, speedup + 0.2), 0.3)

    rising = [prediction(2.0, 1.3, 1.1), prediction(4.0, 1.5, 1.2), prediction(8.0, 1.4, 0.9), prediction(16.0, 2.0, 1.5)]
    assert recommend(rising, largest_measured=8.0) == (4.0, True)  # 16 is beyond the ladder, 8's interval reaches 1
    noisy = [prediction(2.0, 0.9, 0.7), prediction(4.0, 1.05, 0.8)]
    assert recommend(noisy, largest_measured=8.0) == (4.0, False)
    assert recommend([prediction(2.0, 0.9, 0.7)], largest_measured=8.0) == (None, False)


def test_advise_usage_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    for argv in (["--widths", "32", "16", "64"], ["--growth-factors", "2", "4"], ["--target-params", "1000",
                 "--target-width", "64"], ["--holdout-growth-factor", "3"], ["--seeds", "1"], ["--budget-span", "8"]):
        assert main(["advise", "--task", "mlp", "--workdir", str(tmp_path), *argv]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith("hpogrow advise: error:")
    assert not list(tmp_path.iterdir())


def test_the_loss_floor_is_held_where_the_data_knows_it():
    from hpogrow.advise.advice import loss_floor
    from hpogrow.tasks import LanguageTask

    assert loss_floor(FourierTask(modes=64, eval_examples=64))[0] == 0.0  # a noiseless target
    synthetic = LanguageTask(depth=1, head_size=8, seq_len=16, data="synthetic:1", eval_tokens=256)
    floor, source = loss_floor(synthetic)
    assert floor == synthetic.data_summary()["entropy_floor"]["value"] and "entropy" in source


def test_every_width_is_checked_against_the_seed_spread_and_two_baselines():
    """Curves made from a known law plus seed offsets: the law left out of each width predicts it
    within a few seed spreads, and beats L(D) alone where the widths differ by far more than σ."""
    from hpogrow.advise.advice import seed_spread, width_holdouts
    from hpogrow.advise.ladder import SCRATCH, LadderRun

    generator = np.random.default_rng(0)
    budgets = np.geomspace(9600, 153600, 9).round()
    runs = [LadderRun(SCRATCH, width, 153600, seed, 0, n_params=params, curve=tuple(
                (int(d), float((40 / params**0.5 + 3 / d**0.2) * np.exp(generator.normal(0, 0.01))))
                for d in budgets))
            for width, params in ((16, 1249), (24, 2641), (32, 4545), (48, 9889)) for seed in range(3)]
    spread = seed_spread(runs)
    assert 0.003 < spread < 0.02
    held = width_holdouts(runs, 0.0, spread)
    assert [h.width for h in held] == [16, 24, 32, 48] and held[0].smaller_width_error is None
    for h in held[1:-1]:  # interpolated widths: within a few σ; the baselines miss by many
        assert h.error < 3 < min(h.loss_of_tokens_error, h.smaller_width_error)
