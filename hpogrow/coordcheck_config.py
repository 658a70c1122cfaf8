"""What ``hpogrow coordcheck`` checks: :class:`CoordCheckConfig`, its threshold and its broken variants.

Kept apart from :mod:`hpogrow.coordcheck` (torch, mup, pandas) so that ``hpogrow --help`` builds
its parser from these fields without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hpogrow.errors import UsageError
from hpogrow.options import Options, PositiveFloat, PositiveInt, bad_flag, flag

THRESHOLD = 0.60
"""Largest slope gap of a μP-like configuration; derivation in :mod:`hpogrow.coordcheck`'s docstring."""

BrokenVariant = Literal["torch-adam", "readout-no-1/width"]
BROKEN: dict[str, str] = {
    "torch-adam": "μP init trained with torch's Adam: no per-layer learning rates (LR not divided by width_mult)",
    "readout-no-1/width": "μP with MuReadout's 1/width_mult cancelled: the readout computes W·x like nn.Linear",
}
"""What each deliberately broken μP variant (:data:`BrokenVariant`) changes."""


@dataclass(frozen=True)
class CoordCheckConfig(Options):
    """What to check. The defaults take 100–120 s of CPU on one torch thread (2¾ minutes wall on
    a 2-core machine at load 5, 5½ at load 11)."""

    widths: tuple[PositiveInt, ...] = (64, 128, 256, 512)
    """Checked widths: three or more, increasing, all above ``base_width``."""
    base_width: PositiveInt = 32
    """μP base width (width multiplier 1) and width of the warmstart base model."""
    shrinks: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    """λ values of the warmstarted configurations (λ = 0 is μP through the growth code); none to
    skip them."""
    broken: tuple[BrokenVariant, ...] = ()
    """Deliberately broken μP variants to include: torch-adam trains μP's init with torch's Adam;
    readout-no-1/width cancels MuReadout's 1/width_mult (default none)."""
    depth: PositiveInt = 2
    """Transformer blocks of the GPT."""
    head_size: PositiveInt = 32
    """Attention head size (fixed; widths add heads)."""
    seq_len: PositiveInt = 32
    """Context length in tokens."""
    batch_size: PositiveInt = 8
    """Sequences per step; every step draws a fresh batch, the same for every width."""
    steps: PositiveInt = 20
    """Adam steps per model; the activations are recorded before each."""
    seeds: PositiveInt = 3
    """Seeds per configuration (and for the μP reference); the interval is over them."""
    seed: int = 0
    """First seed: configurations use ``seed`` … ``seed`` + ``seeds`` − 1."""
    learning_rate: PositiveFloat = 3e-3
    """Adam learning rate at the base width: the log-midpoint of the default search space, near the
    winners of the default search (about 3.8e-3; docs/search.md#the-default-run)."""
    base_steps: PositiveInt = 300
    """Adam steps of the warmstart base model (at the defaults its weights move 0.23 of their
    norm away from init and its training loss falls from 5.55 to about 2.5)."""
    threshold: PositiveFloat = THRESHOLD
    """Largest slope gap of a μP-like configuration (0.6 is derived in docs/checks.md#coordinate-check)."""
    data: str | None = None
    """Corpus (default: the CPython standard library source)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.widths) < 3 or sorted(set(self.widths)) != list(self.widths):
            raise bad_flag("widths", self.widths, "give at least three increasing widths")
        if self.base_width >= self.widths[0]:
            raise bad_flag("base_width", self.base_width, f"must be below every checked width (the smallest is "
                           f"{self.widths[0]}), so that no width has multiplier 1")
        if any(w % self.head_size for w in (self.base_width, *self.widths)):
            raise UsageError(f"{flag('widths')} {list(self.widths)} {flag('base_width')} {self.base_width}: every "
                             f"width must be a multiple of the head size {self.head_size}")
        if any(not 0 <= s <= 1 for s in self.shrinks):
            raise bad_flag("shrinks", self.shrinks, "λ must lie in [0, 1]")
        if unknown := set(self.broken) - set(BROKEN):
            raise UsageError(f"{flag('broken')} {' '.join(sorted(unknown))}: unknown; choose from {', '.join(BROKEN)}")
        if self.seeds < 2 or self.steps < 2:
            raise UsageError(f"{flag('seeds')} and {flag('steps')} must be at least 2 (an interval needs two seeds)")
