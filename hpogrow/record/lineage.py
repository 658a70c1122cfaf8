"""Growth lineage: where a grown model came from. The one schema written both into a grown
checkpoint's ``config.yaml`` (``lineage``) and onto the warmstarted trials of a search.

Imports nothing heavy: :mod:`hpogrow.growth` writes it without Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GrowthLineage:
    """One growth step (or, on a search's warmstarted trial, base to final target over every stage)."""

    grown_from: str
    """The base checkpoint folder."""
    grow_op: str
    """The operator(s), e.g. ``szp`` or ``szp+zero-block``."""
    grow_factor: float | None
    """The growth factor asked for (target/base parameters); ``None`` when a target width or depth was given."""
    param_ratio: float
    """The achieved ratio of parameter counts, target/base (widths are whole heads, so it differs from the asked factor)."""
    width_ratio: float
    base_width: int
    target_width: int
    base_depth: int | None
    target_depth: int | None
    shrink: float
    """λ of shrink–zero-pad–perturb (unused by operators that do not shrink)."""
    carry_optimizer: bool
    """Adam moments carried through growth (zero-padded) instead of a fresh optimizer."""
    base_tokens: int
    """Tokens spent before the grown model's training: the base's (and, on a search's trial, every stage's)."""
    base_flops: float
    """FLOPs of those tokens (6·N·D)."""
    grown_from_trial: str | None = None
    """``{base study}#{trial number}`` when a search grew it."""
    stage_widths: tuple[int, ...] = ()
    """Widths after each stage of successive warmstarting (a search's ``--stages``)."""
    parent: dict | None = None
    """The base checkpoint's own lineage, when it was grown too (in a checkpoint's ``config.yaml``)."""
