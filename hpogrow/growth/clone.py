"""``clone``: function-preserving width growth by duplicating units and heads (Net2Net /
HyperCloning style), with μP readout compensation.

Every width dimension of size ``d_b`` grows to ``d_t`` by the map ``g(j) = j mod d_b``: target
unit ``j`` copies base unit ``g(j)``. Because attention widths are laid out head-major
(``head × head_size``), this copies whole heads. For a weight that reads a width dimension
(an ``nn.Linear``'s input), each copied column is divided by how many copies its source unit
has, so the sum over copies equals the base's::

    W_t[i, j] = W_b[g(i), g(j)] / count(g(j))        (nn.Linear, MuReadout)
    E_t[v, j] = E_b[v, g(j)]                           (nn.Embedding: no width input)
    b_t[i]    = b_b[g(i)],  γ_t[i] = γ_b[g(i)]         (biases, norm gains)

``MuReadout`` weights are also multiplied by ``width_mult_t / width_mult_b`` (readout
compensation). The perturbation adds ``s·(init_t − c)`` (the target's own μP init, scaled).

**Why a perturbation by default.** Duplicated units receive identical gradients, so an exact
copy (``s = 0``) keeps them equal forever and never uses the added width (measured: difference
0.0 after 300 Adam steps). ``s = 0.1`` (:data:`CLONE_NOISE_SCALE`) is the largest scale measured
to keep the grown model's validation loss at step 0 within 1% of the base's (MLP +0.97% at
most, LM +0.15%, 3 seeds each), and every ``s > 0`` then lets the copies train apart and reached
a lower final loss than ``s = 0`` in every seed (``bench/clone_symmetry.py``: 32 → 64, 300 Adam
steps; at ``s = 0.1`` by 0.011 on the MLP and 0.010 on the LM). Larger scales trained a little
lower still (``s = 1``, paper 000's perturbation: 0.015 and 0.023) at the price of the
function (step-0 loss +69–158% on the MLP, +14–16% on the LM); pass ``--noise-scale`` for them.

**Function preservation.** Exact with ``s = 0`` for norm-free networks at any width; with
LayerNorm exact when ``d_t`` is a multiple of ``d_b`` (every unit copied equally often keeps the
mean and variance), and only approximate otherwise. With ``s > 0`` the function changes by the
perturbation alone, to first order in ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from hpogrow.errors import UsageError
from hpogrow.growth.base import GrowthOperator, init_constants, readout_scales
from hpogrow.growth.szp import matching_source
from hpogrow.tasks.base import Task


def _fan_in_parameters(model: nn.Module) -> set[int]:
    """Weights whose dimension 1 is an input that sums over units (``nn.Linear`` and MuReadout)."""
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}


@torch.no_grad()
def clone_width(base: nn.Module, target: nn.Module, noise_scale: float = 0.0) -> nn.Module:
    """Write the cloned base into ``target`` in place (see module doc) and return it.

    ``noise_scale`` 0 is the exact copy; :class:`Clone` perturbs by :data:`CLONE_NOISE_SCALE`.
    """
    base_parameters = dict(base.named_parameters())
    constants = init_constants(target)
    readout = readout_scales(base, target)
    fan_in = _fan_in_parameters(target)
    for name, parameter in target.named_parameters():
        source = matching_source(base_parameters, name, parameter).to(parameter)
        maps = [torch.arange(t) % b for b, t in zip(source.shape, parameter.shape)]
        cloned = source[torch.meshgrid(*maps, indexing="ij")] if maps else source.clone()
        if id(parameter) in fan_in and parameter.dim() == 2:
            counts = torch.bincount(maps[1], minlength=source.shape[1]).to(parameter)  # copies of each input unit
            cloned = cloned / counts[maps[1]]
        cloned = cloned * readout.get(name, 1.0)
        constant = constants.get(id(parameter), 0.0)
        parameter.sub_(constant).mul_(noise_scale).add_(cloned)
    return target


CLONE_NOISE_SCALE = 0.1
"""Default perturbation of ``clone``: the target's μP init × 0.1 (see the module doc)."""


@dataclass(frozen=True)
class Clone(GrowthOperator):
    """``clone``: duplicate units and heads, divide fan-in, compensate the readout, perturb."""

    noise_scale: float = CLONE_NOISE_SCALE
    name: ClassVar[str] = "clone"
    kind: ClassVar[str] = "width"
    preserves_function: ClassVar[str] = ("up to the perturbation (exactly with noise scale 0, which leaves copies "
                                         "tied forever) in norm-free networks, and with LayerNorm when the target "
                                         "width is a multiple of the base width")

    def __post_init__(self) -> None:
        if not self.noise_scale >= 0:
            raise UsageError(f"noise scale {self.noise_scale} must be at least 0 (clone's default is {CLONE_NOISE_SCALE})")

    @classmethod
    def from_options(cls, shrink: float, noise_scale: float | None) -> Clone:
        return cls(CLONE_NOISE_SCALE if noise_scale is None else noise_scale)

    def grow(self, base: nn.Module, target: nn.Module, task: Task) -> nn.Module:
        return clone_width(base, target, self.noise_scale)


