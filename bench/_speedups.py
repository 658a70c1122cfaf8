"""What the growth benchmarks share: a task as a benchmark runs it, one seed's speedup read from two
runs, an estimate as a table cell, and the standard errors of held-out losses.

Speedups go through :mod:`hpogrow.speedup` (smoothed curves, censored seeds counted at their
bound, geometric mean with a 95% t-interval over seeds). FLOPs per token are the full count of
:func:`hpogrow.throughput.training_flops_per_token` (6·N plus, for the GPT, the attention term).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from torch import nn

from hpogrow.runs import RunOutcome
from hpogrow.speedup import SeedSpeedup, SpeedupEstimate, seed_speedup
from hpogrow.tasks import Task

EVAL_GROUPS = 64
"""Groups the held-out examples are split into to estimate the standard error of their mean loss."""
_CENSORING_MARK = {"upper": "≤", "lower": "≥", "both": "~"}


@dataclass(frozen=True)
class Setting:
    """One task as a benchmark runs it: its base width, learning rate and batch size."""

    label: str
    task: Task
    base_width: int
    learning_rate: float
    batch_size: int


def curve(outcome: RunOutcome) -> list[tuple[int, float]]:
    """``(tokens, validation loss)`` of a run, its tokens counted from its own start."""
    return [(evaluation.tokens_seen, evaluation.val_loss) for evaluation in outcome.evaluations]


def pair_speedup(warm: RunOutcome, scratch: RunOutcome, *, flops_per_token: float, base_tokens: float,
                 base_flops: float, seed: int) -> SeedSpeedup:
    """:func:`hpogrow.speedup.seed_speedup` of a warmstarted run against scratch of the same seed."""
    return seed_speedup(curve(warm), curve(scratch), flops_per_token=flops_per_token, base_tokens=base_tokens,
                        base_flops=base_flops, seed=seed)


def interval_cell(estimate: SpeedupEstimate, measure: str) -> str:
    """``1.42 (1.10–1.83)`` (a ratio, ×); ``≤``/``≥`` in front when censored seeds make the mean a bound."""
    value, interval = getattr(estimate, measure), getattr(estimate, f"{measure}_ci")
    mark = _CENSORING_MARK.get(estimate.bound, "")
    text = f"{mark}{value:.2f}"
    return text if interval is None else f"{text} ({interval[0]:.2f}–{interval[1]:.2f})"


@torch.no_grad()
def eval_group_losses(task: Task, model: nn.Module, groups: int = EVAL_GROUPS) -> list[float]:
    """``model``'s mean held-out loss on each of ``groups`` equal groups of the held-out examples
    (LM: windows), split along the batch dimension, each with the task's own loss."""
    model.eval()
    batches, means = task.eval_batches(next(model.parameters()).device), []
    per_batch = max(1, groups // len(batches))
    for inputs, targets in batches:  # (B, …), (B, …)
        for chunk_inputs, chunk_targets in zip(inputs.chunk(per_batch), targets.chunk(per_batch)):
            means.append(float(task.loss(model, (chunk_inputs, chunk_targets))))
    return means


def standard_error(values: list[float]) -> float:
    """Standard error of the mean of independent ``values`` (held-out examples are drawn
    independently, so group means are)."""
    return statistics.stdev(values) / len(values) ** 0.5


def eval_errors(task: Task, warm: nn.Module, scratch: nn.Module) -> tuple[float, float, float]:
    """Standard errors of the warmstarted and the scratch model's held-out loss, and of their
    difference on the shared held-out set (paired by group: the errors of the two losses are
    correlated, so this is the error the final-loss gap carries)."""
    warm_groups, scratch_groups = eval_group_losses(task, warm), eval_group_losses(task, scratch)
    differences = [w - s for w, s in zip(warm_groups, scratch_groups)]
    return standard_error(warm_groups), standard_error(scratch_groups), standard_error(differences)
