"""The language-modelling task (hpogrow/tasks/language.py) on the tiny GPT of ``lm_task``."""

from __future__ import annotations

import math
import pickle

import torch

from hpogrow.parametrize import build_model
from hpogrow.tasks import LanguageTask, task_from_spec

CPU = torch.device("cpu")


def test_batches_are_deterministic_in_position_and_targets_are_inputs_shifted_by_one(lm_task):
    inputs, targets = lm_task.batch(10, 3, CPU)
    again = lm_task.batch(10, 3, CPU)
    assert torch.equal(inputs, again[0]) and torch.equal(targets, again[1])
    assert inputs.shape == targets.shape == (3, 16)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert not torch.equal(lm_task.batch(13, 3, CPU)[0], inputs)
    # the stream is one sequence of windows: position 11 is the second window of position 10's batch
    assert torch.equal(lm_task.batch(11, 1, CPU)[0][0], inputs[1])


def test_width_step_and_tokens_per_example_follow_head_size_and_context(lm_task):
    assert lm_task.width_step == 8 and lm_task.tokens_per_example == 16
    assert lm_task.model_config(24).n_heads == 3


def test_loss_of_a_fresh_model_is_log_vocabulary(lm_task):
    model = build_model(lm_task, 16, 16, seed=0)
    loss = lm_task.loss(model, lm_task.batch(0, 2, CPU))
    # the zero readout gives uniform logits: cross-entropy ln V exactly
    assert math.isfinite(loss.item()) and abs(loss.item() - math.log(lm_task.vocab_size)) < 1e-5


def test_eval_set_is_the_same_every_time_and_scores_each_window(lm_task):
    batches = lm_task.eval_batches(CPU)
    windows = sum(len(inputs) for inputs, _ in batches)
    assert windows == 512 // 16
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, lm_task.eval_batches(CPU)))
    model = build_model(lm_task, 16, 16, seed=0)
    with torch.no_grad():
        losses = lm_task.eval_losses(model, batches)
    assert losses.shape == (windows,)
    assert torch.allclose(losses, torch.full_like(losses, math.log(lm_task.vocab_size)), atol=1e-5)


def test_describe_round_trips_through_task_from_spec(lm_task):
    rebuilt = task_from_spec(lm_task.describe())
    assert isinstance(rebuilt, LanguageTask) and rebuilt.describe() == lm_task.describe()
    assert torch.equal(rebuilt.batch(3, 2, CPU)[0], lm_task.batch(3, 2, CPU)[0])
    assert lm_task.with_depth(3).describe() == {**lm_task.describe(), "depth": 3}


def test_data_passes_count_windows_of_the_training_stream(lm_task):
    windows = lm_task.training_windows()
    assert windows > 0 and lm_task.data_passes(2 * windows) == 2.0
    assert lm_task.data_summary()["windows"] == windows


def test_pickles_without_the_opened_corpus(lm_task):
    expected = lm_task.batch(0, 2, CPU)[0]
    restored = pickle.loads(pickle.dumps(lm_task))
    assert restored._corpus is None
    assert torch.equal(restored.batch(0, 2, CPU)[0], expected)
