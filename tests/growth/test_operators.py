"""Every operator, through the same path: function preservation and μP bookkeeping after growth."""

from __future__ import annotations

import pytest

from hpogrow.checkpoint import load_model, save_checkpoint
from hpogrow.growth import grow_checkpoint, grow_model, parse_operators, plan_growth
from hpogrow.parametrize import build_model
from hpogrow.train import TrainConfig, TrainState, make_optimizer

from .helpers import GPT, MLP, max_difference, trained_like


@pytest.mark.parametrize("task, spec, target_width, target_depth", [
    (GPT, "clone", 64, None),          # integer width ratio: LayerNorm statistics unchanged
    (MLP, "clone", 40, None),          # norm-free: any ratio
    (MLP, "zero-pad", 40, None),       # norm-free, readout compensation
    (GPT, "zero-block", None, 4),
    (MLP, "zero-block", None, 3),
    (GPT, "clone+zero-block", 64, 3),
])
def test_function_preserving_operators(float64, task, spec, target_width, target_depth):
    base = trained_like(build_model(task, 32, 32, seed=0))
    width_operator, depth_operator = parse_operators(spec, noise_scale=0.0)  # clone: the exact copy
    plan = plan_growth(task, 32, 2.0, target_width, target_depth, grow_width=width_operator is not None,
                       grow_depth=depth_operator is not None)
    grown, _ = grow_model(base, task, plan, 32, width_operator=width_operator, depth_operator=depth_operator, seed=5)
    assert max_difference(task, base, grown) < 1e-5


@pytest.mark.parametrize("spec", ["szp", "zero-pad", "clone", "stack", "zero-block", "szp+zero-block"])
def test_mup_bookkeeping_after_each_operator(spec, tmp_path):
    base = build_model(GPT, 32, 32, seed=0)
    path = save_checkpoint(tmp_path / "base", base, task=GPT, width=32, base_width=32, seed=0, state=TrainState())
    result = grow_checkpoint(path, tmp_path / "grown", operator=spec, factor=2.0, task=GPT)
    grown, task = load_model(result.path)
    assert task.depth == result.plan.target_depth
    width_mult = result.plan.target_width / 32
    config = TrainConfig(learning_rate=0.01, batch_size=4, tokens=64)
    lr_of = {id(p): g["lr"] for g in make_optimizer(grown, config).param_groups for p in g["params"]}
    for name, parameter in grown.named_parameters():
        assert hasattr(parameter, "infshape"), name
        expected_mult = width_mult if parameter.infshape.ninf() else 1.0
        assert parameter.infshape.width_mult() == pytest.approx(expected_mult), name
        expected_lr = 0.01 / width_mult if parameter.infshape.ninf() == 2 else 0.01
        assert lr_of[id(parameter)] == pytest.approx(expected_lr), name
    assert result.plan.param_ratio == pytest.approx(result.plan.target_params / result.plan.base_params)
