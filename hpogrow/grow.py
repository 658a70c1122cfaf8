"""Growing a trained model: choosing the target shape, applying operators, writing checkpoints.

The operators themselves live in :mod:`hpogrow.growth` (``szp`` by default, paper 002 eq. 1).
The growth factor ``g`` is the ratio of parameter counts, target over base (paper 000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.growth import GrowthOperator, parse_operators, shrink_zero_pad_perturb
from hpogrow.parametrize import build_model, check_width, count_parameters_at
from hpogrow.tasks import Task
from hpogrow.train import TrainConfig, TrainState, make_optimizer

__all__ = ["GrowthPlan", "GrowthResult", "carry_optimizer_state", "grow_checkpoint", "grow_model",
           "growth_warnings", "plan_growth", "shrink_zero_pad_perturb"]


@dataclass(frozen=True)
class GrowthPlan:
    """Shapes and parameter counts of one growth step."""

    base_width: int
    target_width: int
    base_params: int
    target_params: int
    base_depth: int | None = None
    target_depth: int | None = None

    @property
    def width_ratio(self) -> float:
        return self.target_width / self.base_width

    @property
    def param_ratio(self) -> float:
        """The growth factor g of paper 000: target parameters over base parameters."""
        return self.target_params / self.base_params


def _params(task: Task, width: int, depth: int | None) -> int:
    return count_parameters_at(task if depth is None or depth == getattr(task, "depth", None)
                               else task.with_depth(depth), width).total


def _closest(candidates, ratio_of, factor: float) -> int:
    """The candidate whose parameter ratio is closest to ``factor`` (log distance); candidates
    are scanned in increasing size until the ratio passes the factor."""
    best, best_distance = None, math.inf
    for candidate in candidates:
        ratio = ratio_of(candidate)
        distance = abs(math.log(ratio / factor))
        if distance < best_distance:
            best, best_distance = candidate, distance
        if ratio > factor:
            break
    return best


def plan_growth(task: Task, base_width: int, factor: float = 2.0, target_width: int | None = None,
                target_depth: int | None = None, grow_width: bool = True, grow_depth: bool = False) -> GrowthPlan:
    """Pick the target shape whose parameter count is closest to ``factor`` × the base's.

    Width candidates are multiples of ``task.width_step``. Growing only the width (default) or
    only the depth searches that one dimension. Growing both splits the factor by a fixed rule:
    depth grows by ``round(L·(√g − 1))`` blocks (at least one), then the width that brings the
    total closest to ``g`` (never below the base width). ``target_width``/``target_depth``
    override the choice of their dimension.
    """
    base_depth = getattr(task, "depth", None)
    if grow_depth and base_depth is None:
        raise UsageError(f"task {task.name!r} has no depth to grow")
    base_params = _params(task, base_width, base_depth)
    if not factor > 1 and (target_width is None if grow_width else target_depth is None):
        raise UsageError(f"growth factor {factor} must be above 1 (it is the ratio of parameter counts, target/base)")
    depth = base_depth
    if grow_depth:
        if target_depth is None:
            if grow_width:
                target_depth = base_depth + max(1, round(base_depth * (math.sqrt(factor) - 1)))
            else:
                target_depth = _closest(range(base_depth + 1, 64 * base_depth),
                                        lambda d: _params(task, base_width, d) / base_params, factor)
        if target_depth <= base_depth:
            raise UsageError(f"target depth {target_depth} must be larger than the base depth {base_depth}")
        depth = target_depth
    if not grow_width:
        target_width = base_width
    elif target_width is None:
        step = task.width_step
        first = base_width if grow_depth else base_width + step
        target_width = _closest(range(first, 64 * base_width, step),
                                lambda w: _params(task, w, depth) / base_params, factor)
    check_width(task, target_width, "target width")
    if grow_width and target_width <= base_width and not grow_depth:
        raise UsageError(f"target width {target_width} must be larger than the base width {base_width}")
    if target_width < base_width:
        raise UsageError(f"target width {target_width} is below the base width {base_width}")
    return GrowthPlan(base_width, target_width, base_params, _params(task, target_width, depth),
                      base_depth, depth)


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


def grow_model(base: nn.Module, task: Task, plan: GrowthPlan, mup_base_width: int, *,
               width_operator: GrowthOperator | None, depth_operator: GrowthOperator | None,
               seed: int = 0) -> tuple[nn.Module, Task]:
    """Apply the width operator, then the depth operator, each into a fresh μP target.

    Returns the grown model and the task at the target depth (base shapes regenerated there).
    """
    model, current = base, task
    if width_operator is not None:
        target = build_model(current, plan.target_width, mup_base_width, seed)
        model = width_operator.grow(model, target, current)
    if depth_operator is not None:
        current = task.with_depth(plan.target_depth)
        target = build_model(current, plan.target_width, mup_base_width, seed)
        model = depth_operator.grow(model, target, current)
    return model, current


@torch.no_grad()
def carry_optimizer_state(base: nn.Module, base_state: dict, target: nn.Module, config: TrainConfig) -> dict:
    """Adam moments of ``base`` zero-padded into ``target``'s shapes, by parameter name.

    An experiment (the papers start the target with a fresh optimizer): moments are padded, not
    shrunk; parameters new to the target (e.g. new blocks) start with empty state.
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


