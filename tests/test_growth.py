"""Every growth operator: what it preserves, μP bookkeeping after growth, composition, optimizer carry."""

from __future__ import annotations

import pytest
import torch

from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.grow import grow_checkpoint, grow_model, plan_growth
from hpogrow.growth import Clone, Stack, ZeroBlock, ZeroPad, parse_operators
from hpogrow.parametrize import build_model
from hpogrow.tasks import FourierTask, LanguageTask
from hpogrow.train import TrainConfig, TrainState, make_optimizer, train
from tests.test_grow import _trained_like


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def _grow(task, base, base_width, operator_spec, target_width=None, target_depth=None):
    width_op, depth_op = parse_operators(operator_spec, noise_scale=None)
    plan = plan_growth(task, base_width, 2.0, target_width, target_depth, grow_width=width_op is not None,
                       grow_depth=depth_op is not None)
    return grow_model(base, task, plan, base_width, width_operator=width_op, depth_operator=depth_op, seed=5)


def _max_difference(task, base, grown) -> float:
    batch = task.batch(0, 16, torch.device("cpu"))
    with torch.no_grad():
        return (grown(batch[0]).double() - base(batch[0]).double()).abs().max().item()


GPT = LanguageTask(depth=2, head_size=8, seq_len=16)
MLP = FourierTask(depth=2, modes=64)


@pytest.mark.parametrize("task, spec, target_width, target_depth", [
    (GPT, "clone", 64, None),          # integer width ratio: LayerNorm statistics unchanged
    (MLP, "clone", 40, None),          # norm-free: any ratio
    (MLP, "zero-pad", 40, None),       # norm-free, readout compensation
    (GPT, "zero-block", None, 4),
    (MLP, "zero-block", None, 3),
    (GPT, "clone+zero-block", 64, 3),
])
def test_function_preserving_operators(float64, task, spec, target_width, target_depth):
    base = _trained_like(build_model(task, 32, 32, seed=0))
    grown, _ = _grow(task, base, 32, spec, target_width, target_depth)
    assert _max_difference(task, base, grown) < 1e-5


def test_stack_does_not_preserve_the_function(float64):
    base = _trained_like(build_model(GPT, 32, 32, seed=0))
    grown, deep = _grow(GPT, base, 32, "stack", target_depth=4)
    assert _max_difference(GPT, base, grown) > 1e-3
    for name, parameter in grown.named_parameters():
        if name.startswith("blocks.3."):
            torch.testing.assert_close(parameter, dict(base.named_parameters())[name.replace("blocks.3.", "blocks.1.")])


def test_clone_without_readout_compensation_breaks_preservation(float64):
    """The compensation is what makes clone exact: undoing it must show up."""
    base = _trained_like(build_model(MLP, 16, 16, seed=0))
    grown, _ = _grow(MLP, base, 16, "clone", target_width=32)
    with torch.no_grad():
        grown.readout.weight /= 2  # what forgetting width_mult_t / width_mult_b would leave
    assert _max_difference(MLP, base, grown) > 1e-3


def test_clone_noise_breaks_symmetry_around_the_copy(float64):
    base = _trained_like(build_model(MLP, 16, 16, seed=0))
    target = build_model(MLP, 32, 16, seed=1)
    noisy = Clone(noise_scale=0.1).grow(base, target, MLP)
    exact, _ = _grow(MLP, base, 16, "clone", target_width=32)
    difference = (noisy.blocks[0].fc1.weight - exact.blocks[0].fc1.weight).std().item()
    assert difference == pytest.approx(0.1 * 32 ** -0.5, rel=0.15)  # s × the μP init std


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


def test_composed_growth_splits_the_factor_and_reports_the_ratio():
    plan = plan_growth(GPT, 32, 2.0, grow_width=True, grow_depth=True)
    assert plan.target_depth == 3 and plan.target_width >= 32
    assert plan.param_ratio == pytest.approx(2.0, rel=0.2)
    depth_only = plan_growth(GPT, 32, 2.0, grow_width=False, grow_depth=True)
    assert depth_only.target_width == 32
    ratio = lambda depth: plan_growth(GPT, 32, grow_width=False, grow_depth=True, target_depth=depth).param_ratio  # noqa: E731
    neighbours = [depth_only.target_depth - 1, depth_only.target_depth + 1]
    assert all(abs(ratio(d) / 2 - 1) >= abs(depth_only.param_ratio / 2 - 1) for d in neighbours if d > 2)


def test_operator_specs():
    assert [type(op) for op in parse_operators("zero-pad")] == [ZeroPad, type(None)]
    assert [type(op) for op in parse_operators("clone+stack")] == [Clone, Stack]
    assert type(parse_operators("zero-block")[1]) is ZeroBlock
    with pytest.raises(UsageError, match="unknown operator"):
        parse_operators("net2wider")
    with pytest.raises(UsageError, match="at most one width"):
        parse_operators("szp+clone")


def test_carried_optimizer_state_is_padded_and_used(tmp_path):
    config = TrainConfig(learning_rate=1e-2, batch_size=32, tokens=32 * 8, evaluations=2, device="cpu")
    base = build_model(MLP, 16, 16, seed=0)
    result = train(base, MLP, config)
    path = save_checkpoint(tmp_path / "base", base, task=MLP, width=16, base_width=16, seed=0, state=result.state,
                           train_config=config, optimizer=result.optimizer)
    fresh = grow_checkpoint(path, tmp_path / "fresh", target_width=32, task=MLP)
    assert not (fresh.path / "optimizer.pt").exists()  # fresh optimizer by default
    carried = grow_checkpoint(path, tmp_path / "carried", target_width=32, carry_optimizer=True, task=MLP)
    grown, _ = load_model(carried.path, MLP)
    optimizer = make_optimizer(grown, config)
    optimizer.load_state_dict(load_optimizer_state(read_checkpoint(carried.path)))
    fc1 = optimizer.state[grown.blocks[0].fc1.weight]
    base_fc1 = result.optimizer.state[base.blocks[0].fc1.weight]
    torch.testing.assert_close(fc1["exp_avg"][:16, :16], base_fc1["exp_avg"])
    torch.testing.assert_close(fc1["exp_avg_sq"][:16, :16], base_fc1["exp_avg_sq"])
    assert fc1["exp_avg"][16:].abs().max() == 0 and fc1["step"] == 8
    with pytest.raises(UsageError, match="not clone"):
        grow_checkpoint(path, tmp_path / "x", target_width=32, carry_optimizer=True, operator="clone", task=MLP)
