"""The growth-operator extension point.

An operator writes a grown model into a *fresh* target: the target was built at the new shape,
had ``mup.set_base_shapes(rescale_params=True)`` applied to its own fresh init and was
μP-initialised (``hpogrow.parametrize.build_model``). The operator then copies from the trained
base under ``torch.no_grad()``, so no parameter is ever rescaled twice (docs/method.md, "μP with mup").

Width operators change the width at fixed depth; depth operators change the depth at fixed
width. Growing both composes a width operator and then a depth operator.

An operator says what it does through class attributes (``kind``, ``uses_shrink``,
``pads_optimizer_state``, ``preserves_function``), so nothing elsewhere checks its name; a new
operator is a subclass registered with :func:`hpogrow.growth.register_operator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import mup
from torch import nn

from hpogrow.tasks.base import Task

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._BatchNorm)


class GrowthOperator(ABC):
    """Maps a trained base model into a freshly μP-initialised target, in place.

    Example (a width operator that keeps the fresh μP init and copies nothing: μP from scratch
    under another name)::

        from typing import ClassVar
        from hpogrow.growth import GrowthOperator, register_operator

        @register_operator
        class Restart(GrowthOperator):
            name: ClassVar[str] = "restart"
            kind: ClassVar[str] = "width"
            preserves_function: ClassVar[str] = "no (nothing is copied)"

            def grow(self, base, target, task):
                return target
    """

    name: ClassVar[str]
    """What ``--grow-op`` calls it (no ``+``: that joins a width and a depth operator)."""
    kind: ClassVar[Literal["width", "depth"]]
    """Which dimension it grows."""
    preserves_function: ClassVar[str]
    """When the grown model computes the same function as the base (one line)."""
    uses_shrink: ClassVar[bool] = False
    """Whether ``--shrink`` (λ) acts in it, so the papers' caution above λ = 0.6 applies."""
    pads_optimizer_state: ClassVar[bool] = False
    """Whether every base parameter lands unmoved in the top-left block of the target parameter
    of the same name, so Adam moments can be carried by zero-padding (``--carry-optimizer``)."""

    @classmethod
    def from_options(cls, shrink: float, noise_scale: float | None) -> GrowthOperator:
        """The operator as ``--grow-op`` builds it from ``--shrink`` and ``--noise-scale``
        (``None``: the operator's own default). Default: ``cls()``, ignoring both."""
        return cls()

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
