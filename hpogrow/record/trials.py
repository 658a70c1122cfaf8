"""The Optuna record: the one module that creates trials and writes their states and attributes,
for base, stage, warmstart and scratch runs alike, whichever executor ran them.

The contract every trial keeps:

- **Intermediate values**: every held-out evaluation at ``step = tokens seen``.
- **COMPLETE** (value = final loss) only for a run that used its whole token budget; **PRUNED**
  (its curve kept, value = its last loss) for one stopped early by a pruner or scheduler;
  **FAIL** with ``fail_reason`` otherwise — with ``diverged = True`` for a non-finite loss (the
  sampler learns from those, :mod:`hpogrow.search.sampler`), ``abandoned = True`` when its driver died.
- **User attributes**: ``role``, ``width``, ``driver`` (``host:pid``) from creation on, and from
  the run's :class:`hpogrow.runs.RunSummary`: ``n_params``, ``compute_params``, ``tokens``,
  ``flops``, ``fidelity_reached``, ``data_position``, ``initial_loss``, ``final_loss``,
  ``tokens_per_second``, ``checkpoint`` (complete runs) and extras (``device``, ``node``, ``mfu``).

Crash safety. A base trial is created under the study's claim lock (count, ask, record its
driver), so a RUNNING trial without a driver seen under that lock was left by a driver killed
mid-claim. Target trials are created by :func:`start_target_trial` with their role and driver in
one write (enqueued, then popped) by the one driver that holds the target lock, so any RUNNING or
WAITING trial it finds there is abandoned. Abandoned trials become FAIL and do not count towards
``--trials``; finished ones are never touched.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import optuna

from hpogrow._crash import crash_point
from hpogrow.coordination import Coordinator, driver_id
from hpogrow.runs import RunSummary
from hpogrow.search.sampler import DIVERGED
from hpogrow.train import Evaluation

TrialState = optuna.trial.TrialState
ABANDONED = "abandoned"
"""User attribute set (``True``) on trials told FAIL because their driver died."""
CLAIM_LOCK = "claim {study}"
TARGET_LOCK = "target {study}"


def summary_attrs(summary: RunSummary) -> dict[str, Any]:
    """The user attributes a run's summary becomes."""
    attrs = {"n_params": summary.n_params, "compute_params": summary.compute_params, "tokens": summary.tokens,
             "flops": summary.flops, "fidelity_reached": summary.tokens, "data_position": summary.data_position,
             "initial_loss": summary.initial_loss, "final_loss": summary.final_loss,
             "tokens_per_second": summary.tokens_per_second, "checkpoint": summary.checkpoint}
    return {**{key: value for key, value in attrs.items() if value is not None}, **summary.extra}


def report(trial: optuna.Trial, evaluation: Evaluation) -> None:
    """One held-out evaluation as an intermediate value at ``step = tokens seen`` (once per step)."""
    steps = _reported_steps(trial)
    if math.isfinite(evaluation.val_loss) and evaluation.tokens_seen not in steps:
        trial.report(evaluation.val_loss, step=evaluation.tokens_seen)
        steps.add(evaluation.tokens_seen)


def _reported_steps(trial: optuna.Trial) -> set[int]:
    steps = getattr(trial, "_hpogrow_steps", None)
    if steps is None:
        steps = set(trial.storage.get_trial(trial._trial_id).intermediate_values)
        trial._hpogrow_steps = steps  # type: ignore[attr-defined]
    return steps


def finish(study: optuna.Study, trial: optuna.Trial, summary: RunSummary, complete: bool,
           extra: dict[str, Any] | None = None) -> TrialState:
    """Write the summary and tell COMPLETE (value = final loss) or PRUNED (its curve kept)."""
    for key, value in {**summary_attrs(summary), **(extra or {})}.items():
        trial.set_user_attr(key, value)
    crash_point("before-tell")
    if complete:
        study.tell(trial, summary.final_loss)
        return TrialState.COMPLETE
    study.tell(trial, state=TrialState.PRUNED)
    return TrialState.PRUNED


