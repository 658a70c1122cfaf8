"""Choosing the target shape of one growth step from a growth factor ``g``.

``g`` is the ratio of *total* parameter counts, target over base, as in paper 000 (FLOPs count
the parameters that do matmul work; see :class:`hpogrow.parametrize.ParameterCount`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hpogrow.errors import UsageError
from hpogrow.parametrize import check_width, count_parameters_at
from hpogrow.tasks import Task

BALANCE_TOLERANCE = 0.05
"""A composed growth may trade up to 5% of accuracy in ``g`` for an even split between depth and width."""
FACTOR_TOLERANCE = 0.10
"""A plan whose ratio is further than 10% from the asked ``g`` comes with a warning."""


@dataclass(frozen=True)
class GrowthPlan:
    """Shapes and parameter counts of one growth step."""

    base_width: int
    target_width: int
    base_params: int
    target_params: int
    base_depth: int | None = None
    target_depth: int | None = None
    factor: float | None = None
    """The growth factor asked for (``None`` when both dimensions were given explicitly)."""

    @property
    def width_ratio(self) -> float:
        return self.target_width / self.base_width

    @property
    def param_ratio(self) -> float:
        """The growth factor g of paper 000: target parameters over base parameters."""
        return self.target_params / self.base_params


def plan_growth(task: Task, base_width: int, factor: float = 2.0, target_width: int | None = None,
                target_depth: int | None = None, grow_width: bool = True, grow_depth: bool = False) -> GrowthPlan:
    """Pick the target shape whose parameter count is closest to ``factor`` × the base's.

    Width candidates are multiples of ``task.width_step``; depth candidates add whole blocks.
    Growing one dimension picks its size with the ratio closest to ``g`` (log distance).
    Growing both searches every (depth, width) pair, the depth grown by at least one block and
    the width never below the base's: among the pairs within 5% of ``g`` it takes the most even
    split (depth ratio closest to √(ratio)), and if no pair is that close, the closest pair.
    ``target_width``/``target_depth`` fix their dimension and the other is chosen for ``g``.

    Example::

        from hpogrow.tasks import FourierTask
        plan = plan_growth(FourierTask(depth=2), 64, factor=2.0, grow_depth=True)
        print(plan.target_width, plan.target_depth, round(plan.param_ratio, 2))  # 75 3 2.02

    Raises:
        UsageError: a factor not above 1 with a dimension left to choose, a target smaller than
            the base, or a width the task cannot build.
    """
    base_depth = getattr(task, "depth", None)
    if grow_depth and base_depth is None:
        raise UsageError(f"task {task.name!r} has no depth to grow")
    if not factor > 1 and ((grow_width and target_width is None) or (grow_depth and target_depth is None)):
        raise UsageError(f"growth factor {factor} must be above 1 (it is the ratio of parameter counts, target/base)")
    if grow_depth and target_depth is not None and target_depth <= base_depth:
        raise UsageError(f"target depth {target_depth} must be larger than the base depth {base_depth}")
    if target_width is not None:
        check_width(task, target_width, "target width")
    counts: dict[tuple[int, int | None], int] = {}
    tasks: dict[int | None, Task] = {base_depth: task}

    def params(width: int, depth: int | None) -> int:
        if (width, depth) not in counts:
            if depth not in tasks:
                tasks[depth] = task.with_depth(depth)
            counts[width, depth] = count_parameters_at(tasks[depth], width).total
        return counts[width, depth]

    base_params = params(base_width, base_depth)
    if not grow_width or target_width is not None:
        widths: Sequence[int] = [target_width if grow_width else base_width]
    else:  # a composed growth may keep the width where the task's width steps are too coarse
        widths = range(base_width if grow_depth else base_width + task.width_step, 64 * base_width + 1, task.width_step)
    if not grow_depth or target_depth is not None:
        depths: Sequence[int | None] = [target_depth if grow_depth else base_depth]
    else:
        depths = range(base_depth + 1, 64 * base_depth + 1)
    width, depth = _best_shape(widths, depths, lambda w, d: params(w, d) / base_params, factor, base_depth)
    if grow_width and width <= base_width and not grow_depth:
        raise UsageError(f"target width {width} must be larger than the base width {base_width}")
    if width < base_width:
        raise UsageError(f"target width {width} is below the base width {base_width}")
    return GrowthPlan(base_width, width, base_params, params(width, depth), base_depth, depth,
                      None if len(widths) == 1 and len(depths) == 1 else factor)


def _best_shape(widths: Sequence[int], depths: Sequence[int | None], ratio_of: Callable[[int, int | None], float],
                factor: float, base_depth: int | None) -> tuple[int, int | None]:
    """The (width, depth) pair :func:`plan_growth` describes; parameter ratios grow with both.
    The even split only decides between pairs when both dimensions have choices."""
    pairs = []
    for depth in depths:
        width = _closest(widths, lambda w: ratio_of(w, depth), factor)
        pairs.append((width, depth))
        if ratio_of(widths[0], depth) >= factor:
            break  # deeper models only move further from the factor

    def distance(pair: tuple[int, int | None]) -> float:
        return abs(math.log(ratio_of(*pair) / factor))

    def imbalance(pair: tuple[int, int]) -> float:  # depth ratio against √(parameter ratio)
        return abs(math.log(pair[1] / base_depth) - math.log(ratio_of(*pair)) / 2)

    close = [pair for pair in pairs if distance(pair) <= math.log(1 + BALANCE_TOLERANCE)]
    if close and len(widths) > 1 and len(pairs) > 1:
        return min(close, key=imbalance)
    return min(pairs, key=distance)


def _closest(candidates: Sequence[int], ratio_of: Callable[[int], float], factor: float) -> int:
    """The candidate whose ratio is closest to ``factor`` (log distance), by bisection:
    ``candidates`` increase and so does ``ratio_of``."""
    low, high = 0, len(candidates) - 1
    while low < high:  # first candidate whose ratio reaches the factor (or the last one)
        middle = (low + high) // 2
        if ratio_of(candidates[middle]) >= factor:
            high = middle
        else:
            low = middle + 1
    neighbours = candidates[max(0, low - 1): low + 1]
    return min(neighbours, key=lambda candidate: abs(math.log(ratio_of(candidate) / factor)))


def growth_warnings(param_ratio: float, shrink: float, factor: float | None = None) -> list[str]:
    """The papers' cautions, as messages (warnings, not refusals).

    Args:
        param_ratio: the growth factor of the plan.
        shrink: λ when the operator uses it, else 0.
        factor: the factor asked for; a plan further than 10% from it is reported.
    """
    messages = []
    if factor is not None and abs(param_ratio / factor - 1) > FACTOR_TOLERANCE:
        messages.append(f"growth factor {param_ratio:.2f} is {abs(param_ratio / factor - 1):.0%} from the asked {factor:g}: "
                        "no shape of this task comes closer; set --target-width/--grow-depth to choose another")
    if param_ratio > 4:
        messages.append(f"growth factor {param_ratio:.2f} is above ~4, where training from scratch is usually cheaper (paper 000)")
    elif param_ratio > 2.25:  # leaves room for the width granularity around g = 2
        messages.append(f"growth factor {param_ratio:.2f} is above 2; gains from warmstarting become unreliable (paper 000)")
    if shrink > 0.6:
        messages.append(f"shrink {shrink} is above 0.6, where warmstarted μP drifts from μP's stable dynamics (paper 002)")
    return messages
