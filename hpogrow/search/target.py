"""The target pairs: train the replicate bases, grow the bases and train, for each of ``seeds``
pairs, the warmstarted run against a μP run from scratch at the same width, as trials of the
target study; then the speedup over the pairs, its interval resampling bases.

Bases (``--bases B``): base 0 is the search's winner; base ``b ≥ 1`` is the winner's
configuration (learning rate, batch size, budget, evaluation points) retrained at the base width
from a fresh initialisation with seed ``config.seed + b``, on the same base tokens (the data is a
function of position), as a ``replicate base`` trial of the target study: a base the search could
equally have produced, so the spread between bases is what a user's one base may differ by. The
search is not repeated. Pair ``k`` grows base ``k mod B``.

Pair ``k`` has seed ``config.seed + k`` (growth perturbation, scratch initialisation) and reads its
own fresh segment of the training stream after the base's; its warmstarted and scratch runs read
the same tokens, the final stage's with ``--stages``. Scratch runs do not depend on the base. Every
run trains at the winner's learning rate, scaled for its tokens under ``--horizon-transfer auto``
(:mod:`hpogrow.search.horizon`), and a run grown from a base (warmstart, stage) by
``--warmstart-lr-scale`` (1 by default); the trial's ``learning_rate`` param stays the winner's
and the rate it trained at is recorded beside the corrections. Runs
the study already holds are reused; a run a dead driver left RUNNING (a replicate base too) is
adopted and continues from its partial checkpoint. Everything here runs holding the target lock:
this driver alone writes the target study.

The steps, in order: :func:`open_target_study`, then :meth:`TargetPairs.run`: the replicate bases
submitted, :meth:`TargetPairs.start_pair` for every pair (its base awaited, stages, growth, runs
submitted), then :meth:`TargetPairs.collect` (wait, record, speedup).
"""

from __future__ import annotations

import contextlib
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from hpogrow import record
from hpogrow.record.lineage import GrowthLineage
from hpogrow.record.run import REPLICATE, SCRATCH, WARMSTART, HorizonTransfer, RunRecord, SpeedupRecord
from hpogrow.record.study import TargetSignature
from hpogrow._crash import crash_point
from hpogrow.checkpoint import check_owner
from hpogrow.errors import PipelineError, TrainingDiverged
from hpogrow.growth import grow_checkpoint
from hpogrow.progress import Display
from hpogrow.resume import ResumePoint
from hpogrow.runs import CheckpointOwner, RunOutcome, paired_eval_gap, run_scratch, run_warmstart
from hpogrow.search.executors import Executor
from hpogrow.search.executors.base import Run
from hpogrow.search.horizon import HorizonChoice, choose_alpha
from hpogrow.search.plan import Plan
from hpogrow.speedup import MATCH_FRACTIONS, SeedSpeedup, aggregate_speedups, seed_speedup
from hpogrow.storage import load_or_create_study, open_storage
from hpogrow.tasks import Task
from hpogrow.throughput import training_flops

TrialState = optuna.trial.TrialState
FrozenTrial = optuna.trial.FrozenTrial


@dataclass(frozen=True)
class BaseCost:
    """Tokens and FLOPs spent before a pair's warmstarted run: the base trial and any stages."""

    tokens: int
    flops: float

    def plus(self, run: RunRecord) -> BaseCost:
        return BaseCost(self.tokens + run.tokens, self.flops + run.flops)


@dataclass
class PendingRun:
    """A target run submitted to the executor (or a finished trial reused: ``job is None``)."""

    trial: optuna.Trial | FrozenTrial
    role: str
    width: int
    job: Any = None

    def wait(self, study: optuna.Study) -> tuple[optuna.Trial | FrozenTrial, RunOutcome | None]:
        """The trial and its run's outcome (``None``: reused); a failed run is told FAIL."""
        if self.job is None:
            return self.trial, None
        trial = self.trial
        try:
            return trial, self.job.result()
        except TrainingDiverged as error:
            record.fail(study, trial, str(error), fidelity_reached=error.tokens_seen, diverged=True)
            raise PipelineError(f"the {self.role} run at width {self.width} diverged ({error}); "
                                "lower the learning rate range with --space") from None
        except (KeyboardInterrupt, SystemExit):  # the driver is stopping (Ctrl-C; SIGTERM under Ray): the trial
            raise                                # stays RUNNING, for the next driver to adopt and continue
        except BaseException as error:
            record.fail(study, trial, f"{type(error).__name__}: {error}")
            raise


