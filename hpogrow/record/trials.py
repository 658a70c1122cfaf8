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
WAITING trial it finds there is abandoned: a WAITING one becomes FAIL; a RUNNING target trial is
adopted (:func:`adopt`) when the new driver starts the same run again, and continues from its
partial checkpoint (:mod:`hpogrow.resume`), else it becomes FAIL. Abandoned trials that became
FAIL do not count towards ``--trials``; finished ones are never touched.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from collections.abc import Callable
from typing import Any

import optuna

from hpogrow._crash import crash_point
from hpogrow.coordination import Coordinator, driver_id
from hpogrow.record.codec import to_attrs
from hpogrow.record.run import RunRecord, summary_attrs
from hpogrow.runs import RunSummary
from hpogrow.train import Evaluation

TrialState = optuna.trial.TrialState
CLAIM_LOCK = "claim {study}"
TARGET_LOCK = "target {study}"


def write(trial: optuna.Trial, record: RunRecord) -> None:
    """Write the fields of ``record`` that differ from their defaults onto a live trial."""
    for key, value in to_attrs(record, defaults=False).items():
        trial.set_user_attr(key, value)


def mark_abandoned(trial: optuna.Trial) -> None:
    """Mark a live trial as left by a dead driver (before it is told FAIL)."""
    write(trial, RunRecord(abandoned=True))


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
           also: RunRecord | None = None) -> TrialState:
    """Write the summary (and the fields of ``also``) and tell COMPLETE (value = final loss) or
    PRUNED (its curve kept)."""
    for key, value in summary_attrs(summary).items():
        trial.set_user_attr(key, value)
    if also is not None:
        write(trial, also)
    crash_point("before-tell")
    if complete:
        study.tell(trial, summary.final_loss)
        return TrialState.COMPLETE
    study.tell(trial, state=TrialState.PRUNED)
    return TrialState.PRUNED


def fail(study: optuna.Study, trial: optuna.Trial, reason: str, *, fidelity_reached: int | None = None,
         diverged: bool = False) -> None:
    """Tell FAIL with ``fail_reason`` (``diverged`` marks a non-finite loss)."""
    write(trial, RunRecord(fidelity_reached=0 if fidelity_reached is None else int(fidelity_reached),
                           diverged=diverged, fail_reason=reason[:500]))
    study.tell(trial, state=TrialState.FAIL)


def add_finished(study: optuna.Study, params: dict[str, Any], distributions: dict, curve: list[tuple[int, float]],
                 record: Any, *, value: float | None = None, fail_reason: str | None = None) -> None:
    """A run that has already ended, as one finished trial written at once (nothing is left
    RUNNING if the process dies): COMPLETE with ``value``, or FAIL with ``fail_reason``.
    ``record`` is a record dataclass (e.g. a ladder or transfer run) whose fields become the
    trial's user attributes."""
    failed = fail_reason is not None
    user_attrs = {**to_attrs(record), **(to_attrs(RunRecord(fail_reason=fail_reason[:500]), defaults=False)
                                         if failed else {})}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.FAIL if failed else TrialState.COMPLETE, value=None if failed else value, params=params,
        distributions=distributions, user_attrs=user_attrs,
        intermediate_values={int(tokens): loss for tokens, loss in curve if math.isfinite(loss)}))


def counts_towards_total(trial: optuna.trial.FrozenTrial, coordinator: Coordinator | None) -> bool:
    """Finished trials count, except abandoned ones; RUNNING ones while their driver lives."""
    if trial.state == TrialState.RUNNING:
        driver = RunRecord.of(trial).driver
        return driver is not None and (coordinator is None or coordinator.alive(driver))
    if trial.state == TrialState.FAIL:
        return not RunRecord.of(trial).abandoned
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def fail_abandoned(study: optuna.Study, coordinator: Coordinator | None, *, sole_writer: bool = False,
                   role: str | None = None) -> list[int]:
    """Tell FAIL every RUNNING trial whose driver is dead (or, with ``sole_writer``, every one
    not of this driver), and every WAITING trial of ours left by a dead driver. Call it holding
    the lock that guards the study's trial creation (claim or target lock)."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = RunRecord.of(trial).driver
        if driver == driver_id():
            continue
        if driver is None or sole_writer or (coordinator is not None and not coordinator.alive(driver)):
            live = optuna.trial.Trial(study, trial._trial_id)
            if role is not None and RunRecord.of(trial).role is None:
                write(live, RunRecord(role=role))
            mark_abandoned(live)
            fail(study, live, "driver process died" if driver else "driver process died before it recorded itself")
            failed.append(trial.number)
    if sole_writer:
        failed += fail_waiting(study)
    return failed


def fail_waiting(study: optuna.Study) -> list[int]:
    """Tell FAIL every WAITING trial (enqueued by a driver that died before it started them);
    only for the sole writer of a study (the holder of its target lock), before it enqueues."""
    failed = []
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        live = study.ask()
        mark_abandoned(live)
        fail(study, live, "driver process died before the trial started")
        failed.append(live.number)
    return failed


def adopt(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> optuna.Trial:
    """A RUNNING trial left by a dead driver, taken over by this one (its driver rewritten) to
    continue its run; only for the sole writer of a study, as :func:`fail_waiting`."""
    live = optuna.trial.Trial(study, trial._trial_id)
    write(live, RunRecord(driver=driver_id()))
    return live


def claim_base_trial(study: optuna.Study, distributions: dict, total: int, identity: RunRecord,
                     coordinator: Coordinator | None) -> optuna.Trial | None:
    """Ask for a new base trial unless the study already holds ``total`` (counting trials that
    other live drivers run); ``None`` when it does. Counting, asking and recording the driver
    happen under the study's claim lock, so concurrent drivers never overshoot ``total``."""
    with _locked(coordinator, CLAIM_LOCK.format(study=study.study_name)):
        fail_abandoned(study, coordinator, role=identity.role)
        counted = sum(counts_towards_total(t, coordinator) for t in study.get_trials(deepcopy=False))
        if counted >= total:
            return None
        trial = study.ask(distributions)
        crash_point("base-after-ask")
        write(trial, replace(identity, driver=driver_id()))
        return trial


def start_target_trial(study: optuna.Study, params: dict[str, Any], distributions: dict,
                       identity: RunRecord) -> optuna.Trial:
    """A RUNNING trial with ``params`` whose identity (role, pair, lineage…) and driver are written
    with it (enqueued, then popped). Only the holder of the target lock creates trials there, so
    ``ask`` pops this one."""
    study.enqueue_trial(params, user_attrs=replace(identity, driver=driver_id()).identity_attrs(), skip_if_exists=False)
    crash_point("target-after-enqueue")
    trial = study.ask(distributions)
    crash_point("target-after-ask")
    return trial


def _locked(coordinator: Coordinator | None, name: str, on_wait: Callable[[], None] | None = None):
    return contextlib.nullcontext() if coordinator is None else coordinator.lock(name, on_wait)
