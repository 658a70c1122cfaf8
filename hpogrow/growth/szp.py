"""Shrink–zero-pad–perturb (paper 002, eq. 1) and pure zero-padding.

For every parameter of the target, with the base tensor ``θ_b`` in the top-left block::

    θ_t = c + s·(init_t − c) + λ · Pad0(θ_b − c)

``init_t`` is the target's own fresh μP initialisation (the perturbation; ``s`` scales it, 1 by
default), ``λ`` is ``shrink`` (0.4 by default) and ``c`` is the constant a parameter is
initialised around: 1 for normalisation gains, 0 for everything else. For weights, embeddings
and biases (``c = 0``) this is exactly eq. 1, ``λ·Pad0(θ_b) + N(0, σ_μP²)``; for gains it shrinks
the base's deviation from 1 instead of the gain itself. ``λ = 0`` is μP from scratch; ``λ = 1``
with ``s = 0`` is pure zero-padding (:class:`ZeroPad`).

**λ acts on effective weights.** mup's ``MuReadout`` computes ``W x / width_mult``, so a copied
readout block is multiplied by ``d_target / d_base`` (readout compensation): the grown readout
then contributes exactly ``λ`` times the base's logits. Every other layer uses its stored weight
as is.

**Function preservation.** ``szp`` never preserves it (λ < 1 and noise). ``zero-pad`` preserves
it exactly in networks without normalisation layers (the new units get zero input and output
weights); LayerNorm over the padded width changes the old coordinates, so a transformer's
function is not preserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from hpogrow.errors import UsageError
from hpogrow.growth.base import GrowthOperator, init_constants, readout_scales
from hpogrow.tasks.base import Task


@torch.no_grad()
def shrink_zero_pad_perturb(base: nn.Module, target: nn.Module, shrink: float = 0.4,
                            noise_scale: float = 1.0, readout_compensation: bool = True) -> nn.Module:
    """Write ``c + s·(init_t − c) + λ·Pad0(θ_b − c)`` into ``target`` in place and return it.

    Args:
        base: trained model with base shapes set.
        target: freshly μP-initialised model (``hpogrow.parametrize.build_model``), same
            parameter names, every dimension at least the base's.
        shrink: λ in eq. 1.
        noise_scale: multiplier ``s`` of the μP-init perturbation (1 = eq. 1, 0 = none).
        readout_compensation: let λ act on the readout's effective weight (see module doc).
    """
    if not 0 <= shrink <= 1:
        raise UsageError(f"shrink {shrink} must be between 0 and 1 (paper 002 uses 0.4)")
    base_parameters = dict(base.named_parameters())
    constants = init_constants(target)
    readout = readout_scales(base, target) if readout_compensation else {}
    for name, parameter in target.named_parameters():
        source = matching_source(base_parameters, name, parameter)
        constant = constants.get(id(parameter), 0.0)
        parameter.sub_(constant).mul_(noise_scale).add_(constant)
        block = tuple(slice(0, size) for size in source.shape)
        parameter[block] += shrink * readout.get(name, 1.0) * (source.to(parameter) - constant)
    return target


def matching_source(base_parameters: dict[str, torch.Tensor], name: str, parameter: torch.Tensor) -> torch.Tensor:
    """The base parameter of the same name that fits in ``parameter``; a usage error otherwise."""
    source = base_parameters.get(name)
    if source is None or source.dim() != parameter.dim() or any(
            b > t for b, t in zip(source.shape, parameter.shape)):
        raise UsageError(f"cannot grow {name}: base shape {None if source is None else tuple(source.shape)} "
                         f"does not fit in target shape {tuple(parameter.shape)}; the checkpoint is from another architecture")
    return source


@dataclass(frozen=True)
class ShrinkZeroPadPerturb(GrowthOperator):
    """``szp``: λ·Pad0(θ_b) + s·μP init (paper 002, eq. 1)."""

    shrink: float = 0.4
    noise_scale: float = 1.0
    name: ClassVar[str] = "szp"
    kind: ClassVar[str] = "width"
    preserves_function: ClassVar[str] = "never (λ < 1 shrinks, the μP init perturbs)"
    uses_shrink: ClassVar[bool] = True
    pads_optimizer_state: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not 0 <= self.shrink <= 1:
            raise UsageError(f"shrink {self.shrink} must be between 0 and 1 (paper 002 uses 0.4)")
        if not self.noise_scale >= 0:
            raise UsageError(f"noise scale {self.noise_scale} must be at least 0 (1 = the μP init, paper 002)")

    @classmethod
    def from_options(cls, shrink: float, noise_scale: float | None) -> ShrinkZeroPadPerturb:
        return cls(shrink=shrink, noise_scale=1.0 if noise_scale is None else noise_scale)

    def grow(self, base: nn.Module, target: nn.Module, task: Task) -> nn.Module:
        return shrink_zero_pad_perturb(base, target, self.shrink, self.noise_scale)


@dataclass(frozen=True)
class ZeroPad(GrowthOperator):
    """``zero-pad``: Pad0(θ_b), λ = 1 and no perturbation."""

    name: ClassVar[str] = "zero-pad"
    kind: ClassVar[str] = "width"
    preserves_function: ClassVar[str] = "exactly in norm-free networks (with readout compensation); not with LayerNorm"
    pads_optimizer_state: ClassVar[bool] = True

    def grow(self, base: nn.Module, target: nn.Module, task: Task) -> nn.Module:
        return shrink_zero_pad_perturb(base, target, shrink=1.0, noise_scale=0.0)
