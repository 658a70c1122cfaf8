"""Growing a checkpoint folder: nothing rescaled twice, μP learning rates, lineage."""

from __future__ import annotations

import pytest
import torch

from hpogrow.record.codec import from_attrs
from hpogrow.record.lineage import GrowthLineage
from hpogrow.checkpoint import load_model, read_checkpoint, save_checkpoint
from hpogrow.growth import grow_checkpoint
from hpogrow.parametrize import build_model
from hpogrow.train import TrainConfig, TrainState, make_optimizer

from .helpers import trained_like


def test_no_double_rescaling_through_checkpoints(mlp_task, tmp_path):
    base = trained_like(build_model(mlp_task, 16, 16, seed=0))
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


def test_grown_folder_records_its_lineage_and_continues_the_token_stream(mlp_task, tmp_path):
    base = build_model(mlp_task, 16, 16, seed=0)
    path = save_checkpoint(tmp_path / "base", base, task=mlp_task, width=16, base_width=16, seed=0,
                           state=TrainState(step=5, tokens_seen=320, data_position=320))
    result = grow_checkpoint(path, tmp_path / "grown", factor=2.0, operator="szp+zero-block", task=mlp_task)
    grown = read_checkpoint(result.path)
    lineage = from_attrs(GrowthLineage, grown.config["lineage"])  # the same record a search's trial carries
    assert lineage.grow_op == "szp+zero-block" and lineage.base_tokens == 320
    assert lineage.target_depth == result.plan.target_depth == 3
    assert lineage.grow_factor == 2.0 and lineage.param_ratio == pytest.approx(result.plan.param_ratio)
    assert grown.state.data_position == 320 and grown.state.tokens_seen == 0
