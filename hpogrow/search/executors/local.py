"""In-process execution with Optuna's ask/tell: one trial at a time, stopped early by synchronous
successive halving (:mod:`hpogrow.search.halving`) or Optuna's median pruner, or never."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import optuna

from hpogrow import record
from hpogrow.coordination import Coordinator
from hpogrow.errors import TrainingDiverged, UsageError
from hpogrow.progress import QUIET, Display, TokensCallback, run_bar
from hpogrow.runs import BaseTrial, TrialEvent
from hpogrow.search.executors.base import Executor
from hpogrow.search.executors.halving_run import Segment, SegmentJob, run_halving, train_segment
from hpogrow.search.halving import Halving
from hpogrow.search.report import trial_line
from hpogrow.search.schedule import Schedule, round_to
from hpogrow.search.space import SearchSpace
from hpogrow.train import torch_threads

TrialState = optuna.trial.TrialState
SCHEDULERS = ("sha", "median", "none")


@dataclass(frozen=True)
class LocalExecutor(Executor):
    """Runs trials one after another in this process (no Ray start-up)."""

    scheduler: Literal["sha", "median", "none"] = "sha"
    """``sha``: synchronous successive halving (``halving``); ``median``: Optuna's median pruner
    stops a trial whose loss is worse than the median of earlier trials at the same token count
    (after a quarter of the budget and two trials); ``none``: never stop early."""
    halving: Halving = Halving()
    """The successive-halving design, for ``sha``."""
    threads: int = 1
    """Torch threads of the runs in this process (``--cpus-per-trial``, as Ray gives each trial its
    CPUs): torch's default, one thread per core, made a tiny model's steps many times slower beside
    one other busy process."""

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise UsageError(f"--scheduler {self.scheduler}: with --executor local use {', '.join(SCHEDULERS)} "
                             "(asha and hyperband are Ray Tune's: --executor ray)")
        if self.threads < 1:
            raise UsageError(f"--cpus-per-trial: in process it sets torch's threads, so it needs at least 1, got {self.threads}")

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Base trials and target runs train with :attr:`threads` torch threads (restored after)."""
        with torch_threads(self.threads):
            yield

    @property
    def stopping(self) -> str:
        return self.halving.stopping if self.scheduler == "sha" else self.scheduler

    def schedule(self, budget: float, step_tokens: int) -> Schedule:
        if self.scheduler == "sha":
            return self.halving.schedule(budget, step_tokens)
        rounded = round_to(budget, step_tokens)
        return Schedule(rounded, (rounded,))

    def design(self, schedule: Schedule) -> dict:
        if self.scheduler == "sha":
            return self.halving.describe(schedule)
        return {"name": self.scheduler, "rungs": list(schedule.rungs)}

    def spend(self, trials: int, schedule: Schedule) -> float:
        return self.halving.spend(trials, schedule) if self.scheduler == "sha" else 1.0

    def pruner(self, budget: int) -> optuna.pruners.BasePruner:
        if self.scheduler != "median":
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=budget // 4)

    def plan_rows(self, schedule: Schedule, base_params: int) -> list[tuple[str, str]]:
        if self.scheduler == "sha":
            return [("stopping", f"in process, {self.halving.explain(schedule, base_params)}")]
        return [("stopping", f"in process, Optuna's {self.scheduler} pruner at every evaluation")]

    def run(self, study: optuna.Study, space: SearchSpace, trials: int, base_trial: BaseTrial,
            display: Display = QUIET, coordinator: Coordinator | None = None) -> None:
        overall = display.bar("base search", trials)
        if self.scheduler == "sha":
            def ended(number: int) -> None:
                display.print(trial_line(study.trials[number]))
                overall.update(_counted(study), _best_value(study))

            run_halving(study, space, trials, base_trial, self.halving, self.base_schedule(base_trial, space),
                        _train_here, display, coordinator, ended)
            overall.close()
            return
        identity = record.RunRecord(role=record.BASE, width=base_trial.base_width)
        while (trial := record.claim_base_trial(study, space.distributions(), trials, identity, coordinator)) is not None:
            with run_bar(display, f"base trial {trial.number}", base_trial.template.tokens) as on_tokens:
                run_in_process(study, trial, base_trial, prune=self.scheduler == "median", on_tokens=on_tokens)
            display.print(trial_line(study.trials[trial.number]))
            overall.update(_counted(study), _best_value(study))
        overall.close()


def _train_here(jobs: list[SegmentJob], display: Display) -> list[Segment]:
    """A wave of successive halving in this process, one segment after another."""
    segments = []
    for job in jobs:
        with run_bar(display, f"base trial {job.number} to {job.tokens:,} tokens", job.tokens) as on_tokens:
            segments.append(train_segment(job, on_tokens))
    return segments


def _counted(study: optuna.Study) -> int:
    return sum(record.counts_towards_total(t, None) for t in study.get_trials(deepcopy=False) if t.state.is_finished())


def run_in_process(study: optuna.Study, trial: optuna.Trial, base_trial: BaseTrial, *, prune: bool,
                   on_tokens: TokensCallback | None = None) -> None:
    """Train ``trial`` here and record it: each evaluation an intermediate value (the pruner
    asked after each), then COMPLETE, PRUNED or FAIL (a divergence is recorded and the search
    goes on; any other error is recorded and re-raised)."""

    def on_event(event: TrialEvent) -> bool:
        record.report(trial, event.evaluation)
        return prune and trial.should_prune()

    try:
        outcome = base_trial.run(trial.params, trial.number, on_event, on_tokens=on_tokens)
    except TrainingDiverged as error:
        record.fail(study, trial, str(error), fidelity_reached=error.tokens_seen, diverged=True)
        return
    except (KeyboardInterrupt, SystemExit):
        record.mark_abandoned(trial)
        record.fail(study, trial, "interrupted")
        raise
    except BaseException as error:
        record.fail(study, trial, f"{type(error).__name__}: {error}")
        raise
    record.finish(study, trial, outcome.summary, complete=not outcome.stopped_early)


def _best_value(study: optuna.Study) -> float:
    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return min(values) if values else float("nan")
