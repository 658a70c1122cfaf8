"""Planning a growth step: the target shape for a growth factor g, and the papers' cautions."""

from __future__ import annotations

import math

import pytest

from hpogrow.errors import UsageError
from hpogrow.growth import growth_warnings, plan_growth
from hpogrow.parametrize import build_model, count_parameters, count_parameters_at
from hpogrow.tasks import FourierTask, LanguageTask

from .helpers import GPT


def test_plan_growth_picks_width_closest_to_parameter_ratio(lm_task):
    plan = plan_growth(lm_task, 32, factor=2.0)
    assert plan.target_width % lm_task.width_step == 0 and plan.factor == 2.0
    neighbours = [plan.target_width - 8, plan.target_width + 8]
    ratio = lambda w: plan_growth(lm_task, 32, target_width=w).param_ratio  # noqa: E731
    assert all(abs(ratio(w) / 2 - 1) >= abs(plan.param_ratio / 2 - 1) for w in neighbours)
    with pytest.raises(UsageError, match="multiple of 8"):
        plan_growth(lm_task, 32, target_width=50)
    with pytest.raises(UsageError, match="above 1"):
        plan_growth(lm_task, 32, factor=0.5)


def test_depth_only_growth_picks_the_closest_depth():
    plan = plan_growth(GPT, 32, 2.0, grow_width=False, grow_depth=True)
    assert plan.target_width == 32
    ratio = lambda depth: plan_growth(GPT, 32, grow_width=False, grow_depth=True, target_depth=depth).param_ratio  # noqa: E731
    neighbours = [plan.target_depth - 1, plan.target_depth + 1]
    assert all(abs(ratio(d) / 2 - 1) >= abs(plan.param_ratio / 2 - 1) for d in neighbours if d > 2)


COMPOSED = [(LanguageTask(depth=2, head_size=8), 32), (LanguageTask(depth=2, head_size=8), 64),
            (LanguageTask(depth=2, head_size=32), 128), (LanguageTask(depth=4, head_size=16), 64),
            (FourierTask(depth=2, modes=16), 32), (FourierTask(depth=2, modes=16), 128),
            (FourierTask(depth=4, modes=16), 64)]


@pytest.mark.parametrize("task, base_width", COMPOSED, ids=lambda value: getattr(value, "name", str(value)))
def test_composed_growth_lands_within_ten_percent_of_the_factor(task, base_width):
    """Width and depth together: the ratio is within 10% of g, and no shape (searched here by
    brute force) is closer by more than the 5% the planner may give up for an even split."""
    depth, base_params = task.depth, count_parameters_at(task, base_width).total
    deeper = {d: task.with_depth(d) for d in range(depth + 1, 12 * depth)}
    for factor in (1.5, 2.0, 3.0, 4.0):
        plan = plan_growth(task, base_width, factor, grow_width=True, grow_depth=True)
        assert abs(plan.param_ratio / factor - 1) <= 0.10, (factor, plan)
        assert plan.target_depth > depth and plan.target_width >= base_width
        closest = min(abs(math.log(count_parameters_at(deeper[d], width).total / base_params / factor))
                      for d in range(depth + 1, plan.target_depth + 3)
                      for width in range(base_width, plan.target_width + 3 * task.width_step, task.width_step))
        assert abs(math.log(plan.param_ratio / factor)) <= closest + math.log(1.05)


def test_composed_growth_splits_the_factor_when_it_can():
    plan = plan_growth(FourierTask(depth=4, modes=16), 64, 2.0, grow_width=True, grow_depth=True)
    assert plan.target_width > 64 and plan.target_depth > 4  # both dimensions grow
    assert plan.param_ratio == pytest.approx(2.0, rel=0.05)
    fixed = plan_growth(FourierTask(depth=4, modes=16), 64, 2.0, target_width=80, grow_depth=True)
    assert fixed.target_width == 80 and fixed.param_ratio == pytest.approx(2.0, rel=0.1)  # depth chosen for g


def test_growth_warnings_follow_the_papers():
    assert growth_warnings(2.0, 0.4) == []
    assert "unreliable" in growth_warnings(3.0, 0.4)[0]
    assert "scratch" in growth_warnings(5.0, 0.4)[0]
    assert "0.6" in growth_warnings(2.0, 0.8)[0]
    assert "from the asked 2" in growth_warnings(2.5, 0.4, factor=2.0)[0]
    assert growth_warnings(2.1, 0.4, factor=2.0) == []


def test_counts_leave_embedding_tables_out_of_compute(lm_task):
    counts = count_parameters(build_model(lm_task, 32, 32, seed=0))
    assert counts.total - counts.compute == (256 + 16) * 32
