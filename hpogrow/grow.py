"""Width growth by shrink–zero-pad–perturb (paper 002, eq. 1).

For every parameter of the target, with the base tensor ``θ_b`` in the top-left block::

    θ_t = c + s·(init_t − c) + λ · Pad0(θ_b − c)

``init_t`` is the target's own fresh μP initialisation (the perturbation; ``s`` scales it, 1 by
default), ``λ`` is ``shrink`` (0.4 by default) and ``c`` is the constant a parameter is
initialised around: 1 for normalisation gains, 0 for everything else. For weights, embeddings
and biases (``c = 0``) this is exactly eq. 1, ``λ·Pad0(θ_b) + N(0, σ_μP²)``; for gains it shrinks
the base's deviation from 1 instead of the gain itself. ``λ = 0`` is μP from scratch; ``λ = 1``
with ``s = 0`` is pure zero-padding.

**λ acts on effective weights.** mup's ``MuReadout`` computes ``W x / width_mult``, so a copied
readout block is multiplied by ``d_target / d_base`` (readout compensation): the grown readout
then contributes exactly ``λ`` times the base's logits. Every other layer uses its stored weight
as is. With ``λ = 1``, ``s = 0`` and a norm-free network this preserves the function exactly.

**No double rescaling.** The target is built fresh, ``set_base_shapes(rescale_params=True)``
rescales only that fresh init, and the base weights are written afterwards under
``torch.no_grad()``; nothing calls ``set_base_shapes`` on copied weights (GUIDE §2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mup
import torch
from torch import nn

from hpogrow.checkpoint import load_model, read_checkpoint, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.parametrize import build_model, check_width, count_parameters_at
from hpogrow.tasks import Task
from hpogrow.train import TrainState

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._BatchNorm)


@dataclass(frozen=True)
class GrowthPlan:
    """Widths and parameter counts of one growth step."""

    base_width: int
    target_width: int
    base_params: int
    target_params: int

    @property
    def width_ratio(self) -> float:
        return self.target_width / self.base_width

    @property
    def param_ratio(self) -> float:
        """The growth factor g of paper 000: target parameters over base parameters."""
        return self.target_params / self.base_params


def plan_growth(task: Task, base_width: int, factor: float = 2.0, target_width: int | None = None) -> GrowthPlan:
    """Pick the target width whose parameter count is closest to ``factor`` × the base's.

    Candidates are multiples of ``task.width_step``; ``target_width`` overrides the choice.
    """
    base_params = count_parameters_at(task, base_width).total
    if target_width is None:
        if not factor > 1:
            raise UsageError(f"growth factor {factor} must be above 1 (it is the ratio of parameter counts, target/base)")
        step = task.width_step
        best, best_distance, width = None, math.inf, base_width + step
        while True:
            ratio = count_parameters_at(task, width).total / base_params
            distance = abs(math.log(ratio / factor))
            if distance < best_distance:
                best, best_distance = width, distance
            if ratio > factor:
                break
            width += step
        target_width = best
    check_width(task, target_width, "target width")
    if target_width <= base_width:
        raise UsageError(f"target width {target_width} must be larger than the base width {base_width}")
    return GrowthPlan(base_width, target_width, base_params, count_parameters_at(task, target_width).total)


def growth_warnings(param_ratio: float, shrink: float) -> list[str]:
    """The papers' cautions, as messages (warnings, not refusals)."""
    messages = []
    if param_ratio > 4:
        messages.append(f"growth factor {param_ratio:.2f} is above ~4, where training from scratch is usually cheaper (paper 000)")
    elif param_ratio > 2.25:  # leaves room for the width granularity around g = 2
        messages.append(f"growth factor {param_ratio:.2f} is above 2; gains from warmstarting become unreliable (paper 000)")
    if shrink > 0.6:
        messages.append(f"shrink {shrink} is above 0.6, where warmstarted μP drifts from μP's stable dynamics (paper 002)")
    return messages


def _init_constants(model: nn.Module) -> dict[int, float]:
    """``id(parameter) -> c``: 1 for normalisation gains, absent (0) for everything else."""
    return {id(m.weight): 1.0 for m in model.modules() if isinstance(m, _NORMS) and getattr(m, "weight", None) is not None}


def _readout_scales(base: nn.Module, target: nn.Module) -> dict[str, float]:
    """Readout compensation ``width_mult_target / width_mult_base`` per MuReadout weight."""
    base_modules = dict(base.named_modules())
    return {f"{name}.weight": module.width_mult() / base_modules[name].width_mult()
            for name, module in target.named_modules() if isinstance(module, mup.MuReadout)}


@torch.no_grad()
def shrink_zero_pad_perturb(base: nn.Module, target: nn.Module, shrink: float = 0.4,
                            noise_scale: float = 1.0, readout_compensation: bool = True) -> nn.Module:
    """Write the grown weights into ``target`` in place and return it.

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
    constants = _init_constants(target)
    readout = _readout_scales(base, target) if readout_compensation else {}
    for name, parameter in target.named_parameters():
        source = base_parameters.get(name)
        if source is None or source.dim() != parameter.dim() or any(
                b > t for b, t in zip(source.shape, parameter.shape)):
            raise UsageError(f"cannot grow {name}: base shape {None if source is None else tuple(source.shape)} "
                             f"does not fit in target shape {tuple(parameter.shape)}; the checkpoint is from another architecture")
        constant = constants.get(id(parameter), 0.0)
        parameter.sub_(constant).mul_(noise_scale).add_(constant)
        block = tuple(slice(0, size) for size in source.shape)
        parameter[block] += shrink * readout.get(name, 1.0) * (source.to(parameter) - constant)
    return target


@dataclass(frozen=True)
class GrowthResult:
    path: Path
    plan: GrowthPlan
    shrink: float
    warnings: list[str]


def grow_checkpoint(checkpoint: str | Path, out: str | Path, *, factor: float = 2.0,
                    target_width: int | None = None, shrink: float = 0.4, noise_scale: float = 1.0,
                    seed: int = 0, task: Task | None = None) -> GrowthResult:
    """Grow a checkpoint folder into a new one at the target width (fresh optimizer state).

    The grown folder keeps the base's base shapes (μTransfer: same global LR and batch size),
    its training config, and its data position, so training continues on unseen tokens.

    Example::

        result = grow_checkpoint("studies/checkpoints/lm-w128/base/trial-3", "grown", factor=2)
        print(result.plan.target_width, result.plan.param_ratio)
    """
    source = read_checkpoint(checkpoint)
    base, task = load_model(source, task)
    plan = plan_growth(task, source.width, factor, target_width)
    target = build_model(task, plan.target_width, source.base_width, seed)
    shrink_zero_pad_perturb(base, target, shrink=shrink, noise_scale=noise_scale)
    lineage = {"grown_from": str(source.path), "base_width": source.width, "target_width": plan.target_width,
               "grow_factor": plan.param_ratio, "width_ratio": plan.width_ratio, "shrink": shrink,
               "noise_scale": noise_scale, "base_tokens": source.state.tokens_seen,
               "base_flops": source.metrics.get("flops", 0.0), "parent": source.config.get("lineage")}
    path = save_checkpoint(out, target, task=task, width=plan.target_width, base_width=source.base_width,
                           seed=seed, state=TrainState(data_position=source.state.data_position),
                           metrics={"n_params": plan.target_params}, lineage=lineage,
                           train_config=source.config.get("train"))
    return GrowthResult(path, plan, shrink, growth_warnings(plan.param_ratio, shrink))
