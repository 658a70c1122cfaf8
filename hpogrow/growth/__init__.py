"""Growth: choosing the target shape, the operators, and growing a checkpoint folder.

- :mod:`~hpogrow.growth.plan`: the target shape for a growth factor g (:func:`plan_growth`).
- Operators, behind :class:`GrowthOperator`: ``szp`` (default, paper 002 eq. 1), ``zero-pad``,
  ``clone`` (width) and ``stack``, ``zero-block`` (depth); :func:`register_operator` adds one.
- :mod:`~hpogrow.growth.checkpoint`: :func:`grow_checkpoint`, a checkpoint folder in, a grown
  one out; :mod:`~hpogrow.growth.optimizer`: Adam moments carried through growth.
"""

from __future__ import annotations

from hpogrow.growth.base import GrowthOperator
from hpogrow.growth.checkpoint import GrowthResult, grow_checkpoint, grow_model
from hpogrow.growth.clone import CLONE_NOISE_SCALE, Clone, clone_width
from hpogrow.growth.depth import Stack, ZeroBlock
from hpogrow.growth.optimizer import carry_optimizer_state
from hpogrow.growth.plan import GrowthPlan, growth_warnings, plan_growth
from hpogrow.growth.registry import OPERATORS, operator_class, parse_operators, register_operator, uses_shrink
from hpogrow.growth.szp import ShrinkZeroPadPerturb, ZeroPad, shrink_zero_pad_perturb

__all__ = ["CLONE_NOISE_SCALE", "OPERATORS", "Clone", "GrowthOperator", "GrowthPlan", "GrowthResult",
           "ShrinkZeroPadPerturb", "Stack", "ZeroBlock", "ZeroPad", "carry_optimizer_state", "clone_width",
           "grow_checkpoint", "grow_model", "growth_warnings", "operator_class", "parse_operators", "plan_growth",
           "register_operator", "shrink_zero_pad_perturb", "uses_shrink"]
