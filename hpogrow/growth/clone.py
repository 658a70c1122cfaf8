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
compensation). Optional noise adds ``s·(init_t − c)`` (the target's μP init); copies stay tied
under training unless ``s > 0``, since duplicated units receive identical gradients.

**Function preservation.** Exact for norm-free networks at any width; with LayerNorm exact when
``d_t`` is a multiple of ``d_b`` (every unit copied equally often keeps the mean and variance),
and only approximate otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from hpogrow.growth.base import GrowthOperator, init_constants, readout_scales
from hpogrow.growth.szp import matching_source
from hpogrow.tasks.base import Task


def _fan_in_parameters(model: nn.Module) -> set[int]:
    """Weights whose dimension 1 is an input that sums over units (``nn.Linear`` and MuReadout)."""
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}


@torch.no_grad()
def clone_width(base: nn.Module, target: nn.Module, noise_scale: float = 0.0) -> nn.Module:
    """Write the cloned base into ``target`` in place (see module doc) and return it."""
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


@dataclass(frozen=True)
class Clone(GrowthOperator):
    """``clone``: duplicate units and heads, divide fan-in, compensate the readout."""

    noise_scale: float = 0.0
    name: ClassVar[str] = "clone"
    kind: ClassVar[str] = "width"
    preserves_function: ClassVar[str] = ("exactly (no noise) in norm-free networks, and with LayerNorm "
                                         "when the target width is a multiple of the base width")

    def grow(self, base: nn.Module, target: nn.Module, task: Task) -> nn.Module:
        return clone_width(base, target, self.noise_scale)


