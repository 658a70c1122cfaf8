"""A trial's run record (hpogrow/record/run.py) written to and read from real Optuna trials."""

from __future__ import annotations

import optuna
import pytest

from hpogrow import record
from hpogrow.record import BASE, GrowthLineage, RunFacts, RunRecord, summary_attrs
from hpogrow.record.codec import from_attrs
from hpogrow.runs import RunSummary
from hpogrow.throughput import training_flops

LINEAGE = GrowthLineage(grown_from="/runs/base/trial-0", grow_op="szp", grow_factor=None, param_ratio=3.9,
                        width_ratio=2.0, base_width=16, target_width=32, base_depth=None, target_depth=None,
                        shrink=0.3, carry_optimizer=False, base_tokens=2048, base_flops=1e8)


@pytest.fixture
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study()


def test_a_written_record_reads_back_from_the_live_and_the_frozen_trial(study):
    written = RunRecord(role="warmstart", width=32, seed=3, base_trial=0, base_study="s/base", lineage=LINEAGE,
                        facts=RunFacts(device="cpu", node="n1"), final_loss=1.25)
    trial = study.ask()
    record.write(trial, written)
    assert RunRecord.of(trial) == written
    study.tell(trial, 1.25)
    frozen = study.trials[0]
    assert RunRecord.of(frozen) == written
    # only what differs from the defaults is written; None never is
    assert "pair" not in frozen.user_attrs and "diverged" not in frozen.user_attrs
    assert "grow_factor" not in frozen.user_attrs and "checkpoint" not in frozen.user_attrs
    assert frozen.user_attrs["grow_op"] == "szp" and frozen.user_attrs["node"] == "n1"


def test_writing_in_parts_accumulates(study):
    trial = study.ask()
    record.write(trial, RunRecord(role=BASE, width=16))
    record.write(trial, RunRecord(final_loss=2.0, facts=RunFacts(mfu=0.4)))
    assert RunRecord.of(trial) == RunRecord(role=BASE, width=16, final_loss=2.0, facts=RunFacts(mfu=0.4))


def test_failing_a_trial_records_the_reason_and_divergence(study):
    trial = study.ask()
    record.fail(study, trial, "loss became nan", fidelity_reached=512, diverged=True)
    run = RunRecord.of(study.trials[0])
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    assert (run.fail_reason, run.fidelity_reached, run.diverged) == ("loss became nan", 512, True)


def test_summary_attrs_store_the_summary_with_its_facts_and_flops():
    summary = RunSummary(n_params=1200, compute_params=1000, tokens=4096, data_position=256, initial_loss=5.5,
                         final_loss=3.25, extra={"device": "cpu"})
    attrs = summary_attrs(summary)
    assert attrs["device"] == "cpu"
    assert attrs["fidelity_reached"] == attrs["tokens"] == 4096
    assert attrs["flops"] == training_flops(1000, 4096) == 6 * 1000 * 4096
    assert "checkpoint" not in attrs and "tokens_per_second" not in attrs
    assert not {"role", "width", "pair", "diverged"} & set(attrs)  # identity and outcome are not the summary's
    read = from_attrs(RunRecord, attrs)
    assert read.facts == RunFacts(device="cpu") and read.final_loss == 3.25 and read.data_position == 256


def test_summary_attrs_reject_an_unknown_extra_key():
    summary = RunSummary(1, 1, 8, 8, None, None, extra={"device": "cpu", "gpu_temperature": 70})
    with pytest.raises(KeyError, match="gpu_temperature"):
        summary_attrs(summary)


def test_identity_attrs_keep_who_a_run_is_and_its_lineage_not_its_outcome():
    run = RunRecord(role="scratch", width=32, pair=1, final_loss=2.0, diverged=True, lineage=LINEAGE,
                    facts=RunFacts(device="cpu"))
    identity = run.identity_attrs()
    assert identity["role"] == "scratch" and identity["pair"] == 1 and identity["grow_op"] == "szp"
    assert not {"final_loss", "diverged", "device"} & set(identity)