@dataclass
class PairRuns:
    scratch: PendingRun
    warmstart: PendingRun
    cost: BaseCost
    """What the pair's own base (and its stages) cost: the base cost of its speedup."""
    base: int
    """The base it grew (``pair mod bases``)."""


@dataclass(frozen=True)
class Base:
    """One of the bases the pairs grow: the winner (0) or a replicate base trial (k ≥ 1)."""

    index: int
    trial: FrozenTrial
    study: str
    """The study holding ``trial``: the base study for the winner, the target study for a replicate."""

    @property
    def run(self) -> RunRecord:
        return RunRecord.of(self.trial)


def open_target_study(plan: Plan, storage: optuna.storages.BaseStorage, console: Console) -> optuna.Study:
    """The target study (its signature checked), with the WAITING trials of a dead driver told
    FAIL (its RUNNING ones wait to be adopted: :meth:`TargetPairs.start_pair`)."""
    config, final = plan.config, plan.growth
    signature = TargetSignature(plan.task.describe(), config.base_width, final.target_width, final.target_depth,
                                plan.target_tokens, config.grow_op, config.shrink, config.noise_scale, config.stages,
                                config.carry_optimizer, config.schedule, config.evaluations, config.seed, plan.base_study)
    study = load_or_create_study(storage, plan.target_study, signature)
    abandoned = record.fail_waiting(study)
    if abandoned:
        console.print(f"marked target trials {abandoned} FAIL: the driver that enqueued them died")
    return study


