"""A fair search: every batch size judged at the same token counts, on a real Ray runtime.

The task is a regression MLP with BatchNorm: batch statistics are noisy at small batch sizes, so
at equal tokens the larger batch trains better by the budget (0.16 vs 0.21 for lr 4e-2, 3 seeds).
A search that compared batch sizes at different token counts — the smaller batch evaluated at
twice the tokens of the larger one at the first rung, as hpogrow did before rungs were aligned to
whole steps of every batch size — pruned the larger batch early and picked the smaller one.

What the test holds the search to is the fairness itself: every trial is evaluated at exactly
the rungs, and every promotion is decided on the losses there, whatever the batch size. Which
batch size the search ends with is not asserted: over search seeds 0–9 the fair search picked
batch 32 in 6 of 10 with rungs at B/9, B/3, B and in 4 of 10 with the default's first rung at B/18
(an earlier first rung favours the batch that has taken more steps), too close to a coin for a
test of 5 seeds (an earlier version asserted 4 of 5, which seeds 0–4 happened to give).
"""

from __future__ import annotations

import logging
import math
import sys

import mup
import optuna
import pytest
import ray
import ray.cloudpickle
import torch
from torch import nn

import hpogrow
from hpogrow.search import SearchConfig
from hpogrow.search.pipeline import best_full_budget_trial
from hpogrow.search.plan import make_executor_for, make_plan
from hpogrow.search.sampler import make_sampler
from hpogrow.storage import open_storage

TrialState = optuna.trial.TrialState


class NormalizedRegression(hpogrow.Task):
    """A BatchNorm MLP regressing a smooth function of 8 inputs."""

    name = "bn-regression"

    def build_model(self, width: int) -> nn.Module:
        return nn.Sequential(nn.Linear(8, width), nn.BatchNorm1d(width), nn.ReLU(),
                             nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), mup.MuReadout(width, 1))

    def batch(self, position: int, batch_size: int, device: torch.device):
        generator = torch.Generator().manual_seed(position)
        x = torch.randn(batch_size, 8, generator=generator)
        y = torch.sin(x[:, :4].sum(1, keepdim=True)) + 0.5 * x[:, 4:5] * x[:, 5:6]
        return x.to(device), y.to(device)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(model(x), y)


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import tests/


@pytest.fixture(scope="module", autouse=True)
def ray_runtime():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_every_batch_size_is_judged_and_promoted_at_the_same_token_counts(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 4.0e-2, high: 1.2e-1, log: true}\nbatch_size: {choices: [16, 32]}\n")
    batch_sizes = set()
    for seed in range(3):
        # trials one at a time: the decisions then depend on the losses alone, not on timing
        config = SearchConfig(base_width=16, trials=10, max_concurrent=1, tokens_per_param=16080 / 497, evaluations=4,
                              seed=seed, workdir=str(tmp_path / f"seed{seed}"), space=str(space), device="cpu")
        executor = make_executor_for(config)
        plan = make_plan(NormalizedRegression(), config, executor)
        base = optuna.create_study(study_name=plan.base_study, storage=open_storage(config.storage_url),
                                   sampler=make_sampler(seed))
        executor.run(base, plan.space, config.trials, plan.base_trial())
        assert best_full_budget_trial(base) is not None
        rungs = plan.schedule.rungs
        for trial in base.trials:  # judged at exactly the rungs, whatever the batch size
            assert trial.user_attrs["fidelity_reached"] in rungs
            assert (trial.state == TrialState.COMPLETE) == (trial.user_attrs["tokens"] == plan.base_tokens)
            assert set(rungs) <= set(trial.intermediate_values) | {t for t in rungs if t > trial.user_attrs["tokens"]}
        start = 0
        for size in executor.halving.brackets(config.trials):  # promoted on the losses at the rung
            entered = base.trials[start:start + size]
            start += size
            for rung in rungs[:-1]:  # the best ⌊n/η⌋ by their losses at the rung go on
                ranked = sorted(entered, key=lambda t: t.intermediate_values.get(rung, math.inf))
                kept = sorted(t.number for t in ranked[:max(1, len(entered) // executor.halving.reduction_factor)])
                assert sorted(t.number for t in entered if t.user_attrs["fidelity_reached"] > rung) == kept
                entered = [t for t in entered if t.number in kept]
        batch_sizes |= {t.params["batch_size"] for t in base.trials if t.user_attrs["fidelity_reached"] > rungs[0]}
    assert batch_sizes == {16, 32}  # both went on somewhere: the comparison is a live one
