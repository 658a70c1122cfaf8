"""The growth-operator extension point.

An operator writes a grown model into a *fresh* target: the target was built at the new shape,
had ``mup.set_base_shapes(rescale_params=True)`` applied to its own fresh init and was
μP-initialised (``hpogrow.parametrize.build_model``). The operator then copies from the trained
base under ``torch.no_grad()``, so no parameter is ever rescaled twice (GUIDE §2).

Width operators change the width at fixed depth; depth operators change the depth at fixed
width. Growing both composes a width operator and then a depth operator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import mup
from torch import nn

from hpogrow.tasks.base import Task

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._BatchNorm)


class GrowthOperator(ABC):
    """Maps a trained base model into a freshly μP-initialised target, in place."""

    name: ClassVar[str]
    kind: ClassVar[Literal["width", "depth"]]
    preserves_function: ClassVar[str]
    """When the grown model computes the same function as the base (one line)."""

    @abstractmethod
    def grow(self, base: nn.Module, target: nn.Module, task: Task) -> nn.Module:
        """Write the grown weights into ``target`` and return it."""


def init_constants(model: nn.Module) -> dict[int, float]:
    """``id(parameter) -> c``, the constant a parameter is initialised around: 1 for
    normalisation gains; parameters not listed are initialised around 0."""
    return {id(m.weight): 1.0 for m in model.modules() if isinstance(m, NORMS) and getattr(m, "weight", None) is not None}


def readout_scales(base: nn.Module, target: nn.Module) -> dict[str, float]:
    """``width_mult_target / width_mult_base`` for every ``MuReadout`` weight, by name: the
    factor that makes a copied readout weight act the same under mup's ``1/width_mult``."""
    base_modules = dict(base.named_modules())
    return {f"{name}.weight": module.width_mult() / base_modules[name].width_mult()
            for name, module in target.named_modules() if isinstance(module, mup.MuReadout)}
