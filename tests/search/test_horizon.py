"""The token-horizon fit (:mod:`hpogrow.search.horizon`) and ``--horizon-transfer`` on a tiny pipeline."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import optuna
import pytest

from hpogrow.checkpoint import read_checkpoint
from hpogrow.record import RunRecord
from hpogrow.search import horizon
from hpogrow.search.horizon import Observation, best_learning_rate, choose_alpha, fit_horizon, log_spaced_tokens
from hpogrow.search.pipeline import run_pipeline
from tests.search.test_pipeline import WaveRegression, _config, _enqueue, _quiet, space_file  # noqa: F401 (fixture)


def _observations(alpha: float, noise: float, seed: int = 0) -> list[Observation]:
    """A grid of 32 learning rates × 2 batch sizes whose loss is a parabola in log lr around
    lr*(t) = c_batch · t^(−alpha), with noise on every point."""
    generator = random.Random(seed)
    rates = [1e-4 * (1e3 ** (k / 31)) for k in range(32)]
    tokens = [4096 * 2 ** k for k in range(9)]
    found = []
    for batch, scale in ((16, 1.0), (32, 1.4)):
        for run, rate in enumerate(rates):
            for count in tokens:
                best = scale * 0.05 * (count / 4096) ** (-alpha)
                loss = 2 + 1 / math.log(count) + 0.3 * math.log(rate / best) ** 2 + generator.gauss(0, noise)
                found.append(Observation(count, rate, batch, loss, run + 100 * batch))
    return found


def test_best_learning_rate_finds_a_parabolas_vertex_and_refuses_the_edge():
    points = [(math.exp(x / 4), (x / 4 - math.log(0.01)) ** 2) for x in range(-40, -4)]
    rate, loss, reason = best_learning_rate(points)
    assert rate == pytest.approx(0.01, rel=1e-6) and loss == pytest.approx(0, abs=1e-9) and reason is None
    rising = [(rate, rate) for rate in (1e-3, 1e-2, 1e-1)]
    assert best_learning_rate(rising)[0] is None and best_learning_rate(rising)[2] == "at the grid's edge"


def test_fit_recovers_a_known_exponent_with_an_interval_that_covers_it():
    fit = fit_horizon(_observations(alpha=0.35, noise=0.002), resamples=200)
    assert fit.alpha == pytest.approx(0.35, abs=0.02)
    assert fit.alpha_ci[0] < 0.35 < fit.alpha_ci[1] and fit.determined
    assert dict(fit.alpha_per_batch)[16] == pytest.approx(0.35, abs=0.03)
    # the batch sizes' own intercepts: batch 32's optimum is 1.4× batch 16's
    assert fit.learning_rate(4096, 32) / fit.learning_rate(4096, 16) == pytest.approx(1.4, rel=0.05)
    assert fit.factor(1000, 2000) == pytest.approx(2 ** -fit.alpha)


def test_no_horizon_effect_is_not_determined():
    fit = fit_horizon(_observations(alpha=0.0, noise=0.01, seed=1), resamples=200)
    assert fit.alpha_ci[0] < 0 < fit.alpha_ci[1] and not fit.determined


def test_log_spaced_tokens_picks_the_nearest_available():
    assert log_spaced_tokens(range(4096, 65537, 4096), 4096, 65536, count=5) == [4096, 8192, 16384, 32768, 65536]


def test_auto_falls_back_to_the_measured_constant_and_off_applies_none(monkeypatch):
    monkeypatch.setitem(horizon.MEASURED_ALPHA, "toy", (0.5, (0.3, 0.7)))
    choice = choose_alpha("auto", "toy", [], base_tokens=1000)
    assert choice.alpha == 0.5 and "measured for task toy" in choice.source
    record = choice.transfer(0.01, 1000, 4000)
    assert record.horizon_factor == pytest.approx(0.5) and record.trained_learning_rate == pytest.approx(0.005)
    assert choose_alpha("auto", "unmeasured", [], 1000).alpha is None
    off = choose_alpha("off", "toy", [], 1000).transfer(0.01, 1000, 4000)
    assert off.horizon_factor == 1.0 and off.trained_learning_rate == 0.01


def test_auto_uses_the_studys_own_trials_when_they_determine_alpha():
    trials = []
    by_run: dict[int, dict[int, float]] = {}
    rates = {}
    for o in _observations(alpha=0.35, noise=0.002):
        by_run.setdefault(o.run, {})[o.tokens] = o.loss
        rates[o.run] = (o.learning_rate, o.batch_size)
    for number, (run, curve) in enumerate(by_run.items()):
        rate, batch = rates[run]
        trials.append(optuna.trial.create_trial(
            params={"learning_rate": rate, "batch_size": batch},
            distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1, log=True),
                           "batch_size": optuna.distributions.CategoricalDistribution([16, 32])},
            value=curve[max(curve)], intermediate_values=curve))
    choice = choose_alpha("auto", "unmeasured", trials, base_tokens=4096 * 2 ** 8)
    assert choice.alpha == pytest.approx(0.35, abs=0.02) and "own" in choice.source


def test_the_lms_measured_alpha_includes_0_so_auto_applies_none():
    choice = choose_alpha("auto", "lm", [], base_tokens=139264)
    assert choice.alpha is None and "includes 0" in choice.source
    assert choice.transfer(0.02, 139264, 475776).horizon_factor == 1.0


@pytest.mark.slow
def test_target_trials_train_at_the_corrected_rate_and_record_it(tmp_path, space_file, monkeypatch):
    monkeypatch.setitem(horizon.MEASURED_ALPHA, "wave-regression", (0.5, (0.3, 0.7)))
    config = replace(_config(tmp_path, space_file, trials=2), horizon_transfer="auto", warmstart_lr_scale=0.5)
    _enqueue(config, 1e-2, 3e-2)
    result = run_pipeline(WaveRegression(), config, console=_quiet())
    target = optuna.load_study(study_name=f"wave-regression-w16/target-w{result.plan.growth.target_width}",
                               storage=config.storage_url)
    winner_rate = result.winner.params["learning_rate"]
    expected = (result.plan.target_tokens / result.plan.base_tokens) ** -0.5
    for trial in target.trials:
        run = RunRecord.of(trial)
        assert run.horizon.horizon_transfer == "auto" and run.horizon.horizon_alpha == 0.5
        assert run.horizon.horizon_alpha_ci == (0.3, 0.7) and "measured" in run.horizon.horizon_source
        assert run.horizon.horizon_factor == pytest.approx(expected) and expected < 0.8
        scale = config.warmstart_lr_scale if run.role == "warmstart" else 1.0  # grown runs: --warmstart-lr-scale
        assert run.horizon.warmstart_lr_scale == (scale if run.role == "warmstart" else None)
        assert run.horizon.trained_learning_rate == pytest.approx(winner_rate * expected * scale)
        assert trial.params["learning_rate"] == winner_rate  # the searched value, as before
        trained = read_checkpoint(run.checkpoint).config["train"]["learning_rate"]  # what the run really used
        assert trained == pytest.approx(winner_rate * expected * scale)
    # a rerun under off does not reuse runs trained at another rate
    again = run_pipeline(WaveRegression(), replace(config, horizon_transfer="off"), console=_quiet())
    assert {t.number for t in again.warmstarts} & {t.number for t in result.warmstarts} == set()
    assert RunRecord.of(again.warmstarts[0]).horizon.trained_learning_rate == winner_rate * config.warmstart_lr_scale