@dataclass(frozen=True)
class GrowthResult:
    path: Path
    plan: GrowthPlan
    operator: str
    shrink: float
    warnings: list[str]


def grow_checkpoint(checkpoint: str | Path, out: str | Path, *, factor: float = 2.0,
                    target_width: int | None = None, target_depth: int | None = None, operator: str = "szp",
                    shrink: float = 0.4, noise_scale: float | None = None, seed: int = 0,
                    carry_optimizer: bool = False, task: Task | None = None) -> GrowthResult:
    """Grow a checkpoint folder into a new one (fresh optimizer state unless ``carry_optimizer``).

    The grown folder keeps the base's μP base width (μTransfer: same global LR and batch size),
    its training config and its data position, so training continues on unseen tokens.

    Example::

        result = grow_checkpoint("studies/checkpoints/lm-w128/base/trial-3", "grown", factor=2)
        print(result.plan.target_width, result.plan.param_ratio)
    """
    width_operator, depth_operator = parse_operators(operator, shrink, noise_scale)
    source = read_checkpoint(checkpoint)
    base, task = load_model(source, task)
    plan = plan_growth(task, source.width, factor, target_width, target_depth,
                       grow_width=width_operator is not None, grow_depth=depth_operator is not None)
    grown, grown_task = grow_model(base, task, plan, source.base_width, width_operator=width_operator,
                                   depth_operator=depth_operator, seed=seed)
    train_config = source.config.get("train")
    optimizer_state = None
    if carry_optimizer:
        base_state = load_optimizer_state(source)
        if base_state is None or train_config is None:
            raise UsageError(f"checkpoint {source.path} has no optimizer state to carry; grow without --carry-optimizer")
        if operator not in ("szp", "zero-pad", "zero-block", "szp+zero-block", "zero-pad+zero-block"):
            raise UsageError(f"--carry-optimizer pads Adam moments; it works with szp, zero-pad and zero-block, not {operator}")
        optimizer_state = carry_optimizer_state(base, base_state, grown, TrainConfig(**train_config))
    lineage = {"grown_from": str(source.path), "operator": operator, "base_width": source.width,
               "target_width": plan.target_width, "base_depth": plan.base_depth, "target_depth": plan.target_depth,
               "grow_factor": plan.param_ratio, "width_ratio": plan.width_ratio, "shrink": shrink,
               "carry_optimizer": carry_optimizer, "base_tokens": source.state.tokens_seen,
               "base_flops": source.metrics.get("flops", 0.0), "parent": source.config.get("lineage")}
    path = save_checkpoint(out, grown, task=grown_task, width=plan.target_width, base_width=source.base_width,
                           seed=seed, state=TrainState(data_position=source.state.data_position),
                           metrics={"n_params": plan.target_params}, lineage=lineage, train_config=train_config,
                           optimizer_state=optimizer_state)
    messages = growth_warnings(plan.param_ratio, shrink if width_operator and width_operator.name == "szp" else 0.0)
    return GrowthResult(path, plan, operator, shrink, messages)
