"""A study's own attributes (hpogrow/record/study.py), round-tripped through a real SQLite study."""

from __future__ import annotations

import math

import optuna
import pytest

from hpogrow import record
from hpogrow.record.study import BaseSignature, TargetSignature, signature_dict

SPEEDUP = record.SpeedupRecord(
    speedup_tokens=2.5, speedup_tokens_ci=(1.5, 4.0), speedup_flops=2.0, speedup_flops_ci=None,
    speedup_tokens_with_base=1.8, speedup_tokens_with_base_ci=(1.1, 3.0), speedup_flops_with_base=1.4,
    speedup_flops_with_base_ci=None, seeds=2, seeds_reached=2, speedup_bound=None, speedup_seed=(0, None),
    speedup_censoring=("", "scratch"), speedup_target_loss=(3.5, 3.5), speedup_warmstart_tokens=(100.0, 120.0),
    speedup_scratch_tokens=(250.0, 300.0), speedup_tokens_per_seed=(2.5, 2.5), speedup_flops_per_seed=(2.0, 2.0),
    speedup_tokens_with_base_per_seed=(1.8, 1.8), speedup_flops_with_base_per_seed=(1.4, 1.4),
    speedup_summary="2.5×", final_loss_gap=-0.01, speedup_bases=2, speedup_base_per_seed=(0, 1),
    speedup_match_fraction=(0.5, 1.0), speedup_match_target_loss=(4.0, 3.5), speedup_match_tokens=(3.0, 2.5),
    speedup_match_tokens_ci=((1.2, 7.5), None), speedup_match_flops_with_base=(1.5, 1.4),
    speedup_match_flops_with_base_ci=(None, (0.5, 4.0)), speedup_match_reached=(2, 1))


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}")


def _reloaded(study: optuna.Study) -> optuna.Study:
    return optuna.load_study(study_name=study.study_name, storage=study._storage)


def test_a_fresh_study_records_nothing(study):
    assert record.read_signature(study) is None and record.read_speedup(study) is None
    assert record.read_plot(study) is None and record.read_plotted_trials(study) is None
    assert record.read_advice(study) is None and record.read_transfer(study) is None


def test_signatures_are_stored_as_dictionaries_with_none_kept(study):
    signature = TargetSignature(task={"name": "fourier", "modes": 256}, base_width=16, target_width=32,
                                target_depth=None, tokens=4096, grow_op="szp", shrink=0.3, noise_scale=None,
                                stages=1, carry_optimizer=False, schedule="cosine", evaluations=4, seed=0,
                                base_study="s/base")
    record.write_signature(study, signature)
    stored = record.read_signature(_reloaded(study))
    assert stored == signature_dict(signature) and stored["target_depth"] is None
    assert TargetSignature(**stored) == signature
    assert signature_dict({"a": 1}) == {"a": 1}  # a command's own dictionary passes through
    base = BaseSignature(task={}, base_width=8, tokens=10, space={}, schedule="cosine", evaluations=2, seed=1,
                         stopping="asha")
    record.write_signature(study, base)
    assert BaseSignature(**record.read_signature(_reloaded(study))) == base


def test_the_speedup_reads_back_equal_tuples_and_nones_included(study):
    record.write_speedup(study, SPEEDUP)
    assert record.read_speedup(_reloaded(study)) == SPEEDUP  # nested tuples (intervals per target) too


def test_plot_advice_and_transfer_read_back(study):
    record.write_plot(study, "/runs/curves.png")
    record.write_plotted_trials(study, (3, 5))
    record.write_advice(study, {"growth_factor": 4.0, "interval": [2.0, 8.0]})
    record.write_transfer(study, {"passed": True})
    again = _reloaded(study)
    assert record.read_plot(again) == "/runs/curves.png" and record.read_plotted_trials(again) == [3, 5]
    assert record.read_advice(again) == {"growth_factor": 4.0, "interval": [2.0, 8.0]}
    assert record.read_transfer(again) == {"passed": True}


def test_a_trial_failed_for_a_non_finite_loss_is_diverged(study):
    trial = study.ask()
    record.write(trial, record.RunRecord(diverged=True, fail_reason="loss became nan"))
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    study.optimize(lambda t: 1.0, n_trials=1)
    diverged, finished = _reloaded(study).trials
    assert record.is_diverged(diverged) and not record.is_diverged(finished)
    assert math.isclose(finished.value, 1.0)


def test_every_name_the_record_package_exports_resolves():
    for name in record.__all__:
        assert getattr(record, name) is not None, name


def test_a_speedup_recorded_before_bases_reads_as_one_base(study):
    """A target study written before ``--bases`` has no ``speedup_bases``: its pairs all grew the winner."""
    stored = {key: value for key, value in SPEEDUP.as_attrs().items()
              if key != "speedup_bases" and not key.startswith(("speedup_match", "speedup_base_per"))}
    study.set_user_attr("speedup", stored)
    old = record.read_speedup(_reloaded(study))
    assert old.speedup_bases == 1 and old.speedup_base_per_seed is None and old.speedup_match_fraction == ()
