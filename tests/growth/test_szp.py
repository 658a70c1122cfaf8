"""Shrink–zero-pad–perturb and zero-pad: eq. 1, the μP init as perturbation, readout compensation."""

from __future__ import annotations

import pytest
import torch

from hpogrow.errors import UsageError
from hpogrow.growth import ShrinkZeroPadPerturb, shrink_zero_pad_perturb
from hpogrow.parametrize import build_model
from hpogrow.tasks import FourierTask

from .helpers import trained_like


def test_szp_puts_shrunk_base_in_top_left_and_mup_init_around_it(lm_task):
    base = trained_like(build_model(lm_task, 32, 32, seed=0))
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
    base = trained_like(build_model(lm_task, 32, 32, seed=0))
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


def test_zero_pad_with_readout_compensation_preserves_mlp_function(mlp_task, float64):
    base = trained_like(build_model(mlp_task, 16, 16, seed=0))
    target = shrink_zero_pad_perturb(base, build_model(mlp_task, 48, 16, seed=1), shrink=1.0, noise_scale=0.0)
    uncompensated = shrink_zero_pad_perturb(base, build_model(mlp_task, 48, 16, seed=1), shrink=1.0,
                                            noise_scale=0.0, readout_compensation=False)
    x = torch.rand(256, 8) - 0.5
    assert (target(x) - base(x)).abs().max().item() < 1e-5
    # without compensation MuReadout's 1/width_mult divides the weight term by 3
    assert (uncompensated(x) - base(x)).abs().max().item() > 1e-2
    bias = base.readout.bias.detach()
    torch.testing.assert_close((uncompensated(x) - bias) * 3, base(x) - bias)


def test_growing_into_a_different_architecture_is_a_usage_error(mlp_task):
    base = build_model(FourierTask(depth=1, modes=16), 16, 16, seed=0)
    with pytest.raises(UsageError, match="cannot grow"):
        shrink_zero_pad_perturb(base, build_model(mlp_task, 32, 16, seed=0))


def test_szp_options_are_checked():
    with pytest.raises(UsageError, match="between 0 and 1"):
        ShrinkZeroPadPerturb(shrink=1.5)
    with pytest.raises(UsageError, match="at least 0"):
        ShrinkZeroPadPerturb(noise_scale=-1.0)
