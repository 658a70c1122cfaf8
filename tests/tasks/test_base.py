"""The Task extension point (hpogrow/tasks/base.py): defaults a custom task inherits."""

from __future__ import annotations

import math

import mup
import pytest
import torch
from torch import nn

from hpogrow.errors import UsageError
from hpogrow.tasks import task_from_spec
from hpogrow.tasks.base import Task, validation_loss


class _Regression(Task):
    name = "toy-regression"

    def build_model(self, width: int) -> nn.Module:
        return nn.Sequential(nn.Linear(4, width), nn.Tanh(), mup.MuReadout(width, 1))

    def batch(self, position: int, batch_size: int, device: torch.device):
        generator = torch.Generator().manual_seed(position)
        x = torch.randn(batch_size, 4, generator=generator)
        return x.to(device), x.sum(dim=1, keepdim=True).sin().to(device)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(model(x), y)


class _OwnEvaluate(_Regression):
    def evaluate(self, model, batches) -> float:
        return 42.0


CPU = torch.device("cpu")


def test_a_task_with_an_abstract_method_missing_cannot_be_built():
    class Incomplete(Task):
        def build_model(self, width):
            return nn.Linear(width, 1)

    with pytest.raises(TypeError):
        Incomplete()


def test_default_eval_set_is_four_batches_of_256_apart_from_the_training_stream():
    task = _Regression()
    batches = task.eval_batches(CPU)
    assert [len(x) for x, _ in batches] == [256] * 4
    train_x, _ = task.batch(0, 256, CPU)
    assert not any(torch.equal(x, train_x) for x, _ in batches)
    assert torch.equal(batches[2][0], task.batch(-3 * 256, 256, CPU)[0])


def test_evaluate_and_validation_loss_are_the_mean_of_the_batch_losses_with_their_standard_error():
    task = _Regression()
    torch.manual_seed(0)
    model = task.build_model(8)
    mup.set_base_shapes(model, None)
    batches = task.eval_batches(CPU)
    with torch.no_grad():
        per_batch = torch.stack([task.loss(model, b) for b in batches]).double()
    mean, error = validation_loss(task, model, batches)
    assert mean == pytest.approx(float(per_batch.mean()))
    assert task.evaluate(model, batches) == pytest.approx(mean)
    assert error == pytest.approx(float(per_batch.std() / math.sqrt(4)))
    assert validation_loss(task, model, batches[:1])[1] is None  # one unit: no spread


def test_validation_loss_of_a_task_with_its_own_evaluate_has_no_error():
    task = _OwnEvaluate()
    model = task.build_model(8)
    assert validation_loss(task, model, task.eval_batches(CPU)) == (42.0, None)


def test_default_data_facts_and_depth():
    task = _Regression()
    assert task.describe() == {"name": "toy-regression"}
    assert task.training_windows() is None and task.data_passes(10**6) is None
    with pytest.raises(UsageError, match="Task.with_depth"):
        task.with_depth(3)
    with pytest.raises(UsageError, match="custom task 'toy-regression'"):
        task_from_spec(task.describe())


def test_data_passes_is_position_over_training_windows():
    class Finite(_Regression):
        def training_windows(self) -> int:
            return 400

    assert Finite().data_passes(1000) == pytest.approx(2.5)


def test_initialize_calls_the_model_s_own_initialize():
    calls = []

    class Model(nn.Linear):
        def initialize(self):
            calls.append(self)

    model = Model(2, 2)
    _Regression().initialize(model)
    assert calls == [model]
