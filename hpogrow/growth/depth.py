"""Depth growth: ``stack`` (repeat the trained blocks) and ``zero-block`` (identity blocks).

Both need a task whose model keeps its residual blocks in ``{task.block_prefix}.{i}.`` and can
be built at another depth (``task.with_depth``); the target's μP base shapes are regenerated at
the target depth, since mup has no depth scaling and parameter names must match.

- ``stack``: target block ``i`` copies base block ``i mod L_b`` (StackBERT-style: the trained
  stack is repeated on top of itself); everything outside the blocks is copied. It does **not**
  preserve the function: the repeated blocks add their outputs again.
- ``zero-block``: the first ``L_b`` blocks and everything outside the blocks are copied; the new
  blocks keep their fresh μP init except their residual output projections
  (``task.residual_outputs``), which are zero, so each new block is the identity at first and the
  function is preserved exactly. Gradients still reach the zeroed projections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from hpogrow.errors import UsageError
from hpogrow.growth.base import GrowthOperator
from hpogrow.tasks.base import Task


def _split_block(task: Task, name: str) -> tuple[int | None, str]:
    """``blocks.3.attn.proj.weight -> (3, "attn.proj.weight")``; ``(None, name)`` outside blocks."""
    match = re.fullmatch(rf"{re.escape(task.block_prefix)}\.(\d+)\.(.+)", name)
    return (int(match.group(1)), match.group(2)) if match else (None, name)


def _prepare(base: nn.Module, target: nn.Module, task: Task) -> tuple[dict[str, torch.Tensor], int]:
    """The base's parameters by name and its depth, after checking the target can take them."""
    if not task.residual_outputs:
        raise UsageError(f"task {task.name!r} does not support depth growth (no residual blocks declared)")
    base_parameters = dict(base.named_parameters())
    for name, parameter in target.named_parameters():
        block, rest = _split_block(task, name)
        if block is None and (name not in base_parameters or base_parameters[name].shape != parameter.shape):
            raise UsageError(f"cannot grow depth: {name} differs between base and target; grow the width first")
    blocks = [_split_block(task, name)[0] for name in base_parameters]
    return base_parameters, 1 + max(block for block in blocks if block is not None)


@dataclass(frozen=True)
class Stack(GrowthOperator):
    """``stack``: block ``i`` of the target copies block ``i mod L_b`` of the base."""

    name: ClassVar[str] = "stack"
    kind: ClassVar[str] = "depth"
    preserves_function: ClassVar[str] = "no (repeated blocks add their outputs again)"

    @torch.no_grad()
    def grow(self, base: nn.Module, target: nn.Module, task: Task) -> nn.Module:
        base_parameters, depth = _prepare(base, target, task)
        for name, parameter in target.named_parameters():
            block, rest = _split_block(task, name)
            source = name if block is None else f"{task.block_prefix}.{block % depth}.{rest}"
            parameter.copy_(base_parameters[source])
        return target


@dataclass(frozen=True)
class ZeroBlock(GrowthOperator):
    """``zero-block``: copy the base; new blocks are fresh with zero residual output projections."""

    name: ClassVar[str] = "zero-block"
    kind: ClassVar[str] = "depth"
    preserves_function: ClassVar[str] = "exactly (new blocks start as the identity)"
    pads_optimizer_state: ClassVar[bool] = True

    @torch.no_grad()
    def grow(self, base: nn.Module, target: nn.Module, task: Task) -> nn.Module:
        base_parameters, depth = _prepare(base, target, task)
        for name, parameter in target.named_parameters():
            block, rest = _split_block(task, name)
            if block is None or block < depth:
                parameter.copy_(base_parameters[name])
            elif rest in task.residual_outputs:
                parameter.zero_()
        return target
