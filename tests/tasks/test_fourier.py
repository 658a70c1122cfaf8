"""The Fourier regression task (hpogrow/tasks/fourier.py): the target's construction and the batches."""

from __future__ import annotations

import math
import pickle

import mup
import pytest
import torch

from hpogrow.tasks import FourierTask, task_from_spec
from hpogrow.tasks.fourier import FourierTarget

CPU = torch.device("cpu")


def test_target_is_fixed_by_its_seed():
    first, again, other = FourierTarget(modes=64, seed=3), FourierTarget(modes=64, seed=3), FourierTarget(modes=64, seed=4)
    assert torch.equal(first.frequencies, again.frequencies) and torch.equal(first.weights, again.weights)
    assert not torch.equal(first.weights, other.weights)


def test_target_coefficients_have_unit_norm_integer_frequencies_and_phases_zero_or_half_pi():
    target = FourierTarget(in_features=8, modes=500, seed=0)
    assert target.weights.norm().item() == pytest.approx(1.0)
    assert target.frequencies.shape == (500, 8)
    assert torch.equal(target.frequencies, target.frequencies.round())
    assert set(target.phases.unique().tolist()) <= {0.0, math.pi / 2}
    # power law with alpha = 2: magnitudes are at least 1 (before rounding) and heavy-tailed
    assert target.frequencies.norm(dim=1).max() > 5


def test_target_is_the_weighted_sum_of_its_cosines():
    target = FourierTarget(modes=16, seed=1)
    x = torch.rand(3, 8, dtype=torch.float64) - 0.5
    expected = sum(math.sqrt(2) * target.weights[i] * torch.cos(2 * math.pi * x @ target.frequencies[i] + target.phases[i])
                   for i in range(16))
    assert torch.allclose(target(x), expected)
    # unit-norm coefficients and sqrt(2)·cos: the target has mean square about 1 over the input cube
    many = torch.rand(20_000, 8, dtype=torch.float64) - 0.5
    assert FourierTarget(modes=256, seed=0)(many).pow(2).mean().item() == pytest.approx(1.0, abs=0.15)


def test_batches_are_deterministic_in_position_and_seed():
    task = FourierTask(modes=32)
    x, y = task.batch(5, 4, CPU)
    x_again, y_again = task.batch(5, 4, CPU)
    assert torch.equal(x, x_again) and torch.equal(y, y_again)
    assert not torch.equal(task.batch(6, 4, CPU)[0], x)
    assert not torch.equal(FourierTask(modes=32, seed=1).batch(5, 4, CPU)[0], x)
    assert x.shape == (4, 8) and y.shape == (4,) and y.dtype == torch.float32
    assert x.min() >= -0.5 and x.max() <= 0.5
    assert torch.allclose(y, task.target(x).float())


def test_eval_set_is_fixed_and_loss_is_half_the_mean_squared_error():
    task = FourierTask(modes=32, eval_examples=100)
    (x, y), = task.eval_batches(CPU)
    assert len(x) == 100 and torch.equal(x, task.eval_batches(CPU)[0][0])

    def model(inputs):
        return torch.zeros(len(inputs))

    assert task.loss(model, (x, y)).item() == pytest.approx(0.5 * y.pow(2).mean().item(), rel=1e-6)
    per_example = task.eval_losses(model, [(x, y)])
    assert per_example.shape == (100,) and torch.allclose(per_example, 0.5 * y.pow(2))


def test_loss_of_a_built_model_is_finite_and_has_gradients():
    task = FourierTask(depth=2, modes=32)
    model = task.build_model(16)
    mup.set_base_shapes(model, None)
    task.initialize(model)
    loss = task.loss(model, task.batch(0, 8, CPU))
    loss.backward()
    assert torch.isfinite(loss) and model.readout.weight.grad.abs().sum() > 0


def test_describe_round_trips_and_with_depth_keeps_the_rest():
    task = FourierTask(depth=3, seed=7, eval_examples=64, modes=32)
    rebuilt = task_from_spec(task.describe())
    assert isinstance(rebuilt, FourierTask) and rebuilt.describe() == task.describe()
    assert torch.equal(rebuilt.target.weights, task.target.weights)
    deeper = task.with_depth(5)
    assert deeper.describe() == {**task.describe(), "depth": 5}


def test_pickles_without_device_copies():
    task = FourierTask(modes=32)
    task.target(torch.zeros(1, 8))  # caches the tensors on the CPU
    restored = pickle.loads(pickle.dumps(task))
    assert restored.target._on_device == {}
    assert torch.equal(restored.target(torch.zeros(2, 8)), task.target(torch.zeros(2, 8)))