def fail(study: optuna.Study, trial: optuna.Trial, reason: str, *, fidelity_reached: int | None = None,
         diverged: bool = False) -> None:
    """Tell FAIL with ``fail_reason`` (``diverged`` marks a non-finite loss)."""
    if fidelity_reached is not None:
        trial.set_user_attr("fidelity_reached", int(fidelity_reached))
    if diverged:
        trial.set_user_attr(DIVERGED, True)
    trial.set_user_attr("fail_reason", reason[:500])
    study.tell(trial, state=TrialState.FAIL)


def add_finished(study: optuna.Study, params: dict[str, Any], distributions: dict, curve: list[tuple[int, float]],
                 attrs: dict[str, Any], *, value: float | None = None, fail_reason: str | None = None) -> None:
    """A run that has already ended, as one finished trial written at once (nothing is left
    RUNNING if the process dies): COMPLETE with ``value``, or FAIL with ``fail_reason``."""
    failed = fail_reason is not None
    user_attrs = {**attrs, **({"fail_reason": fail_reason[:500]} if failed else {})}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.FAIL if failed else TrialState.COMPLETE, value=None if failed else value, params=params,
        distributions=distributions, user_attrs=user_attrs,
        intermediate_values={int(tokens): loss for tokens, loss in curve if math.isfinite(loss)}))


def counts_towards_total(trial: optuna.trial.FrozenTrial, coordinator: Coordinator | None) -> bool:
    """Finished trials count, except abandoned ones; RUNNING ones while their driver lives."""
    if trial.state == TrialState.RUNNING:
        driver = trial.user_attrs.get("driver")
        return driver is not None and (coordinator is None or coordinator.alive(driver))
    if trial.state == TrialState.FAIL:
        return not trial.user_attrs.get(ABANDONED)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def fail_abandoned(study: optuna.Study, coordinator: Coordinator | None, *, sole_writer: bool = False,
                   role: str | None = None) -> list[int]:
    """Tell FAIL every RUNNING trial whose driver is dead (or, with ``sole_writer``, every one
    not of this driver), and every WAITING trial of ours left by a dead driver. Call it holding
    the lock that guards the study's trial creation (claim or target lock)."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = trial.user_attrs.get("driver")
        if driver == driver_id():
            continue
        if driver is None or sole_writer or (coordinator is not None and not coordinator.alive(driver)):
            live = optuna.trial.Trial(study, trial._trial_id)
            if role is not None and "role" not in trial.user_attrs:
                live.set_user_attr("role", role)
            live.set_user_attr(ABANDONED, True)
            fail(study, live, "driver process died" if driver else "driver process died before it recorded itself")
            failed.append(trial.number)
    if sole_writer:
        while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):  # enqueued, never started
            live = study.ask()
            live.set_user_attr(ABANDONED, True)
            fail(study, live, "driver process died before the trial started")
            failed.append(live.number)
    return failed


def claim_base_trial(study: optuna.Study, distributions: dict, total: int, attrs: dict[str, Any],
                     coordinator: Coordinator | None) -> optuna.Trial | None:
    """Ask for a new base trial unless the study already holds ``total`` (counting trials that
    other live drivers run); ``None`` when it does. Counting, asking and recording the driver
    happen under the study's claim lock, so concurrent drivers never overshoot ``total``."""
    with _locked(coordinator, CLAIM_LOCK.format(study=study.study_name)):
        fail_abandoned(study, coordinator, role=attrs.get("role"))
        counted = sum(counts_towards_total(t, coordinator) for t in study.get_trials(deepcopy=False))
        if counted >= total:
            return None
        trial = study.ask(distributions)
        crash_point("base-after-ask")
        for key, value in {**attrs, "driver": driver_id()}.items():
            trial.set_user_attr(key, value)
        return trial


def start_target_trial(study: optuna.Study, params: dict[str, Any], distributions: dict,
                       attrs: dict[str, Any]) -> optuna.Trial:
    """A RUNNING trial with ``params`` whose role and driver are written with it (enqueued, then
    popped). Only the holder of the target lock creates trials there, so ``ask`` pops this one."""
    study.enqueue_trial(params, user_attrs={**attrs, "driver": driver_id()}, skip_if_exists=False)
    crash_point("target-after-enqueue")
    trial = study.ask(distributions)
    crash_point("target-after-ask")
    return trial


def _locked(coordinator: Coordinator | None, name: str, on_wait: Callable[[], None] | None = None):
    return contextlib.nullcontext() if coordinator is None else coordinator.lock(name, on_wait)
