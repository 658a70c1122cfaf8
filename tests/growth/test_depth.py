"""Depth operators: ``stack`` repeats the trained blocks, ``zero-block`` adds identity blocks."""

from __future__ import annotations

import torch

from hpogrow.growth import Stack, ZeroBlock
from hpogrow.parametrize import build_model

from .helpers import GPT, MLP, max_difference, trained_like


def test_stack_repeats_blocks_and_does_not_preserve_the_function(float64):
    base = trained_like(build_model(GPT, 32, 32, seed=0))
    grown = Stack().grow(base, build_model(GPT.with_depth(4), 32, 32, seed=5), GPT.with_depth(4))
    assert max_difference(GPT, base, grown) > 1e-3
    for name, parameter in grown.named_parameters():
        if name.startswith("blocks.3."):
            torch.testing.assert_close(parameter, dict(base.named_parameters())[name.replace("blocks.3.", "blocks.1.")])


def test_zero_block_keeps_the_function_and_zeroes_only_the_new_residual_outputs(float64):
    base = trained_like(build_model(MLP, 16, 16, seed=0))
    deep = MLP.with_depth(3)
    grown = ZeroBlock().grow(base, build_model(deep, 16, 16, seed=5), deep)
    assert max_difference(MLP, base, grown) < 1e-12
    new = dict(grown.blocks[2].named_parameters())
    assert new["fc2.weight"].abs().max() == 0 and new["fc1.weight"].abs().max() > 0  # gradients reach fc2 through fc1
