"""Training runs (hpogrow/runs.py): the base-trial runner, scratch runs, their summaries and checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hpogrow.checkpoint import load_model, read_checkpoint
from hpogrow.parametrize import count_parameters
from hpogrow.runs import BaseTrial, CheckpointOwner, RunSummary, TrialEvent, run_facts, run_scratch
from hpogrow.tasks import FourierTask
from hpogrow.train import TrainConfig

PARAMS = {"learning_rate": 1e-2, "batch_size": 16}


@pytest.fixture
def task() -> FourierTask:
    return FourierTask(depth=1, modes=64, eval_examples=64)


def _template(tokens: int = 16 * 8) -> TrainConfig:
    return TrainConfig(1.0, 1, tokens=tokens, evaluations=4, device="cpu")


def test_a_base_trial_runs_its_budget_reports_every_evaluation_and_writes_its_checkpoint(task, tmp_path):
    events: list[TrialEvent] = []
    trial = BaseTrial(task, 16, _template(), tmp_path, storage_key="k", study="s/base")
    outcome = trial.run(PARAMS, number=3, report=events.append)
    assert outcome.summary.tokens == outcome.state.tokens_seen == 128
    assert outcome.flops == 6 * outcome.compute_params * 128
    assert outcome.compute_params == count_parameters(task.build_model(16)).compute
    assert [e.evaluation.tokens_seen for e in events] == [0, 32, 64, 96, 128]
    assert [e.complete for e in events] == [False] * 4 + [True]
    assert events[-1].checkpoint == outcome.checkpoint == tmp_path / "trial-3"
    assert all(e.checkpoint is None for e in events[:-1])  # no rungs asked for
    assert events[-1].summary.initial_loss == events[0].evaluation.val_loss
    saved = read_checkpoint(outcome.checkpoint)
    assert saved.state.tokens_seen == 128 and saved.state.data_position == 128
    assert saved.width == saved.base_width == 16
    assert saved.metrics["val_loss"] == pytest.approx(outcome.final_loss)
    assert saved.metrics["flops"] == outcome.flops
    assert saved.config["owner"] == CheckpointOwner("k", "s/base", 3).as_dict()


def test_a_report_returning_true_stops_the_trial_without_a_checkpoint(task, tmp_path):
    trial = BaseTrial(task, 16, _template(), tmp_path)
    outcome = trial.run(PARAMS, number=0, report=lambda event: event.evaluation.tokens_seen >= 64)
    assert outcome.stopped_early and outcome.checkpoint is None
    assert outcome.state.tokens_seen == 64
    assert not (tmp_path / "trial-0").exists()


def test_a_trial_resumed_from_a_rung_continues_at_its_tokens_and_ends_where_an_unbroken_run_does(task, tmp_path):
    kept = tmp_path / "rung"

    def keep_rung(event: TrialEvent) -> bool:
        if event.checkpoint is not None and not event.complete:
            shutil.copytree(event.checkpoint, kept)
            return True  # pause at the rung
        return False

    trial = BaseTrial(task, 16, _template(), tmp_path / "trials")
    paused = trial.run(PARAMS, number=0, report=keep_rung, rung_tokens=(64,))
    assert paused.stopped_early and read_checkpoint(kept).state.tokens_seen == 64

    events: list[TrialEvent] = []
    resumed = trial.run(PARAMS, number=0, report=events.append, resume=kept)
    assert [e.evaluation.tokens_seen for e in events] == [96, 128]  # the rung itself is not evaluated again
    assert all(e.resumed_from == 64 for e in events)
    assert resumed.state.tokens_seen == 128 and resumed.state.data_position == 128
    assert events[-1].summary.initial_loss == paused.evaluations[0].val_loss  # carried in the checkpoint

    unbroken = BaseTrial(task, 16, _template(), tmp_path / "unbroken").run(PARAMS, number=0)
    assert resumed.final_loss == pytest.approx(unbroken.final_loss, rel=1e-5)


def test_a_trial_promoted_after_its_full_budget_returns_its_checkpoint_without_training(task, tmp_path):
    trial = BaseTrial(task, 16, _template(), tmp_path)
    first = trial.run(PARAMS, number=1)
    events: list[TrialEvent] = []
    again = trial.run(PARAMS, number=1, report=events.append, resume=first.checkpoint)
    assert len(events) == 1 and events[0].complete
    assert again.final_loss == pytest.approx(first.final_loss) and again.state.tokens_seen == 128


def test_a_scratch_run_at_a_wider_width_trains_its_budget_from_a_data_position(task, tmp_path):
    config = TrainConfig(1e-2, 16, tokens=64, evaluations=2, device="cpu")
    outcome = run_scratch(task, 32, 16, config, data_position=1000, checkpoint=tmp_path / "scratch")
    summary = outcome.summary
    assert isinstance(summary, RunSummary)
    assert summary.tokens == 64 and summary.data_position == 1064
    assert summary.flops == outcome.flops == 6 * outcome.compute_params * 64
    assert summary.checkpoint == str(tmp_path / "scratch")
    saved = read_checkpoint(outcome.checkpoint)
    assert (saved.width, saved.base_width, saved.state.tokens_seen) == (32, 16, 64)
    model, _ = load_model(saved, task)
    assert model.readout.weight.infshape.width_mult() == 2


def test_run_facts_leave_out_what_is_unknown(task, lm_task):
    assert run_facts(task, 100) == {}
    assert run_facts(task, 100, device="cpu", mfu=0.5) == {"device": "cpu", "mfu": 0.5}
    windows = lm_task.training_windows()
    assert run_facts(lm_task, windows)["data_passes"] == 1.0
