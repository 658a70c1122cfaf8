"""Token accounting: which training windows a command reads, checked against what the data holds.

The method's rule is that no token is read twice: not within a run, and not by the target runs
after the base saw it. In stream positions (one position = one example = ``tokens_per_example``
tokens):

- every base trial reads ``[0, B)`` — they are alternatives, so they share the same tokens;
- warmstart/scratch pair ``k`` (of ``seeds``) reads its own segment ``[B + k·S, B + (k+1)·S)``,
  where ``S`` covers the intermediate stages and the target run; the warmstarted and the scratch
  run of a pair read the same tokens.

A run of ``tokens`` at batch size ``b`` reads ``ceil(tokens / (b · tokens_per_example)) · b``
examples; the accounting takes the worst batch size of the search space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpogrow.data.token_files import GPT2_ORIGIN, GPT2_VOCAB_SIZE
from hpogrow.errors import UsageError

if TYPE_CHECKING:
    from hpogrow.tasks.base import Task


@dataclass(frozen=True)
class TokenBudget:
    """Stream positions (examples) a command reads, base first, then one segment per seed."""

    base_examples: int
    """Examples each base trial reads, from ``start``."""
    pair_examples: int
    """Examples each warmstart/scratch pair reads after the base's (stages and target run)."""
    seeds: int = 1
    """Warmstart/scratch pairs, each on its own fresh segment."""
    tokens_per_example: int = 1
    """Tokens one example counts for (the LM's context length)."""
    start: int = 0
    """Position of the first example (a checkpoint's data position for ``train --from``)."""

    def __post_init__(self) -> None:
        if min(self.base_examples, self.pair_examples, self.start) < 0 or self.seeds < 1 or self.tokens_per_example < 1:
            raise ValueError(f"a token budget needs non-negative sizes and at least one seed, got {self}")

    def segment(self, seed_index: int) -> tuple[int, int]:
        """Positions ``[first, end)`` that warmstart/scratch pair ``seed_index`` reads."""
        first = self.start + self.base_examples + seed_index * self.pair_examples
        return first, first + self.pair_examples

    @property
    def end(self) -> int:
        """One past the last position any run reads."""
        return self.start + self.base_examples + self.seeds * self.pair_examples

    @property
    def examples(self) -> int:
        return self.end - self.start

    @property
    def tokens(self) -> int:
        return self.examples * self.tokens_per_example


def examples_read(tokens: int, batch_size: int, tokens_per_example: int) -> int:
    """Examples a run of ``tokens`` reads at ``batch_size``: whole steps, the last one full."""
    return math.ceil(tokens / (batch_size * tokens_per_example)) * batch_size


def token_budget(base_tokens: int, stage_tokens: Sequence[int], target_tokens: int, *, seeds: int = 1,
                 tokens_per_example: int = 1, batch_sizes: Sequence[int] = (1,), start: int = 0) -> TokenBudget:
    """The positions a search reads: base trials of ``base_tokens``, then ``seeds`` pairs of
    intermediate stages (``stage_tokens``, paper 002 B.3) and a target run of ``target_tokens``.

    Every run of a pair uses the winner's batch size; which one wins is not known in advance, so
    the budget is the largest over ``batch_sizes``.

    Example::

        token_budget(1000, [], 2000, seeds=3, tokens_per_example=10, batch_sizes=[4])
        # TokenBudget(base_examples=100, pair_examples=200, seeds=3, ...): reads [0, 700)
    """
    def budget(batch_size: int) -> TokenBudget:
        pair = sum(examples_read(tokens, batch_size, tokens_per_example) for tokens in [*stage_tokens, target_tokens]
                   if tokens > 0)
        return TokenBudget(examples_read(base_tokens, batch_size, tokens_per_example) if base_tokens > 0 else 0,
                           pair, seeds, tokens_per_example, start)

    return max((budget(size) for size in batch_sizes), key=lambda candidate: candidate.end)


