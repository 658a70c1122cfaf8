"""What ``hpogrow coordcheck`` checks: :class:`CoordCheckConfig`, its threshold and its broken variants.

Kept apart from :mod:`hpogrow.coordcheck` (torch, mup, pandas) so that ``hpogrow --help`` builds
its parser from these fields without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hpogrow.errors import UsageError
from hpogrow.options import Options, PositiveFloat, PositiveInt, bad_flag, flag

THRESHOLD = 0.8
"""Largest upward slope gap of a stable configuration, fixed on the controls before any λ was run.

Calibration: ``run_coordcheck(CoordCheckConfig(seed=S, shrinks=(), broken=("torch-adam",
"readout-no-1/width")))`` for S = 0, 3, 6, 9 (four disjoint sets of 3 seeds, the defaults
otherwise: no warmstarted configuration in them). The μP control (other initialisation seeds):
statistic 0.19–0.28, per-seed maxima 0.13–0.44, upper interval ends 0.26–0.65. Must fail: SP
1.91–2.17 (lower ends 1.18–1.97), torch-adam 1.71–1.92 (lower 1.30–1.62), readout-no-1/width
1.000 on every seed (its zero-initialised readout after one step scales exactly as width). The
threshold sits halfway on a log scale between the highest upper end of the control (0.654) and
the lowest lower end of a must-fail control (1.000): √(0.654 · 1.000) = 0.81, rounded down to 0.8.
A gap of 0.8 is an activation whose ratio between widths 512 and 64 exceeds μP's by 8^0.8 ≈ 5×.
"""
THRESHOLD_NOTE = ("halfway on a log scale between the μP control's highest upper interval end (0.654) and the "
                  "lowest lower end of SP and the broken variants (1.000), at the defaults over 4 disjoint sets of "
                  "3 seeds, before any λ was run; μP control 0.19–0.28, SP 1.91–2.17, torch-adam 1.71–1.92, "
                  "readout-no-1/width 1.00")

BrokenVariant = Literal["torch-adam", "readout-no-1/width"]
BROKEN: dict[str, str] = {
    "torch-adam": "μP init trained with torch's Adam: no per-layer learning rates (LR not divided by width_mult)",
    "readout-no-1/width": "μP with MuReadout's 1/width_mult cancelled: the readout computes W·x like nn.Linear",
}
"""What each deliberately broken μP variant (:data:`BrokenVariant`) changes."""


@dataclass(frozen=True)
class CoordCheckConfig(Options):
    """What to check. The defaults with both broken variants take about 160 s of CPU on one torch
    thread (3¼ minutes wall on a shared 2-core machine at load 3–4)."""

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
    steps: PositiveInt = 25
    """Adam steps per model; the activations are recorded before each (steps t ≥ 2 are judged)."""
    seeds: PositiveInt = 3
    """Seeds per configuration, each paired with the μP reference of the same seed; the paired
    t-interval is over them (at least 3)."""
    seed: int = 0
    """First seed: configurations use ``seed`` … ``seed`` + ``seeds`` − 1."""
    learning_rate: PositiveFloat = 1e-2
    """Adam learning rate at the base width, for the checked models and the warmstart base: in the
    upper part of the default search space (3e-4 … 3e-2, log; 1e-2 is its 76th percentile), where
    drift can show (at 3e-3 nothing drifts in 25 steps)."""
    base_steps: PositiveInt = 300
    """Adam steps of the warmstart base model at ``learning_rate``."""
    threshold: PositiveFloat = THRESHOLD
    """Largest upward slope gap of a stable configuration (calibrated on the controls:
    docs/checks.md#coordinate-check)."""
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
        if self.seeds < 3 or self.steps < 2:
            raise UsageError(f"{flag('seeds')} must be at least 3 (a paired t-interval) and {flag('steps')} at least 2 "
                             "(step 1 is the initialisation, not judged)")
