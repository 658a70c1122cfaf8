"""search → grow → warmstart vs scratch: the whole hpogrow pipeline, recorded in Optuna.

1. Search learning rate and batch size at the base width (TPE + a pruner on intermediate
   values, step = tokens seen; or, with ``executor="ray"``, Ray Tune trials under ASHA or
   HyperBand) in the study ``{study}/base``. Every trial, whatever its batch size, is evaluated
   at the same token counts (the rungs and the full budget are whole steps of every batch size).
   Several drivers may share the study: together they run ``trials`` trials.
2. Grow the best trial that ran its full budget by ``grow_factor`` (ratio of parameter counts)
   with shrink–zero-pad–perturb.
3. For each of ``seeds`` pairs, train the grown model with the winner's LR and batch size
   (μTransfer) on fresh tokens after the base's, and a μP model from scratch at the same width on
   the same tokens, as trials ``role=scratch`` and ``role=warmstart`` of the study
   ``{study}/target-w{width}``.
4. Record the speedup over the pairs (smoothed curves, geometric mean and 95% interval) on the
   warmstart trials and the target study, with the dashboard notes, and print a summary.

Steps 2–4 happen once per study however many drivers share it: the driver that holds the
target lock does them, the others wait and print the same report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from rich.console import Console

from hpogrow import record
from hpogrow.record.run import RunRecord, SpeedupRecord
from hpogrow.record.study import BaseSignature
from hpogrow.checkpoint import check_owner, reachable_checkpoint
from hpogrow.coordination import Coordinator, coordinator_for
from hpogrow.errors import PipelineError
from hpogrow.progress import QUIET, Display
from hpogrow.search.config import SearchConfig
from hpogrow.search.executors import Executor
from hpogrow.search.plan import Plan, make_executor_for, make_plan, print_plan
from hpogrow.search.report import attach_plot, plot_curves, print_report, target_runs, write_dashboard_notes
from hpogrow.search.sampler import make_sampler
from hpogrow.search.target import TargetPairs, open_target_study
from hpogrow.storage import load_or_create_study, open_storage
from hpogrow.tasks import Task

TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class PipelineResult:
    plan: Plan
    winner: optuna.trial.FrozenTrial
    warmstarts: list[optuna.trial.FrozenTrial]
    """One warmstarted trial per pair (``config.seeds``), pair 0 first."""
    scratches: list[optuna.trial.FrozenTrial]

    @property
    def warmstart(self) -> optuna.trial.FrozenTrial:
        """Pair 0's warmstarted trial (its ``speedup_*`` attributes are over every pair)."""
        return self.warmstarts[0]

    @property
    def scratch(self) -> optuna.trial.FrozenTrial:
        return self.scratches[0]

    @property
    def speedup(self) -> SpeedupRecord:
        """The speedup of warmstart over scratch over every pair, with its interval."""
        return RunRecord.of(self.warmstart).speedup

def run_pipeline(task: Task, config: SearchConfig = SearchConfig(), *, executor: Executor | None = None,
                 console: Console | None = None, display: Display = QUIET) -> PipelineResult:
    """Search at the base width, grow the winner and compare warmstart with scratch.

    Several processes may run the same call against one storage: they share the base search
    (``config.trials`` in all), and one of them grows the winner and trains the target runs
    while the others wait for it. The plan and the report are printed on ``console``; progress
    bars and each trial's line go to ``display`` (:mod:`hpogrow.progress`; none by default, the
    command line passes its rich bars).

    Example (CPU, about a minute)::

        from hpogrow import FourierTask, SearchConfig, run_pipeline
        result = run_pipeline(FourierTask(), SearchConfig(base_width=32, trials=3, workdir="/tmp/hp"))
        print(result.speedup.speedup_tokens, result.speedup.speedup_tokens_ci)
    """
    console = console or Console()
    executor = executor or make_executor_for(config)
    plan = make_plan(task, config, executor)
    storage = open_storage(config.storage_url)
    coordinator = coordinator_for(config.storage_url, config.workdir)
    coordinator.register()
    try:
        signature = BaseSignature(task.describe(), config.base_width, plan.base_tokens, plan.space.as_dict(),
                                  config.schedule, config.evaluations, config.seed, executor.stopping)
        base_study = load_or_create_study(storage, plan.base_study, signature, make_sampler(config.seed),
                                          executor.pruner(plan.base_tokens))
        if record.read_scheduler(base_study) is None:  # the signature holds it to one design
            record.write_scheduler(base_study, executor.design(plan.schedule))
        counted = sum(record.counts_towards_total(t, coordinator) for t in base_study.get_trials(deepcopy=False))
        print_plan(plan, console, max(0, config.trials - counted), executor)
        with executor.session():
            executor.run(base_study, plan.space, config.trials, plan.base_trial(), display, coordinator)
            _wait_for_other_drivers(base_study, coordinator, console)
            winner = best_full_budget_trial(base_study)
            check_owner(RunRecord.of(winner).checkpoint, config.storage_key, plan.base_study, winner.number)
            with coordinator.lock(record.TARGET_LOCK.format(study=plan.study), on_wait=lambda: console.print(
                    "another driver is growing the winner and training the target runs; waiting for it "
                    "(Ctrl-C leaves them to it)")):
                target_study = open_target_study(plan, storage, console)
                warmstarts, scratches = TargetPairs(plan, target_study, winner, executor, display, console).run()
                plotted = [trial.number for trial in warmstarts]
                if record.read_plotted_trials(target_study) != plotted:
                    workdir = Path(config.workdir)
                    path = plot_curves(winner, warmstarts, scratches,
                                       workdir / "plots" / f"{plan.target_study.replace('/', '_')}.png",
                                       record.read_speedup(target_study), replicates=target_runs(target_study)[3])
                    attach_plot(target_study, path, workdir / "artifacts")
                    write_dashboard_notes(target_study)
                    record.write_plotted_trials(target_study, plotted)
    finally:
        coordinator.close()
    print_report(config.storage_url, plan.study, config.workdir, console)
    return PipelineResult(plan, winner, warmstarts, scratches)



def _wait_for_other_drivers(study: optuna.Study, coordinator: Coordinator, console: Console) -> None:
    """Growth needs the whole search: wait while other live drivers still run base trials."""
    announced = False
    while True:
        with coordinator.lock(record.CLAIM_LOCK.format(study=study.study_name)):
            record.fail_abandoned(study, coordinator, role="base")
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return
        if not announced:
            drivers = sorted({str(RunRecord.of(t).driver) for t in running})
            console.print(f"waiting for {len(running)} base trials of other drivers ({', '.join(drivers)}) to finish")
            announced = True
        time.sleep(2.0)



def best_full_budget_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The lowest-loss COMPLETE trial (PRUNED trials never qualify), its checkpoint checked
    readable here (:func:`hpogrow.checkpoint.reachable_checkpoint`)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if RunRecord.of(t).checkpoint]
    if not complete:
        counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
                  for state in (TrialState.PRUNED, TrialState.FAIL)}
        raise PipelineError(f"no base trial of {study.study_name!r} ran its full budget ({counts['pruned']} pruned, "
                         f"{counts['fail']} failed); add --trials, or narrow the learning-rate range with --space")
    winner = min(complete, key=lambda t: t.value)
    run = RunRecord.of(winner)
    node = f" on Ray node {run.facts.node}" if run.facts and run.facts.node else ""
    reachable_checkpoint(run.checkpoint, f"trial {winner.number} of {study.study_name}{node}")
    return winner