@dataclass(frozen=True)
class TokenSupply:
    """A budget against the training windows of the data (``None``: nothing to check against — a
    generated stream that never repeats, or a task that declares no size)."""

    budget: TokenBudget
    windows: int | None
    source: str = "the data"
    note: str = ""
    """Anything else the plan should say about the data (the synthetic language's entropy floor)."""

    @property
    def passes(self) -> float:
        """Passes over the training windows the furthest-reading run reaches (0 when unchecked)."""
        return 0.0 if self.windows is None else self.budget.end / self.windows

    @property
    def repeats(self) -> bool:
        return self.windows is not None and self.budget.end > self.windows

    @property
    def fitting_scale(self) -> float:
        """Factor by which every budget would have to shrink for nothing to repeat (≥ 1: fits)."""
        if self.windows is None or not self.budget.examples:
            return math.inf
        return (self.windows - self.budget.start) / self.budget.examples

    def describe(self) -> str:
        """One line for the plan."""
        budget = self.budget
        reads = (f"reads {budget.tokens:,} training tokens (base {budget.base_examples * budget.tokens_per_example:,}"
                 + (f", then {budget.seeds} × {budget.pair_examples * budget.tokens_per_example:,} for warmstart/scratch"
                    if budget.pair_examples else "") + ")")
        if self.windows is None:
            return f"{self.source}: {self.note or 'no training-set size declared, not checked'}; this command {reads}"
        note = f"; {self.note}" if self.note else ""
        available = self.windows * budget.tokens_per_example
        repeats = ", TOKENS REPEAT (--allow-repeat)" if self.repeats else ""
        return (f"{self.source}: {available:,} training tokens; this command {reads}: "
                f"{self.passes:.2f} passes{repeats}{note}")


def check_token_supply(budget: TokenBudget, windows: int | None, *, source: str = "the data", note: str = "",
                       allow_repeat: bool = False, budget_flag: tuple[str, float] | None = None) -> TokenSupply:
    """Refuse, with one line and the ways out, a budget that would read a training window twice.

    Args:
        windows: training windows of the data; ``None``: nothing to check (see :class:`TokenSupply`).
        allow_repeat: go on anyway (each run records its passes over the data).
        budget_flag: the flag that sets the budget and its value, to suggest one that fits.

    Raises:
        UsageError: the budget reads past the last window and ``allow_repeat`` is false.
    """
    supply = TokenSupply(budget, windows, source, note)
    if not supply.repeats or allow_repeat:
        return supply
    lower = "a smaller budget"
    if budget_flag is not None:
        flag, value = budget_flag
        fitting = value * supply.fitting_scale
        lower = (f"{flag} {_round_down(fitting):.12g} or lower" if fitting > 0 and supply.fitting_scale > 0
                 else f"a smaller {flag}")
    raise UsageError(
        f"this command reads {budget.tokens:,} training tokens but {source} holds "
        f"{windows * budget.tokens_per_example:,} ({supply.passes:.2f} passes): tokens would repeat; "
        f"use --data with more data, --data synthetic (unbounded, no download), {lower}, or --allow-repeat")


def task_token_supply(task: Task, base_tokens: int, stage_tokens: Sequence[int], target_tokens: int, *,
                      batch_sizes: Sequence[int], seeds: int = 1, start: int = 0, allow_repeat: bool = False,
                      budget_flag: tuple[str, float] | None = None) -> TokenSupply:
    """:func:`token_budget` of a search on ``task`` checked against its training windows (see
    :func:`check_token_supply`); what the pipeline's plan calls with its final budgets (and
    ``hpogrow train`` with its one run as the base, from its checkpoint's data position)."""
    budget = token_budget(base_tokens, stage_tokens, target_tokens, seeds=seeds,
                          tokens_per_example=task.tokens_per_example, batch_sizes=batch_sizes, start=start)
    summary = task.data_summary()
    floor = summary.get("entropy_floor")
    note = (f"unbounded, every token fresh; entropy floor {floor['value']:.4f} nats/token on the evaluation set "
            f"(95% interval for the stream {floor['interval_95'][0]:.4f}–{floor['interval_95'][1]:.4f})" if floor else "")
    if summary.get("vocab_from") == GPT2_ORIGIN:
        note = (f"no meta.pkl: assuming GPT-2 BPE tokens, a vocabulary of {GPT2_VOCAB_SIZE:,} (as nanoGPT does; "
                "--vocab-size sets another)")
    return check_token_supply(budget, task.training_windows(), source=summary.get("source", f"task {task.name!r}"),
                              note=note, allow_repeat=allow_repeat, budget_flag=budget_flag)


def _round_down(value: float) -> float:
    """``value`` rounded down to two significant digits."""
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return math.floor(value / scale) * scale
