"""Kept so that ``from hpogrow.grow import …`` written before growth moved keeps working; the
code lives in :mod:`hpogrow.growth`. Import from there."""

from __future__ import annotations

from hpogrow.growth import (GrowthPlan, GrowthResult, carry_optimizer_state, grow_checkpoint, grow_model,
                            growth_warnings, plan_growth, shrink_zero_pad_perturb)

__all__ = ["GrowthPlan", "GrowthResult", "carry_optimizer_state", "grow_checkpoint", "grow_model",
           "growth_warnings", "plan_growth", "shrink_zero_pad_perturb"]
