"""In-process execution with Optuna's ask/tell: one trial at a time, pruned by the study's pruner."""

from __future__ import annotations

from collections.abc import Callable

import optuna

from hpogrow.errors import TrainingDiverged
from hpogrow.executors.base import Executor
from hpogrow.report import trial_line
from hpogrow.runs import BaseTrial, RunOutcome
from hpogrow.space import SearchSpace
from hpogrow.storage import driver_id
from hpogrow.train import Evaluation, Report

TrialState = optuna.trial.TrialState


def record_run(study: optuna.Study, trial: optuna.Trial, run: Callable[[Report], RunOutcome],
               prune: bool) -> RunOutcome | None:
    """Run ``run`` inside ``trial`` and tell the study how it ended.

    Every evaluation becomes an intermediate value at step = tokens seen. COMPLETE only when the
    run used its whole budget; PRUNED (its curve kept) when the pruner stopped it; FAIL with a
    ``fail_reason`` when the loss diverged (returns ``None``, the study goes on) or anything else
    went wrong (re-raised).
    """
    trial.set_user_attr("driver", driver_id())

    def report(evaluation: Evaluation) -> bool:
        trial.report(evaluation.val_loss, step=evaluation.tokens_seen)
        return prune and trial.should_prune()

    try:
        outcome = run(report)
    except TrainingDiverged as error:
        trial.set_user_attr("fail_reason", str(error))
        trial.set_user_attr("fidelity_reached", error.tokens_seen)
        study.tell(trial, state=TrialState.FAIL)
        return None
    except BaseException as error:
        trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}"[:500])
        study.tell(trial, state=TrialState.FAIL)
        raise
    for key, value in {"n_params": outcome.n_params, "compute_params": outcome.compute_params,
                       "tokens": outcome.state.tokens_seen, "flops": outcome.flops,
                       "fidelity_reached": outcome.state.tokens_seen,
                       "data_position": outcome.state.data_position,
                       "initial_loss": outcome.evaluations[0].val_loss, "final_loss": outcome.final_loss,
                       "tokens_per_second": round(outcome.tokens_per_second, 1), **outcome.extra}.items():
        trial.set_user_attr(key, value)
    if outcome.checkpoint is not None:
        trial.set_user_attr("checkpoint", str(outcome.checkpoint))
    if outcome.stopped_early:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, outcome.final_loss)
    return outcome


class LocalExecutor(Executor):
    """Runs trials one after another in this process (no Ray start-up)."""

    def run(self, study: optuna.Study, space: SearchSpace, n_trials: int, run_trial: BaseTrial,
            progress=None) -> None:
        overall = progress.add_task("base search", total=n_trials, loss=float("nan")) if progress else None
        for _ in range(n_trials):
            trial = study.ask(space.distributions())
            trial.set_user_attr("role", "base")
            trial.set_user_attr("width", run_trial.base_width)
            record_run(study, trial, lambda report: run_trial(trial.params, report, trial.number, progress),
                       prune=True)
            if progress is not None:
                progress.console.print(trial_line(study.trials[trial.number]))
            if overall is not None:
                best = _best_value(study)
                progress.update(overall, advance=1, loss=best)
        if overall is not None:
            progress.update(overall, visible=False)


def _best_value(study: optuna.Study) -> float:
    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return min(values) if values else float("nan")