class TargetPairs:
    """The warmstart/scratch pairs of one search, grown from ``winner`` and its replicate bases
    (see the module docstring)."""

    def __init__(self, plan: Plan, study: optuna.Study, winner: FrozenTrial, executor: Executor, display: Display,
                 console: Console) -> None:
        self.plan, self.study, self.winner, self.executor = plan, study, winner, executor
        self.display, self.console = display, console
        self.hyperparameters = {"learning_rate": winner.params["learning_rate"], "batch_size": winner.params["batch_size"]}
        self.base = RunRecord.of(winner)
        self.root = plan.checkpoint_dir / plan.target_study.split("/", 1)[1]
        self.horizon = self._choose_horizon()

    def _choose_horizon(self) -> HorizonChoice:
        """α of ``--horizon-transfer``, from the base study's trials that reached past the first rung."""
        plan, mode = self.plan, self.plan.config.horizon_transfer
        trials = []
        if mode != "off":
            base_study = optuna.load_study(study_name=plan.base_study, storage=open_storage(plan.config.storage_url))
            trials = base_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        return choose_alpha(mode, plan.task.name, trials, plan.base_tokens)

    def _transfer(self, tokens: int, role: str = SCRATCH) -> HorizonTransfer:
        """The learning rate of a run of ``role`` on ``tokens`` tokens, with its correction (and
        ``--warmstart-lr-scale`` for a run grown from a base)."""
        transfer = self.horizon.transfer(self.hyperparameters["learning_rate"], self.plan.base_tokens, tokens)
        if role != WARMSTART and not role.startswith("stage "):
            return transfer
        scale = self.plan.config.warmstart_lr_scale
        return replace(transfer, trained_learning_rate=transfer.trained_learning_rate * scale, warmstart_lr_scale=scale)

    def run(self) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """Replicate bases submitted, every pair started (each once its base is trained), then
        collected: the warmstarted and the scratch trials, pair 0 first."""
        config = self.plan.config
        replicates = {index: self._submit_replicate(index) for index in range(1, config.bases)}
        bases = {0: Base(0, self.winner, self.plan.base_study)}
        pairs = []
        for pair in range(config.seeds):
            index = pair % config.bases
            if index not in bases:  # the pairs of the bases already trained run meanwhile (on Ray)
                bases[index] = self._replicate_base(index, replicates[index])
            pairs.append(self.start_pair(pair, bases[index]))
        abandoned = record.fail_abandoned(self.study, None, sole_writer=True)  # a dead driver's, not adopted
        if abandoned:
            self.console.print(f"marked target trials {abandoned} FAIL: the driver running them died")
        return self.collect(pairs)

    # 1. Start: replicate bases, then for each pair stages, growth, and its two runs submitted.
    def _submit_replicate(self, index: int) -> PendingRun:
        """Replicate base ``index``: the winner's run again (its configuration, budget, evaluation
        points and tokens) from a fresh μP initialisation with seed ``config.seed + index``."""
        plan, width = self.plan, self.plan.config.base_width
        run_config = replace(plan.template, batch_size=self.hyperparameters["batch_size"], seed=plan.config.seed + index,
                             learning_rate=self._transfer(plan.template.tokens).trained_learning_rate)
        folder = self._base_folder(index)
        return self._submit(REPLICATE, 0, width, run_config.tokens, None, lambda owner, resume: partial(
            run_scratch, plan.task, width, width, run_config, 0, folder / "checkpoint", owner=owner, resume=resume),
                            base=index)

    def _replicate_base(self, index: int, pending: PendingRun) -> Base:
        """Replicate base ``index`` trained (or reused), its checkpoint checked to be its own."""
        trial = self._finish(*pending.wait(self.study))
        check_owner(RunRecord.of(trial).checkpoint, self.plan.config.storage_key, self.plan.target_study, trial.number)
        return Base(index, trial, self.plan.target_study)

    def start_pair(self, pair: int, base: Base) -> PairRuns:
        """Stages of pair ``pair`` (trained here, in order), then its final growth from ``base``;
        its warmstart and scratch runs submitted. A run that a dead driver left RUNNING is adopted
        and continues from its partial checkpoint (:mod:`hpogrow.resume`)."""
        plan, config = self.plan, self.plan.config
        seed, pair_dir = config.seed + pair, self.root / f"pair{pair}"
        position = self.base.data_position + pair * plan.supply.budget.pair_examples
        source, current = base.run.checkpoint, plan.task
        cost = BaseCost(base.run.tokens, base.run.flops)
        for index, step in enumerate(plan.stages):
            last = index == len(plan.stages) - 1
            grown = grow_checkpoint(source, pair_dir / ("grown" if last else f"grown-stage{index + 1}"),
                                    target_width=step.target_width, target_depth=step.target_depth,
                                    operator=config.grow_op, shrink=config.shrink, noise_scale=config.noise_scale,
                                    seed=seed, carry_optimizer=config.carry_optimizer, task=current)
            crash_point("after-growth")
            current = plan.task_at(step)
            if last:
                break
            stage = RunRecord.of(self._train_stage(index, pair, base.index, current, grown.path, position))
            source, position, cost = stage.checkpoint, stage.data_position, cost.plus(stage)
        final = plan.growth
        scratch_config = self._run_config(plan.target_tokens, seed, SCRATCH)
        warm_config = self._run_config(plan.target_tokens, seed, WARMSTART)
        scratch = self._submit(SCRATCH, pair, final.target_width, scratch_config.tokens, None, lambda owner, resume: partial(
            run_scratch, current, final.target_width, config.base_width, scratch_config, position, pair_dir / "scratch",
            owner=owner, resume=resume))
        warmstart = self._submit(
            WARMSTART, pair, final.target_width, warm_config.tokens, self._lineage(cost, base),
            lambda owner, resume: partial(run_warmstart, current, grown.path, warm_config, pair_dir / "warmstart",
                                          data_position=position, owner=owner, resume=resume), base=base.index)
        return PairRuns(scratch, warmstart, cost, base.index)

    def _train_stage(self, index: int, pair: int, base: int, task: Task, grown, position: int) -> FrozenTrial:
        """Intermediate stage ``index`` of a pair, trained to its end before the next growth."""
        role = f"stage {index + 1}"
        stage_config = self._run_config(self.plan.stage_tokens(index), self.plan.config.seed + pair, role)
        pending = self._submit(role, pair, self.plan.stages[index].target_width, stage_config.tokens,
                               None, lambda owner, resume: partial(
                                   run_warmstart, task, grown, stage_config, self.root / f"pair{pair}" / f"stage{index + 1}",
                                   data_position=position, owner=owner, resume=resume), base=base)
        return self._finish(*pending.wait(self.study))

    def _run_config(self, tokens: int, seed: int, role: str):
        return replace(self.plan.template, batch_size=self.hyperparameters["batch_size"], tokens=tokens, eval_tokens=(), seed=seed,
                       learning_rate=self._transfer(tokens, role).trained_learning_rate)

    def _lineage(self, cost: BaseCost, base: Base) -> GrowthLineage:
        """Base to final target over every stage, with what was spent before the warmstarted run."""
        plan, config, final = self.plan, self.plan.config, self.plan.growth
        return GrowthLineage(
            grown_from=base.run.checkpoint, grow_op=config.grow_op,
            grow_factor=None if config.target_width or config.target_depth else plan.grow_factor,
            param_ratio=round(final.param_ratio, 4), width_ratio=round(final.width_ratio, 4),
            base_width=final.base_width, target_width=final.target_width, base_depth=final.base_depth,
            target_depth=final.target_depth, shrink=config.shrink, carry_optimizer=config.carry_optimizer,
            base_tokens=cost.tokens, base_flops=cost.flops, grown_from_trial=f"{base.study}#{base.trial.number}",
            stage_widths=tuple(s.target_width for s in plan.stages))

    def _submit(self, role: str, pair: int, width: int, tokens: int, lineage: GrowthLineage | None,
                make_run: Callable[[CheckpointOwner, ResumePoint], Run], base: int | None = None) -> PendingRun:
        """The run ``make_run(owner, resume)`` submitted to the executor as a new trial of
        ``role`` (or as the RUNNING trial of a dead driver, adopted), or the finished trial the
        study already holds for it. ``base``: the replicate base's index, or the base a warmstart
        or stage run grows (``None`` for scratch)."""
        done = self._mine(role, pair, base, TrialState.COMPLETE, tokens)
        name = f"base {base}" if role == REPLICATE else f"pair {pair}"
        if done is not None:
            self.console.print(f"{role} ({name}): reusing finished trial {done.number} of {self.plan.target_study}")
            self._drop_partial(role, pair, base)  # a driver that died between telling it and this
            return PendingRun(done, role, width)
        config = self.plan.config
        left = self._mine(role, pair, base, TrialState.RUNNING, tokens)
        if left is not None:
            trial = record.adopt(self.study, left)
            self.console.print(f"{role} ({name}): continuing trial {trial.number}, left RUNNING by a dead driver, "
                               "from its last partial checkpoint (if it wrote one)")
        else:
            stage = int(role.split()[1]) if role.startswith("stage ") else None
            seed = config.seed + (base if role == REPLICATE else pair)
            identity = RunRecord(role=role, width=width, pair=pair, seed=seed, stage=stage,
                                 base_trial=self.winner.number, base_study=self.plan.base_study, base_replicate=base,
                                 schedule=config.schedule, lineage=lineage, horizon=self._transfer(tokens, role))
            trial = record.start_target_trial(self.study, self.hyperparameters, self.plan.space.distributions(),
                                              identity)
        owner = CheckpointOwner(config.storage_key, self.plan.target_study, trial.number)
        resume = ResumePoint(self._resume_folder(role, pair, base), config.checkpoint_every)
        label = (f"{role} {base} w{width}" if role == REPLICATE
                 else f"{role} w{width}" + (f" #{pair}" if config.seeds > 1 else ""))
        job = self.executor.submit(make_run(owner, resume), label, tokens, self.display,
                                   partial(record.report, trial))
        return PendingRun(trial, role, width, job)

    def _base_folder(self, index: int) -> Path:
        return self.root / f"base{index}"

    def _resume_folder(self, role: str, pair: int, base: int | None) -> Path:
        if role == REPLICATE:
            return self._base_folder(base) / "resume"
        return self.root / f"pair{pair}" / "resume" / role.replace(" ", "")

    def _mine(self, role: str, pair: int, base: int | None, state: TrialState, tokens: int) -> FrozenTrial | None:
        """The trial in ``state`` of run ``role`` of pair ``pair`` (of base ``base``) grown from
        this winner and trained at this run's learning rate on ``tokens`` (the newest, should a
        dead driver have left several). A record from before ``--bases`` names no base: its pairs
        grew the winner (base 0); one from before ``--horizon-transfer`` trained at the winner's rate."""
        learning_rate = self._transfer(tokens, role).trained_learning_rate
        for trial in reversed(self.study.get_trials(deepcopy=False, states=(state,))):
            run = RunRecord.of(trial)
            trained = run.horizon.trained_learning_rate if run.horizon else trial.params.get("learning_rate")
            if run.role == role and run.base_trial == self.winner.number and run.pair == pair \
                    and (run.base_replicate or 0) == (base or 0) and trial.params == self.winner.params \
                    and trained is not None and math.isclose(trained, learning_rate, rel_tol=1e-9):
                return trial
        return None

    def _finish(self, trial, outcome: RunOutcome | None, also: RunRecord | None = None) -> FrozenTrial:
        """Tell the trial its outcome; its partial checkpoint has then served its purpose."""
        if outcome is None:
            return trial
        record.finish(self.study, trial, outcome.summary, complete=not outcome.stopped_early, also=also)
        finished = self.study.trials[trial.number]
        run = RunRecord.of(finished)
        self._drop_partial(run.role, run.pair, run.base_replicate)
        return finished

    def _drop_partial(self, role: str, pair: int, base: int | None) -> None:
        """Delete a told run's partial checkpoint (and the pair's resume folder once empty)."""
        folder = self._resume_folder(role, pair, base)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()

    # 2. Collect: wait for every run, record the speedup over the pairs on the warmstarted trials.
    def collect(self, pairs: list[PairRuns]) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        scratches, warmstarts = [], []
        for pair in pairs:
            scratches.append(self._finish(*pair.scratch.wait(self.study)))
            crash_point("between-target-runs")
            warmstarts.append((*pair.warmstart.wait(self.study), pair))
        readings = {fraction: aggregate_speedups([_pair_speedup(trial, outcome, scratch, pair, fraction)
                                                  for (trial, outcome, pair), scratch in zip(warmstarts, scratches)])
                    for fraction in sorted({*MATCH_FRACTIONS, 1.0})}
        estimate = readings[1.0]
        gaps, eval_error = _eval_gap(self.plan.task_at(self.plan.growth), self.plan.config.device, warmstarts, scratches)
        speedup = SpeedupRecord.from_estimate(estimate, gaps, eval_error, matches=list(readings.items()))
        finished = []
        for index, (trial, outcome, _) in enumerate(warmstarts):  # a reused trial keeps what was known when it finished
            pair = estimate.per_seed[index]
            finished.append(self._finish(trial, outcome, RunRecord(pair_speedup_tokens=pair.tokens,
                                                                   pair_censoring=pair.censoring, speedup=speedup)))
        record.write_speedup(self.study, speedup)
        return finished, scratches


