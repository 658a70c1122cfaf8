"""The token-supply check (hpogrow/data/supply.py): a plan that would read a token twice is refused."""

from __future__ import annotations

import pytest

from hpogrow.data.supply import TokenBudget, check_token_supply, examples_read, token_budget
from hpogrow.errors import UsageError


def test_the_budget_counts_whole_steps_and_gives_each_pair_a_fresh_segment():
    assert examples_read(tokens=25, batch_size=4, tokens_per_example=2) == 16  # 4 steps of 8 tokens
    budget = token_budget(1000, [], 2000, seeds=3, tokens_per_example=10, batch_sizes=[4])
    assert (budget.base_examples, budget.pair_examples, budget.end, budget.tokens) == (100, 200, 700, 7000)
    assert [budget.segment(k) for k in range(3)] == [(100, 300), (300, 500), (500, 700)]
    assert token_budget(1000, [500], 2000, batch_sizes=[3, 64]).end == 1024 + 512 + 2048  # the largest batch
    assert TokenBudget(10, 5, seeds=2, start=40).end == 60
    with pytest.raises(ValueError):
        TokenBudget(-1, 5)


def test_a_plan_that_rereads_tokens_is_refused_with_the_ways_out():
    budget = TokenBudget(base_examples=80, pair_examples=30, seeds=2, tokens_per_example=10)
    with pytest.raises(UsageError) as refused:
        check_token_supply(budget, windows=100, source="train.bin", budget_flag=("--tokens-per-param", 1.0))
    message = str(refused.value)
    assert "reads 1,400 training tokens but train.bin holds 1,000 (1.40 passes)" in message
    assert "--tokens-per-param 0.71 or lower" in message and message.endswith("or --allow-repeat")


def test_allow_repeat_goes_on_and_says_so():
    supply = check_token_supply(TokenBudget(80, 30, seeds=2), windows=100, allow_repeat=True)
    assert supply.repeats and supply.passes == pytest.approx(1.4)
    assert "TOKENS REPEAT (--allow-repeat)" in supply.describe()


def test_a_budget_that_fits_or_an_endless_stream_passes():
    fitting = check_token_supply(TokenBudget(60, 20, seeds=2), windows=100)
    assert not fitting.repeats and fitting.fitting_scale == 1.0 and "1.00 passes" in fitting.describe()
    endless = check_token_supply(TokenBudget(10**9, 10**9), windows=None, note="unbounded")
    assert not endless.repeats and endless.passes == 0.0 and "unbounded" in endless.describe()
