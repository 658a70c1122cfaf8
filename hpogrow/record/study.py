"""What a study records as a whole, each attribute with one writer and one reader here:

- ``signature``: the settings the study was made with (:class:`BaseSignature`,
  :class:`TargetSignature`, or a command's own dataclass); a study is continued only under the
  same signature;
- ``speedup``: the target study's :class:`~hpogrow.record.run.SpeedupRecord`;
- ``plot`` and ``plot_for``: the loss-curve PNG attached to the study, and the warmstarted trials
  it was drawn for;
- ``scheduler``: how the base study's trials are stopped early: the design and its rungs in tokens
  (:meth:`hpogrow.search.executors.base.Executor.design`);
- ``advice`` (``hpogrow advise``) and ``transfer`` (``hpogrow transfercheck``): their verdicts as
  JSON-safe dictionaries (their schemas are the ``summary`` functions of those packages).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import optuna

from hpogrow.record.codec import from_attrs, to_attrs
from hpogrow.record.run import RunRecord, SpeedupRecord

_SIGNATURE, _SPEEDUP, _PLOT, _PLOT_FOR, _ADVICE, _TRANSFER, _SCHEDULER = (
    "signature", "speedup", "plot", "plot_for", "advice", "transfer", "scheduler")


@dataclass(frozen=True)
class BaseSignature:
    """A search's base study: the same task, width, budget, space, schedule, evaluations, seed
    and stopping rule, or a new study."""

    task: dict[str, Any]
    base_width: int
    tokens: int
    space: dict[str, Any]
    schedule: str
    evaluations: int
    seed: int
    stopping: str


@dataclass(frozen=True)
class TargetSignature:
    """A search's target study: the same growth and target budget, or a new study."""

    task: dict[str, Any]
    base_width: int
    target_width: int
    target_depth: int | None
    tokens: int
    grow_op: str
    shrink: float
    noise_scale: float | None
    stages: int
    carry_optimizer: bool
    schedule: str
    evaluations: int
    seed: int
    base_study: str


def signature_dict(signature: Any) -> dict[str, Any]:
    """A signature dataclass (or a plain dictionary) as the stored dictionary (``None`` kept)."""
    return dataclasses.asdict(signature) if dataclasses.is_dataclass(signature) else dict(signature)


def read_signature(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(_SIGNATURE)


def write_signature(study: optuna.Study, signature: Any) -> None:
    study.set_user_attr(_SIGNATURE, signature_dict(signature))


def read_speedup(study: optuna.Study) -> SpeedupRecord | None:
    """The target study's speedup over its pairs (``None`` before the pairs finished)."""
    stored = study.user_attrs.get(_SPEEDUP)
    return None if not stored else from_attrs(SpeedupRecord, stored)


def write_speedup(study: optuna.Study, speedup: SpeedupRecord) -> None:
    study.set_user_attr(_SPEEDUP, to_attrs(speedup))


def read_plot(study: optuna.Study) -> str | None:
    return study.user_attrs.get(_PLOT)


def write_plot(study: optuna.Study, path: str) -> None:
    study.set_user_attr(_PLOT, path)


def read_plotted_trials(study: optuna.Study) -> list[int] | None:
    """The warmstarted trials the attached plot was drawn for."""
    return study.user_attrs.get(_PLOT_FOR)


def write_plotted_trials(study: optuna.Study, numbers: list[int]) -> None:
    study.set_user_attr(_PLOT_FOR, list(numbers))


def read_scheduler(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(_SCHEDULER)


def write_scheduler(study: optuna.Study, design: dict[str, Any]) -> None:
    study.set_user_attr(_SCHEDULER, design)


def read_advice(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(_ADVICE)


def write_advice(study: optuna.Study, advice: dict[str, Any]) -> None:
    study.set_user_attr(_ADVICE, advice)


def read_transfer(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(_TRANSFER)


def write_transfer(study: optuna.Study, transfer: dict[str, Any]) -> None:
    study.set_user_attr(_TRANSFER, transfer)


def is_diverged(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial was told FAIL for a non-finite loss."""
    return RunRecord.of(trial).diverged