def _pair_speedup(warmstart, outcome: RunOutcome | None, scratch: FrozenTrial, pair: PairRuns,
                  fraction: float = 1.0) -> SeedSpeedup:
    """The speedup of one pair (:func:`hpogrow.speedup.seed_speedup`, to scratch's loss at
    ``fraction`` of its budget) from its warmstarted run's outcome (or, for a reused trial, its
    record) and its scratch trial; FLOPs are 6·N·D, the base cost that of the pair's own base."""
    if outcome is None:
        curve, compute_params = sorted(warmstart.intermediate_values.items()), RunRecord.of(warmstart).compute_params
    else:
        curve, compute_params = [(e.tokens_seen, e.val_loss) for e in outcome.evaluations], outcome.compute_params
    return seed_speedup(curve, sorted(scratch.intermediate_values.items()),
                        flops_per_token=training_flops(compute_params, 1), base_tokens=pair.cost.tokens,
                        base_flops=pair.cost.flops, seed=RunRecord.of(scratch).seed, base=pair.base, fraction=fraction)


def _eval_gap(task: Task, device: str, warmstarts: list, scratches: list[FrozenTrial]) -> tuple[list[float], float | None]:
    """Each pair's warmstart−scratch gap in final validation loss, and the eval set's standard
    error of such a gap (:func:`hpogrow.runs.paired_eval_gap`, the largest over pairs; ``None``
    when a task has none)."""
    paired = []
    for (trial, outcome, _), scratch in zip(warmstarts, scratches):
        checkpoint = RunRecord.of(trial).checkpoint if outcome is None else outcome.checkpoint
        paired.append(paired_eval_gap(task, checkpoint, RunRecord.of(scratch).checkpoint, device))
    errors = [error for _, error in paired]
    return [gap for gap, _ in paired], None if any(error is None for error in errors) else max(errors)
