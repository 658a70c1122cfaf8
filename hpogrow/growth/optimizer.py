"""Carrying Adam moments through growth (``--carry-optimizer``, an experiment: the papers start
the grown model with a fresh optimizer)."""

from __future__ import annotations

import torch
from torch import nn

from hpogrow.train import TrainConfig, make_optimizer


@torch.no_grad()
def carry_optimizer_state(base: nn.Module, base_state: dict, target: nn.Module, config: TrainConfig) -> dict:
    """Adam moments of ``base`` zero-padded into ``target``'s shapes, by parameter name.

    Valid for operators that leave every base parameter in the top-left block of the target
    parameter of the same name (``GrowthOperator.pads_optimizer_state``). Moments are padded,
    not shrunk; parameters new to the target (e.g. new blocks) start with empty state.

    Returns:
        A state dict for ``make_optimizer(target, config)``.
    """
    base_optimizer = make_optimizer(base, config)
    base_optimizer.load_state_dict(base_state)
    by_name = {name: base_optimizer.state[p] for name, p in base.named_parameters() if p in base_optimizer.state}
    target_optimizer = make_optimizer(target, config)
    for name, parameter in target.named_parameters():
        state = by_name.get(name)
        if state is None or any(b > t for b, t in zip(state["exp_avg"].shape, parameter.shape)):
            continue
        block = tuple(slice(0, n) for n in state["exp_avg"].shape)
        padded = {key: torch.zeros_like(parameter) for key in ("exp_avg", "exp_avg_sq")}
        for key, value in padded.items():
            value[block] = state[key]
        target_optimizer.state[parameter] = {"step": state["step"].clone(), **padded}
    return target_optimizer.state_dict()
