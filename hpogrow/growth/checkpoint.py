"""Growing a checkpoint folder into a new one: plan, operators, optimizer carry, lineage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.growth.base import GrowthOperator
from hpogrow.growth.optimizer import carry_optimizer_state
from hpogrow.growth.plan import GrowthPlan, growth_warnings, plan_growth
from hpogrow.growth.registry import OPERATORS, parse_operators
from hpogrow.parametrize import build_model
from hpogrow.record.codec import to_attrs
from hpogrow.record.lineage import GrowthLineage
from hpogrow.tasks import Task
from hpogrow.train import TrainConfig, TrainState


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

    Args:
        operator: a ``--grow-op`` spec: a registered width or depth operator, or ``WIDTH+DEPTH``.
        noise_scale: the width operator's perturbation (``None``: its default).

    Example::

        result = grow_checkpoint("studies/checkpoints/lm-w128/base/trial-3", "grown", factor=2)
        print(result.plan.target_width, result.plan.param_ratio)
    """
    width_operator, depth_operator = parse_operators(operator, shrink, noise_scale)
    operators = [op for op in (width_operator, depth_operator) if op is not None]
    source = read_checkpoint(checkpoint)
    base, task = load_model(source, task)
    plan = plan_growth(task, source.width, factor, target_width, target_depth,
                       grow_width=width_operator is not None, grow_depth=depth_operator is not None)
    train_config = source.config.get("train")
    if carry_optimizer:
        unpadded = [op.name for op in operators if not op.pads_optimizer_state]
        if unpadded:
            able = ", ".join(name for name, cls in OPERATORS.items() if cls.pads_optimizer_state)
            raise UsageError(f"--carry-optimizer pads Adam moments; it works with {able}, not {' or '.join(unpadded)}")
        base_state = load_optimizer_state(source)
        if base_state is None or train_config is None:
            raise UsageError(f"checkpoint {source.path} has no optimizer state to carry; grow without --carry-optimizer")
    grown, grown_task = grow_model(base, task, plan, source.base_width, width_operator=width_operator,
                                   depth_operator=depth_operator, seed=seed)
    optimizer_state = (carry_optimizer_state(base, base_state, grown, TrainConfig(**train_config))
                       if carry_optimizer else None)
    lineage = to_attrs(GrowthLineage(
        grown_from=str(source.path), grow_op=operator, grow_factor=factor if target_width is None and target_depth is None
        else None, param_ratio=plan.param_ratio, width_ratio=plan.width_ratio, base_width=source.width,
        target_width=plan.target_width, base_depth=plan.base_depth, target_depth=plan.target_depth, shrink=shrink,
        carry_optimizer=carry_optimizer, base_tokens=source.state.tokens_seen,
        base_flops=source.metrics.get("flops", 0.0), parent=source.config.get("lineage")))
    path = save_checkpoint(out, grown, task=grown_task, width=plan.target_width, base_width=source.base_width,
                           seed=seed, state=TrainState(data_position=source.state.data_position),
                           metrics={"n_params": plan.target_params}, lineage=lineage, train_config=train_config,
                           optimizer_state=optimizer_state)
    shrink_in_effect = shrink if any(op.uses_shrink for op in operators) else 0.0
    return GrowthResult(path, plan, operator, shrink, growth_warnings(plan.param_ratio, shrink_in_effect, plan.factor))
