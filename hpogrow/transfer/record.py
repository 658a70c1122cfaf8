"""The Optuna record of a transfer check: one trial per run, the verdict on the study.

Trials are written by :func:`hpogrow.record.add_finished` (through :func:`record_run`); the
study's verdict by :func:`record_verdict` (study attribute ``transfer``, the figure as an
artifact, the dashboard note).
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import optuna_dashboard
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hpogrow import record
from hpogrow.record.checks import TransferRecord
from hpogrow.tasks.base import Task
from hpogrow.transfer.config import PARAMETERIZATIONS, TransferConfig
from hpogrow.transfer.verdict import TransferResult, TransferRun, run_key
from hpogrow.transfer.view import plot_transfer, transfer_note



def signature(task: Task, config: TransferConfig) -> dict:
    """What makes two runs comparable; a study made with another signature is not reused."""
    return {"kind": "transfercheck", "task": task.describe(), "batch_size": config.batch_size,
            "tokens": config.tokens, "schedule": config.schedule, "precision": config.precision}


def record_run(study: optuna.Study, run: TransferRun, config: TransferConfig) -> None:
    """Add ``run`` to ``study`` as one finished trial (COMPLETE, or FAIL when it diverged), in one
    write: an interrupted sweep leaves no RUNNING trial behind."""
    attributes = TransferRecord(
        parameterization=run.parameterization, width=run.width,
        base_width=config.widths[0] if run.parameterization == "μP" else run.width,
        learning_rate=run.learning_rate, batch_size=config.batch_size, seed=run.seed, tokens=config.tokens,
        n_params=run.n_params, diverged=run.diverged, final_loss=None if run.diverged else run.final_loss)
    record.add_finished(
        study, {"learning_rate": run.learning_rate, "width": run.width, "parameterization": run.parameterization},
        {"learning_rate": FloatDistribution(config.learning_rates[0], config.learning_rates[-1], log=True),
         "width": IntDistribution(config.widths[0], config.widths[-1], log=True),
         "parameterization": CategoricalDistribution(PARAMETERIZATIONS)},
        list(run.curve), attributes, value=None if run.diverged else run.final_loss,
        fail_reason=(run.fail_reason or "the loss became non-finite") if run.diverged else None)


def recorded_runs(study: optuna.Study, base_width: int) -> dict[tuple, TransferRun]:
    """Finished runs in ``study`` by key; μP runs count only with the same base width."""
    runs = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)):
        stored = TransferRecord.of(trial)
        if stored is None or (stored.parameterization == "μP" and stored.base_width != base_width):
            continue
        key = run_key(stored.parameterization, stored.width, stored.learning_rate, stored.seed)
        runs.setdefault(key, TransferRun(
            stored.parameterization, stored.width, stored.learning_rate, stored.seed,
            math.inf if stored.diverged else trial.value, tuple(sorted(trial.intermediate_values.items())),
            stored.n_params, stored.fail_reason))
    return runs


def record_verdict(study: optuna.Study, result: TransferResult) -> None:
    """The figure (as an artifact, redrawn when the runs behind it changed), the verdict as a
    study attribute ``transfer`` and as the dashboard's note."""
    from hpogrow.search.report import attach_plot  # imports optuna only; kept local like the plotting

    summary = _summary(result)
    if result.trained or record.read_transfer(study) != summary or not result.plot.exists():
        plot_transfer(result, result.plot)
        attach_plot(study, result.plot, Path(result.config.workdir) / "artifacts")
    record.write_transfer(study, summary)
    optuna_dashboard.save_note(study, transfer_note(result))


def _summary(result: TransferResult) -> dict:
    """The verdict as JSON-safe values (``None`` where a number is missing)."""
    def number(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else value

    config = result.config
    return {
        "widths": list(config.widths), "learning_rates": list(config.learning_rates), "seeds": list(result.seeds),
        "max_drift": config.max_drift, "batch_size": config.batch_size, "tokens": config.tokens,
        "passed": result.passed,
        "verdicts": {name: {
            "verdict": verdict.label, "transfers": verdict.transfers,
            "shifts": list(verdict.shifts), "max_shift": verdict.max_shift,
            "best_learning_rates": [None if o.best_index is None else config.learning_rates[o.best_index]
                                    for o in verdict.optima],
            "refined_learning_rates": [o.refined_learning_rate for o in verdict.optima],
            "drift": number(verdict.drift), "seed_drifts": [number(value) for value in verdict.seed_drifts],
            "drift_interval": [number(value) for value in verdict.drift_interval],
            "drift_range": [number(value) for value in verdict.drift_range],
            "diverged_runs": sum(sum(o.diverged) for o in verdict.optima),
        } for name, verdict in result.verdicts.items()},
    }

