"""The μP residual MLP (hpogrow/models/mlp.py): shapes, μP initialisation, width multipliers."""

from __future__ import annotations

import mup
import pytest
import torch

from hpogrow.models.mlp import ResidualMLP, ResidualMLPConfig


def _mup_mlp(width: int, base_width: int = 8) -> ResidualMLP:
    torch.manual_seed(0)
    model = ResidualMLP(ResidualMLPConfig(width=width, depth=2))
    with torch.device("meta"):
        shapes = mup.make_base_shapes(ResidualMLP(ResidualMLPConfig(base_width)),
                                      ResidualMLP(ResidualMLPConfig(2 * base_width)))
    mup.set_base_shapes(model, shapes)
    model.initialize()
    return model


def test_config_rejects_zero_width_or_depth():
    with pytest.raises(ValueError, match="at least 1"):
        ResidualMLPConfig(width=0)
    with pytest.raises(ValueError, match="at least 1"):
        ResidualMLPConfig(width=8, depth=0)


def test_maps_inputs_to_one_prediction_each_and_starts_at_zero():
    model = _mup_mlp(32)
    predictions = model(torch.randn(5, 8))  # (B, 8) -> (B,)
    assert predictions.shape == (5,)
    assert torch.equal(predictions, torch.zeros(5))  # zero readout


def test_initialize_zeroes_biases_and_readout_and_scales_weights_by_fan_in():
    model = _mup_mlp(256)
    for block in model.blocks:
        assert torch.count_nonzero(block.fc1.bias) == 0 and torch.count_nonzero(block.fc2.bias) == 0
        assert block.fc1.weight.std().item() == pytest.approx(256 ** -0.5, rel=0.05)
    assert torch.count_nonzero(model.readout.weight) == 0 and torch.count_nonzero(model.readout.bias) == 0
    assert model.input.weight.std().item() == pytest.approx(8 ** -0.5, rel=0.1)


def test_blocks_are_residual_a_zeroed_fc2_makes_a_block_the_identity():
    model = _mup_mlp(16)
    x = torch.randn(4, 16)
    block = model.blocks[0]
    torch.nn.init.zeros_(block.fc2.weight)
    torch.nn.init.zeros_(block.fc2.bias)
    assert torch.equal(block(x), x)


def test_a_wider_model_on_the_same_base_has_width_multiplier_width_over_base():
    wide = _mup_mlp(64, base_width=8)
    assert wide.readout.weight.infshape.width_mult() == 8
    assert wide.blocks[1].fc1.weight.infshape.width_mult() == 8
    assert wide.blocks[1].fc1.weight.infshape.ninf() == 2
    assert wide.input.weight.infshape.ninf() == 1  # fan-in is the fixed input dimension: vector-like
    torch.nn.init.ones_(wide.readout.weight)
    h = torch.ones(1, 64)
    # MuReadout divides its input by the width multiplier
    assert wide.readout(h).item() == pytest.approx(64 / 8)
