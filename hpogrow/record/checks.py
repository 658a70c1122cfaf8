"""The trials of the checks: one finished trial per run of ``hpogrow advise`` (its ladder) and of
``hpogrow transfercheck`` (its sweeps), written at once by :func:`hpogrow.record.add_finished`
and read back on a rerun to reuse what was trained. Field names are the stored keys."""

from __future__ import annotations

from dataclasses import dataclass

from hpogrow.record.codec import from_attrs

TRANSFER = "transfer"
"""The role of a transfer check's runs."""


@dataclass(frozen=True)
class LadderRecord:
    """A run of ``hpogrow advise``'s ladder: scratch at a width, or a warmstart/scratch pair run."""

    role: str
    width: int
    tokens: int
    seed: int
    data_position: int
    growth_factor: float | None
    """The g a pair run was grown by (``None`` for a scratch ladder run)."""
    param_ratio: float | None
    n_params: int
    compute_params: int
    base_tokens: int | None
    base_flops: float | None
    diverged: bool
    tokens_per_param: float | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    schedule: str | None = None

    @classmethod
    def of(cls, trial) -> LadderRecord | None:
        """The ladder record of a trial (``None`` for a trial that is not one)."""
        try:
            return from_attrs(cls, trial.user_attrs)
        except TypeError:  # a required field missing: not a ladder run
            return None


@dataclass(frozen=True)
class TransferRecord:
    """A run of ``hpogrow transfercheck``."""

    parameterization: str
    """``μP`` or ``SP``."""
    width: int
    base_width: int
    """The μP base width (a standard-parameterization run: its own width)."""
    learning_rate: float
    batch_size: int
    seed: int
    tokens: int
    n_params: int
    diverged: bool
    final_loss: float | None = None
    fail_reason: str | None = None
    role: str = TRANSFER

    @classmethod
    def of(cls, trial) -> TransferRecord | None:
        """The transfer record of a trial (``None`` for a trial that is not one)."""
        if trial.user_attrs.get("role") != TRANSFER:
            return None
        return from_attrs(cls, trial.user_attrs)
