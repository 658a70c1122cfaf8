"""Adam moments carried through growth by zero-padding (``--carry-optimizer``)."""

from __future__ import annotations

import pytest
import torch

from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.growth import grow_checkpoint
from hpogrow.parametrize import build_model
from hpogrow.train import TrainConfig, make_optimizer, train

from .helpers import MLP


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
    assert not (tmp_path / "x").exists()
