"""Partial checkpoints of target runs (hpogrow/resume.py through hpogrow/runs.run_training): a run
broken after an evaluation and started again continues from its last partial checkpoint and ends
bit-identical to an unbroken one; a partial checkpoint of another run is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hpogrow.checkpoint import load_model
from hpogrow.resume import ResumePoint
from hpogrow.runs import CheckpointOwner, run_scratch
from hpogrow.tasks import FourierTask
from hpogrow.train import Evaluation, TrainConfig

OWNER = CheckpointOwner("storage", "s/target", 4)


@pytest.fixture
def task() -> FourierTask:
    return FourierTask(depth=1, modes=64, eval_examples=64)


def _config(schedule: str = "wsd") -> TrainConfig:
    return TrainConfig(1e-2, 8, tokens=8 * 24, evaluations=8, schedule=schedule, device="cpu", seed=3)


class Broken(Exception):
    """Stands for a fault after an evaluation."""


def _run(task, folder: Path, resume: ResumePoint | None, report=None, config: TrainConfig | None = None,
         owner: CheckpointOwner = OWNER):
    return run_scratch(task, 32, 16, config or _config(), 100, folder / "final", report=report, owner=owner,
                       resume=resume)


def _break_after(count: int, seen: list[Evaluation]):
    def report(evaluation: Evaluation) -> None:
        seen.append(evaluation)
        if len(seen) == count:
            raise Broken
    return report


@pytest.mark.parametrize("every", [1, 3])
def test_a_run_broken_after_an_evaluation_resumes_and_ends_bit_identical(task, tmp_path, every):
    unbroken = _run(task, tmp_path / "unbroken", ResumePoint(tmp_path / "unbroken" / "resume", every))
    point = ResumePoint(tmp_path / "broken" / "resume", every)
    first: list[Evaluation] = []
    with pytest.raises(Broken):
        _run(task, tmp_path / "broken", point, _break_after(6, first))  # dies reporting evaluation 6 (step 15)
    second: list[Evaluation] = []
    resumed = _run(task, tmp_path / "broken", point, second.append)

    checkpointed = 1 + ((6 - 1) // every) * every  # the last evaluation written by the fault (before its report)
    assert resumed.extra["resumed_at_tokens"] == (unbroken.evaluations[checkpointed - 1].tokens_seen,)
    assert unbroken.extra["resumed_at_tokens"] == ()
    assert [e.tokens_seen for e in resumed.evaluations] == [e.tokens_seen for e in unbroken.evaluations]
    assert [e.val_loss for e in resumed.evaluations] == [e.val_loss for e in unbroken.evaluations]
    assert [e.train_loss for e in resumed.evaluations] == [e.train_loss for e in unbroken.evaluations]
    # the evaluations the partial checkpoint held are reported again, then the new ones: each once
    assert [e.tokens_seen for e in second] == [e.tokens_seen for e in unbroken.evaluations]
    assert resumed.state == unbroken.state
    assert resumed.tokens_per_second > 0  # over what this call trained, not from its first evaluation
    left, _ = load_model(resumed.checkpoint, task)
    right, _ = load_model(unbroken.checkpoint, task)
    for (name, a), (_, b) in zip(left.state_dict().items(), right.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_run_broken_twice_records_both_resumes(task, tmp_path):
    """Broken, resumed, broken again before its next partial checkpoint: the second resume still
    knows the first."""
    point = ResumePoint(tmp_path / "resume", 3)
    with pytest.raises(Broken):
        _run(task, tmp_path, point, _break_after(5, []))  # checkpoint at evaluation 4
    with pytest.raises(Broken):
        _run(task, tmp_path, point, _break_after(5, []))  # 4 reported again, then 5: broken before 7
    outcome = _run(task, tmp_path, point)
    at = outcome.evaluations[3].tokens_seen
    assert outcome.extra["resumed_at_tokens"] == (at, at)


def test_a_run_resumed_after_its_last_evaluation_trains_nothing_and_keeps_its_curve(task, tmp_path):
    point = ResumePoint(tmp_path / "resume")
    done = _run(task, tmp_path, point)
    again = _run(task, tmp_path, point)
    assert again.extra["resumed_at_tokens"] == (done.state.tokens_seen,)
    assert [e.val_loss for e in again.evaluations] == [e.val_loss for e in done.evaluations]
    assert again.state == done.state
    assert again.tokens_per_second == 0  # nothing left to train


@pytest.mark.parametrize("other, reason", [
    ({"owner": CheckpointOwner("another storage", "s/target", 4)}, "belongs to"),
    ({"owner": CheckpointOwner("storage", "s/target", 5)}, "belongs to"),
    ({"config": replace(_config(), learning_rate=2e-2)}, "another configuration (differs in train)"),
    ({"config": replace(_config(), seed=4)}, "another configuration (differs in train)"),
])
def test_a_partial_checkpoint_of_another_run_is_refused_and_the_run_starts_from_token_0(task, tmp_path, other, reason):
    point = ResumePoint(tmp_path / "resume")
    with pytest.raises(Broken):
        _run(task, tmp_path / "first", point, _break_after(4, []))
    outcome = _run(task, tmp_path / "second", point, **other)
    fresh = _run(task, tmp_path / "fresh", ResumePoint(tmp_path / "fresh-resume"), **other)
    assert outcome.extra["resumed_at_tokens"] == ()
    assert reason in outcome.extra["resume_refused"]
    assert [e.val_loss for e in outcome.evaluations] == [e.val_loss for e in fresh.evaluations]
