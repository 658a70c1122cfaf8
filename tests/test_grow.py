"""Shrink–zero-pad–perturb: shapes, eq. 1, no double rescaling, μP learning rates, function preservation."""

from __future__ import annotations

import pytest
import torch

from hpogrow.checkpoint import load_model, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.grow import grow_checkpoint, growth_warnings, plan_growth, shrink_zero_pad_perturb
from hpogrow.parametrize import build_model, count_parameters
from hpogrow.train import TrainConfig, TrainState, make_optimizer


def _trained_like(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Give every parameter non-trivial values, as training would (readout and query included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.3 + 0.1)
    return model


def test_szp_puts_shrunk_base_in_top_left_and_mup_init_around_it(lm_task):
    base = _trained_like(build_model(lm_task, 32, 32, seed=0))
    fresh = build_model(lm_task, 64, 32, seed=7)
    grown = shrink_zero_pad_perturb(base, build_model(lm_task, 64, 32, seed=7), shrink=0.4)
    base_parameters, fresh_parameters = dict(base.named_parameters()), dict(fresh.named_parameters())
    for name, parameter in grown.named_parameters():
        source, init = base_parameters[name], fresh_parameters[name]
        assert parameter.shape == init.shape
        block = tuple(slice(0, n) for n in source.shape)
        constant = 1.0 if ".ln_" in name or name.startswith("ln_f") else 0.0
        scale = 64 / 32 if name == "readout.weight" else 1.0  # readout compensation
        remainder = parameter.detach().clone()
        remainder[block] -= 0.4 * scale * (source - constant)
        # what is left is exactly the target's own μP initialisation (the perturbation)
        torch.testing.assert_close(remainder, init.detach(), rtol=0, atol=1e-6)


def test_perturbation_has_mup_init_std_per_layer(lm_task):
    base = _trained_like(build_model(lm_task, 32, 32, seed=0))
    grown = shrink_zero_pad_perturb(base, build_model(lm_task, 256, 32, seed=3), shrink=0.4)
    for name, parameter in grown.named_parameters():
        if parameter.dim() != 2 or "query" in name or "readout" in name:
            continue
        source = dict(base.named_parameters())[name]
        remainder = parameter.detach().clone()
        remainder[: source.shape[0], : source.shape[1]] -= 0.4 * source
        expected = 1.0 if "embedding" in name else parameter.shape[1] ** -0.5  # μP: constant / 1/fan_in
        if name.endswith("proj.weight"):
            expected *= (2 * lm_task.depth) ** -0.5
        assert remainder.std().item() == pytest.approx(expected, rel=0.05), name


def test_zero_pad_with_readout_compensation_preserves_mlp_function(mlp_task):
    torch.set_default_dtype(torch.float64)
    try:
        base = _trained_like(build_model(mlp_task, 16, 16, seed=0))
        target = shrink_zero_pad_perturb(base, build_model(mlp_task, 48, 16, seed=1), shrink=1.0, noise_scale=0.0)
        uncompensated = shrink_zero_pad_perturb(base, build_model(mlp_task, 48, 16, seed=1), shrink=1.0,
                                                noise_scale=0.0, readout_compensation=False)
        x = torch.rand(256, 8) - 0.5
        assert (target(x) - base(x)).abs().max().item() < 1e-5
        # without compensation MuReadout's 1/width_mult divides the weight term by 3
        assert (uncompensated(x) - base(x)).abs().max().item() > 1e-2
        bias = base.readout.bias.detach()
        torch.testing.assert_close((uncompensated(x) - bias) * 3, base(x) - bias)
    finally:
        torch.set_default_dtype(torch.float32)


def test_no_double_rescaling_through_checkpoints(mlp_task, tmp_path):
    base = _trained_like(build_model(mlp_task, 16, 16, seed=0))
    path = save_checkpoint(tmp_path / "base", base, task=mlp_task, width=16, base_width=16, seed=0, state=TrainState())
    reloaded, _ = load_model(path, mlp_task)
    for (name, a), b in zip(base.state_dict().items(), reloaded.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)  # set_base_shapes did not rescale
    grown = grow_checkpoint(path, tmp_path / "grown", target_width=32, shrink=1.0, noise_scale=0.0, task=mlp_task)
    target, _ = load_model(grown.path, mlp_task)
    # readout: exactly base × width ratio (the compensation), never × sqrt(width ratio) again
    torch.testing.assert_close(target.readout.weight[:, :16], base.readout.weight * 2, rtol=0, atol=0)
    torch.testing.assert_close(target.readout.bias, base.readout.bias, rtol=0, atol=0)
    # hidden biases copied unchanged (set_base_shapes rescales Linear biases at init only)
    torch.testing.assert_close(target.blocks[0].fc1.bias[:16], base.blocks[0].fc1.bias, rtol=0, atol=0)
    assert target.blocks[0].fc1.bias[16:].abs().max() == 0


def test_mup_learning_rates_on_grown_model(lm_task, tmp_path):
    base = build_model(lm_task, 32, 32, seed=0)
    path = save_checkpoint(tmp_path / "base", base, task=lm_task, width=32, base_width=32, seed=0, state=TrainState())
    grown = grow_checkpoint(path, tmp_path / "grown", target_width=128, task=lm_task)
    model, _ = load_model(grown.path, lm_task)
    optimizer = make_optimizer(model, TrainConfig(learning_rate=0.01, batch_size=4, tokens=64))
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        expected = 0.01 / 4 if parameter.infshape.ninf() == 2 else 0.01  # matrix-like: lr / width_mult
        assert lr_of[id(parameter)] == pytest.approx(expected), name
        assert parameter.infshape.width_mult() == (4 if parameter.infshape.ninf() else 1) or "readout" in name
    assert model.readout.width_mult() == 4


def test_plan_growth_picks_width_closest_to_parameter_ratio(lm_task):
    plan = plan_growth(lm_task, 32, factor=2.0)
    assert plan.target_width % lm_task.width_step == 0
    neighbours = [plan.target_width - 8, plan.target_width + 8]
    ratio = lambda w: plan_growth(lm_task, 32, target_width=w).param_ratio  # noqa: E731
    assert all(abs(ratio(w) / 2 - 1) >= abs(plan.param_ratio / 2 - 1) for w in neighbours)
    with pytest.raises(UsageError, match="multiple of 8"):
        plan_growth(lm_task, 32, target_width=50)
    with pytest.raises(UsageError, match="above 1"):
        plan_growth(lm_task, 32, factor=0.5)


def test_growth_warnings_follow_the_papers():
    assert growth_warnings(2.0, 0.4) == []
    assert "unreliable" in growth_warnings(3.0, 0.4)[0]
    assert "scratch" in growth_warnings(5.0, 0.4)[0]
    assert "0.6" in growth_warnings(2.0, 0.8)[0]


def test_growing_into_a_different_architecture_is_a_usage_error(mlp_task):
    from hpogrow.tasks import FourierTask

    base = build_model(FourierTask(depth=1, modes=16), 16, 16, seed=0)
    with pytest.raises(UsageError, match="cannot grow"):
        shrink_zero_pad_perturb(base, build_model(mlp_task, 32, 16, seed=0))


def test_counts_leave_embedding_tables_out_of_compute(lm_task):
    counts = count_parameters(build_model(lm_task, 32, 32, seed=0))
    assert counts.total - counts.compute == (256 + 16) * 32

